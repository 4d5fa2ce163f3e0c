"""The MediaPipe family offline: tiny TFLite models in MediaPipe's tensor layout (built with the
real TF converter, `conftest_mediapipe`) through `handpose convert mediapipe`, the model folder
checks, the stages, tracking, the real actfw application and `handpose predict`."""

import hashlib
import json
import math
import shutil
import zipfile

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from conftest_app import write_clip  # noqa: E402
from conftest_mediapipe import (  # noqa: E402
    CROP_LANDMARKS,
    LANDMARK_MACS,
    PALM_KEYPOINTS,
    PALM_SIDE,
    palm_frame,
    tiny_mediapipe_dir,
    tiny_wheel,
)
from PIL import Image  # noqa: E402

from conversion import mediapipe_import  # noqa: E402
from handpose.actcast import build_application  # noqa: E402
from handpose.capture import VideoFileSource  # noqa: E402
from handpose.cli import main as cli_main  # noqa: E402
from handpose.codec import hand_landmarks as lm  # noqa: E402
from handpose.codec.palm import PALM_ANCHORS  # noqa: E402
from handpose.codec.skeleton3d import bone_lengths  # noqa: E402
from handpose.errors import HandposeError, ModelFileError  # noqa: E402
from handpose.hand import Hand  # noqa: E402
from handpose.metadata import ModelMetadata, sha256_of  # noqa: E402
from handpose.pipeline.crop import Crop  # noqa: E402
from handpose.pipeline.family import build_stages  # noqa: E402
from handpose.pipeline.mediapipe import (  # noqa: E402
    BOX_REGION_SCALE,
    HandRegionCropper,
    LandmarkEstimator,
    PalmDetector,
)
from handpose.pipeline.models import load_model_set  # noqa: E402
from handpose.pipeline.process import HandPipeline  # noqa: E402
from handpose.pipeline.track import LAST_KEYPOINTS  # noqa: E402
from handpose.present import PngFolderSink  # noqa: E402
from handpose.settings import AppSettings  # noqa: E402
from handpose.skeleton import BONE_LENGTHS_MM  # noqa: E402
from handpose.tflite_macs import count_tflite_macs  # noqa: E402

SETTINGS = AppSettings(score_threshold=0.5, num_threads=1, notify_interval=0.2)


@pytest.fixture(scope="module")
def lite():
    return load_model_set(tiny_mediapipe_dir() / "lite", num_threads=1)


def test_import_writes_metadata_the_app_accepts():
    root = tiny_mediapipe_dir()
    for variant in ("lite", "full"):
        palm = ModelMetadata.load(root / variant / "detector.json")
        landmark = ModelMetadata.load(root / variant / "pose.json")
        assert (palm.family, palm.task, landmark.family, landmark.task) == (
            "mediapipe",
            "palm_detector",
            "mediapipe",
            "landmark",
        )
        assert palm.model_file == f"palm_detection_{variant}.tflite"
        assert landmark.model_file == f"hand_landmark_{variant}.tflite"
        assert palm.default_boxes == PALM_ANCHORS.to_dict()
        assert palm.decode["nms"] == "weighted" and palm.decode["region"]["scale"] == 2.6
        assert palm.normalization == {"mean": [0.0] * 3, "std": [255.0] * 3}
        assert list(landmark.outputs) == ["landmarks", "presence", "handedness", "world_landmarks"]
        assert [landmark.outputs[k].name for k in landmark.outputs] == [
            "Identity",
            "Identity_1",
            "Identity_2",
            "Identity_3",
        ]
        assert landmark.decode["handedness_assumes_mirrored"] is True
        assert landmark.extra["macs"] == LANDMARK_MACS
        assert landmark.extra["source"]["license"] == "Apache-2.0"
        assert palm.sha256 == sha256_of(palm.model_path)
    models = load_model_set(root / "full", num_threads=1)
    assert models.family == "mediapipe" and models.pose.input_size == (224, 224)


def test_tflite_mac_count_matches_the_layers():
    root = tiny_mediapipe_dir()
    assert count_tflite_macs(root / "lite" / "hand_landmark_lite.tflite") == LANDMARK_MACS


