"""Augmentation of samples (models.data.augment): labels follow the image exactly."""

from __future__ import annotations

import numpy as np
import pytest

from handpose import geometry
from handpose.hand import Hand
from handpose.pipeline.crop import crop_hands
from models.data.augment import (
    AugmentConfig,
    ColorJitter,
    augment_sample,
    color_jitter,
    pose_crop,
    warp_sample,
)
from models.data.loaders.common import project
from models.data.sample import Sample


def _dots_sample(handedness: str = "left", size=(120, 160)) -> Sample:
    """A black image with one bright dot per keypoint (3x3 px), and a consistent 3D hand."""
    h, w = size
    rng = np.random.default_rng(0)
    K = np.array([[150.0, 0, w / 2], [0, 150.0, h / 2], [0, 0, 1]])
    xyz = np.column_stack(
        [rng.uniform(-60, 60, 21), rng.uniform(-50, 50, 21), rng.uniform(480, 520, 21)]
    )
    uv = project(xyz, K)
    # snap to pixel centres so the dot centre is exactly the keypoint
    uv = np.floor(uv) + 0.5
    xyz[:, :2] = (uv - K[:2, 2]) / 150.0 * xyz[:, 2:3]  # back-project: K xyz ~ uv exactly
    image = np.zeros((h, w, 3), np.uint8)
    for x, y in uv:
        image[int(y) - 1 : int(y) + 2, int(x) - 1 : int(x) + 2] = 255
    box = np.concatenate([uv.min(0) - 5, uv.max(0) + 5])
    hand = Hand(handedness, 1.0, box, uv, np.ones(21), xyz)
    return Sample(image, [hand], intrinsics=K)


def _centroid(image: np.ndarray) -> np.ndarray:
    """Intensity-weighted centre (x, y) of the red channel, continuous pixel coordinates."""
    w = image[..., 0].astype(float)
    ys, xs = np.mgrid[0 : w.shape[0], 0 : w.shape[1]]
    return np.array([(xs * w).sum() / w.sum() + 0.5, (ys * w).sum() / w.sum() + 0.5])


def test_rotation_keeps_keypoints_on_their_dots():
    sample = _dots_sample()
    M = geometry.rotation_affine((80, 60), 25.0, 1.1, (4.0, -3.0))
    for k in (0, 4, 8, 20):
        # one dot at keypoint k only: its centroid after the warp must sit on the mapped label
        image = np.zeros_like(sample.image)
        c, r = (int(v) for v in sample.hands[0].keypoints[k])
        image[r - 1 : r + 2, c - 1 : c + 2] = 255
        np.testing.assert_allclose(_centroid(image), sample.hands[0].keypoints[k], atol=1e-6)
        one = Sample(image, sample.hands, intrinsics=sample.intrinsics)
        out = warp_sample(one, M, (120, 160))
        kp = out.hands[0].keypoints[k]
        assert np.linalg.norm(_centroid(out.image) - kp) < 0.15
    # the label box encloses the mapped keypoints
    kp, box = out.hands[0].keypoints, out.hands[0].box
    assert np.all(kp[:, 0] >= box[0] - 1e-3) and np.all(kp[:, 0] <= box[2] + 1e-3)


def test_warp_keeps_projection_consistent_and_rigid():
    sample = _dots_sample()
    for M in (
        geometry.rotation_affine((80, 60), 40.0, 0.8, (10, 5)),
        geometry.compose_affine(
            geometry.rotation_affine((80, 60), -20.0), geometry.mirror_affine(160)
        ),
    ):
        out = warp_sample(sample, M, (120, 160))
        hand = out.hands[0]
        np.testing.assert_allclose(
            project(hand.joints_3d, out.intrinsics), hand.keypoints, atol=1e-2
        )
        # bone lengths unchanged, fx == fy and no skew
        d0 = np.linalg.norm(np.diff(sample.hands[0].joints_3d, axis=0), axis=1)
        d1 = np.linalg.norm(np.diff(hand.joints_3d, axis=0), axis=1)
        np.testing.assert_allclose(d0, d1, rtol=1e-5)
        assert abs(out.intrinsics[0, 1]) < 1e-4 and out.intrinsics[0, 0] == pytest.approx(
            out.intrinsics[1, 1]
        )


def test_flip_swaps_handedness_and_mirrors_keypoints():
    sample = _dots_sample("left")
    sample.hands.append(Hand("hand", 1.0, [10, 10, 30, 40]))
    out = warp_sample(sample, geometry.mirror_affine(160), (120, 160))
    assert [h.handedness for h in out.hands] == ["right", "hand"]
    kp0, kp1 = sample.hands[0].keypoints, out.hands[0].keypoints
    np.testing.assert_allclose(kp1[:, 0], 160 - kp0[:, 0], atol=1e-4)
    np.testing.assert_allclose(kp1[:, 1], kp0[:, 1], atol=1e-4)
    np.testing.assert_allclose(out.hands[1].box, [130, 10, 150, 40], atol=1e-4)
    np.testing.assert_array_equal(out.image, sample.image[:, ::-1])


