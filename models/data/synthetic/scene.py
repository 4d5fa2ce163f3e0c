"""Scenes: hands placed in front of a Raspberry Pi-like camera, rendered with exact labels.

Camera: pinhole, square pixels, intrinsics of the Raspberry Pi camera v2 (62.2 degrees
horizontal field of view on the 4:3 frame, fx = (W / 2) / tan(31.1 deg)). A detection image is
the centre square of that frame resized to S x S (what the app feeds the detector), so
fx = fy = S * (4/3) / (2 tan(31.1 deg)) = 1.105 S and cx = cy = S / 2.

Labels per hand (a `handpose.hand.Hand`):
- keypoints (21, 2): the pinhole projection u = fx x / z + cx, v = fy y / z + cy of joints_3d;
- keypoint_scores (21,): visibility, 1 when the keypoint's pixel lies in the image and the
  z-buffer there is not in front of the joint's own surface (z_buffer >= z_joint - r_joint -
  tolerance), else 0;
- box: the tight box of the rendered silhouette of the hand (palm and fingers, coverage >= 0.5,
  the forearm and sleeve excluded), grown to hold the pixels of the visible keypoints (the wrist
  may lie on forearm pixels), as [x0, y0, x1, y1] pixel edges, clipped to the image;
- joints_3d (21, 3): camera coordinates in mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from handpose.hand import Hand
from models.data.synthetic.backgrounds import palm_tone, skin_tone
from models.data.synthetic.kinematics import (
    GESTURE_THUMB_DIRECTION,
    GESTURES,
    HandPose,
    HandShape,
    forward_kinematics,
    gesture_angles,
    random_angles,
    rotation_about,
    rotation_from_euler,
)
from models.data.synthetic.raster import Canvas, Light, Primitive

PI_HFOV_DEG = 62.2
_FINGERTIP_TINT = np.array([1.04, 0.96, 0.95])


def pi_camera_intrinsics(width: int, height: int) -> np.ndarray:
    """(3, 3) intrinsics of a Raspberry Pi camera v2 frame of width x height (4:3 assumed)."""
    f = (width / 2) / np.tan(np.radians(PI_HFOV_DEG / 2))
    return np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], np.float32)


def square_crop_intrinsics(size: int) -> np.ndarray:
    """(3, 3) intrinsics of the centre square of a 4:3 Pi frame resized to size x size."""
    f = size * (4 / 3) / (2 * np.tan(np.radians(PI_HFOV_DEG / 2)))
    return np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]], np.float32)


@dataclass
class HandState:
    """Everything needed to render one hand: pose angles (5, 4) deg, anatomy, side, rotation
    (3, 3) hand-local -> camera, translation (3,) mm of the wrist, appearance."""

    angles: np.ndarray
    shape: HandShape
    left: bool
    rotation: np.ndarray
    translation: np.ndarray
    skin: np.ndarray
    palm: np.ndarray
    forearm_dir: np.ndarray  # (3,) right-hand-local unit direction wrist -> elbow (mirrored)
    sleeve: np.ndarray | None = None  # RGB 0..1 of a sleeve, or None
    sleeve_start: float = 80.0  # mm from the wrist
    band: np.ndarray | None = None  # RGB 0..1 of a watch strap / bracelet, or None
    gesture: str = "random"

    def local_pose(self) -> HandPose:
        return forward_kinematics(self.angles, self.shape, left=self.left)

    def joints_camera(self) -> np.ndarray:
        """(21, 3) joints in camera coordinates (mm)."""
        return self.local_pose().joints @ self.rotation.T + self.translation


def sample_appearance(rng: np.random.Generator) -> dict:
    skin = skin_tone(rng)
    sleeve = None
    if rng.random() < 0.5:
        grey = rng.uniform(0.05, 0.85)
        sleeve = grey + (rng.uniform(0.05, 0.9, 3) - grey) * rng.uniform(0.1, 0.6)
    flex, dev = np.radians(rng.normal(0, 20)), np.radians(rng.normal(0, 10))
    forearm = rotation_about(np.array([0.0, 0, 1]), dev) @ rotation_about(
        np.array([1.0, 0, 0]), flex
    )
    band = rng.uniform(0.02, 0.6) * rng.uniform(0.6, 1.0, 3) if rng.random() < 0.15 else None
    return {
        "band": band,
        "skin": skin,
        "palm": palm_tone(skin, rng),
        "sleeve": sleeve,
        "sleeve_start": float(rng.uniform(30, 160)),
        "forearm_dir": forearm @ np.array([0.0, 1.0, 0.0]),
    }


def sample_rotation(rng: np.random.Generator) -> np.ndarray:
    """A plausible global hand rotation: any palm/back turn, in-image spin biased to fingers up."""
    yaw = rng.uniform(-np.pi, np.pi)
    pitch = rng.normal(0.35, 0.4)  # positive: the forearm recedes towards the body
    roll = rng.normal(0, 1.0) if rng.random() < 0.8 else rng.uniform(-np.pi, np.pi)
    return rotation_from_euler(yaw, pitch, roll)


def align_thumb(state: HandState, direction: tuple[float, float, float], rng) -> np.ndarray:
    """A rotation whose thumb (mcp -> tip) points along `direction` (camera) +- 20 degrees."""
    joints = state.local_pose().joints
    thumb = joints[4] - joints[2]
    thumb /= np.linalg.norm(thumb)
    target = np.asarray(direction, float)
    axis = np.cross(thumb, target)
    s, c = np.linalg.norm(axis), float(thumb @ target)
    base = rotation_about(axis, np.arctan2(s, c)) if s > 1e-6 else np.eye(3)
    spin = rotation_about(target, rng.uniform(-np.pi, np.pi))
    tilt = rotation_from_euler(rng.normal(0, 0.2), rng.normal(0, 0.2), rng.normal(0, 0.2))
    return tilt @ spin @ base


def sample_hand(
    rng: np.random.Generator, left: bool, gestures: tuple[str, ...] | None = None
) -> HandState:
    """A random hand at the camera origin (translation set later): shape, pose, rotation, looks.

    Half of the hands take a named gesture (+- 6 degree jitter), half a random plausible pose;
    with `gestures` given, only those presets are used.
    """
    shape = HandShape.sample(rng)
    names = tuple(gestures) if gestures else tuple(GESTURES)
    if gestures or rng.random() < 0.5:
        name = names[int(rng.integers(len(names)))]
        angles = gesture_angles(name, rng)
    else:
        name, angles = "random", random_angles(rng)
    state = HandState(angles, shape, left, np.eye(3), np.zeros(3), gesture=name,
                      **sample_appearance(rng))  # fmt: skip
    if name in GESTURE_THUMB_DIRECTION:
        state.rotation = align_thumb(state, GESTURE_THUMB_DIRECTION[name], rng)
    else:
        state.rotation = sample_rotation(rng)
    return state


def hand_primitives(state: HandState, label: int) -> tuple[list[Primitive], list[tuple]]:
    """Tapered capsules of one hand in camera coordinates (label for palm/fingers, -label for
    forearm and sleeve) and the palm ellipsoids as `Canvas.draw_ellipsoid` argument tuples."""
    pose = state.local_pose()
    j = pose.joints
    R, T = state.rotation, state.translation
    cam = j @ R.T + T
    pal = pose.palmar @ R.T
    palm_n = pal[0]
    radii = state.shape.radii
    s = state.shape.scale
    skin, palm = state.skin, state.palm
    prims: list[Primitive] = []
    canvas_ellipsoids: list = []

    def add(a, b, ra, rb, palmar, nail=False, lab=label, dorsal=skin, front=palm, shine=1.0):
        prims.append(Primitive(a, b, float(ra), float(rb), dorsal, front, palmar, nail, lab, shine))

    w = cam[0]
    mcps = [cam[5], cam[9], cam[13], cam[17]]
    # palm: a flattened ellipsoid, the knuckle bar, metacarpal heads, heel, thenar eminence
    across = mcps[0] - mcps[3]
    along = mcps[1] - w
    u = across / np.linalg.norm(across)
    v = along - (along @ u) * u
    v /= np.linalg.norm(v)
    nrm = np.cross(u, v)
    half = 0.5 * np.linalg.norm(across)
    length = np.linalg.norm(along)
    upper = np.stack([u * (half + 12 * s), v * 0.36 * length, nrm * 13.5 * s], axis=1)
    lower = np.stack([u * (half + 4 * s), v * 0.38 * length, nrm * 14.5 * s], axis=1)
    canvas_ellipsoids.append((w + 0.66 * along + 1 * s * u, upper, palm_n))
    canvas_ellipsoids.append((w + 0.36 * along + 1 * s * u, lower, palm_n))
    for k, m in enumerate(mcps):
        add(w + 0.6 * (m - w), m, radii[k + 1, 0, 0] * 0.8, radii[k + 1, 0, 1], palm_n)
    heel_little = w + 0.3 * (mcps[3] - w) - 10 * s * u
    heel_thumb = w + 0.75 * (cam[1] - w)
    add(heel_little, heel_thumb, 11.0 * s, 12.0 * s, palm_n)
    # thenar eminence: from the heel to the thumb MCP
    add(heel_thumb, cam[2], radii[0, 1, 0] * 1.25, radii[0, 1, 1], pal[1])
    # fingers: proximal, middle, distal phalanges (thumb: proximal, distal)
    for finger in range(5):
        base = 1 + 4 * finger
        first = 2 if finger == 0 else 1
        for bone in range(first, 4):
            a, b = cam[base + bone - 1], cam[base + bone]
            ra, rb = radii[finger, bone, 0], radii[finger, bone, 1]
            if bone == 3:  # the tip keypoint is on the surface: end the capsule one radius short
                d = b - a
                b = b - d / max(np.linalg.norm(d), 1e-6) * rb
            tip = _FINGERTIP_TINT if bone == 3 else 1.0  # fingertips are a little redder
            add(a, b, ra, rb, pal[base + bone - 1], nail=bone == 3, shine=1.2,
                dorsal=skin * tip, front=palm * tip)  # fmt: skip
    # forearm (skin, then optionally a sleeve) to the elbow, then the upper arm bending down and
    # away from the camera (so it mostly leaves the frame through the bottom edge)
    fdir = R @ (state.forearm_dir * ([-1.0, 1.0, 1.0] if state.left else 1.0))
    bent = fdir[1] > -0.2  # forearm level or pointing down: an elbow then the upper arm
    forearm = (260.0 if bent else 700.0) * s
    elbow = w + forearm * fdir
    skin_end = min(state.sleeve_start * s, forearm) if state.sleeve is not None else forearm
    r_elbow = 23 * s + 0.04 * min(forearm, 260.0 * s)
    r_skin_end = 23 * s + 0.04 * min(skin_end, 260 * s)
    add(w + 6 * s * fdir, w + skin_end * fdir, 23 * s, r_skin_end, palm_n, lab=-label)
    sleeve = state.sleeve
    arm_col = sleeve if sleeve is not None else skin
    arm_front = sleeve * 0.9 if sleeve is not None else palm
    if sleeve is not None and skin_end < forearm:
        add(w + skin_end * fdir, elbow, r_elbow + 5 * s, r_elbow + 6 * s, palm_n, lab=-label,
            dorsal=sleeve, front=arm_front, shine=0.2)  # fmt: skip
    if state.band is not None:  # a watch strap or bracelet just above the wrist
        add(w + 12 * s * fdir, w + 24 * s * fdir, 23.5 * s, 24 * s, palm_n, lab=-label,
            dorsal=state.band, front=state.band, shine=2.0)  # fmt: skip
    if bent:
        down_back = np.array([0.25 * fdir[0], 0.7, 0.7]) / np.sqrt(0.98 + 0.0625 * fdir[0] ** 2)
        up = 0.45 * fdir + 0.55 * down_back  # a gentle elbow angle
        up /= np.linalg.norm(up)
        r_arm = r_elbow + (6 * s if sleeve is not None else 2 * s)
        add(elbow, elbow + 900.0 * s * up, r_arm, r_arm + 8 * s, palm_n, lab=-label,
            dorsal=arm_col, front=arm_front, shine=0.2 if sleeve is not None else 1.0)  # fmt: skip
    ellipsoids = [(c, a, skin, palm, p, label) for c, a, p in canvas_ellipsoids]
    return prims, ellipsoids


def keypoint_radii(state: HandState) -> np.ndarray:
    """(21,) radius in mm of the hand's surface around each keypoint (visibility test, boxes)."""
    r = np.empty(21)
    r[0] = 18.0 * state.shape.scale
    radii = state.shape.radii
    for finger in range(5):
        for bone in range(4):
            r[1 + 4 * finger + bone] = radii[finger, bone, 1]
    return r


