"""Training: overfit a tiny batch, `handpose train` end to end, --resume, load_run."""

import json

import numpy as np
import pytest

pytest.importorskip("keras")

from handpose.cli import main as cli_main  # noqa: E402
from handpose.errors import HandposeError  # noqa: E402
from models.losses import multibox_loss, ppn_loss  # noqa: E402
from models.networks.detector import build_detector, num_boxes  # noqa: E402
from models.networks.pose import build_pose  # noqa: E402
from models.training.config import load_config  # noqa: E402
from models.training.loop import overfit  # noqa: E402
from models.training.run import build_model, load_run  # noqa: E402


@pytest.mark.slow
def test_detector_overfits_a_tiny_batch():
    rng = np.random.default_rng(0)
    size, batch = 96, 4
    n = num_boxes(size)
    images = rng.uniform(0, 255, (batch, size, size, 3)).astype(np.float32)
    labels = np.zeros((batch, n), np.int32)
    for b in range(batch):
        labels[b, rng.choice(n, 4, replace=False)] = rng.integers(1, 3, 4)
    loc = rng.normal(0, 0.5, (batch, n, 4)).astype(np.float32)
    losses = overfit(
        build_detector(0.25, size),
        lambda o, t: multibox_loss(o["locations"], o["scores"], t["loc"], t["labels"]),
        images,
        {"loc": loc, "labels": labels},
        steps=60,
        lr=1e-2,
    )
    assert losses[-1] < losses[0] / 5, losses[::10]


@pytest.mark.slow
def test_pose_overfits_a_tiny_batch():
    rng = np.random.default_rng(0)
    size, batch, g = 96, 4, 3
    images = rng.uniform(0, 255, (batch, size, size, 3)).astype(np.float32)
    resp = np.zeros((batch, g, g, 21), np.float32)
    for b in range(batch):
        for k in range(21):
            resp[b, rng.integers(g), rng.integers(g), k] = 1
    vect = rng.normal(size=(batch, g, g, 20, 3)).astype(np.float32)
    vect /= np.linalg.norm(vect, axis=-1, keepdims=True)
    targets = {
        "resp": resp,
        "xy": rng.uniform(0, 1, (batch, g, g, 21, 2)).astype(np.float32),
        "wh": rng.uniform(0.05, 0.3, (batch, g, g, 21, 2)).astype(np.float32),
        "vect": vect,
        "vect_mask": (rng.uniform(size=(batch, g, g, 20)) > 0.8).astype(np.float32),
    }
    losses = overfit(
        build_pose(0.25, size),
        lambda o, t: ppn_loss(
            o["pose"], o["vect"], t["resp"], t["xy"], t["wh"], t["vect"], t["vect_mask"]
        ),
        images,
        targets,
        steps=30,
        lr=3e-3,
    )
    assert losses[-1] < losses[0] / 5, losses[::5]


