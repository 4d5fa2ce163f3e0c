"""Articulated hand kinematics: joint angles -> 21 joints (mm), gesture presets, random poses.

Hand-local frame of a RIGHT hand (mm): origin at the wrist keypoint, x towards the thumb side,
y from the fingertips towards the wrist (extended fingers point along -y), z from the palm to
the back of the hand (the palm faces -z). With the identity rotation a right hand shows its palm
to a camera looking along +z, fingers up, thumb on the image right. A left hand is the mirror
image x -> -x of a right hand in this frame (`forward_kinematics(..., left=True)`).

Joint angles are an array (5, 4) in degrees, one row per finger in skeleton order:
- thumb row: [abduction (radial, in the palm plane), opposition (CMC flexion across the palm),
  MCP flexion, IP flexion];
- index..little rows: [abduction (positive towards the thumb), MCP flexion, PIP flexion,
  DIP flexion]. Flexion rotates the finger towards the palm (-z); negative = hyperextension.
`ANGLE_LIMITS_DEG` bounds every angle; `GESTURES` holds the named presets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from handpose.skeleton import BONE_LENGTHS_MM, NUM_KEYPOINTS

#: palm normal (palmar direction) in the hand-local frame
PALM_NORMAL = np.array([0.0, 0.0, -1.0])

#: wrist -> MCP directions of index, middle, ring, little (unit after normalising); the small z
#: terms give the transverse arch of the knuckles
_MCP_DIRECTIONS = np.array(
    [[0.33, -0.94, -0.02], [0.06, -1.0, 0.02], [-0.2, -0.98, 0.0], [-0.44, -0.90, -0.05]]
)
#: rest direction of each finger (index..little) in the palm plane, degrees towards the thumb
_FINGER_SPREAD_DEG = np.array([7.0, 0.0, -7.0, -15.0])
#: wrist -> thumb CMC direction; thumb metacarpal rest direction and its flexion (palmar) normal
_THUMB_CMC_DIRECTION = np.array([0.58, -0.78, -0.22])
_THUMB_FORWARD = np.array([0.55, -0.76, -0.34])
_THUMB_PALMAR = np.array([-0.55, -0.10, -0.83])

#: per-bone capsule radius (mm) at the start and end of each bone (bone e ends at keypoint e+1)
#: rows: thumb, index, middle, ring, little; columns: bones 1-4 of the finger
BONE_RADII_MM = np.array(
    [
        [[13.0, 12.5], [12.5, 11.0], [11.0, 10.0], [10.0, 8.5]],
        [[11.0, 11.0], [11.0, 10.0], [10.0, 9.0], [9.0, 8.0]],
        [[11.0, 11.0], [11.2, 10.2], [10.2, 9.2], [9.2, 8.2]],
        [[10.5, 10.5], [10.6, 9.6], [9.6, 8.8], [8.8, 7.8]],
        [[10.0, 9.5], [9.5, 8.6], [8.6, 7.8], [7.8, 7.0]],
    ]
)

#: lower / upper limits of the (5, 4) joint angles in degrees
ANGLE_LIMITS_DEG = np.array(
    [
        [[-15, 55], [-15, 75], [-10, 70], [-20, 85]],
        [[-20, 20], [-25, 95], [0, 110], [-5, 85]],
        [[-15, 15], [-25, 95], [0, 110], [-5, 85]],
        [[-15, 15], [-25, 95], [0, 110], [-5, 85]],
        [[-25, 25], [-25, 95], [0, 110], [-5, 85]],
    ],
    dtype=float,
).transpose(2, 0, 1)  # (2, 5, 4): [lo, hi]

_FIST_FINGER = [0.0, 85.0, 100.0, 70.0]
_THUMB_ACROSS = [0.0, 45.0, 30.0, 35.0]

#: gesture presets: name -> joint angles (5, 4) in degrees (rows thumb..little, see module doc)
GESTURES: dict[str, np.ndarray] = {
    name: np.array(rows, dtype=float)
    for name, rows in {
        "open_palm": [[15, 0, 0, 0], [9, 0, 0, 0], [0, 0, 0, 0], [-7, 0, 0, 0], [-16, 0, 0, 0]],
        "fist": [_THUMB_ACROSS, _FIST_FINGER, _FIST_FINGER, _FIST_FINGER, _FIST_FINGER],
        "point": [_THUMB_ACROSS, [0, 0, 0, 0], _FIST_FINGER, _FIST_FINGER, _FIST_FINGER],
        "victory": [_THUMB_ACROSS, [9, 0, 0, 0], [-9, 0, 0, 0], _FIST_FINGER, _FIST_FINGER],
        "thumbs_up": [[-5, -5, 0, 0], _FIST_FINGER, _FIST_FINGER, _FIST_FINGER, _FIST_FINGER],
        "thumbs_down": [[-5, -5, 0, 0], _FIST_FINGER, _FIST_FINGER, _FIST_FINGER, _FIST_FINGER],
        "ok": [[0, 40, 10, 20], [0, 60, 40, 26], [-2, 15, 15, 8], [-8, 18, 18, 10],
               [-16, 22, 22, 12]],
        "pinch": [[0, 40, 10, 20], [0, 60, 40, 26], [0, 70, 85, 55], [0, 75, 90, 60],
                  [0, 80, 95, 60]],
        "call": [[45, 0, 0, 0], _FIST_FINGER, _FIST_FINGER, _FIST_FINGER, [-25, 0, 0, 0]],
    }.items()
}  # fmt: skip

#: presets whose global orientation is constrained: thumb direction in camera coordinates
GESTURE_THUMB_DIRECTION: dict[str, tuple[float, float, float]] = {
    "thumbs_up": (0.0, -1.0, 0.0),
    "thumbs_down": (0.0, 1.0, 0.0),
}


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def rotation_about(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues rotation matrix (3, 3) for `angle` radians about unit `axis`."""
    x, y, z = _normalize(np.asarray(axis, float))
    c, s = np.cos(angle), np.sin(angle)
    C = 1.0 - c
    return np.array(
        [
            [c + x * x * C, x * y * C - z * s, x * z * C + y * s],
            [y * x * C + z * s, c + y * y * C, y * z * C - x * s],
            [z * x * C - y * s, z * y * C + x * s, c + z * z * C],
        ]
    )


