"""The synthetic hand renderer: determinism, exact labels, mirroring, gestures, clips."""

from __future__ import annotations

import numpy as np
import pytest

from handpose.skeleton import NUM_KEYPOINTS
from models.data.sample import Sample
from models.data.synthetic import GESTURES, SyntheticHands, render_clip
from models.data.synthetic.dataset import place_hand
from models.data.synthetic.kinematics import (
    ANGLE_LIMITS_DEG,
    HandShape,
    forward_kinematics,
    random_angles,
    rotation_from_euler,
)
from models.data.synthetic.raster import Canvas, Light
from models.data.synthetic.scene import (
    HandState,
    hand_labels,
    render_hands,
    sample_appearance,
    sample_hand,
    square_crop_intrinsics,
)

TIPS = (8, 12, 16, 20)
MCPS = (5, 9, 13, 17)


def _project(joints: np.ndarray, K: np.ndarray) -> np.ndarray:
    return (joints[:, :2] / joints[:, 2:]) * np.diag(K)[:2] + K[:2, 2]


def _render_one(gesture: str, rotation: np.ndarray, left: bool = False, size: int = 160):
    """A single hand of the average shape, palm centre at the image centre, 350 mm away."""
    rng = np.random.default_rng(0)
    K = square_crop_intrinsics(size)
    state = HandState(GESTURES[gesture].copy(), HandShape.average(), left, rotation, np.zeros(3),
                      **sample_appearance(rng))  # fmt: skip
    state.sleeve = None
    place_hand(state, K, np.array([size / 2, size / 2]), 350.0)
    canvas = Canvas(size, size, K)
    image = render_hands(canvas, [state], Light.sample(rng), np.zeros((size, size, 3), np.float32))
    return image, canvas, hand_labels(canvas, state, 1), state


def test_same_seed_same_sample_whatever_the_order():
    a = SyntheticHands(6, seed=5, task="detection", image_size=96)
    b = SyntheticHands(6, seed=5, task="detection", image_size=96)
    later = [b[i] for i in (4, 3, 2)]
    first = a[2]
    np.testing.assert_array_equal(first.image, later[2].image)
    assert len(first.hands) == len(later[2].hands)
    for h1, h2 in zip(first.hands, later[2].hands, strict=True):
        np.testing.assert_array_equal(h1.keypoints, h2.keypoints)
        np.testing.assert_array_equal(h1.box, h2.box)
    other = SyntheticHands(6, seed=6, task="detection", image_size=96)[2]
    assert not np.array_equal(first.image, other.image)


@pytest.mark.parametrize("task", ["detection", "pose"])
def test_labels_are_consistent(task):
    data = SyntheticHands(12, seed=11, task=task, image_size=128)
    seen_hands = 0
    for sample in data:
        assert isinstance(sample, Sample)
        assert sample.image.shape == (128, 128, 3)
        assert sample.source == "synthetic"
        K = sample.intrinsics
        for hand in sample.hands:
            seen_hands += 1
            assert hand.handedness in ("left", "right")
            assert hand.score == 1.0
            assert hand.keypoints.shape == (NUM_KEYPOINTS, 2)
            # keypoints are the pinhole projections of the 3D joints
            np.testing.assert_allclose(_project(hand.joints_3d, K), hand.keypoints, atol=0.5)
            vis = hand.keypoint_scores > 0.5
            kp = hand.keypoints
            outside = (kp[:, 0] < 0) | (kp[:, 1] < 0) | (kp[:, 0] >= 128) | (kp[:, 1] >= 128)
            assert not np.any(vis & outside)
            # the silhouette box holds every visible keypoint (tips sit on the outline: 1 px)
            x0, y0, x1, y1 = hand.box
            assert 0 <= x0 < x1 <= 128 and 0 <= y0 < y1 <= 128
            inside = kp[vis]
            assert np.all(inside[:, 0] >= x0 - 1) and np.all(inside[:, 0] <= x1 + 1)
            assert np.all(inside[:, 1] >= y0 - 1) and np.all(inside[:, 1] <= y1 + 1)
            assert np.all(hand.joints_3d[:, 2] > 100)
        assert sample.meta["gesture"] in set(GESTURES) | {"random", "none"}
    assert seen_hands > 0


def test_detection_scenes_hold_zero_to_two_hands_some_empty():
    data = SyntheticHands(40, seed=3, task="detection", image_size=64)
    counts = [len(data[i].hands) for i in range(len(data))]
    assert set(counts) <= {0, 1, 2}
    assert 0 in counts and 1 in counts and 2 in counts


def test_pose_crops_hold_one_hand_filling_most_of_the_crop():
    data = SyntheticHands(10, seed=4, task="pose", image_size=96)
    for sample in data:
        assert len(sample.hands) == 1
        x0, y0, x1, y1 = sample.hands[0].box
        assert 0.4 <= max(x1 - x0, y1 - y0) / 96 <= 1.0