def test_import_refuses_files_that_are_not_the_release(tmp_path):
    wheel = tiny_wheel()
    with pytest.raises(HandposeError, match="refusing an unknown model file"):
        mediapipe_import.read_models(wheel, ["lite"])  # the pinned release hashes
    partial = tmp_path / "partial.whl"
    with zipfile.ZipFile(partial, "w") as archive:
        archive.writestr("mediapipe/__init__.py", "")
    with pytest.raises(HandposeError, match="has no mediapipe/modules/palm_detection"):
        mediapipe_import.read_models(partial, ["lite"], check=False)
    (tmp_path / "junk.whl").write_bytes(b"not a zip")
    with pytest.raises(HandposeError, match="not a wheel"):
        mediapipe_import.read_models(tmp_path / "junk.whl", ["lite"])


def test_convert_command_with_a_local_wheel(tmp_path, capsys, monkeypatch):
    wheel = tiny_wheel()
    argv = ["convert", "mediapipe", "--wheel", str(wheel), "--out", str(tmp_path / "mp")]
    assert cli_main([*argv, "--variants", "lite"]) == 2  # not the release's files
    assert "refusing an unknown model file" in capsys.readouterr().err
    with zipfile.ZipFile(wheel) as archive:
        pinned = {
            name.rsplit("/", 1)[1]: hashlib.sha256(archive.read(name)).hexdigest()
            for name in archive.namelist()
            if name.endswith(".tflite")
        }
    monkeypatch.setattr(mediapipe_import, "PINNED_SHA256", pinned)
    assert cli_main([*argv, "--variants", "lite"]) == 0
    printed = capsys.readouterr().out
    assert "palm_detection_lite.tflite (palm_detector" in printed
    assert f"handpose run --models {tmp_path / 'mp' / 'lite'}" in printed
    assert not (tmp_path / "mp" / "full").exists()


def test_fetch_failure_says_how_to_go_offline(tmp_path, monkeypatch):
    class Failed:
        returncode, stdout, stderr = 1, "", "ERROR: No matching distribution found\n"

    monkeypatch.setattr(mediapipe_import.subprocess, "run", lambda *a, **k: Failed())
    with pytest.raises(HandposeError, match="--wheel"):
        mediapipe_import.fetch_wheel(tmp_path)


def test_model_folder_mistakes_are_named(tmp_path):
    root = tiny_mediapipe_dir()
    with pytest.raises(ModelFileError, match="lite/"):
        load_model_set(root)
    mixed = tmp_path / "mixed"  # our pose network beside MediaPipe's palm detector
    shutil.copytree(root / "lite", mixed)
    pose = json.loads((mixed / "pose.json").read_text())
    pose.update(family="handpose", task="pose")
    (mixed / "pose.json").write_text(json.dumps(pose))
    with pytest.raises(ModelFileError, match="needs a mediapipe 'landmark' model"):
        load_model_set(mixed)


def test_palm_detector_finds_a_palm_where_it_is(lite):
    detector = PalmDetector(lite.detector, score_threshold=0.5)
    frame = palm_frame((400, 260), 70)
    palms = detector.detect(frame)  # letterbox: 640 x 640 square, 640 / 192 px per input px
    assert len(palms) == 1, "weighted NMS merges the anchors that fire on one palm"
    palm = palms[0]
    scale = 640 / 192
    box = palm.extras["palm_box"]
    centre = (box[:2] + box[2:]) / 2
    np.testing.assert_allclose(centre, [400, 260], atol=0.75 * 8 * scale)
    np.testing.assert_allclose(box[2:] - box[:2], PALM_SIDE * scale, rtol=1e-3)
    np.testing.assert_allclose(
        palm.extras["palm_keypoints"], centre + PALM_KEYPOINTS * scale, atol=0.05
    )
    assert palm.handedness == "hand" and palm.score > 0.99
    # the camera view: the centre square 480 x 480 (80 px on each side left out)
    palms = detector.detect(frame, region="center")
    box = palms[0].extras["palm_box"]
    np.testing.assert_allclose(box[2:] - box[:2], PALM_SIDE * 480 / 192, rtol=1e-3)
    assert detector.detect(palm_frame((400, 260), 4)) == []


