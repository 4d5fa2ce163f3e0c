"""Fuzz the pure decoders and the settings / metadata readers with hypothesis.

Whatever a model outputs (NaN, +-inf, huge or out-of-range values after a bad quantization or a
foreign model) and whatever a settings or metadata file holds, nothing may crash: decoders return
finite outputs inside the frame (or the crop), readers return a valid object or raise the
project's own one-line error naming the setting or the file.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from handpose.codec import boxes as B
from handpose.codec import ppn, skeleton3d
from handpose.errors import ModelFileError, SettingsError
from handpose.hand import HANDEDNESS, Hand
from handpose.metadata import ModelMetadata, TensorSpec
from handpose.pipeline.crop import crop_hands
from handpose.pipeline.detect import HandDetector
from handpose.pipeline.pose import PoseEstimator
from handpose.settings import SPECS, AppSettings
from handpose.skeleton import BONE_LENGTHS_MM, EDGES, KEYPOINT_NAMES

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: values a broken or foreign model can output, besides ordinary ones
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e38, -1e38, 3.4e38, 1e-45, 0.5, 1.0, -1.0]
anything = st.floats(allow_nan=True, allow_infinity=True, width=32)


def messy(shape: tuple[int, ...], scale: float = 1.0):
    """Arrays of `shape`: random normals times `scale` with special values sprinkled in."""

    @st.composite
    def build(draw):
        seed = draw(st.integers(0, 2**32 - 1))
        fraction = draw(st.sampled_from([0.0, 0.001, 0.05, 0.5, 1.0]))
        spread = draw(st.sampled_from([scale, scale * 100, scale * 1e6]))
        rng = np.random.default_rng(seed)
        array = (rng.normal(0.0, 1.0, shape) * spread).astype(np.float32)
        mask = rng.random(shape) < fraction
        array[mask] = rng.choice(np.array(SPECIAL, np.float32), int(mask.sum()))
        return array

    return build()


# ------------------------------------------------------------------------------- box decoding

SMALL = B.DefaultBoxConfig(input_size=32, grids=(4, 2, 1))
SMALL_PRIORS = B.default_boxes(SMALL)
N_SMALL = len(SMALL_PRIORS)


@FUZZ
@given(
    loc=hnp.arrays(np.float32, (N_SMALL, 4), elements=anything),
    scores=hnp.arrays(np.float32, (N_SMALL, 3), elements=anything),
    threshold=st.floats(0.0, 1.0),
    nms=st.floats(0.0, 1.0),
    region=st.booleans(),
)
def test_box_decode_never_crashes_and_boxes_are_finite(loc, scores, threshold, nms, region):
    valid = [2.0, 3.0, 30.0, 29.0] if region else None
    hands = B.decode(
        loc, scores, SMALL_PRIORS, ("left", "right"), threshold, nms, valid_region=valid
    )
    assert len(hands) <= 20
    for hand in hands:
        assert hand.handedness in HANDEDNESS
        assert np.isfinite(hand.box).all()
        assert math.isfinite(hand.score) and threshold <= hand.score <= 1.0
        if valid is not None:
            cx, cy = (hand.box[0] + hand.box[2]) / 2, (hand.box[1] + hand.box[3]) / 2
            assert 2.0 <= cx <= 30.0 and 3.0 <= cy <= 29.0


def detector_metadata() -> ModelMetadata:
    config = B.DefaultBoxConfig()
    n = config.num_boxes
    return ModelMetadata(
        family="handpose",
        task="detector",
        model_file="detector.tflite",
        precision="int8",
        input=TensorSpec("input", [1, 224, 224, 3], "uint8"),
        outputs={
            "locations": TensorSpec("loc", [1, n, 4], "float32"),
            "scores": TensorSpec("conf", [1, n, 3], "float32"),
        },
        classes=["left", "right"],
        default_boxes=config.to_dict(),
    )


def fake_runner(meta: ModelMetadata) -> SimpleNamespace:
    """What the stages read of a `ModelRunner` before running it: metadata and input size."""
    return SimpleNamespace(metadata=meta, input_size=meta.input_size)


DETECTOR = HandDetector(fake_runner(detector_metadata()), score_threshold=0.0, nms_threshold=0.45)
N_BOXES = len(DETECTOR.default_boxes)


@FUZZ
@given(
    loc=messy((1, N_BOXES, 4)),
    scores=messy((1, N_BOXES, 3), scale=4.0),
    width=st.integers(1, 4000),
    height=st.integers(1, 4000),
    region=st.sampled_from(["center", "letterbox"]),
    threshold=st.floats(0.0, 1.0),
)
def test_detections_stay_inside_the_frame(loc, scores, width, height, region, threshold):
    DETECTOR.score_threshold = threshold
    affine = DETECTOR.input_affine(width, height, region)
    hands = DETECTOR.decode({"locations": loc, "scores": scores}, affine, width, height)
    for hand in hands:
        x0, y0, x1, y1 = (float(v) for v in hand.box)
        assert np.isfinite(hand.box).all()
        assert 0.0 <= x0 < x1 <= width and 0.0 <= y0 < y1 <= height
        assert 0.0 <= hand.score <= 1.0


# -------------------------------------------------------------------------------- PPN decoding

CONFIG = ppn.PPNConfig()
GH, GW = CONFIG.grid_hw


@FUZZ
@given(pose=messy((GH, GW, 6 * CONFIG.K), scale=0.5), vect=messy((GH, GW, 3 * len(EDGES))))
def test_ppn_decode_keeps_keypoints_in_the_crop(pose, vect):
    keypoints, scores, directions = ppn.decode(pose, vect, CONFIG)
    height, width = CONFIG.input_hw
    assert keypoints.shape == (21, 2) and np.isfinite(keypoints).all()
    assert (keypoints[:, 0] >= 0).all() and (keypoints[:, 0] <= width).all()
    assert (keypoints[:, 1] >= 0).all() and (keypoints[:, 1] <= height).all()
    assert np.isfinite(scores).all() and (scores >= 0).all() and (scores <= 1).all()
    norms = np.linalg.norm(directions, axis=1)
    assert np.isfinite(directions).all()
    assert np.all((np.abs(norms - 1) < 1e-5) | (norms == 0))


def pose_metadata() -> ModelMetadata:
    return ModelMetadata(
        family="handpose",
        task="pose",
        model_file="pose.tflite",
        precision="int8",
        input=TensorSpec("input", [1, 224, 224, 3], "uint8"),
        outputs={
            "pose": TensorSpec("pose", [1, GH, GW, 6 * CONFIG.K], "float32"),
            "vect": TensorSpec("vect", [1, GH, GW, 3 * len(EDGES)], "float32"),
        },
        grid={"size": [GH, GW], "stride": 32},
        keypoints={"names": list(KEYPOINT_NAMES), "edges": [list(e) for e in EDGES]},
    )


ESTIMATOR = PoseEstimator(fake_runner(pose_metadata()))
FRAME = np.zeros((60, 80, 3), np.uint8)


@FUZZ
@given(
    pose=messy((1, GH, GW, 6 * CONFIG.K), scale=0.5),
    vect=messy((1, GH, GW, 3 * len(EDGES))),
    box=st.tuples(st.floats(0, 78), st.floats(0, 58), st.floats(1, 80), st.floats(1, 60)),
    side=st.sampled_from(["left", "right", "hand"]),
)
def test_pose_decode_keeps_keypoints_in_the_crop_and_joints_finite(pose, vect, box, side):
    x0, y0, w, h = box
    (crop,) = crop_hands(FRAME, [Hand(side, 0.9, [x0, y0, x0 + w, y0 + h])], 1.2, 224, 1)
    hand = ESTIMATOR.decode({"pose": pose, "vect": vect}, crop)
    assert np.isfinite(hand.keypoints).all() and np.isfinite(hand.joints_3d).all()
    # the crop square in frame pixels (A^-1 of the crop's corners), with float32 slack
    from handpose import geometry

    corners = geometry.apply_affine(
        np.array([[0.0, 0.0], [224.0, 224.0]]), geometry.invert_affine(crop.affine)
    )
    lo, hi = corners.min(axis=0) - 1e-3, corners.max(axis=0) + 1e-3
    assert (hand.keypoints >= lo).all() and (hand.keypoints <= hi).all()
    lengths = skeleton3d.bone_lengths(hand.joints_3d)
    assert np.all((np.abs(lengths - BONE_LENGTHS_MM) < 1e-2) | (lengths < 1e-3))


@FUZZ
@given(directions=messy((20, 3)))
def test_joints_from_any_directions_are_finite_with_true_bone_lengths(directions):
    joints = skeleton3d.joints_from_directions(directions)
    assert joints.shape == (21, 3) and np.isfinite(joints).all()
    lengths = skeleton3d.bone_lengths(joints)
    assert np.all((np.abs(lengths - BONE_LENGTHS_MM) < 1e-2) | (lengths < 1e-3))
    assert np.isfinite(skeleton3d.mirror_x_3d(joints)).all()


@FUZZ
@given(joints=messy((21, 3), scale=100.0))
def test_bone_directions_of_any_joints_are_unit_or_zero(joints):
    directions = skeleton3d.bone_directions(joints)
    norms = np.linalg.norm(directions, axis=1)
    assert np.isfinite(directions).all()
    assert np.all((np.abs(norms - 1) < 1e-5) | (norms == 0))


# ------------------------------------------------------------------------------------ settings

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from([0, 1, 2, 90, 0.5, 1.0, 15, 640, "auto", "v4l2", "", "/dev/video0"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)
setting_dicts = st.dictionaries(
    st.sampled_from(sorted(SPECS)) | st.text(max_size=8), json_values, max_size=6
)


def assert_valid(values: AppSettings) -> None:
    """Every field has its declared type, is finite, in range and allowed."""
    for name, spec in SPECS.items():
        value = getattr(values, name)
        kind = {"boolean": bool, "integer": int, "number": float, "string": str}[spec.type]
        assert type(value) is kind, (name, value)
        if spec.type == "number":
            assert math.isfinite(value), (name, value)
        if spec.minimum is not None:
            assert spec.minimum <= value <= spec.maximum, (name, value)
        if spec.enum is not None:
            assert value in spec.enum, (name, value)


@FUZZ
@given(values=setting_dicts)
def test_settings_reader_accepts_valid_or_names_the_setting(values):
    try:
        result = AppSettings.from_dict(values, "fuzz.json")
    except SettingsError as error:
        message = str(error)
        assert message.startswith("fuzz.json: setting '")
        assert "\n" not in message and len(message) < 400
        assert message.split("'")[1] in values
        return
    assert_valid(result)


@FUZZ
@given(
    content=st.binary(max_size=200)
    | setting_dicts.map(lambda d: json.dumps(d).encode())
    | st.sampled_from(
        [b"[" * 5000, b'{"max_hands": ' + b"9" * 5000 + b"}", b'{"score_threshold": NaN}', b"\xff"]
    )
)
def test_settings_file_reader_never_crashes(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("settings") / "act.json"
    path.write_bytes(content)
    try:
        result = AppSettings.load(path)
    except SettingsError as error:
        assert str(error).startswith(str(path)) and "\n" not in str(error)
        return
    assert_valid(result)


# ----------------------------------------------------------------------------- model metadata


def metadata_paths(data, prefix=()):
    """Every (path of keys) in a nested dict / list, for mutating one value."""
    yield prefix
    if isinstance(data, dict):
        for key, value in data.items():
            yield from metadata_paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from metadata_paths(value, (*prefix, index))


VALID = {**detector_metadata().to_dict()}
PATHS = [p for p in metadata_paths(VALID) if p]


@FUZZ
@given(
    path=st.sampled_from(PATHS),
    value=json_values | st.just("__delete__"),
)
def test_metadata_reader_accepts_valid_or_names_the_file(tmp_path_factory, path, value):
    data = json.loads(json.dumps(VALID))
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    if value == "__delete__":
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    file = tmp_path_factory.mktemp("meta") / "detector.json"
    file.write_text(json.dumps(data))
    try:
        meta = ModelMetadata.load(file)
    except ModelFileError as error:
        assert str(error).startswith(str(file)) and "\n" not in str(error)
        return
    # what the app reads of a metadata that loaded must be usable
    height, width = meta.input_size
    assert height >= 1 and width >= 1
    assert meta.model_path.name
    for spec in meta.outputs.values():
        assert all(isinstance(d, int) for d in spec.shape)


@pytest.mark.parametrize("content", [b"", b"{", b"[]", b"\x00\xff", b'{"format": 7}'])
def test_metadata_reader_names_the_file_for_junk(tmp_path, content):
    file = tmp_path / "pose.json"
    file.write_bytes(content)
    with pytest.raises(ModelFileError, match=r"pose\.json"):
        ModelMetadata.load(file)