def test_config_errors_name_the_key(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('task = "detector"\n[train]\nbatchsize = 3\n')
    with pytest.raises(HandposeError, match="batchsize"):
        load_config(path)
    path.write_text('task = "pose"\n[model]\ninput_size = 100\n')
    with pytest.raises(HandposeError, match="input_size"):
        load_config(path)
    with pytest.raises(HandposeError, match="does not exist"):
        load_config(tmp_path / "missing.toml")


def test_bundled_configs_resolve():
    for name in ("detector", "pose", "detector_smoke", "pose_smoke"):
        config = load_config(f"models/configs/{name}.toml")
        assert config["task"] == name.split("_")[0]


TINY = """
task = "{task}"
[data]
train = "synthetic"
val = "synthetic"
cache = 16
[model]
width = 0.25
input_size = 96
[train]
batch = 4
steps = 4
val_every = 2
val_samples = 4
log_every = 1
warmup = 1
"""


@pytest.mark.slow
@pytest.mark.parametrize("task", ["detector", "pose"])
def test_train_command_writes_run_folder_and_resumes(tmp_path, task, capsys):
    for module in (
        "models.data.spec",
        "models.metrics",
        "handpose.codec.boxes",
        "handpose.codec.ppn",
    ):
        pytest.importorskip(module)  # the data, codec and metrics issues
    config = tmp_path / f"{task}.toml"
    config.write_text(TINY.format(task=task))
    out = tmp_path / "run"
    argv = ["train", task, "--config", str(config), "--out", str(out), "--no-progress"]
    assert cli_main(argv) == 0
    printed = capsys.readouterr().out
    assert "untrained (step 0)" in printed
    for name in (
        "config.json",
        "state.json",
        "metrics.csv",
        "metrics.json",
        "losses.csv",
        "loss.png",
        "checkpoints/last.weights.h5",
        "checkpoints/last.optimizer.npz",
        "checkpoints/best.weights.h5",
    ):
        assert (out / name).is_file(), name
    if task == "pose":
        assert (out / "pck.png").is_file()
    state = json.loads((out / "state.json").read_text())
    assert state["step"] == 4
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"]["width"] == 0.25 and "handpose train" in saved["command"]
    steps = [row["step"] for row in json.loads((out / "metrics.json").read_text())["validations"]]
    assert steps == [0, 2, 4]

    # load_run rebuilds the network and loads the best weights
    model, cfg = load_run(out)
    assert cfg["task"] == task
    x = np.random.default_rng(0).uniform(0, 255, (1, 96, 96, 3)).astype(np.float32)
    a = model(x)
    last, _ = load_run(out, which="last")
    b = last(x)
    fresh = build_model(cfg)(x)  # same architecture, initial weights
    assert set(a) == set(b) == set(fresh)
    key = "scores" if task == "detector" else "pose"
    assert not np.allclose(np.asarray(b[key]), np.asarray(fresh[key]))

    # a second run into the same folder without --resume is refused
    assert cli_main(argv) == 2
    if task == "detector":  # the resume path is the same for both tasks: test it once (time)
        return
    # --resume continues from step 4 to 6
    assert cli_main(argv + ["--resume", "--steps", "6"]) == 0
    state = json.loads((out / "state.json").read_text())
    assert state["step"] == 6
    rows = json.loads((out / "metrics.json").read_text())["validations"]
    assert [row["step"] for row in rows] == [0, 2, 4, 6]


def test_load_run_without_checkpoint_names_the_command(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(load_config("models/configs/pose_smoke.toml")))
    with pytest.raises(HandposeError, match="handpose train pose"):
        load_run(tmp_path)
    with pytest.raises(HandposeError, match="not a training run"):
        load_run(tmp_path / "nothing")


def test_pose_example_mirrors_left_hands_and_rotates_directions():
    from handpose.codec.skeleton3d import bone_directions
    from handpose.hand import Hand
    from handpose.skeleton import EDGES
    from models.data.sample import Sample
    from models.training.pipeline import pose_example

    rng = np.random.default_rng(0)
    kp = rng.uniform(40, 90, (21, 2)).astype(np.float32)
    joints = np.concatenate([kp, rng.uniform(300, 400, (21, 1))], axis=1).astype(np.float32)
    sample = Sample(image=np.zeros((128, 128, 3), np.uint8))
    for side, sign in (("right", 1.0), ("left", -1.0)):
        hand = Hand(side, 1.0, [35, 35, 95, 95], kp, np.ones(21), joints)
        ex = pose_example(sample, hand, 96, None, None)
        expected = bone_directions(joints)
        expected[:, 0] *= sign
        np.testing.assert_allclose(ex.directions, expected, atol=1e-5)
        # keypoints: centred crop, mirrored in x for the left hand
        order = np.argsort(kp[:, 0])
        xs = ex.keypoints[order, 0]
        assert (np.diff(xs) * sign >= -1e-4).all()
        # augmented: the in-plane part of every bone direction turns with the crop's rotation
        augment = {"rotate_deg": 90.0, "crop_scale": [0.9, 1.3], "shift": 0.1, "color": 0.2}
        ex = pose_example(sample, hand, 96, augment, np.random.default_rng(3))
        parents, children = np.array(EDGES).T
        bones_2d = ex.keypoints[children] - ex.keypoints[parents]
        cos = np.sum(bones_2d * ex.directions[:, :2], axis=1) / (
            np.linalg.norm(bones_2d, axis=1) * np.linalg.norm(ex.directions[:, :2], axis=1)
        )
        np.testing.assert_allclose(cos, 1.0, atol=1e-4)
