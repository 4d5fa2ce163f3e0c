"""`handpose data autolabel`: frame selection, the dataset it writes, and training on it.

Offline with the tiny MediaPipe-layout teacher (`conftest_mediapipe`); the real teacher's labels
are compared with the renderer's in test_mediapipe_real.py.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from conftest_app import write_clip  # noqa: E402
from conftest_mediapipe import palm_frame, tiny_mediapipe_dir  # noqa: E402
from PIL import Image  # noqa: E402

from handpose.cli import main as cli_main  # noqa: E402
from handpose.hand import Hand  # noqa: E402
from models.data.autolabel import as_label, label_confidence, label_frame  # noqa: E402
from models.data.handpose_format import HandposeDataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def teacher_hand(score=0.9, presence=0.95, side=0.9, shift=0.0):
    keypoints = np.linspace([10.0, 10.0], [60.0, 80.0], 21) + shift
    return Hand(
        "left",
        score,
        [5, 5, 65, 85],
        keypoints=keypoints,
        keypoint_scores=np.full(21, presence),
        joints_3d=np.zeros((21, 3)),
        extras={"presence": presence, "handedness_score": side},
    )


def test_a_frame_is_kept_only_when_every_hand_is_confident():
    assert label_confidence(teacher_hand(0.9, 0.95, 0.8)) == pytest.approx(0.8)
    palm = teacher_hand(0.9, 0.95, 0.99)
    palm.extras["palm_score"] = 0.6
    assert label_confidence(palm) == pytest.approx(0.6)
    assert label_confidence(Hand("right", 0.7, [0, 0, 1, 1])) == pytest.approx(0.7)
    labels, reason = label_frame([teacher_hand(), teacher_hand(shift=100)], 320, 240, 0.7)
    assert reason == "ok" and len(labels) == 2
    assert label_frame([teacher_hand(), teacher_hand(side=0.6)], 320, 240, 0.7) == (
        None,
        "doubtful",
    )
    assert label_frame([], 320, 240, 0.7) == (None, "empty")


def test_labels_have_visibility_and_no_3d():
    hand = teacher_hand(shift=-30.0)  # some keypoints left of / above the frame
    label = as_label(hand, 320, 240)
    assert label.score == 1.0 and label.joints_3d is None and label.handedness == "left"
    inside = (hand.keypoints >= 0).all(axis=1)
    np.testing.assert_array_equal(label.keypoint_scores, inside.astype(np.float32))
    assert label.box.min() >= 0


def run(argv, capsys):
    code = cli_main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def test_images_folder_with_empty_frames(tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(palm_frame((150, 120), 30, (240, 320))).save(images / "a.png")
    Image.fromarray(np.full((240, 320, 3), 10, np.uint8)).save(images / "b.png")
    (images / "c.jpg").write_bytes(b"broken")
    teacher = str(tiny_mediapipe_dir() / "lite")
    out = run(
        ["data", "autolabel", "--images", str(images), "--out", str(tmp_path / "ds"),
         "--models", teacher],
        capsys,
    )  # fmt: skip
    assert "wrote 1 of 3 frames with 1 hands" in out and "1 without hands" in out
    assert "1 unreadable" in out
    dataset = HandposeDataset(tmp_path / "ds")
    (sample,) = list(dataset)
    assert sample.name == "images/000000.jpg"
    (hand,) = sample.hands
    assert hand.handedness == "right" and hand.keypoints.shape == (21, 2)
    info = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert info["task"] == "detection" and info["source"] == "autolabel:mediapipe-lite"
    assert "--min-score 0.7" in info["command"]
    out = run(
        ["data", "autolabel", "--images", str(images), "--out", str(tmp_path / "all"),
         "--models", teacher, "--keep-empty"],
        capsys,
    )  # fmt: skip
    assert len(HandposeDataset(tmp_path / "all")) == 2
    out = run(
        ["data", "autolabel", "--images", str(images), "--out", str(tmp_path / "none"),
         "--models", teacher, "--min-score", "0.95"],
        capsys,
    )  # fmt: skip
    assert "wrote 0 of 3 frames" in out and "1 with a hand below --min-score 0.95" in out


def test_autolabel_errors_are_one_line(tmp_path, capsys, monkeypatch):
    import handpose.paths

    monkeypatch.setattr(handpose.paths, "MEDIAPIPE_DIR", tmp_path / "nothing")
    argv = ["data", "autolabel", "--images", str(tmp_path), "--out", str(tmp_path / "ds")]
    assert cli_main(argv) == 2
    assert "run `handpose convert mediapipe`" in capsys.readouterr().err
    assert cli_main([*argv, "--min-score", "2"]) == 2
    assert "--min-score must be in 0..1" in capsys.readouterr().err


def smoke_config(tmp_path: Path, task: str, dataset: Path) -> Path:
    """models/configs/<task>_smoke.toml reading `dataset` for training and validation."""
    text = (ROOT / "models" / "configs" / f"{task}_smoke.toml").read_text()
    spec = f'"dir:{dataset}"'
    text = text.replace('train = "synthetic"', f"train = {spec}")
    text = text.replace('val = "synthetic"', f"val = {spec}")
    assert text.count(spec) == 2
    path = tmp_path / f"{task}.toml"
    path.write_text(text)
    return path


@pytest.mark.slow
def test_autolabel_a_rendered_clip_then_train_on_it(tmp_path, capsys):
    from models.data.synthetic import render_clip

    frames = [image for image, _ in render_clip(6, seed=6, size=(240, 320), fps=10)]
    clip = write_clip(tmp_path / "clip.mp4", frames, fps=10)
    dataset = tmp_path / "ds"
    out = run(
        ["data", "autolabel", "--video", str(clip), "--out", str(dataset), "--every", "2",
         "--models", str(tiny_mediapipe_dir() / "full")],
        capsys,
    )  # fmt: skip
    kept = int(re.search(r"wrote (\d+) of 3 frames", out).group(1))
    assert kept >= 2, out  # the tiny teacher sees palms in bright cells: most frames have hands
    for sample in HandposeDataset(dataset):
        assert sample.image.shape == (240, 320, 3) and sample.hands
        assert all(h.keypoints is not None and h.joints_3d is None for h in sample.hands)
    for task in ("detector", "pose"):
        config = smoke_config(tmp_path, task, dataset)
        run_dir = tmp_path / f"run_{task}"
        out = run(
            ["train", task, "--config", str(config), "--out", str(run_dir), "--steps", "2",
             "--no-progress"],
            capsys,
        )  # fmt: skip
        assert "trained (step 2)" in out
        assert (run_dir / "checkpoints" / "last.weights.h5").is_file()
        saved = json.loads((run_dir / "config.json").read_text())
        assert saved["data"]["train"] == f"dir:{dataset}"