def hand_labels(canvas: Canvas, state: HandState, label: int, min_pixels: int = 4) -> Hand | None:
    """The `Hand` label of a drawn hand, or None when fewer than `min_pixels` of it show."""
    joints = state.joints_camera()
    uv = canvas.project(joints)
    h, w = canvas.height, canvas.width
    cols = np.floor(uv[:, 0]).astype(int)
    rows = np.floor(uv[:, 1]).astype(int)
    inside = (cols >= 0) & (cols < w) & (rows >= 0) & (rows < h) & (joints[:, 2] > 0)
    visible = np.zeros(21, bool)
    r = keypoint_radii(state)
    tol = 0.35 * r + 4.0
    idx = np.nonzero(inside)[0]
    if idx.size:
        zbuf = canvas.depth[rows[idx], cols[idx]]
        visible[idx] = zbuf >= joints[idx, 2] - r[idx] - tol[idx]
    mask = (canvas.label == label) & (canvas.alpha >= 0.5)
    ys = np.nonzero(mask.any(axis=1))[0]
    if ys.size == 0:
        return None
    xs = np.nonzero(mask.any(axis=0))[0]
    if mask.sum() < min_pixels:
        return None
    box = np.array([xs[0], ys[0], xs[-1] + 1, ys[-1] + 1], np.float32)
    if visible.any():  # the wrist keypoint may sit on forearm pixels: keep it in the box
        vis_uv = uv[visible]
        box[:2] = np.minimum(box[:2], np.floor(vis_uv.min(axis=0)))
        box[2:] = np.maximum(box[2:], np.floor(vis_uv.max(axis=0)) + 1)
        box = np.clip(box, 0, [w, h, w, h]).astype(np.float32)
    return Hand(
        handedness="left" if state.left else "right",
        score=1.0,
        box=box,
        keypoints=uv.astype(np.float32),
        keypoint_scores=visible.astype(np.float32),
        joints_3d=joints.astype(np.float32),
        gesture=None,
    )


