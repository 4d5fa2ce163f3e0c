"""handpose.codec.skeleton3d: joints <-> bone directions, mirroring."""

from __future__ import annotations

import numpy as np

from handpose import geometry
from handpose.codec import skeleton3d as s3
from handpose.skeleton import BONE_LENGTHS_MM, EDGES


def random_joints(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    joints = np.zeros((21, 3))
    joints[0] = rng.normal(0, 50, 3) + [0, 0, 500]
    for parent, child in EDGES:
        joints[child] = joints[parent] + rng.normal(0, 20, 3)
    return joints


def test_round_trip_with_true_lengths():
    joints = random_joints()
    d = s3.bone_directions(joints)
    assert d.shape == (20, 3) and d.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, rtol=1e-6)
    rebuilt = s3.joints_from_directions(d, s3.bone_lengths(joints))
    np.testing.assert_allclose(rebuilt, joints - joints[0], atol=1e-3)


def test_default_lengths_and_unnormalised_input():
    d = s3.bone_directions(random_joints(1)) * 7.5  # any length
    joints = s3.joints_from_directions(d)
    assert joints.shape == (21, 3) and joints.dtype == np.float32
    np.testing.assert_allclose(joints[0], 0.0)
    np.testing.assert_allclose(s3.bone_lengths(joints), BONE_LENGTHS_MM, rtol=1e-5)
    np.testing.assert_allclose(s3.bone_directions(joints), d / 7.5, atol=1e-5)


def test_zero_direction_puts_child_on_parent():
    d = np.zeros((20, 3))
    d[0] = [1, 0, 0]
    joints = s3.joints_from_directions(d)
    np.testing.assert_allclose(joints[1], [BONE_LENGTHS_MM[0], 0, 0])
    np.testing.assert_allclose(joints[2], joints[1])  # bone 1 is zero
    assert np.isfinite(joints).all()


def test_batched_bone_directions():
    joints = np.stack([random_joints(2), random_joints(3)])
    d = s3.bone_directions(joints)
    assert d.shape == (2, 20, 3)
    np.testing.assert_allclose(d[1], s3.bone_directions(joints[1]))


def test_mirror_3d_and_2d():
    joints = random_joints(4)
    mirrored = s3.mirror_x_3d(joints)
    np.testing.assert_allclose(mirrored[:, 0], -joints[:, 0])
    np.testing.assert_allclose(s3.mirror_x_3d(mirrored), joints)
    # mirroring commutes with taking bone directions
    np.testing.assert_allclose(
        s3.bone_directions(mirrored), s3.mirror_x_3d(s3.bone_directions(joints)), atol=1e-6
    )
    # the 2D mirror is the mirrored crop affine
    points = np.array([[10.0, 20.0], [150.0, 3.0]])
    box = [5.0, 0.0, 165.0, 160.0]
    plain = geometry.apply_affine(points, geometry.crop_affine(box, 224))
    flipped = geometry.apply_affine(points, geometry.crop_affine(box, 224, mirror=True))
    np.testing.assert_allclose(s3.mirror_x_2d(plain, 224), flipped)
    assert s3.mirror_x_2d(points, 100) is not points


def test_joints_summed_along_the_fingers_equal_the_depth_steps_to_the_bit(monkeypatch):
    """The running sum along each finger (`_CHAINS`) adds the same floats in the same order as
    the step per depth it replaced: equal bits, the sign of zeros included."""
    assert s3._CHAINS is not None  # the hand: five chains of four bones
    rng = np.random.default_rng(8)
    directions = rng.normal(0.0, 1.0, (50, 20, 3))
    directions[::5, 3] = 0.0
    directions[1::5, 7, 0] = -0.0
    directions[2::5, 11, 1] = np.nan
    fast = [s3.joints_from_directions(d) for d in directions]
    monkeypatch.setattr(s3, "_CHAINS", None)
    for i, d in enumerate(directions):
        got, want = fast[i], s3.joints_from_directions(d)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