def test_pipeline_maps_landmarks_through_the_upright_region(lite):
    pipeline = HandPipeline(lite, SETTINGS, stream=False)
    hands = pipeline(palm_frame((300, 240), 70), region="letterbox")
    assert len(hands) == 1
    hand = hands[0]
    palm_box = hand.extras["palm_box"].astype(np.float64)
    side = (palm_box[2] - palm_box[0]) * 2.6  # the palm is upright: rotation 0
    centre = (palm_box[:2] + palm_box[2:]) / 2 + [0, -0.5 * (palm_box[3] - palm_box[1])]
    expected = centre + (CROP_LANDMARKS - 112) * side / 224
    np.testing.assert_allclose(hand.keypoints, expected, atol=0.05)
    assert hand.handedness == "right"  # 0.9 for MediaPipe's "Left" in a mirrored image
    assert hand.extras["presence"] > 0.9
    assert hand.score == pytest.approx(min(hand.extras["palm_score"], hand.extras["presence"]))
    tracked = LandmarkEstimator(lite.pose).decode(
        {
            "landmarks": np.concatenate([CROP_LANDMARKS, np.zeros((21, 1))], 1).reshape(1, 63),
            "presence": np.array([[0.7]]),
            "handedness": np.array([[0.9]]),
        },
        Crop(
            np.zeros((224, 224, 3), np.uint8), np.eye(3)[:2], False, Hand("right", 0.95, hand.box)
        ),
    )
    assert tracked.score == pytest.approx(0.7)  # no palm this frame: the presence alone
    assert (hand.box[:2] <= hand.keypoints.min(axis=0)).all()
    assert (hand.box[2:] >= hand.keypoints.max(axis=0)).all()
    np.testing.assert_allclose(hand.joints_3d[0], 0.0)
    np.testing.assert_allclose(bone_lengths(hand.joints_3d), BONE_LENGTHS_MM, rtol=1e-4)
    assert set(pipeline.timings) >= {"detect", "crop", "pose"}
    # a mirrored camera swaps the side, as for our own family
    mirrored = HandPipeline(lite, SETTINGS.replace(mirrored_camera=True), stream=False)
    assert mirrored(palm_frame((300, 240), 70))[0].handedness == "left"


def test_low_presence_drops_the_hand(lite):
    estimator = LandmarkEstimator(lite.pose)
    region = lm.HandRegion(np.array([100.0, 100.0]), np.array([120.0, 120.0]), 0.3)
    crop = Crop(
        np.zeros((224, 224, 3), np.uint8),
        lm.region_affine(region, 224),
        False,
        Hand("hand", 0.9, [60, 60, 140, 140]),
    )
    outputs = {
        "landmarks": np.concatenate([CROP_LANDMARKS, np.zeros((21, 1))], 1).reshape(1, 63),
        "presence": np.array([[0.2]]),
        "handedness": np.array([[0.1]]),
    }
    assert estimator.decode(outputs, crop) is None
    outputs["presence"] = np.array([[0.8]])
    hand = estimator.decode(outputs, crop)  # no world landmarks: the relative depth is used
    assert hand.handedness == "left" and hand.score == pytest.approx(0.8)
    np.testing.assert_allclose(bone_lengths(hand.joints_3d), BONE_LENGTHS_MM, rtol=1e-4)
    # the crop's rotation is undone: keypoints map back through the inverse region affine
    back = lm.landmarks_to_frame(outputs["landmarks"], crop.affine)[0]
    np.testing.assert_allclose(hand.keypoints, back)
    assert estimator(crop and []) == []


def test_cropper_regions_for_palms_tracked_hands_and_bare_boxes():
    cropper = HandRegionCropper(out_size=224, max_hands=2)
    from test_codec_hand_landmarks import upright_hand

    keypoints = upright_hand()
    tracked = Hand("right", 0.9, [10, 10, 90, 90], keypoints=keypoints)
    np.testing.assert_allclose(cropper.region(tracked).center, lm.landmark_region(keypoints).center)
    # the tracker's prediction: only a box (moved by 25 px right) and the last keypoints
    from handpose.hand import box_from_keypoints

    moved = box_from_keypoints(keypoints) + np.array([25, 0, 25, 0], np.float32)
    predicted = Hand("right", 0.9, moved, extras={LAST_KEYPOINTS: keypoints})
    region = cropper.region(predicted)
    np.testing.assert_allclose(region.center, lm.landmark_region(keypoints).center + [25, 0])
    assert region.rotation == pytest.approx(lm.landmark_region(keypoints).rotation)
    bare = cropper.region(Hand("hand", 0.9, [100, 100, 140, 160]))
    np.testing.assert_allclose(bare.center, [120, 130])
    np.testing.assert_allclose(bare.size, [60 * BOX_REGION_SCALE] * 2)
    assert bare.rotation == 0.0
    crops = cropper(np.zeros((240, 320, 3), np.uint8), [tracked, predicted])
    assert [c.image.shape for c in crops] == [(224, 224, 3)] * 2
    assert all(not c.mirrored and "region" in c.hand.extras for c in crops)