def rotation_from_euler(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """R = Rz(roll) Rx(pitch) Ry(yaw) (radians): yaw turns the palm away, roll spins in-image."""
    return (
        rotation_about(np.array([0.0, 0.0, 1.0]), roll)
        @ rotation_about(np.array([1.0, 0.0, 0.0]), pitch)
        @ rotation_about(np.array([0.0, 1.0, 0.0]), yaw)
    )


@dataclass
class HandShape:
    """Per-sample anatomy: bone lengths (20,) mm, radii (5, 4, 2) mm, overall scale."""

    bone_lengths: np.ndarray
    radii: np.ndarray
    scale: float

    @classmethod
    def average(cls) -> HandShape:
        return cls(BONE_LENGTHS_MM.astype(float).copy(), BONE_RADII_MM.copy(), 1.0)

    @classmethod
    def sample(cls, rng: np.random.Generator) -> HandShape:
        """Overall scale 0.85-1.15 (children to large adults), bones +-6 %, radii +-10 %."""
        scale = float(rng.uniform(0.85, 1.15))
        lengths = BONE_LENGTHS_MM * scale * rng.uniform(0.94, 1.06, size=20)
        radii = BONE_RADII_MM * scale * rng.uniform(0.9, 1.1) * rng.uniform(0.95, 1.05, (5, 1, 1))
        return cls(lengths.astype(float), radii, scale)


@dataclass
class HandPose:
    """Output of forward kinematics in the hand-local frame (mm).

    joints: (21, 3) keypoints; palmar: (20, 3) unit palmar direction of each bone (the side
    the finger flexes towards), used for palm-side tint and nails.
    """

    joints: np.ndarray
    palmar: np.ndarray


def clip_angles(angles: np.ndarray) -> np.ndarray:
    """Clamp (5, 4) joint angles (degrees) into `ANGLE_LIMITS_DEG`."""
    return np.clip(angles, ANGLE_LIMITS_DEG[0], ANGLE_LIMITS_DEG[1])


def forward_kinematics(angles: np.ndarray, shape: HandShape, left: bool = False) -> HandPose:
    """Joint angles (5, 4) degrees -> 21 joints in the hand-local frame (mm).

    Each finger chain starts at its MCP (thumb: CMC) with an orthonormal frame (forward f,
    palmar n); abduction rotates f about the palm normal, each flexion angle theta turns
    (f, n) -> (cos theta f + sin theta n, -sin theta f + cos theta n), and the next joint is
    previous + length * f.
    """
    a = np.radians(clip_angles(np.asarray(angles, float)))
    lengths = shape.bone_lengths.reshape(5, 4)
    joints = np.zeros((NUM_KEYPOINTS, 3))
    palmar = np.zeros((20, 3))
    # thumb
    cmc = _normalize(_THUMB_CMC_DIRECTION) * lengths[0, 0]
    f = _normalize(_THUMB_FORWARD)
    n = _normalize(_THUMB_PALMAR - (_THUMB_PALMAR @ f) * f)
    rot = rotation_about(PALM_NORMAL, -a[0, 0])  # positive abduction: away from the index
    f, n = rot @ f, rot @ n
    joints[1] = cmc
    palmar[0] = PALM_NORMAL
    p = cmc
    theta = a[0, 1]
    for j in range(3):
        if j > 0:
            theta += a[0, j + 1]
        fj = np.cos(theta) * f + np.sin(theta) * n
        nj = -np.sin(theta) * f + np.cos(theta) * n
        p = p + lengths[0, j + 1] * fj
        joints[2 + j] = p
        palmar[1 + j] = nj
    # fingers
    for k in range(4):
        mcp = _normalize(_MCP_DIRECTIONS[k]) * lengths[k + 1, 0]
        base = 1 + 4 * (k + 1)
        joints[base] = mcp
        palmar[base - 1] = PALM_NORMAL
        spread = np.radians(_FINGER_SPREAD_DEG[k]) + a[k + 1, 0]
        f = np.array([np.sin(spread), -np.cos(spread), 0.0])
        n = PALM_NORMAL
        theta = 0.0
        p = mcp
        for j in range(3):
            theta += a[k + 1, j + 1]
            fj = np.cos(theta) * f + np.sin(theta) * n
            nj = -np.sin(theta) * f + np.cos(theta) * n
            p = p + lengths[k + 1, j + 1] * fj
            joints[base + 1 + j] = p
            palmar[base + j] = nj
    if left:
        joints[:, 0] *= -1.0
        palmar[:, 0] *= -1.0
    return HandPose(joints, palmar)


def random_angles(rng: np.random.Generator) -> np.ndarray:
    """A random plausible pose (5, 4) degrees: correlated curl per finger, spread when open."""
    overall = rng.beta(0.7, 0.7)
    angles = np.zeros((5, 4))
    for k in range(1, 5):
        c = float(np.clip(overall + rng.normal(0, 0.3), 0, 1))
        if rng.random() < 0.15:
            c = float(rng.random())
        mcp = -15 + 105 * c + rng.normal(0, 8)
        pip = 105 * c + rng.normal(0, 10)
        dip = 0.7 * pip + rng.normal(0, 8)
        abd = (_FINGER_SPREAD_DEG[k - 1] * 0.8 + rng.normal(0, 6)) * (1 - c)
        angles[k] = [abd, mcp, pip, dip]
    ct = float(np.clip(overall + rng.normal(0, 0.35), 0, 1))
    angles[0] = [
        rng.uniform(-10, 50) * (1 - ct),
        -10 + 55 * ct + rng.normal(0, 8),
        -5 + 40 * ct + rng.normal(0, 8),
        -10 + 50 * ct + rng.normal(0, 10),
    ]
    return clip_angles(angles)


def gesture_angles(name: str, rng: np.random.Generator | None = None, jitter: float = 6.0):
    """Preset `name` (a key of `GESTURES`) with Gaussian jitter of `jitter` degrees per angle."""
    angles = GESTURES[name].copy()
    if rng is not None and jitter > 0:
        angles = angles + rng.normal(0.0, jitter, size=angles.shape)
    return clip_angles(angles)
