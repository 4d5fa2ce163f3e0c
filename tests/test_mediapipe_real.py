"""The real MediaPipe Hands models on rendered hands (skipped unless they are cached).

Set HANDPOSE_MEDIAPIPE_DIR to a folder written by `handpose convert mediapipe --out DIR` (the
download needs the package index, which tests never use). The renderer's labels are the ground
truth: anatomical handedness, 21 keypoints in frame pixels.
"""

import numpy as np
import pytest
from conftest_app import write_clip
from conftest_mediapipe import SKIP_REAL, real_mediapipe_dir

from handpose.cli import main as cli_main
from handpose.codec.skeleton3d import bone_lengths
from handpose.metadata import ModelMetadata, sha256_of
from handpose.pipeline.models import load_model_set
from handpose.pipeline.process import HandPipeline
from handpose.settings import AppSettings
from handpose.skeleton import BONE_LENGTHS_MM

ROOT = real_mediapipe_dir()
pytestmark = pytest.mark.skipif(ROOT is None, reason=SKIP_REAL)
#: share of the rendered hands each variant must find (measured: full 24/24, lite 20/24 on
#: the first 12 frames of the sample clip's seed)
MIN_FOUND = {"full": 0.8, "lite": 0.6}


@pytest.fixture(scope="module")
def rendered():
    from models.data.synthetic import render_clip

    return list(render_clip(6, seed=6, size=(480, 640)))


def match(hands, truths):
    """(matched pairs (hand, truth, error / hand size), truths count) by smallest keypoint error."""
    pairs = []
    for truth in truths:
        size = float((truth.keypoints.max(axis=0) - truth.keypoints.min(axis=0)).max())
        errors = [
            np.linalg.norm(h.keypoints - truth.keypoints, axis=1).mean() / size for h in hands
        ]
        if errors and min(errors) < 0.3:
            pairs.append((hands[int(np.argmin(errors))], truth, min(errors)))
    return pairs


def test_cached_models_are_the_release():
    from conversion.mediapipe_import import PINNED_SHA256

    for variant in ("lite", "full"):
        for role in ("detector", "pose"):
            meta = ModelMetadata.load(ROOT / variant / f"{role}.json")
            assert sha256_of(meta.model_path) == PINNED_SHA256[meta.model_file]
            assert meta.precision == "fp16" and meta.extra["macs"] > 1e8


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["lite", "full"])
def test_finds_rendered_hands_with_plausible_keypoints(rendered, variant):
    models = load_model_set(ROOT / variant, num_threads=2)
    pipeline = HandPipeline(models, AppSettings(score_threshold=0.5), stream=False)
    pairs, total = [], 0
    for image, truths in rendered:
        hands = pipeline(image, region="letterbox")
        pairs += match(hands, truths)
        total += len(truths)
    assert len(pairs) >= MIN_FOUND[variant] * total, (len(pairs), total)
    errors = [error for *_, error in pairs]
    assert np.mean(errors) < 0.12, errors  # mean keypoint error / hand size
    sides = [hand.handedness == truth.handedness for hand, truth, _ in pairs]
    assert np.mean(sides) >= 0.9, "MediaPipe's mirrored handedness must be swapped"
    for hand, _, _ in pairs:
        np.testing.assert_allclose(bone_lengths(hand.joints_3d), BONE_LENGTHS_MM, rtol=1e-4)
        wrist_to_middle = hand.joints_3d[9] - hand.joints_3d[0]
        image_direction = hand.keypoints[9] - hand.keypoints[0]
        cos = (
            wrist_to_middle[:2]
            @ image_direction
            / (np.linalg.norm(wrist_to_middle[:2]) * np.linalg.norm(image_direction))
        )
        assert cos > 0.7, "3D joints are in the frame's axes (turned by the region)"


@pytest.mark.slow
def test_tracking_follows_rendered_hands(rendered):
    models = load_model_set(ROOT / "full", num_threads=2)
    settings = AppSettings(score_threshold=0.5, tracking=True, detect_interval=3)
    pipeline = HandPipeline(models, settings)
    detected, found, total = [], 0, 0
    for i, (image, truths) in enumerate(rendered):
        hands = pipeline(image, region="letterbox", timestamp=i / 15)
        detected.append(pipeline.detected)
        found += len(match(hands, truths))
        total += len(truths)
    assert not all(detected), detected
    # measured 8 of 12: the landmark model rejects two followed hands near its 0.5 presence
    # threshold on these synthetic hands, and the detector finds only one of them next
    assert found >= 0.6 * total, (found, total)


@pytest.mark.slow
def test_autolabel_with_the_real_teacher(rendered, tmp_path, capsys):
    from models.data.handpose_format import HandposeDataset

    clip = write_clip(tmp_path / "clip.mp4", [image for image, _ in rendered], fps=15)
    out = tmp_path / "ds"
    argv = ["data", "autolabel", "--video", str(clip), "--out", str(out)]
    assert cli_main([*argv, "--models", str(ROOT / "full")]) == 0
    assert "wrote" in capsys.readouterr().out
    dataset = HandposeDataset(out)
    assert len(dataset) >= 3
    truths = [t for _, ts in rendered for t in ts]
    labels = [label for sample in dataset for label in sample.hands]
    pairs = [pair for label in labels for pair in match(truths, [label])]  # nearest rendered hand
    assert len(pairs) == len(labels), "every label lies on a rendered hand"
    errors = [error for *_, error in pairs]
    # measured 0.12 here (MediaPipe sees this clip's left hand poorly: 16 % in the README's
    # predict table) and 0.06 on the README's 60-frame clip; a wrong mapping gives > 0.3
    assert np.mean(errors) < 0.15, errors
    sides = [truth.handedness == label.handedness for truth, label, _ in pairs]
    assert np.mean(sides) >= 0.9