def test_detection_intrinsics_are_the_pi_camera_centre_square():
    K = SyntheticHands(1, seed=0, image_size=224)[0].intrinsics
    hfov_of_4_3_frame = 2 * np.degrees(np.arctan((224 * 4 / 3 / 2) / K[0, 0]))
    assert hfov_of_4_3_frame == pytest.approx(62.2, abs=0.1)
    assert K[0, 2] == K[1, 2] == 112


def test_fist_seen_from_the_back_hides_its_fingertips():
    _, _, hand, _ = _render_one("fist", rotation_from_euler(np.pi, 0.0, 0.0))
    vis = hand.keypoint_scores
    assert vis[list(TIPS)].sum() == 0, vis
    assert vis[0] == 1 and vis[list(MCPS)].sum() >= 3


def test_open_palm_from_the_front_shows_every_keypoint():
    _, _, hand, _ = _render_one("open_palm", np.eye(3))
    assert hand.keypoint_scores.sum() == NUM_KEYPOINTS


def test_left_hand_is_the_mirror_of_the_right_hand():
    angles = random_angles(np.random.default_rng(1))
    right = forward_kinematics(angles, HandShape.average()).joints
    left = forward_kinematics(angles, HandShape.average(), left=True).joints
    np.testing.assert_allclose(left, right * [-1, 1, 1])
    # rendered: a left hand with the mirrored rotation is the horizontally flipped right hand
    R = rotation_from_euler(0.4, 0.3, 0.5)
    M = np.diag([-1.0, 1.0, 1.0])
    img_r, can_r, hand_r, _ = _render_one("point", R)
    img_l, can_l, hand_l, _ = _render_one("point", M @ R @ M, left=True)
    assert (hand_r.handedness, hand_l.handedness) == ("right", "left")
    np.testing.assert_allclose(hand_l.keypoints[:, 0], 160 - hand_r.keypoints[:, 0], atol=1e-3)
    np.testing.assert_allclose(hand_l.keypoints[:, 1], hand_r.keypoints[:, 1], atol=1e-3)
    mask_r, mask_l = can_r.alpha > 0.5, can_l.alpha > 0.5
    assert (mask_r != mask_l[:, ::-1]).mean() < 0.002
    assert (mask_r != mask_l).mean() > 0.01  # and it is not symmetric by itself


def _extended(j: np.ndarray, finger: int) -> bool:
    """Finger 1..4 straight: tip farther from the wrist than the PIP, PIP than the MCP."""
    mcp, pip, tip = j[1 + 4 * finger], j[2 + 4 * finger], j[4 + 4 * finger]
    dist = np.linalg.norm
    return dist(tip - j[0]) > dist(pip - j[0]) + 20 > dist(mcp - j[0]) + 20


def _curled(j: np.ndarray, finger: int) -> bool:
    return np.linalg.norm(j[4 + 4 * finger] - j[0]) < np.linalg.norm(j[1 + 4 * finger] - j[0])


@pytest.mark.parametrize(
    "name, extended, curled",
    [
        ("open_palm", (1, 2, 3, 4), ()),
        ("fist", (), (1, 2, 3, 4)),
        ("point", (1,), (2, 3, 4)),
        ("victory", (1, 2), (3, 4)),
        ("thumbs_up", (), (1, 2, 3, 4)),
        ("thumbs_down", (), (1, 2, 3, 4)),
        ("call", (4,), (1, 2, 3)),
        ("ok", (2, 3, 4), ()),
        ("pinch", (), (2, 3, 4)),
    ],
)
def test_gesture_presets_make_the_finger_states_they_name(name, extended, curled):
    rng = np.random.default_rng(0)
    for shape in (HandShape.average(), HandShape.sample(rng)):
        j = forward_kinematics(GESTURES[name], shape).joints
        for f in extended:
            assert _extended(j, f), (name, f)
        for f in curled:
            assert _curled(j, f), (name, f)
        thumb_index = np.linalg.norm(j[4] - j[8])
        if name in ("ok", "pinch"):
            assert thumb_index < 25
        if name in ("open_palm", "call", "thumbs_up"):  # thumb straight out
            assert np.linalg.norm(j[4] - j[1]) > 0.95 * shape.bone_lengths[1:4].sum()


@pytest.mark.parametrize("name, sign", [("thumbs_up", -1), ("thumbs_down", 1)])
def test_thumbs_up_and_down_point_the_thumb_up_and_down(name, sign):
    for seed in range(5):
        state = sample_hand(np.random.default_rng(seed), left=bool(seed % 2), gestures=(name,))
        j = state.joints_camera()
        thumb = (j[4] - j[2]) / np.linalg.norm(j[4] - j[2])
        assert sign * thumb[1] > 0.6, (seed, thumb)


