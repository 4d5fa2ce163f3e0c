"""Fine-tuning on real photographs: unknown-side boxes, `[model] init`, zoom-out and paste."""

import json

import numpy as np
import pytest

pytest.importorskip("keras")

from handpose.errors import HandposeError  # noqa: E402
from handpose.hand import Hand  # noqa: E402
from models.data.augment import hand_patches, paste_hands  # noqa: E402
from models.data.sample import Sample  # noqa: E402
from models.losses import multibox_loss  # noqa: E402
from models.training.config import resolve_config  # noqa: E402
from models.training.pipeline import detector_example  # noqa: E402

SIDES = ("left", "right")
#: geometry off, so only zoom-out / paste change the example
STILL = {
    "rotate_deg": 0.0,
    "scale": [1.0, 1.0],
    "shift": 0.0,
    "flip": False,
    "color": 0.0,
    "zoom_out": [0.5, 0.5],
    "zoom_out_prob": 0.0,
    "paste_prob": 0.0,
    "paste_scale": [0.2, 0.3],
}


def _hand(side, box, keypoints=True, rng=None):
    box = np.asarray(box, np.float32)
    if not keypoints:
        return Hand(side, 1.0, box)
    rng = rng or np.random.default_rng(0)
    kp = rng.uniform(box[:2] + 2, box[2:] - 2, (21, 2)).astype(np.float32)
    kp[0], kp[1] = box[:2] + 2, box[2:] - 2  # keypoints span the box minus a 2 px margin
    return Hand(side, 1.0, box, kp, np.ones(21, np.float32))


