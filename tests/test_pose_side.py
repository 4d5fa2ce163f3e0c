"""Pose networks that see crops unmirrored and tell the side themselves (a "side" output).

Real converter, real interpreter: a small pose network with a side head is exported to TFLite and
described by the conversion package; the app's stages then crop without mirroring and report the
pose network's side, whatever side the detector said.
"""

import numpy as np
import pytest

pytest.importorskip("keras")

from conversion.metadata_writer import build_metadata, save_checked  # noqa: E402
from conversion.tflite_export import export_tflite  # noqa: E402
from handpose.errors import ModelFileError  # noqa: E402
from handpose.hand import Hand  # noqa: E402
from handpose.metadata import ModelMetadata  # noqa: E402
from handpose.pipeline.crop import crop_hands  # noqa: E402
from handpose.pipeline.pose import PoseEstimator  # noqa: E402
from handpose.runner import ModelRunner  # noqa: E402
from models.networks.pose import build_pose  # noqa: E402

SIZE = 96


def side_model(tmp_path, bias: float, precision: str) -> ModelMetadata:
    network = build_pose(width=0.35, input_size=SIZE, channel_rule="keras", side_head=True)
    kernel, _ = network.get_layer("side").get_weights()
    network.get_layer("side").set_weights([kernel * 0.0, np.array([bias], np.float32)])
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for _ in range(4)]
    exported = export_tflite(network, tmp_path / "pose.tflite", precision, images)
    config = {"model": {"width": 0.35}, "data": {"mirror_left": False}, "command": "test"}
    meta = build_metadata(exported, "pose", config)
    return save_checked(meta, tmp_path / "pose.json")


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_the_pose_network_s_side_replaces_the_detector_s(tmp_path, precision):
    meta = side_model(tmp_path, 4.0, precision)  # p(right) = sigmoid(4) = 0.98
    assert meta.decode == {"mirror_left": False, "side_output": "side"}
    assert meta.outputs["side"].shape == [1, 1]
    estimator = PoseEstimator(ModelRunner(meta, num_threads=1))
    assert estimator.mirror_left is False and estimator.side_output == "side"
    frame = np.random.default_rng(1).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    detected = Hand("left", 0.9, np.array([20, 20, 80, 90], np.float32))
    (crop,) = crop_hands(frame, [detected], out_size=SIZE, mirror_left=estimator.mirror_left)
    assert crop.mirrored is False
    (hand,) = estimator([crop])
    assert hand.handedness == "right"
    assert hand.extras["detector_side"] == "left"
    assert hand.extras["side_score"] == pytest.approx(0.98, abs=0.02)
    assert hand.keypoints is not None and hand.keypoints.shape == (21, 2)


@pytest.mark.slow
def test_a_mirrored_crop_s_side_is_mirrored_back(tmp_path):
    estimator = PoseEstimator(ModelRunner(side_model(tmp_path, -4.0, "fp32"), num_threads=1))
    frame = np.zeros((120, 160, 3), np.uint8)
    detected = Hand("left", 0.9, np.array([20, 20, 80, 90], np.float32))
    (crop,) = crop_hands(frame, [detected], out_size=SIZE, mirror_left=True)
    (hand,) = estimator([crop])  # p(right) 0.02 of a mirrored crop: a right hand in the frame
    assert crop.mirrored and hand.handedness == "right"


@pytest.mark.slow
def test_a_fused_side_weighs_the_detector_and_the_pose_network(tmp_path):
    meta = side_model(tmp_path, 1.0, "fp32")  # the pose network: p(right) = sigmoid(1) = 0.73
    meta.decode["side_source"] = "fused"
    estimator = PoseEstimator(ModelRunner(meta, num_threads=1))
    frame = np.zeros((120, 160, 3), np.uint8)
    box = np.array([20, 20, 80, 90], np.float32)

    def side_of(detected: Hand) -> Hand:
        (crop,) = crop_hands(frame, [detected], out_size=SIZE, mirror_left=False)
        (hand,) = estimator([crop])
        return hand

    # a sure left from the detector (p_left 0.85 of 0.9: p(right) 0.06) outweighs a weak right
    sure_left = Hand("left", 0.9, box, extras={"class_probability": 0.85})
    hand = side_of(sure_left)
    assert hand.handedness == "left" and hand.extras["fused_side"] == "left"
    assert hand.extras["pose_side"] == "right" and hand.extras["detector_side"] == "left"
    assert hand.extras["side_score"] == pytest.approx(1 - (0.73 + 0.0556) / 2, abs=0.02)
    # an unsure detector (p_left 0.5 of 0.9: p(right) 0.44) leaves it to the pose network
    unsure = Hand("left", 0.9, box, extras={"class_probability": 0.5})
    assert side_of(unsure).handedness == "right"
    # a tracked hand (no detector probability this frame) reports the pose network's side
    assert side_of(Hand("left", 0.9, box)).handedness == "right"
    meta.decode["side_source"] = "both"
    with pytest.raises(ModelFileError, match=r"side_source must be one of .*'fused'.*handpose co"):
        PoseEstimator(ModelRunner(meta, num_threads=1))


def test_the_detector_s_p_right_comes_from_its_class_probability():
    from handpose.pipeline.pose import SIDE_SOURCES, detector_p_right

    assert SIDE_SOURCES == ("pose", "detector", "fused")
    box = np.zeros(4, np.float32)
    assert detector_p_right(Hand("right", 0.8, box)) is None  # tracked: nothing to fuse
    right = Hand("right", 0.8, box, extras={"class_probability": 0.6})  # p_right 0.6 of 0.8
    assert detector_p_right(right) == pytest.approx(0.75)
    assert detector_p_right(right.replace(handedness="left")) == pytest.approx(0.25)
    assert detector_p_right(Hand("hand", 0.8, box, extras={"class_probability": 0.8})) is None
