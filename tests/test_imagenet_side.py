"""ImageNet initialisation, the keras channel rule, hard negatives and the pose side head."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from handpose.errors import HandposeError  # noqa: E402
from handpose.hand import Hand  # noqa: E402
from models.data.sample import Sample  # noqa: E402
from models.losses import side_loss  # noqa: E402
from models.networks.mobilenetv2 import make_divisible  # noqa: E402
from models.networks.pose import build_pose  # noqa: E402
from models.networks.weights import imagenet_weights_path  # noqa: E402
from models.training.config import resolve_config  # noqa: E402
from models.training.pipeline import (  # noqa: E402
    NEGATIVE_MARGIN,
    detector_example,
    hand_free_window,
    pose_example,
)


def test_keras_channel_rule_is_keras_applications():
    # keras.applications.mobilenet_v2._make_divisible on the 0.35 table
    assert [make_divisible(c * 0.35) for c in (32, 16, 24, 32, 64, 96, 160, 320)] == [
        16, 8, 8, 16, 24, 32, 56, 112,
    ]  # fmt: skip
    assert [make_divisible(c * 1.0) for c in (32, 16, 24, 320)] == [32, 16, 24, 320]


@pytest.mark.slow
@pytest.mark.parametrize("width", [0.35, 1.0])
def test_imagenet_backbone_computes_what_keras_applications_computes(width):
    """Our pose network's backbone with backbone_weights="imagenet", fed camera pixels, gives
    keras.applications.MobileNetV2 (same file) on the same pixels after its own
    preprocess_input (x / 127.5 - 1): the stem kernel absorbs our x / 255 - 0.5."""
    path = imagenet_weights_path(width)
    ours = build_pose(width=width, channel_rule="keras", backbone_weights="imagenet")
    app = keras.applications.MobileNetV2(
        input_shape=(224, 224, 3), alpha=width, include_top=False, weights=str(path)
    )
    pixels = np.random.default_rng(3).uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
    pixels[1] = np.linspace(0, 255, 224)[None, :, None]  # a smooth image too
    mine = keras.Model(ours.input, ours.get_layer("conv17_project_bn").output)(pixels)
    theirs = keras.Model(app.input, app.get_layer("block_16_project_BN").output)(
        keras.applications.mobilenet_v2.preprocess_input(pixels.copy())
    )
    mine, theirs = np.asarray(mine), np.asarray(theirs)
    assert np.abs(theirs).max() > 1.0  # a live feature map, not zeros
    np.testing.assert_allclose(mine, theirs, atol=1e-4 * np.abs(theirs).max())
    # and it is not what a random network computes
    random = build_pose(width=width, channel_rule="keras")
    head = keras.Model(random.input, random.get_layer("conv17_project_bn").output)
    other = np.asarray(head(pixels))
    assert np.abs(other - theirs).max() > 0.1 * np.abs(theirs).max()


def test_imagenet_weights_exist_only_for_the_published_widths():
    with pytest.raises(HandposeError, match="widths 1.0, 0.35"):
        imagenet_weights_path(0.5)
    with pytest.raises(HandposeError, match="channel_rule"):
        resolve_config({"task": "pose", "model": {"channel_rule": "odd"}})
    with pytest.raises(HandposeError, match="side_head is a pose option"):
        resolve_config({"task": "detector", "model": {"side_head": True}})


def _photo(hands, size=200):
    image = np.full((size, size, 3), 90, np.uint8)
    return Sample(image=image, hands=hands, source="test", name="x")


def _hand(side, box):
    box = np.asarray(box, np.float32)
    kp = np.linspace(box[:2] + 2, box[2:] - 2, 21).astype(np.float32)
    return Hand(side, 1.0, box, kp, np.ones(21, np.float32))


def test_hard_negative_windows_stay_clear_of_every_hand():
    hands = [_hand("left", [20, 20, 70, 80]), _hand("right", [120, 110, 180, 190])]
    sample = _photo(hands)
    rng = np.random.default_rng(0)
    found = 0
    for _ in range(50):
        window = hand_free_window(sample, rng)
        if window is None:
            continue
        found += 1
        for hand in hands:
            grow = NEGATIVE_MARGIN * max(hand.box[2] - hand.box[0], hand.box[3] - hand.box[1])
            x0, y0, x1, y1 = hand.box + np.array([-grow, -grow, grow, grow])
            assert window[2] <= x0 or window[0] >= x1 or window[3] <= y0 or window[1] >= y1
    assert found > 10
    assert hand_free_window(_photo([]), rng) is None  # unlabelled: it could hide a hand
    augment = resolve_config({"task": "detector", "augment": {"negative_prob": 1.0}})["augment"]
    negatives = [detector_example(sample, 96, ("left", "right"), augment, np.random.default_rng(s))
                 for s in range(10)]  # fmt: skip
    assert sum(len(ex.labels) == 0 for ex in negatives) >= 5


def test_unmirrored_pose_crops_keep_the_side_for_the_side_head():
    sample = _photo([_hand("left", [40, 40, 120, 140]), _hand("right", [130, 40, 190, 120])])
    left, right = sample.hands
    mirrored = pose_example(sample, left, 64, None, None)
    plain = pose_example(sample, left, 64, None, None, mirror_left=False)
    assert mirrored.side == 1.0 and plain.side == 0.0  # a mirrored left hand looks right
    # the same keypoints, mirrored: x -> 64 - x
    np.testing.assert_allclose(mirrored.keypoints[:, 0], 64 - plain.keypoints[:, 0], atol=1e-3)
    assert pose_example(sample, right, 64, None, None, mirror_left=False).side == 1.0
    unknown = _photo([Hand("hand", 1.0, left.box, left.keypoints, left.keypoint_scores)])
    assert pose_example(unknown, unknown.hands[0], 64, None, None).side == -1.0


def test_side_loss_ignores_hands_without_a_side():
    p = np.array([[0.9], [0.2], [0.5]], np.float32)
    t = np.array([[1.0], [0.0], [-1.0]], np.float32)
    want = -(np.log(0.9) + np.log(0.8)) / 2
    assert float(side_loss(p, t)) == pytest.approx(want, rel=1e-5)
    assert float(side_loss(p, np.full((3, 1), -1.0, np.float32))) == 0.0
    model = build_pose(width=0.35, input_size=64, channel_rule="keras", side_head=True)
    out = model(np.zeros((2, 64, 64, 3), np.float32))
    assert tuple(out["side"].shape) == (2, 1)


def test_stride16_pose_grid_is_14x14_and_decodes_like_the_7x7():
    from handpose.codec import ppn
    from models.networks.pose import pose_grid

    assert pose_grid(224, 16) == 14 and pose_grid(224) == 7
    model = build_pose(width=0.35, channel_rule="keras", grid_stride=16)
    out = model(np.zeros((1, 224, 224, 3), np.float32))
    assert tuple(out["pose"].shape) == (1, 14, 14, 126)
    assert tuple(out["vect"].shape) == (1, 14, 14, 60)
    from models.data.synthetic import SyntheticHands

    config = ppn.PPNConfig(input_size=224, grid=14)
    assert config.stride_xy == (16.0, 16.0)
    assert (config.window, config.tip_window) == (4, 2)  # the 7x7 grid's 64 / 32 px
    assert (ppn.PPNConfig().window, ppn.PPNConfig().tip_window) == (2, 1)
    sample = SyntheticHands(1, seed=5, task="pose", image_size=224)[0]
    keypoints = np.asarray(sample.hands[0].keypoints, np.float64)
    keypoints = (keypoints - keypoints.min(0)) * (180 / np.ptp(keypoints, 0).max()) + 20
    targets = ppn.encode_targets(keypoints, np.ones(21), None, config)
    resp, xy = np.asarray(targets["resp"]), np.asarray(targets["xy"])
    pose = np.zeros((14, 14, 21, 6), np.float32)
    pose[..., 0], pose[..., 1] = resp, resp
    pose[..., 2:4] = xy
    pose[..., 4:6] = np.asarray(targets["wh"])
    decoded = ppn.decode(pose.reshape(14, 14, 126), np.zeros((14, 14, 60), np.float32), config)
    np.testing.assert_allclose(np.asarray(decoded.keypoints).reshape(21, 2), keypoints, atol=0.5)
    with pytest.raises(HandposeError, match="grid_stride"):
        resolve_config({"task": "pose", "model": {"grid_stride": 8}})
