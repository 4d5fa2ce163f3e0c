"""MediaPipe hand region and landmark decoding, pure numpy: ROI from a palm or from landmarks,
the region affine, landmarks back to the frame, 3D joints, handedness."""

import math

import numpy as np
import pytest

from handpose import geometry
from handpose.codec.hand_landmarks import (
    PARTIAL_LANDMARKS,
    HandRegion,
    RegionOptions,
    handedness_from_score,
    joints_from_landmarks,
    joints_from_world,
    landmark_region,
    landmarks_to_frame,
    normalize_radians,
    palm_region,
    palm_rotation,
    region_affine,
    region_corners,
)
from handpose.codec.skeleton3d import bone_lengths
from handpose.skeleton import BONE_LENGTHS_MM


def palm(wrist, middle):
    """7 palm keypoints with the wrist and middle MCP where asked (the others between them)."""
    points = np.linspace(wrist, middle, 7)
    points[0], points[2] = wrist, middle
    return points


def test_rotation_is_zero_for_an_upright_hand_and_turns_with_it():
    assert palm_rotation(palm([120, 140], [120, 100])) == pytest.approx(0.0)
    # fingers to the right: the region's up (-y) must point along +x: r = +90 deg
    assert palm_rotation(palm([100, 120], [140, 120])) == pytest.approx(math.pi / 2)
    assert palm_rotation(palm([140, 120], [100, 120])) == pytest.approx(-math.pi / 2)
    # fingers down: +-180 deg, wrapped into [-pi, pi)
    assert palm_rotation(palm([120, 100], [120, 140])) == pytest.approx(-math.pi)
    assert normalize_radians(3 * math.pi) == pytest.approx(-math.pi)
    assert normalize_radians(0.5) == pytest.approx(0.5)


def test_palm_region_is_shifted_towards_the_fingers_and_scaled():
    box = [100, 100, 140, 140]  # 40 x 40 palm
    upright = palm_region(box, palm([120, 140], [120, 100]))
    np.testing.assert_allclose(upright.center, [120, 100])  # half a palm up
    np.testing.assert_allclose(upright.size, [104, 104])  # 2.6 x 40
    right = palm_region(box, palm([100, 120], [140, 120]))
    np.testing.assert_allclose(right.center, [140, 120], atol=1e-9)  # half a palm right
    wide = palm_region([0, 0, 50, 20], palm([25, 20], [25, 0]))
    np.testing.assert_allclose(wide.size, [130, 130])  # square on the long side
    tall = palm_region([0, 0, 50, 20], palm([25, 20], [25, 0]), RegionOptions(square_long=False))
    np.testing.assert_allclose(tall.size, [130, 52])


def test_region_affine_maps_the_region_onto_the_crop_upright():
    region = HandRegion(np.array([300.0, 200.0]), np.array([100.0, 100.0]), math.pi / 2)
    A = region_affine(region, 224)
    np.testing.assert_allclose(geometry.apply_affine(np.array([[300.0, 200.0]]), A), [[112, 112]])
    # the region's up (towards the fingers) is +x in the frame: the crop's top middle
    np.testing.assert_allclose(
        geometry.apply_affine(np.array([[350.0, 200.0]]), A), [[112, 0]], atol=1e-9
    )
    corners = geometry.apply_affine(region_corners(region), A)
    np.testing.assert_allclose(corners, [[0, 0], [224, 0], [224, 224], [0, 224]], atol=1e-9)
    # warp_image with the same affine shows a frame feature where apply_affine puts it
    frame = np.zeros((400, 600, 3), np.uint8)
    frame[195:205, 340:350] = 255  # near the fingers' end of the region
    crop = geometry.warp_image(frame, A, 224)
    ys, xs = np.nonzero(crop[..., 0] > 128)
    expected = geometry.apply_affine(np.array([[345.0, 200.0]]), A)[0]
    assert abs(xs.mean() + 0.5 - expected[0]) < 1.0 and abs(ys.mean() + 0.5 - expected[1]) < 1.0


def test_landmarks_come_back_to_the_frame_with_scaled_depth():
    region = HandRegion(np.array([250.0, 180.0]), np.array([160.0, 160.0]), 0.7)
    A = region_affine(region, 224)
    rng = np.random.default_rng(0)
    frame_points = rng.uniform(180, 320, (21, 2))
    crop_points = geometry.apply_affine(frame_points, A)
    z = rng.normal(0, 5, 21)
    keypoints, depth = landmarks_to_frame(np.concatenate([crop_points, z[:, None]], 1), A)
    np.testing.assert_allclose(keypoints, frame_points, atol=1e-3)
    # depth: relative to the wrist, / 0.4, and crop px -> frame px (160 / 224)
    np.testing.assert_allclose(depth, (z - z[0]) / 0.4 * 160 / 224, rtol=1e-5, atol=1e-5)