def _sample(colour, hands, size=128, seed=0):
    """A flat image of `colour` with each hand's box filled by a checkerboard of that colour."""
    image = np.empty((size, size, 3), np.uint8)
    image[...] = colour
    yy, xx = np.mgrid[:size, :size]
    checker = ((yy // 4 + xx // 4) % 2).astype(bool)
    for hand in hands:
        x0, y0, x1, y1 = np.round(hand.box).astype(int)
        region = np.zeros_like(checker)
        region[y0:y1, x0:x1] = True
        image[region & checker] = 255 - np.asarray(colour, np.uint8)
    return Sample(image=image, hands=hands, source="test", name=str(seed))


# ------------------------------------------------------------------------ unknown side


def test_multibox_unknown_side_positive_is_minus_log_one_minus_background():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (1, 6, 3)).astype(np.float32)  # C = 2: background, left, right
    labels = np.array([[3, 0, 0, 0, 0, 0]], np.int32)  # box 0: a hand of unknown side
    zeros = np.zeros((1, 6, 4), np.float32)
    out = multibox_loss(zeros, logits, zeros, labels)

    z = logits[0].astype(np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    positive = -np.log(1.0 - p[0, 0])
    negatives = np.sort(-np.log(p[1:, 0]))[::-1][:3]  # the 3 hardest of 5 backgrounds
    assert float(out["conf"]) == pytest.approx(positive + negatives.sum(), rel=1e-5)
    assert float(out["loc"]) == 0.0
    # a sided label costs -log p_side, strictly more than -log(p_left + p_right)
    for side in (1, 2):
        sided = multibox_loss(zeros, logits, zeros, np.array([[side, 0, 0, 0, 0, 0]], np.int32))
        assert float(sided["conf"]) == pytest.approx(-np.log(p[0, side]) + negatives.sum(), 1e-5)
        assert float(sided["conf"]) > float(out["conf"])


def test_detector_example_labels_unknown_side_hands_c_plus_1():
    sample = _sample(
        (40, 90, 140),
        [
            _hand("hand", [10, 10, 50, 60], keypoints=False),  # a real photograph's box
            _hand("right", [70, 60, 120, 110]),
        ],
    )
    ex = detector_example(sample, 96, SIDES, None, None)
    assert ex.labels.tolist() == [3, 2]
    np.testing.assert_allclose(ex.boxes[0], np.array([10, 10, 50, 60]) * 0.75, atol=1e-4)
    # a one-class detector: every hand is class 1
    assert detector_example(sample, 96, ("hand",), None, None).labels.tolist() == [1, 1]
    # mirroring keeps the unknown side unknown
    mirror = dict(STILL, flip=True)
    for seed in range(4):
        ex = detector_example(sample, 96, SIDES, mirror, np.random.default_rng(seed))
        assert sorted(ex.labels.tolist()) in ([2, 3], [1, 3])


def _detector_task(**augment):
    pytest.importorskip("models.data.spec")
    from models.training.tasks import DetectorTask

    raw = {
        "task": "detector",
        "data": {"cache": 8},
        "model": {"width": 0.25, "input_size": 96},
        "train": {"batch": 3, "val_samples": 2},
        "augment": augment,
    }
    return DetectorTask(resolve_config(raw))


def test_detector_task_encodes_and_validates_unknown_side():
    task = _detector_task()
    sample = _sample((40, 90, 140), [_hand("hand", [20, 20, 70, 80], keypoints=False)])
    ex = detector_example(sample, 96, task.classes, None, None)
    loc, lab = task.encode(ex.boxes, ex.labels)
    assert (lab == 3).sum() >= 1 and set(np.unique(lab)) == {0, 3}
    assert np.abs(loc[lab == 3]).sum() > 0
    truth = task.truth(ex)
    assert [h.handedness for h in truth] == ["hand"]
    # validation with only side-unknown truths ranks by the class-agnostic AP
    task._val = [ex]

    def predict(images):
        n = len(task.priors)
        scores = np.zeros((len(images), n, 3), np.float32)
        scores[:, :, 0] = 5.0  # background everywhere ...
        scores[:, lab == 3, 0] = -5.0  # ... except on the matched priors: "left"
        scores[:, lab == 3, 1] = 5.0
        locations = np.repeat(loc[None], len(images), axis=0)
        return {"locations": locations, "scores": scores}

    row = task.validate(predict)
    assert row["ap50_any_side"] == pytest.approx(1.0)
    assert row["ap50"] == row["ap50_any_side"]


# ---------------------------------------------------------------------------- config


def test_config_defaults_keep_new_augmentations_off_and_check_values():
    config = resolve_config({})
    assert config["model"]["init"] == ""
    assert config["augment"]["zoom_out_prob"] == 0.0 and config["augment"]["paste_prob"] == 0.0
    bad = [
        ({"augment": {"zoom_out_prob": 1.5}}, "zoom_out_prob"),
        ({"augment": {"paste_prob": "yes"}}, "paste_prob"),
        ({"augment": {"zoom_out": [0.8, 0.4]}}, "zoom_out"),
        ({"augment": {"zoom_out": [0.5, 1.2]}}, "zoom_out"),
        ({"augment": {"paste_scale": [0.1]}}, "paste_scale"),
        ({"model": {"init": 3}}, "model.init"),
    ]
    for raw, key in bad:
        with pytest.raises(HandposeError, match=key):
            resolve_config(raw)


# --------------------------------------------------------------------- zoom-out / paste


def test_zoom_out_shrinks_labels_onto_a_background():
    hands = [_hand("left", [20, 30, 60, 90]), _hand("hand", [80, 10, 120, 50], keypoints=False)]
    sample = _sample((200, 30, 30), hands)
    plain = detector_example(sample, 96, SIDES, STILL, np.random.default_rng(1))
    zoomed_cfg = dict(STILL, zoom_out_prob=1.0)
    for seed in range(3):
        ex = detector_example(sample, 96, SIDES, zoomed_cfg, np.random.default_rng(seed))
        assert ex.labels.tolist() == plain.labels.tolist() == [1, 3]
        size = lambda b: b[:, 2:] - b[:, :2]  # noqa: E731
        np.testing.assert_allclose(size(ex.boxes), 0.5 * size(plain.boxes), rtol=1e-3, atol=0.05)
        assert (ex.boxes >= 0).all() and (ex.boxes <= 96).all()
        assert not np.array_equal(ex.image, plain.image)
        # the shrunk sample covers 1/4 of the image: the rest is a background, not black
        # and not the sample's flat red
        shift = ex.boxes[0, :2] - 0.5 * plain.boxes[0, :2]
        placed = np.zeros((96, 96), bool)
        x0, y0 = np.floor(shift).astype(int) + 1
        placed[y0 : y0 + 46, x0 : x0 + 46] = True
        in_hands = np.zeros((96, 96), bool)
        for bx0, by0, bx1, by1 in ex.boxes:
            in_hands[int(by0) - 1 : int(by1) + 2, int(bx0) - 1 : int(bx1) + 2] = True
        inside = ex.image[placed & ~in_hands].astype(int)
        outside = ex.image[~placed].astype(int)
        # the sample's own flat red where it was placed
        assert np.all(np.abs(inside - [200, 30, 30]) <= 2, axis=1).mean() > 0.95
        assert np.all(np.abs(outside - [200, 30, 30]) <= 2, axis=1).mean() < 0.5
        assert (outside.sum(axis=1) == 0).mean() < 0.5


def test_paste_adds_non_overlapping_hands_of_another_sample():
    target = _sample((200, 30, 30), [_hand("left", [10, 10, 60, 70])])
    donor = _sample((0, 0, 255), [_hand("right", [30, 40, 90, 110], rng=np.random.default_rng(5))])
    patches = hand_patches(donor, origin="donor")
    assert len(patches) == 1 and patches[0].image.shape[:2] == (78, 66)  # box + 10 %
    config = dict(STILL, paste_prob=1.0)
    plain = detector_example(target, 96, SIDES, STILL, np.random.default_rng(0))
    pasted_any = 0
    for seed in range(6):
        ex = detector_example(target, 96, SIDES, config, np.random.default_rng(seed), patches)
        assert ex.labels[0] == 1 and np.allclose(ex.boxes[0], plain.boxes[0])
        new_boxes, new_labels = ex.boxes[1:], ex.labels[1:]
        assert 1 <= len(new_boxes) <= 2 and (new_labels == 2).all()
        pasted_any += len(new_boxes)
        assert not np.array_equal(ex.image, plain.image)
        assert (new_boxes >= 0).all() and (new_boxes <= 96).all()
        sides = new_boxes[:, 2:] - new_boxes[:, :2]
        # longer side of the patch (box + 10 %) is 0.2..0.3 x 96
        assert (sides.max(axis=1) >= 0.2 * 96 / 1.1 - 1).all()
        assert (sides.max(axis=1) <= 0.3 * 96 + 1).all()
        for i, a in enumerate(ex.boxes):
            for b in ex.boxes[i + 1 :]:
                w = min(a[2], b[2]) - max(a[0], b[0])
                h = min(a[3], b[3]) - max(a[1], b[1])
                assert w <= 1e-4 or h <= 1e-4, (a, b)
        # the donor's hand (a blue / yellow checkerboard, grey on average) fills each pasted
        # box instead of the target's flat red
        for x0, y0, x1, y1 in np.round(new_boxes).astype(int):
            region = ex.image[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1].reshape(-1, 3).astype(int)
            assert np.abs(region.mean(axis=0) - 127.5).max() < 25, region.mean(axis=0)
    assert pasted_any >= 6

    # labels of pasted hands carry keypoints, moved with the pixels
    out = paste_hands(
        _sample((200, 30, 30), [], size=96), patches, (0.3, 0.3), np.random.default_rng(0), count=1
    )
    (hand,) = out.hands
    assert hand.handedness == "right" and hand.keypoints is not None
    assert (hand.keypoints >= hand.box[:2] - 1e-3).all()
    assert (hand.keypoints <= hand.box[2:] + 1e-3).all()
    scale = 0.3 * 96 / 78
    np.testing.assert_allclose(
        hand.keypoints - hand.keypoints[0],
        (donor.hands[0].keypoints - donor.hands[0].keypoints[0]) * scale,
        atol=1e-3,
    )


def test_train_batch_with_zoom_out_and_paste():
    plain = _detector_task()
    task = _detector_task(zoom_out_prob=1.0, paste_prob=1.0)
    images, targets = task.train_batch(0, 0)
    base_images, base_targets = plain.train_batch(0, 0)
    assert images.shape == base_images.shape == (3, 96, 96, 3)
    assert not np.array_equal(images, base_images)
    assert set(targets) == {"loc", "labels"}
    # the same (seed, step) gives the same batch (resume)
    again, again_targets = task.train_batch(0, 0)
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(targets["labels"], again_targets["labels"])


# ------------------------------------------------------------------------- model.init


def test_init_names_the_path_when_missing_or_mismatched(tmp_path):
    from models.training.run import build_model, load_init_weights

    config = resolve_config({"model": {"width": 0.25, "input_size": 96}})
    model = build_model(config)
    with pytest.raises(HandposeError, match=r"nothing\.weights\.h5 does not exist"):
        load_init_weights(model, tmp_path / "nothing.weights.h5")
    with pytest.raises(HandposeError, match="without checkpoints/best.weights.h5"):
        load_init_weights(model, tmp_path)
    other = build_model(resolve_config({"model": {"width": 0.5, "input_size": 96}}))
    path = tmp_path / "other.weights.h5"
    other.save_weights(path)
    with pytest.raises(HandposeError, match=r"other\.weights\.h5 does not fit.*width"):
        load_init_weights(model, path)


TINY_INIT = """
task = "detector"
[data]
cache = 8
[model]
width = 0.25
input_size = 96
{init}
[train]
batch = 2
steps = 2
val_every = 2
val_samples = 2
log_every = 1
warmup = 1
"""


@pytest.mark.slow
def test_init_starts_a_run_from_another_runs_weights(tmp_path):
    pytest.importorskip("models.data.spec")
    from models.training.config import load_config
    from models.training.loop import Trainer, train
    from models.training.run import BEST_WEIGHTS, build_model, load_run

    first = tmp_path / "first"
    (tmp_path / "a.toml").write_text(TINY_INIT.format(init=""))
    train(load_config(tmp_path / "a.toml"), first, progress=False)
    trained, _ = load_run(first)  # best.weights.h5

    (tmp_path / "b.toml").write_text(TINY_INIT.format(init=f'init = "{first}"'))
    config = load_config(tmp_path / "b.toml")
    trainer = Trainer(config, tmp_path / "second", progress=False)
    fresh = build_model(config)
    for a, b in zip(trainer.model.get_weights(), trained.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(fresh.get_weights(), trained.get_weights(), strict=True)
    )
    saved = json.loads((tmp_path / "second" / "config.json").read_text())
    assert saved["model"]["init"] == str(first)
    # a weights file works the same way
    config["model"]["init"] = str(first / BEST_WEIGHTS)
    trainer = Trainer(config, tmp_path / "third", progress=False)
    x = np.random.default_rng(0).uniform(0, 255, (1, 96, 96, 3)).astype(np.float32)
    np.testing.assert_allclose(
        np.asarray(trainer.model(x)["scores"]), np.asarray(trained(x)["scores"]), atol=1e-6
    )


TINY_POSE = """
task = "pose"
[data]
cache = 8
mirror_left = false
[model]
width = 0.35
channel_rule = "keras"
input_size = 96
side_head = {head}
{init}
[train]
batch = 2
steps = 2
val_every = 2
val_samples = 2
log_every = 1
warmup = 1
side_weight = 3.0
"""


@pytest.mark.slow
def test_init_by_name_adds_a_new_side_head_to_a_trained_pose_network(tmp_path):
    pytest.importorskip("models.data.spec")
    from models.training.config import load_config
    from models.training.loop import Trainer, train
    from models.training.run import load_run

    first = tmp_path / "first"
    (tmp_path / "a.toml").write_text(TINY_POSE.format(head='"pool"', init=""))
    train(load_config(tmp_path / "a.toml"), first, progress=False)
    trained, _ = load_run(first)
    (tmp_path / "b.toml").write_text(
        TINY_POSE.format(head='"spatial"', init=f'init = "{first}"\ninit_by_name = true')
    )
    trainer = Trainer(load_config(tmp_path / "b.toml"), tmp_path / "second", progress=False)
    model = trainer.model
    assert model.get_layer("side_conv") is not None
    for name in ("conv0_conv", "conv17_project_bn", "pose", "vect"):
        for a, b in zip(model.get_layer(name).get_weights(),
                        trained.get_layer(name).get_weights(), strict=True):  # fmt: skip
            np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(0).uniform(0, 255, (1, 96, 96, 3)).astype(np.float32)
    np.testing.assert_allclose(
        np.asarray(model(x)["pose"]), np.asarray(trained(x)["pose"]), atol=1e-6
    )
    # without init_by_name the different head is an error naming the file
    (tmp_path / "c.toml").write_text(TINY_POSE.format(head='"spatial"', init=f'init = "{first}"'))
    with pytest.raises(HandposeError, match="does not fit this network"):
        Trainer(load_config(tmp_path / "c.toml"), tmp_path / "third", progress=False)