def test_random_poses_stay_inside_the_joint_limits():
    rng = np.random.default_rng(2)
    for _ in range(200):
        a = random_angles(rng)
        assert np.all(a >= ANGLE_LIMITS_DEG[0]) and np.all(a <= ANGLE_LIMITS_DEG[1])


def test_gesture_restriction_and_meta():
    data = SyntheticHands(6, seed=1, task="pose", image_size=64, gestures=["fist", "call"])
    for sample in data:
        assert sample.meta["gesture"] in ("fist", "call")
        assert sample.hands[0].gesture in ("fist", "call")


def test_clip_is_smooth_and_labelled():
    frames = list(render_clip(8, seed=1, size=(120, 160), fps=15, hands=2))
    assert len(frames) == 8
    for image, hands in frames:
        assert image.shape == (120, 160, 3) and image.dtype == np.uint8
        assert {h.handedness for h in hands} <= {"left", "right"}
        assert all(h.track_id in (0, 1) for h in hands)
    # consecutive frames: wrists move by a few pixels only
    wrists = [{h.track_id: h.keypoints[0] for h in hands} for _, hands in frames]
    for a, b in zip(wrists, wrists[1:], strict=False):
        for k in a.keys() & b.keys():
            assert np.linalg.norm(a[k] - b[k]) < 10
    again = list(render_clip(2, seed=1, size=(120, 160)))
    np.testing.assert_array_equal(again[1][0], frames[1][0])


def _sphere_canvas(draw_ellipsoid: bool) -> Canvas:
    K = np.array([[200.0, 0, 64], [0, 200.0, 64], [0, 0, 1]])
    canvas = Canvas(128, 128, K)
    centre, radius = np.array([10.0, -5.0, 400.0]), 40.0
    colour, palmar = np.array([0.8, 0.6, 0.5]), np.array([0.0, 0.0, -1.0])
    if draw_ellipsoid:
        canvas.draw_ellipsoid(centre, np.eye(3) * radius, colour, colour, palmar, 1)
    else:
        from models.data.synthetic.raster import Primitive

        canvas.draw(Primitive(centre, centre, radius, radius, colour, colour, palmar, False, 1))
    return canvas


@pytest.mark.parametrize("ellipsoid", [False, True])
def test_a_sphere_rasterises_to_its_projected_disc(ellipsoid):
    canvas = _sphere_canvas(ellipsoid)
    rho = 200.0 * 40.0 / 400.0  # projected radius in pixels (to first order)
    assert canvas.alpha.sum() == pytest.approx(np.pi * rho**2, rel=0.05)
    u, v = 200.0 * 10 / 400 + 64, 200.0 * -5 / 400 + 64
    row, col = int(v), int(u)
    assert canvas.depth[row, col] == pytest.approx(400.0 - 40.0, abs=1.0)
    np.testing.assert_allclose(canvas.normal[row, col], [0, 0, -1], atol=0.1)
    assert canvas.label[row, col] == 1 and canvas.label[0, 0] == 0
    # the surface faces away from the centre at the rim: normal x > 0 on the right edge
    assert canvas.normal[row, int(u + rho - 2), 0] > 0.7


def test_nearer_primitives_win_the_depth_test():
    from models.data.synthetic.raster import Primitive

    K = np.array([[100.0, 0, 32], [0, 100.0, 32], [0, 0, 1]])
    canvas = Canvas(64, 64, K)
    red, blue, n = np.array([1.0, 0, 0]), np.array([0, 0, 1.0]), np.array([0, 0, -1.0])
    near = Primitive(
        np.array([0, 0, 300.0]), np.array([0, 0, 300.0]), 30, 30, red, red, n, False, 1
    )
    far = Primitive(
        np.array([0, 0, 600.0]), np.array([0, 0, 600.0]), 90, 90, blue, blue, n, False, 2
    )
    canvas.draw(near)
    canvas.draw(far)  # drawn later but behind: must not overwrite the centre
    assert canvas.label[32, 32] == 1
    assert canvas.label[32, 32 + 13] == 2  # outside the near disc (radius 10 px), inside the far


def test_backgrounds_use_the_photographs_scikit_image_ships():
    pytest.importorskip("skimage")
    from models.data.synthetic.backgrounds import background, camera_effects, photo_backgrounds

    photos = photo_backgrounds()
    assert len(photos) >= 10 and all(p.mode == "RGB" for p in photos)
    rng = np.random.default_rng(0)
    bgs = [background(rng, 48, 64) for _ in range(6)]
    assert all(b.shape == (48, 64, 3) for b in bgs)
    assert len({float(b.mean()) for b in bgs}) == 6  # all different
    out = camera_effects(rng, bgs[0])
    assert out.dtype == np.uint8 and out.shape == (48, 64, 3)