def test_tracking_skips_the_palm_detector_and_follows_the_hand(lite):
    """Between detections the tracker's predicted hand is cropped by MediaPipe's landmark region
    (the tiny landmark model answers the same crop landmarks whatever it sees, so the followed
    hand drifts; the real models are checked on rendered hands in test_mediapipe_real.py)."""
    settings = SETTINGS.replace(tracking=True, detect_interval=4)
    pipeline = HandPipeline(lite, settings)
    detected, found = [], []
    for i in range(5):
        frame = palm_frame((250 + 6 * i, 240), 70)
        hands = pipeline(frame, timestamp=i / 10)
        detected.append(pipeline.detected)
        found.append(hands)
    assert detected == [True, False, False, False, True]
    assert all(len(h) == 1 for h in found), [len(h) for h in found]
    assert {h[0].track_id for h in found[:4]} == {0}
    # frame 1 was cropped by the landmark region of frame 0's hand (not a bare box)
    region = lm.landmark_region(found[0][0].keypoints)
    expected = lm.landmarks_to_frame(
        np.concatenate([CROP_LANDMARKS, np.zeros((21, 1))], 1), lm.region_affine(region, 224)
    )[0]
    error = np.linalg.norm(found[1][0].keypoints - expected, axis=1).mean()
    assert error < 8.0, error  # moved by the tracker's velocity and smoothed, a few px


def test_build_stages_picks_the_family(lite):
    stages = build_stages(lite, SETTINGS)
    assert isinstance(stages.detector, PalmDetector)
    assert isinstance(stages.cropper, HandRegionCropper)
    assert isinstance(stages.estimator, LandmarkEstimator)
    assert stages.detector.score_threshold == 0.5 and stages.detector.nms_threshold == 0.3


@pytest.fixture(scope="module")
def palm_clip(tmp_path_factory):
    frames = [palm_frame((200 + 10 * i, 120), 40, (240, 320)) for i in range(8)]
    return write_clip(tmp_path_factory.mktemp("mpclip") / "palm.mp4", frames, fps=10)


@pytest.mark.slow
def test_the_application_runs_the_mediapipe_family(lite, palm_clip, tmp_path, capsys):
    out = tmp_path / "overlay"
    app = build_application(SETTINGS, VideoFileSource(palm_clip), [PngFolderSink(out)], lite)
    app.run()
    assert app.error is None and app.presenter.frames == 8
    assert len(list(out.glob("*.png"))) == 8
    records = [r for line in capsys.readouterr().out.splitlines() for r in json.loads(line)]
    posed = [r for r in records if "keypoints" in r]
    assert posed, records
    assert posed[0]["handedness"] == "right" and len(posed[0]["keypoints"]) == 21


def test_predict_command_with_the_mediapipe_family(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(palm_frame((200, 150), 50, (300, 400))).save(images / "palm.png")
    Image.fromarray(np.full((300, 400, 3), 10, np.uint8)).save(images / "dark.png")
    out = tmp_path / "preds.json"
    models = tiny_mediapipe_dir() / "lite"
    argv = ["predict", "--images", str(images), "--out", str(out), "--models", str(models)]
    assert cli_main(argv) == 0
    data = {e["file"]: e for e in json.loads(out.read_text())["images"]}
    assert data["dark.png"]["hands"] == []
    (hand,) = data["palm.png"]["hands"]
    assert hand["handedness"] == "right" and len(hand["keypoints"]) == 21
    wrist = np.array(hand["keypoints"][0][:2])
    assert math.dist(wrist, (200, 150)) < 60
