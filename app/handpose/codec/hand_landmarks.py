"""MediaPipe hand region and landmark decoding (pure numpy), in frame pixels.

Hand region from a palm (MediaPipe's palm_detection_detection_to_roi: DetectionsToRects then
RectTransformation), `palm_region(box, keypoints, options)`:
    rotation r = normalize(target - atan2(-(y_e - y_s), x_e - x_s)) with s = palm keypoint 0
    (wrist), e = palm keypoint 2 (middle MCP), target = 90 deg: r = 0 when the middle MCP is
    straight above the wrist, the hand upright;
    centre c = box centre + R(r) (shift_x w, shift_y h) (w, h: the palm box size; shift_y -0.5
    moves it half a palm towards the fingers);
    side = max(w, h) x scale (square_long, scale 2.6).
    R(r) = [[cos r, -sin r], [sin r, cos r]] in image axes (x right, y down): the region's x axis
    points along (cos r, sin r) in the frame.

Hand region from the last landmarks (tracking; MediaPipe's hand_landmark_landmarks_to_roi:
HandLandmarksToRect then RectTransformation), `landmark_region(keypoints, options)`: of the
12 keypoints `PARTIAL_LANDMARKS` (wrist, thumb CMC..IP, each finger's MCP and PIP), rotation r
from the wrist towards m = ((index MCP + ring MCP) / 2 + middle MCP) / 2 as above; the centre
and size of their tight box in the frame turned by -r (the box in the region's axes); then the
shift (0, -0.1) and square_long x 2.0 (`LANDMARK_REGION`).

Region -> crop, `region_affine(region, S)`: the S x S crop whose pixel q shows the frame at
    p = c + R(r) ((q - S/2) side / S),  i.e. q = R(r)^T (p - c) S / side + S/2,
    a 2x3 frame px -> crop px affine for `handpose.geometry.warp_image` / `apply_affine`.

Landmarks (hand_landmark_{lite,full}.tflite, 224 x 224 input): `landmarks` (63,) = 21 x
(x, y, z) in crop pixels, z the depth relative to the wrist on the scale of x after dividing
by normalize_z = 0.4 (MediaPipe's TensorsToLandmarks); `world_landmarks` (63,) = 21 x
(x, y, z) metres in the region's axes around the hand's centre; `presence` and `handedness`
probabilities (the models end with a sigmoid). Frame keypoints: p = A^-1 q with A the region
affine. 3D joints: the world landmarks turned by R(r) into camera axes (x right, y down,
z away), then, as for our own models, their 20 bone directions rebuilt with the standard bone
lengths (`handpose.codec.skeleton3d.joints_from_directions`), wrist at the origin, in mm.

Handedness: `handedness` is the probability of the model's first label ("Left") in an image
that MediaPipe assumes is mirrored (a selfie view); in the unmirrored images this project
processes (docs/CONVENTIONS.md) that label names the other hand, so
`handedness_from_score` swaps it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, NamedTuple

import numpy as np

from handpose import geometry
from handpose.codec import skeleton3d
from handpose.skeleton import NUM_KEYPOINTS

_OTHER = {"left": "right", "right": "left"}


@dataclass
class RegionOptions:
    """MediaPipe's palm -> hand region options (palm_detection_detection_to_roi.pbtxt).

    Attributes:
        scale: region side / max(palm box w, h) (scale_x = scale_y = 2.6).
        shift_x, shift_y: centre shift in palm-box widths / heights along the region's axes.
        square_long: make the region square on its long side (True for hands).
        rotation_start, rotation_end: palm keypoints whose direction sets the rotation.
        target_angle_deg: direction (counter-clockwise from +x, y up) mapped to upright.
    """

    scale: float = 2.6
    shift_x: float = 0.0
    shift_y: float = -0.5
    square_long: bool = True
    rotation_start: int = 0
    rotation_end: int = 2
    target_angle_deg: float = 90.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RegionOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown region options {unknown}")
        return cls(**data)


#: MediaPipe's landmarks -> next region options (hand_landmark_landmarks_to_roi.pbtxt)
LANDMARK_REGION = RegionOptions(scale=2.0, shift_x=0.0, shift_y=-0.1, square_long=True)
#: the keypoints MediaPipe's landmark region is built from (it leaves out the finger tips)
PARTIAL_LANDMARKS: tuple[int, ...] = (0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18)


class HandRegion(NamedTuple):
    """A rotated rectangle in frame pixels.

    Attributes:
        center: float64 (2,) (x, y).
        size: float64 (2,) (width, height) along the region's own axes.
        rotation: radians; the region's x axis points along (cos r, sin r) in the frame.
    """

    center: np.ndarray
    size: np.ndarray
    rotation: float


def normalize_radians(angle: float) -> float:
    """`angle` wrapped into [-pi, pi)."""
    return float(angle - 2.0 * math.pi * math.floor((angle + math.pi) / (2.0 * math.pi)))


def rotation_matrix(rotation: float) -> np.ndarray:
    """R(r) = [[cos r, -sin r], [sin r, cos r]] (2, 2) float64 (see module docstring)."""
    c, s = math.cos(rotation), math.sin(rotation)
    return np.array([[c, -s], [s, c]])


def palm_rotation(
    keypoints: np.ndarray, start: int = 0, end: int = 2, target_angle_deg: float = 90.0
) -> float:
    """Rotation r in radians that makes keypoint `start` -> `end` point up in the region.

    r = normalize(target - atan2(-(y_e - y_s), x_e - x_s)) with points in pixels (y down).
    """
    kp = np.asarray(keypoints, np.float64).reshape(-1, 2)
    (xs, ys), (xe, ye) = kp[start], kp[end]
    return normalize_radians(math.radians(target_angle_deg) - math.atan2(-(ye - ys), xe - xs))


def palm_region(
    box: Sequence[float] | np.ndarray,
    keypoints: np.ndarray,
    options: RegionOptions | None = None,
) -> HandRegion:
    """The rotated hand region of a palm (see module docstring), in the pixels of the inputs.

    Args:
        box: palm box [x0, y0, x1, y1] in frame pixels.
        keypoints: (7, 2) palm keypoints in frame pixels.
        options: region options (default: MediaPipe's).
    """
    options = options or RegionOptions()
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = x1 - x0, y1 - y0
    rotation = palm_rotation(
        keypoints, options.rotation_start, options.rotation_end, options.target_angle_deg
    )
    center = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    shift = np.array([options.shift_x * w, options.shift_y * h])
    center = center + rotation_matrix(rotation) @ shift
    if options.square_long:
        w = h = max(w, h)
    size = np.array([w * options.scale, h * options.scale])
    return HandRegion(center=center, size=size, rotation=rotation)


def landmark_region(keypoints: np.ndarray, options: RegionOptions | None = None) -> HandRegion:
    """The hand region for the next frame from a hand's 21 keypoints (module docstring).

    Args:
        keypoints: (21, 2) frame px.
        options: region options (default `LANDMARK_REGION`, MediaPipe's).
    """
    options = options or LANDMARK_REGION
    kp = np.asarray(keypoints, np.float64).reshape(NUM_KEYPOINTS, 2)
    part = kp[list(PARTIAL_LANDMARKS)]
    towards = ((kp[5] + kp[13]) / 2.0 + kp[9]) / 2.0
    rotation = palm_rotation(np.stack([kp[0], towards]), 0, 1, options.target_angle_deg)
    R = rotation_matrix(rotation)
    middle = (part.min(axis=0) + part.max(axis=0)) / 2.0
    local = (part - middle) @ R  # rows: R^T (p - middle), the points in the region's axes
    lo, hi = local.min(axis=0), local.max(axis=0)
    center = middle + R @ ((lo + hi) / 2.0)
    w, h = hi - lo
    center = center + R @ np.array([options.shift_x * w, options.shift_y * h])
    if options.square_long:
        w = h = max(w, h)
    size = np.array([w * options.scale, h * options.scale])
    return HandRegion(center=center, size=size, rotation=rotation)


def region_affine(region: HandRegion, out_size: int) -> np.ndarray:
    """2x3 affine frame px -> pixels of the out_size x out_size crop of `region`.

    q = diag(S / w, S / h) R(r)^T (p - c) + S / 2 (a non-square region is stretched).
    """
    R = rotation_matrix(region.rotation)
    scale = np.diag([out_size / float(region.size[0]), out_size / float(region.size[1])])
    linear = scale @ R.T
    offset = np.array([out_size / 2.0, out_size / 2.0]) - linear @ np.asarray(region.center)
    return np.concatenate([linear, offset[:, None]], axis=1)


def region_corners(region: HandRegion) -> np.ndarray:
    """(4, 2) frame px corners of the region: top-left, top-right, bottom-right, bottom-left
    in the region's own axes (its top is towards the fingers for a palm region)."""
    half = np.asarray(region.size, np.float64) / 2.0
    local = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) * half
    return local @ rotation_matrix(region.rotation).T + np.asarray(region.center)


def landmarks_to_frame(
    landmarks: np.ndarray, affine: np.ndarray, normalize_z: float = 0.4
) -> tuple[np.ndarray, np.ndarray]:
    """Crop landmarks -> frame keypoints and their depth.

    Args:
        landmarks: (63,) or (21, 3) model output: (x, y) crop px, z relative depth.
        affine: the region affine (frame px -> crop px) the crop was cut with.
        normalize_z: MediaPipe's z scale (z / normalize_z is on the scale of x).
    Returns:
        keypoints float32 (21, 2) frame px; depth float32 (21,) in frame px relative to the
        wrist (z / normalize_z times the crop -> frame scale; smaller is nearer the camera).
    """
    points = np.asarray(landmarks, np.float64).reshape(NUM_KEYPOINTS, 3)
    inverse = geometry.invert_affine(affine)  # closed form: no LAPACK on the hot path
    frame = points[:, :2] @ inverse[:, :2].T + inverse[:, 2]
    scale = geometry.affine_scale(inverse)
    depth = (points[:, 2] - points[0, 2]) / normalize_z * scale
    return frame.astype(np.float32), depth.astype(np.float32)


def joints_from_world(world_landmarks: np.ndarray, rotation: float) -> np.ndarray:
    """Wrist-relative joints float32 (21, 3) mm, camera axes, from MediaPipe world landmarks.

    The world landmarks (metres, region axes) are turned by R(r) about z into the frame's axes;
    their bone directions are rebuilt with `handpose.skeleton.BONE_LENGTHS_MM`.
    """
    points = np.asarray(world_landmarks, np.float64).reshape(NUM_KEYPOINTS, 3).copy()
    points[:, :2] = points[:, :2] @ rotation_matrix(rotation).T
    return skeleton3d.joints_from_directions(skeleton3d.bone_directions(points))


def joints_from_landmarks(keypoints: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Wrist-relative joints float32 (21, 3) mm from frame keypoints and relative depth.

    The fallback for landmark models without world landmarks: (x, y, depth) in frame pixels
    is a weak-perspective 3D hand whose bone directions are rebuilt with the standard lengths.
    """
    points = np.concatenate(
        [np.asarray(keypoints, np.float64), np.asarray(depth, np.float64)[:, None]], axis=1
    )
    return skeleton3d.joints_from_directions(skeleton3d.bone_directions(points))


def handedness_from_score(
    score: float, first_label: str = "left", assumes_mirrored: bool = True
) -> tuple[str, float]:
    """(anatomical side in the unmirrored image, confidence) from the handedness output.

    Args:
        score: the model's probability of `first_label`.
        first_label: the label the score is for ("left" for MediaPipe, handedness.txt line 1).
        assumes_mirrored: the model names the side as seen in a mirrored (selfie) image.
    Returns:
        ("left" | "right", max(score, 1 - score)).
    """
    score = float(score)
    side = first_label if score >= 0.5 else _OTHER[first_label]
    if assumes_mirrored:
        side = _OTHER[side]
    return side, max(score, 1.0 - score)