def test_augment_sample_is_seeded_and_flips_about_half():
    sample = _dots_sample("right")
    cfg = AugmentConfig(rotate_deg=0.0, color=None)
    sides = [
        augment_sample(sample, cfg, np.random.default_rng(i)).hands[0].handedness for i in range(40)
    ]
    assert 10 < sides.count("left") < 30
    a = augment_sample(sample, AugmentConfig(), np.random.default_rng(3))
    b = augment_sample(sample, AugmentConfig(), np.random.default_rng(3))
    np.testing.assert_array_equal(a.image, b.image)
    assert augment_sample(sample, AugmentConfig(), None) is sample
    # box of a hand pushed out of the image disappears
    far = AugmentConfig(rotate_deg=0, shift=0.0, scale=(8.0, 8.0), flip=False, color=None)
    out = augment_sample(
        Sample(sample.image, [Hand("hand", 1.0, [0, 0, 5, 5])]), far, np.random.default_rng(0)
    )
    assert out.hands == []


def test_visibility_drops_outside():
    sample = _dots_sample()
    M = geometry.rotation_affine((80, 60), 0.0, 1.0, (-100.0, 0.0))
    out = warp_sample(sample, M, (120, 160))
    kp, vis = out.hands[0].keypoints, out.hands[0].keypoint_scores
    assert np.all(vis[kp[:, 0] < 0] == 0) and vis.sum() < 21


def test_min_inside_drops_hands_mostly_outside():
    sample = Sample(np.zeros((100, 100, 3), np.uint8), [Hand("right", 1.0, [10, 10, 50, 50])])
    shift = geometry.rotation_affine((50, 50), 0.0, 1.0, (-35.0, 0.0))  # 15 of 40 px stay
    (kept,) = warp_sample(sample, shift, 100).hands
    np.testing.assert_allclose(kept.box, [0, 10, 15, 50], atol=1e-4)
    assert warp_sample(sample, shift, 100, min_inside=0.35).hands
    assert warp_sample(sample, shift, 100, min_inside=0.4).hands == []


def test_color_jitter_changes_colour_but_not_grey_balance_without_hue():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)
    out = color_jitter(image, ColorJitter(0.3, 0.3, 0.3, 20.0), rng)
    assert out.shape == image.shape and out.dtype == np.uint8 and not np.array_equal(out, image)
    grey = np.full((4, 4, 3), 100, np.uint8)
    g = color_jitter(grey, ColorJitter(0.0, 0.0, 0.5, 30.0), rng)
    assert np.abs(g.astype(int) - 100).max() <= 1  # saturation and hue leave greys grey


def test_pose_crop_matches_app_crop_and_mirrors_left():
    sample = _dots_sample("left")
    crop = pose_crop(sample, 0, out_size=64, scale=1.2)
    app = crop_hands(sample.image, sample.hands, scale=1.2, out_size=64)[0]
    np.testing.assert_array_equal(crop.image, app.image)
    np.testing.assert_allclose(crop.meta["affine"], app.affine)
    assert crop.meta["mirrored"] and crop.hands[0].handedness == "right"
    plain = pose_crop(sample, 0, out_size=64, scale=1.2, mirror_left=False)
    assert plain.hands[0].handedness == "left" and not plain.meta["mirrored"]
    np.testing.assert_array_equal(crop.image, plain.image[:, ::-1])
    np.testing.assert_allclose(
        crop.hands[0].keypoints[:, 0], 64 - plain.hands[0].keypoints[:, 0], atol=1e-3
    )
    assert crop.image.shape == (64, 64, 3) and len(crop.hands) == 1
    np.testing.assert_allclose(
        project(crop.hands[0].joints_3d, crop.intrinsics), crop.hands[0].keypoints, atol=1e-2
    )


def test_pose_crop_training_randomness_keeps_labels_on_dots():
    sample = _dots_sample("right", size=(200, 200))
    for seed in range(3):
        crop = pose_crop(sample, sample.hands[0], out_size=96, rng=np.random.default_rng(seed))
        assert crop.image.shape == (96, 96, 3)
        kp, vis = crop.hands[0].keypoints, crop.hands[0].keypoint_scores
        assert vis.sum() > 0
        M = crop.meta["affine"]
        np.testing.assert_allclose(
            geometry.apply_affine(sample.hands[0].keypoints, M), kp, atol=1e-3
        )
