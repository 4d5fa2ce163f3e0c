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