def test_joints_from_world_turn_with_the_region_and_have_standard_bones():
    world = np.zeros((21, 3))
    for k in range(1, 21):  # every bone along the region's up (-y) with some depth
        parent = 0 if (k - 1) % 4 == 0 else k - 1
        world[k] = world[parent] + [0.0, -0.01, 0.002]
    joints = joints_from_world(world.reshape(-1), rotation=math.pi / 2)
    np.testing.assert_allclose(joints[0], 0.0)
    np.testing.assert_allclose(bone_lengths(joints), BONE_LENGTHS_MM, rtol=1e-5)
    direction = joints[4] / np.linalg.norm(joints[4])
    expected = np.array([0.01, 0.0, 0.002]) / np.linalg.norm([0.01, 0.0, 0.002])
    np.testing.assert_allclose(direction, expected, atol=1e-6)  # up in the region = +x here
    flat = joints_from_landmarks(world[:, :2] * 1000, world[:, 2] * 1000)
    np.testing.assert_allclose(bone_lengths(flat), BONE_LENGTHS_MM, rtol=1e-5)


def upright_hand(scale=1.0, origin=(200.0, 300.0)):
    """21 keypoints of an upright hand (frame px): wrist at `origin`, fingers up."""
    spread = np.radians([-50, -20, 0, 15, 30])
    points = np.zeros((21, 2))
    points[0] = origin
    for f in range(5):
        d = np.array([np.sin(spread[f]), -np.cos(spread[f])])
        parent = points[0]
        for j in range(4):
            k = 1 + 4 * f + j
            points[k] = parent + d * (60 if j == 0 and f else 25) * scale
            parent = points[k]
    return points


def test_landmark_region_follows_the_hand_like_mediapipes_tracking():
    hand = upright_hand()
    region = landmark_region(hand)
    assert region.rotation == pytest.approx(0.0, abs=0.05)
    part = hand[list(PARTIAL_LANDMARKS)]
    extent = part.max(axis=0) - part.min(axis=0)
    assert region.size[0] == pytest.approx(region.size[1])  # square on the long side
    assert region.size[0] == pytest.approx(2.0 * extent.max(), rel=0.05)
    # shifted up (towards the fingers) by 0.1 of the partial box's height
    centre = (part.max(axis=0) + part.min(axis=0)) / 2
    assert region.center[1] < centre[1]
    # the same hand turned by 90 deg (fingers right) gives a region turned by 90 deg
    turn = geometry.rotation_affine((200, 300), -90)  # clockwise on screen
    turned = landmark_region(geometry.apply_affine(hand, turn))
    assert turned.rotation == pytest.approx(math.pi / 2, abs=0.05)
    np.testing.assert_allclose(turned.size, region.size, rtol=1e-6)
    np.testing.assert_allclose(
        turned.center, geometry.apply_affine(region.center[None], turn)[0], atol=1e-6
    )


def test_handedness_is_swapped_out_of_mediapipes_mirrored_convention():
    assert handedness_from_score(0.9) == ("right", pytest.approx(0.9))
    assert handedness_from_score(0.2) == ("left", pytest.approx(0.8))
    assert handedness_from_score(0.9, assumes_mirrored=False) == ("left", pytest.approx(0.9))
    assert handedness_from_score(0.9, first_label="right", assumes_mirrored=False)[0] == "right"


def test_region_crops_repeat_the_frame_edge_like_mediapipe():
    from handpose.pipeline.mediapipe import warp_replicate

    ys, xs = np.mgrid[0:120, 0:160]
    frame = np.stack([xs * 255 // 159, ys * 255 // 119, np.full_like(xs, 77)], -1).astype(np.uint8)
    inside = region_affine(HandRegion(np.array([80.0, 60.0]), np.array([60.0, 60.0]), 0.4), 64)
    np.testing.assert_array_equal(
        warp_replicate(frame, inside, 64), geometry.warp_image(frame, inside, 64, antialias=False)
    )
    # a region hanging over the top-left corner: outside is the nearest edge pixel, not black
    corner = region_affine(HandRegion(np.array([10.0, 10.0]), np.array([80.0, 80.0]), 0.0), 80)
    crop = warp_replicate(frame, corner, 80, out=np.zeros((80, 80, 3), np.uint8))
    assert (crop[:20, :20] == frame[0, 0]).all()  # the corner pixel repeated
    np.testing.assert_array_equal(crop[:20, 60], frame[[0] * 20, 30])  # top row repeated upwards
    assert (crop[..., 2] == 77).all()  # never black
    far = region_affine(HandRegion(np.array([-500.0, 60.0]), np.array([40.0, 40.0]), 0.0), 16)
    assert (warp_replicate(frame, far, 16)[..., 2] == 77).all()  # wholly outside: edge colour
