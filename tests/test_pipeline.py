"""Pipeline stages: crops and their affines, detect/pose decoding, model loading, end to end."""

import json
import shutil

import numpy as np
import pytest
from conftest_app import app_models_dir

from handpose.errors import ModelFileError
from handpose.hand import Hand
from handpose.pipeline import (
    HandDetector,
    HandPipeline,
    PoseEstimator,
    crop_hands,
    load_model_set,
    swap_handedness,
)
from handpose.pipeline.detect import detection_square
from handpose.settings import AppSettings


def open_hand_in_crop():
    """Keypoints (21, 2) crop px of an open right hand (fingers up, wrist at the bottom centre)
    and its 20 unit bone directions (x, y, z)."""
    from handpose.skeleton import BONE_LENGTHS_MM, EDGES

    spread = np.radians([-55, -20, 0, 15, 30])  # thumb .. little, from vertical
    joints = np.zeros((21, 3))
    directions = np.zeros((20, 3))
    for e, (parent, child) in enumerate(EDGES):
        angle = spread[(child - 1) // 4]
        d = np.array([np.sin(angle), -np.cos(angle), 0.2])
        directions[e] = d / np.linalg.norm(d)
        joints[child] = joints[parent] + BONE_LENGTHS_MM[e] * directions[e]
    return np.array([112.0, 205.0]) + joints[:, :2] * 0.95, directions


def gradient_frame(height=480, width=640):
    """R = x / 4, G = y / 2 at pixel centres: linear, so bilinear sampling is exact inside."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    frame = np.zeros((height, width, 3), np.float64)
    frame[..., 0], frame[..., 1] = xs / 4.0, ys / 2.0
    return frame


def test_crop_affine_is_the_known_square_map():
    frame = gradient_frame().round().astype(np.uint8)
    right = Hand("right", 0.9, [300, 200, 380, 300])
    left = Hand("left", 0.8, [100, 150, 180, 250])
    crops = crop_hands(frame, [left, right], scale=1.2, out_size=224, max_hands=2)
    assert [c.hand.handedness for c in crops] == ["right", "left"]  # best score first
    # right: square side 100 * 1.2 = 120 centred on (340, 250) -> x0, y0 = 280, 190
    s = 224 / 120
    expected = np.array([[s, 0, -280 * s], [0, s, -190 * s]])
    np.testing.assert_allclose(crops[0].affine, expected, atol=1e-6)
    assert not crops[0].mirrored and crops[1].mirrored
    # left, mirrored: x_crop = (x1 - x) * s with x1 = 140 + 60 = 200, y0 = 200 - 60 = 140
    expected_left = np.array([[-s, 0, 200 * s], [0, s, -140 * s]])
    np.testing.assert_allclose(crops[1].affine, expected_left, atol=1e-6)


@pytest.mark.parametrize("side", ["right", "left"])
def test_crop_pixels_follow_the_affine(side):
    exact = gradient_frame()
    frame = exact.round().astype(np.uint8)
    (crop,) = crop_hands(frame, [Hand(side, 0.9, [300, 200, 380, 300])], 1.2, 224, 1)
    assert crop.image.shape == (224, 224, 3) and crop.image.dtype == np.uint8
    from handpose import geometry

    inverse = geometry.invert_affine(crop.affine)
    ys, xs = np.mgrid[8:216:16, 8:216:16]
    centres = np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5], axis=1)
    source = geometry.apply_affine(centres, inverse)
    expected_r = source[:, 0] / 4.0
    expected_g = source[:, 1] / 2.0
    got = crop.image[ys.ravel(), xs.ravel()].astype(np.float64)
    np.testing.assert_allclose(got[:, 0], expected_r, atol=1.01)
    np.testing.assert_allclose(got[:, 1], expected_g, atol=1.01)


def test_keypoints_map_back_through_the_inverse_affine():
    from handpose import geometry

    frame = np.zeros((480, 640, 3), np.uint8)
    for side in ("right", "left"):
        (crop,) = crop_hands(frame, [Hand(side, 0.9, [300, 200, 380, 300])], 1.2, 224, 1)
        crop_points = np.array([[0.0, 0.0], [224.0, 224.0], [56.0, 112.0]])
        frame_points = geometry.apply_affine(crop_points, geometry.invert_affine(crop.affine))
        x0, x1 = (280.0, 400.0) if side == "right" else (400.0, 280.0)
        expected = np.array([[x0, 190.0], [x1, 310.0], [x0 + (x1 - x0) * 0.25, 250.0]])
        np.testing.assert_allclose(frame_points, expected, atol=1e-4)


def test_detection_square_regions():
    np.testing.assert_allclose(detection_square(640, 480, "center"), [80, 0, 560, 480])
    np.testing.assert_allclose(detection_square(640, 480, "letterbox"), [0, -80, 640, 560])
    with pytest.raises(ValueError):
        detection_square(640, 480, "corner")


def test_swap_handedness():
    hands = [Hand("left", 1, [0, 0, 1, 1]), Hand("hand", 1, [0, 0, 1, 1])]
    assert [h.handedness for h in swap_handedness(hands, True)] == ["right", "hand"]
    assert swap_handedness(hands, False) is hands


@pytest.mark.slow
def test_full_pipeline_on_real_int8_models():
    models = load_model_set(app_models_dir(), num_threads=1)
    assert models.detector.metadata.precision == "int8"
    # untrained networks score every class about equally: a low threshold yields hands
    settings = AppSettings(score_threshold=0.3, max_hands=2)
    pipeline = HandPipeline(models, settings, stream=False)  # the detector's boxes, no tracking
    frame = np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    hands = pipeline(frame)
    assert 1 <= len(hands) <= 2
    for hand in hands:
        assert hand.keypoints.shape == (21, 2) and hand.joints_3d.shape == (21, 3)
        assert np.isfinite(hand.keypoints).all() and np.isfinite(hand.joints_3d).all()
        assert 80 <= hand.box[0] < hand.box[2] <= 560  # inside the centre square
        assert (hand.keypoint_scores >= 0).all() and (hand.keypoint_scores <= 1).all()
    assert set(pipeline.timings) == {"detect", "crop", "pose", "track"}
    letterboxed = pipeline(frame, region="letterbox")
    assert all(h.box[0] >= 0 and h.box[2] <= 640 for h in letterboxed)


@pytest.mark.slow
def test_detector_and_pose_classes_read_metadata():
    models = load_model_set(app_models_dir(), num_threads=1)
    detector = HandDetector(models.detector, 0.5, 0.45)
    assert detector.classes == ["left", "right"] and detector.size == 224
    assert PoseEstimator(models.pose).size == 224


@pytest.mark.slow
def test_model_folder_errors_name_the_file(tmp_path):
    with pytest.raises(ModelFileError, match="models folder not found"):
        load_model_set(tmp_path / "none")
    folder = tmp_path / "models"
    shutil.copytree(app_models_dir(), folder)
    (folder / "pose.json").unlink()
    with pytest.raises(ModelFileError, match=r"pose\.json: model metadata file not found"):
        load_model_set(folder)
    shutil.copy(folder / "detector.json", folder / "pose.json")
    with pytest.raises(ModelFileError, match=r"pose\.json: .*'detector'.*handpose convert"):
        load_model_set(folder)
    shutil.copy(app_models_dir() / "pose.json", folder / "pose.json")
    data = json.loads((folder / "pose.json").read_text())
    data["input"]["shape"] = [1, 192, 192, 3]
    (folder / "pose.json").write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match=r"pose\.tflite: input shape .*handpose convert"):
        load_model_set(folder)


@pytest.mark.slow
def test_detector_decode_maps_known_outputs_to_frame_pixels():
    """Outputs encoding a known 224-px box come back as that box in frame pixels."""
    from handpose.codec import boxes as box_codec

    models = load_model_set(app_models_dir(), num_threads=1)
    detector = HandDetector(models.detector, 0.6, 0.45)
    gt = np.array([[50.0, 60.0, 110.0, 130.0]])
    loc, labels = box_codec.encode(detector.default_boxes, gt, np.array([1]))  # "right"
    logits = np.full((len(labels), 3), -8.0, np.float32)
    logits[:, 0] = 8.0
    logits[labels == 2, 2] = 12.0  # the priors matched to the box say "right"
    outputs = {"locations": loc[None], "scores": logits[None]}
    affine = detector.input_affine(640, 480, "center")  # centre square [80, 0, 560, 480]
    hands = detector.decode(outputs, affine, 640, 480)
    assert len(hands) == 1 and hands[0].handedness == "right" and hands[0].score > 0.9
    s = 480 / 224
    expected = [80 + 50 * s, 60 * s, 80 + 110 * s, 130 * s]
    np.testing.assert_allclose(hands[0].box, expected, atol=1e-3)
    # letterbox: the square [0, -80, 640, 560], scale 640 / 224
    affine = detector.input_affine(640, 480, "letterbox")
    (hand,) = detector.decode(outputs, affine, 640, 480)
    s = 640 / 224
    np.testing.assert_allclose(hand.box, [50 * s, 60 * s - 80, 110 * s, 130 * s - 80], atol=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("side", ["right", "left"])
def test_pose_decode_maps_known_outputs_to_frame_pixels(side):
    """Perfect PPN outputs for known crop keypoints give them back in frame pixels, un-mirrored;
    the 3D joints of a mirrored (left) crop have x negated."""
    from handpose import geometry
    from handpose.codec import ppn, skeleton3d

    models = load_model_set(app_models_dir(), num_threads=1)
    estimator = PoseEstimator(models.pose)
    frame = np.zeros((480, 640, 3), np.uint8)
    (crop,) = crop_hands(frame, [Hand(side, 0.9, [300, 200, 380, 300])], 1.2, 224, 1)
    crop_points, directions = open_hand_in_crop()
    targets = ppn.encode_targets(crop_points, np.ones(21, bool), directions, estimator.config)
    pose, vect = ppn.perfect_outputs(targets, estimator.config)
    hand = estimator.decode({"pose": pose[None], "vect": vect[None]}, crop)
    expected = geometry.apply_affine(crop_points, geometry.invert_affine(crop.affine))
    np.testing.assert_allclose(hand.keypoints, expected, atol=1e-3)
    # x of a left hand goes right-to-left in the crop: the frame x is (400 - x_crop * 120 / 224)
    x0, sign = (280.0, 1.0) if side == "right" else (400.0, -1.0)
    np.testing.assert_allclose(
        hand.keypoints[:, 0], x0 + sign * crop_points[:, 0] * 120 / 224, atol=1e-3
    )
    np.testing.assert_allclose(hand.keypoints[:, 1], 190 + crop_points[:, 1] * 120 / 224, atol=1e-3)
    joints = skeleton3d.joints_from_directions(directions)
    if side == "left":
        joints[:, 0] *= -1
    np.testing.assert_allclose(hand.joints_3d, joints, atol=1e-3)
    assert hand.handedness == side and hand.box.tolist() == [300, 200, 380, 300]


@pytest.mark.slow
def test_mirrored_camera_setting_swaps_handedness_only():
    models = load_model_set(app_models_dir(), num_threads=1)
    frame = np.random.default_rng(2).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    plain = HandPipeline(models, AppSettings(score_threshold=0.3))(frame)
    mirrored = HandPipeline(models, AppSettings(score_threshold=0.3, mirrored_camera=True))(frame)
    assert plain and len(plain) == len(mirrored)
    swap = {"left": "right", "right": "left"}
    for a, b in zip(plain, mirrored, strict=True):
        assert b.handedness == swap[a.handedness]
        np.testing.assert_array_equal(a.keypoints, b.keypoints)
