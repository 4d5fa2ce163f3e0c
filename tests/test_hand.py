"""The `Hand` type, the skeleton tables and the model metadata file."""

import json

import numpy as np
import pytest

from handpose.errors import ModelFileError
from handpose.hand import Hand, box_from_keypoints
from handpose.metadata import ModelMetadata, TensorSpec
from handpose.skeleton import EDGES, FINGER_BASES, KEYPOINT_NAMES, PARENTS


def test_skeleton_tables():
    assert len(KEYPOINT_NAMES) == 21 and KEYPOINT_NAMES[0] == "wrist"
    assert KEYPOINT_NAMES[4] == "thumb_tip" and KEYPOINT_NAMES[20] == "little_tip"
    assert len(EDGES) == 20
    assert [c for _, c in EDGES] == list(range(1, 21))
    assert all(PARENTS[b] == 0 for b in FINGER_BASES)
    assert EDGES[5] == (5, 6) and EDGES[4] == (0, 5)


def test_hand_json_round_trip():
    rng = np.random.default_rng(0)
    hand = Hand(
        "left",
        0.9,
        [1, 2, 30, 40],
        keypoints=rng.uniform(0, 50, (21, 2)),
        keypoint_scores=rng.uniform(0, 1, 21),
        joints_3d=rng.normal(0, 50, (21, 3)),
        track_id=3,
        gesture="fist",
        gesture_score=0.8,
    )
    back = Hand.from_json(json.loads(json.dumps(hand.to_json())))
    assert back.handedness == "left" and back.track_id == 3 and back.gesture == "fist"
    np.testing.assert_allclose(back.keypoints, hand.keypoints, atol=0.01)
    np.testing.assert_allclose(back.joints_3d, hand.joints_3d, atol=0.01)


def test_hand_rejects_bad_shapes_and_sides():
    with pytest.raises(ValueError, match="keypoints"):
        Hand("right", 1.0, [0, 0, 1, 1], keypoints=np.zeros((20, 2)))
    with pytest.raises(ValueError, match="handedness"):
        Hand("both", 1.0, [0, 0, 1, 1])


def test_box_from_keypoints():
    points = np.array([[10, 20], [30, 60]], np.float32)
    np.testing.assert_allclose(box_from_keypoints(points), [10, 20, 30, 60])
    np.testing.assert_allclose(box_from_keypoints(points, 0.5), [0, 0, 40, 80])


def _meta() -> ModelMetadata:
    return ModelMetadata(
        family="handpose",
        task="pose",
        model_file="pose.tflite",
        precision="int8",
        input=TensorSpec("input", [1, 224, 224, 3], "uint8", {"scale": 1.0, "zero_point": 0}),
        outputs={"pose": TensorSpec("Identity", [1, 7, 7, 126], "int8", None)},
        grid={"size": [7, 7], "stride": 32},
    )


def test_metadata_round_trip(tmp_path):
    meta = _meta()
    meta.save(tmp_path / "pose.json")
    back = ModelMetadata.load(tmp_path / "pose.json")
    assert back.input_size == (224, 224)
    assert back.outputs["pose"].shape == [1, 7, 7, 126]
    assert back.model_path == tmp_path / "pose.tflite"


def test_metadata_errors_name_the_file(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        ModelMetadata.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ModelFileError, match="bad.json"):
        ModelMetadata.load(bad)
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ModelFileError, match="not a handpose model metadata"):
        ModelMetadata.load(foreign)
    meta = _meta()
    meta.save(tmp_path / "pose.json")
    with pytest.raises(ModelFileError, match="pose.tflite"):
        ModelMetadata.load(tmp_path / "pose.json").verify_file()
