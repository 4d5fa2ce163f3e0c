"""`handpose data render | preview | clip` through the real command line, and contact sheets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from handpose.cli import main
from models.data.preview import contact_sheet
from models.data.synthetic import SyntheticHands


def test_contact_sheet_has_the_grid_size_and_draws_labels():
    samples = [SyntheticHands(5, seed=2, task="pose", image_size=64)[i] for i in range(5)]
    sheet = contact_sheet(samples, columns=3, tile=80)
    assert sheet.size == (3 * 80, 2 * 80)
    bare = [SyntheticHands(5, seed=2, task="pose", image_size=64)[i] for i in range(5)]
    for s in bare:
        s.hands = []
    plain = contact_sheet(bare, columns=3, tile=80)
    # the labelled sheet differs from the bare one: boxes and skeletons were drawn
    assert np.abs(np.asarray(sheet, int) - np.asarray(plain, int)).sum() > 1000


def test_clip_writes_a_decodable_mp4_with_the_frame_count(tmp_path, capsys):
    av = pytest.importorskip("av")
    out, labels = tmp_path / "clip.mp4", tmp_path / "clip.jsonl"
    code = main(["data", "clip", "--out", str(out), "--frames", "7", "--seed", "3",
                 "--size", "160x120", "--labels", str(labels)])  # fmt: skip
    assert code == 0
    assert "7 frames 160x120" in capsys.readouterr().out
    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 7 and frames[0].shape == (120, 160, 3)
    records = [json.loads(line) for line in labels.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(7))
    assert all(len(r["hands"]) <= 2 for r in records) and any(r["hands"] for r in records)


def test_clip_rejects_odd_sizes(tmp_path, capsys):
    code = main(["data", "clip", "--out", str(tmp_path / "x.mp4"), "--size", "161x121"])
    assert code == 2
    assert "must be even" in capsys.readouterr().err


def test_render_writes_a_dataset_the_loader_reads_back(tmp_path, capsys):
    from models.data.spec import open_dataset

    out = tmp_path / "ds"
    code = main(["data", "render", "--out", str(out), "--count", "3", "--seed", "4",
                 "--task", "pose", "--size", "64"])  # fmt: skip
    assert code == 0
    assert "wrote 3 pose images" in capsys.readouterr().out
    info = json.loads((out / "dataset.json").read_text())
    assert info["task"] == "pose" and info["count"] == 3 and info["source"] == "synthetic"
    assert info["command"].startswith("handpose data render")
    read = open_dataset(f"dir:{out}", split="all", task="pose")
    original = SyntheticHands(3, seed=4, task="pose", image_size=64)
    assert len(read) == 3
    for a, b in zip(read, original, strict=True):
        assert a.image.shape == b.image.shape
        assert np.abs(a.image.astype(int) - b.image.astype(int)).mean() < 6  # JPEG q95
        assert len(a.hands) == len(b.hands) == 1
        for ha, hb in zip(a.hands, b.hands, strict=True):
            assert ha.handedness == hb.handedness
            np.testing.assert_allclose(ha.keypoints, hb.keypoints, atol=0.01)
            np.testing.assert_array_equal(ha.keypoint_scores, hb.keypoint_scores)
            np.testing.assert_allclose(ha.joints_3d, hb.joints_3d, atol=0.01)
            np.testing.assert_allclose(ha.box, hb.box, atol=0.01)
        np.testing.assert_allclose(a.intrinsics, b.intrinsics, rtol=1e-4)


def test_render_detection_scenes_keep_their_empty_images(tmp_path):
    from models.data.handpose_format import HandposeDataset

    out = tmp_path / "det"
    assert main(["data", "render", "--out", str(out), "--count", "8", "--seed", "1",
                 "--size", "64"]) == 0  # fmt: skip
    read = HandposeDataset(out)
    original = SyntheticHands(8, seed=1, task="detection", image_size=64)
    assert [len(s.hands) for s in read] == [len(s.hands) for s in original]
    assert min(len(s.hands) for s in read) == 0


def test_preview_of_a_spec_writes_a_png_of_the_expected_size(tmp_path, capsys):
    from PIL import Image

    out = tmp_path / "sheet.png"
    code = main(["data", "preview", "synthetic:count=20&size=64", "--out", str(out), "--count",
                 "6", "--columns", "3", "--tile", "64", "--task", "pose"])  # fmt: skip
    assert code == 0
    with Image.open(out) as im:
        assert im.size == (3 * 64, 2 * 64)
    assert "6 samples" in capsys.readouterr().out


def test_render_needs_a_positive_count(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "render", "--out", str(tmp_path / "d"), "--count", "0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--count" in err and "must be a whole number >= 1, got 0" in err
    assert not (tmp_path / "d").exists()