def render_hands(
    canvas: Canvas, states: list[HandState], light: Light, bg: np.ndarray, rng=None
) -> np.ndarray:
    """Draw hands over a float (H, W, 3) 0..255 background; returns the float composite."""
    for n, state in enumerate(states):
        prims, ellipsoids = hand_primitives(state, n + 1)
        for args in ellipsoids:
            canvas.draw_ellipsoid(*args)
        for prim in prims:
            canvas.draw(prim)
    if not states:
        return bg
    ys = np.nonzero(canvas.alpha.any(axis=1))[0]
    xs = np.nonzero(canvas.alpha.any(axis=0))[0]
    if ys.size == 0:
        return bg
    win = (slice(ys[0], ys[-1] + 1), slice(xs[0], xs[-1] + 1))
    colour = canvas.shade(light, win) * 255.0
    if rng is not None:  # skin texture: low-frequency albedo variation
        hh, ww = colour.shape[:2]
        cells = rng.normal(1.0, 0.05, (max(hh // 10, 2), max(ww // 10, 2))).astype(np.float32)
        texture = Image.fromarray(cells, mode="F").resize((ww, hh), Image.BILINEAR)
        colour *= np.asarray(texture)[..., None]
    alpha = canvas.alpha[win][..., None]
    out = bg.copy()
    if rng is not None and rng.random() < 0.5:  # soft shadow on a surface behind the hand
        out = _shadow(out, canvas.alpha, light, rng)
    out[win] = out[win] * (1 - alpha) + colour * alpha
    return out


def _shadow(bg: np.ndarray, alpha: np.ndarray, light: Light, rng: np.random.Generator):
    """Darken the background under a blurred, shifted copy of the hand silhouette."""
    h, w = alpha.shape
    shift = -light.direction[:2] / max(abs(float(light.direction[2])), 0.3)
    shift = shift * rng.uniform(0.02, 0.08) * w
    blur = float(rng.uniform(0.01, 0.04) * w)
    mask = Image.fromarray((alpha * 255).astype(np.uint8))
    mask = mask.transform((w, h), Image.AFFINE, (1, 0, -shift[0], 0, 1, -shift[1]))
    mask = mask.filter(ImageFilter.GaussianBlur(blur))
    dark = np.asarray(mask, np.float32)[..., None] * np.float32(rng.uniform(0.2, 0.5) / 255.0)
    return bg * (1.0 - dark)
