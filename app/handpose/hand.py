"""The one typed result that flows through every stage: `Hand`.

Conventions (the whole project follows them; see docs/CONVENTIONS.md):
- Images are RGB uint8 arrays of shape (H, W, 3).
- 2D points are (x, y) in pixels of the image they refer to, x to the right, y down, continuous
  coordinates: pixel (row i, col j) covers [j, j+1) x [i, i+1), so its centre is (j + 0.5, i + 0.5).
  Resizing an image by s maps a point p to s * p exactly.
- Boxes are [x0, y0, x1, y1] in the same pixel coordinates (x1 > x0, y1 > y0).
- 3D points are (x, y, z) in millimetres, camera coordinates (x right, y down, z forward, like
  OpenCV). Dataset labels are absolute camera coordinates; predictions are wrist-relative
  (the wrist at the origin), with realistic bone lengths.
- Keypoints are the 21 of `handpose.skeleton` in the standard order.
- Handedness is the anatomical side of the hand as seen in the unmirrored image:
  "left", "right", or "hand" when a model does not tell.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from handpose.compat import zip_strict
from handpose.skeleton import NUM_KEYPOINTS

Handedness = Literal["left", "right", "hand"]
HANDEDNESS: tuple[str, ...] = ("left", "right", "hand")


def _as_array(value: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float32)
    if array.shape != shape:
        raise ValueError(f"Hand.{name} must have shape {shape}, got {array.shape}")
    return array


@dataclass
class Hand:
    """One hand in one frame (or one labelled hand in a dataset sample).

    Attributes:
        handedness: "left", "right" or "hand" (anatomical side in the unmirrored image).
        score: detection confidence in [0, 1] (1.0 for labels).
        box: float32 (4,) [x0, y0, x1, y1] in frame pixels.
        keypoints: float32 (21, 2) (x, y) in frame pixels, or None before the pose stage.
        keypoint_scores: float32 (21,) in [0, 1], or None. For dataset labels this is the
            visibility (1 visible, 0 occluded or outside the image).
        joints_3d: float32 (21, 3) (x, y, z) in mm, or None (see module docstring for the frame).
        track_id: id kept by the tracker across frames, or None.
        gesture: name of the recognised gesture, or None; gesture_score its confidence.
    """

    handedness: str
    score: float
    box: np.ndarray
    keypoints: np.ndarray | None = None
    keypoint_scores: np.ndarray | None = None
    joints_3d: np.ndarray | None = None
    track_id: int | None = None
    gesture: str | None = None
    gesture_score: float = 0.0
    extras: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.handedness not in HANDEDNESS:
            raise ValueError(f"handedness must be one of {HANDEDNESS}, got {self.handedness!r}")
        self.score = float(self.score)
        self.box = _as_array(self.box, (4,), "box")
        if self.keypoints is not None:
            self.keypoints = _as_array(self.keypoints, (NUM_KEYPOINTS, 2), "keypoints")
        if self.keypoint_scores is not None:
            self.keypoint_scores = _as_array(
                self.keypoint_scores, (NUM_KEYPOINTS,), "keypoint_scores"
            )
        if self.joints_3d is not None:
            self.joints_3d = _as_array(self.joints_3d, (NUM_KEYPOINTS, 3), "joints_3d")

    @property
    def has_pose(self) -> bool:
        return self.keypoints is not None

    def replace(self, **changes: Any) -> Hand:
        """A copy with some fields changed (dataclasses.replace)."""
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The `predict` / event JSON form: lists of floats, keypoints as [x, y, score]."""
        out: dict[str, Any] = {
            "handedness": self.handedness,
            "score": round(self.score, 4),
            "box": [round(float(v), 2) for v in self.box],
        }
        if self.keypoints is not None:
            scores = (
                self.keypoint_scores
                if self.keypoint_scores is not None
                else np.ones(NUM_KEYPOINTS, np.float32)
            )
            out["keypoints"] = [
                [round(float(x), 2), round(float(y), 2), round(float(s), 4)]
                for (x, y), s in zip_strict(self.keypoints, scores)
            ]
        if self.joints_3d is not None:
            out["joints_3d"] = [[round(float(v), 2) for v in p] for p in self.joints_3d]
        if self.track_id is not None:
            out["track_id"] = int(self.track_id)
        if self.gesture is not None:
            out["gesture"] = self.gesture
            out["gesture_score"] = round(float(self.gesture_score), 4)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Hand:
        """Inverse of `to_json`."""
        keypoints = keypoint_scores = None
        if data.get("keypoints") is not None:
            kp = np.asarray(data["keypoints"], dtype=np.float32)
            keypoints, keypoint_scores = kp[:, :2], kp[:, 2]
        return cls(
            handedness=data["handedness"],
            score=data.get("score", 1.0),
            box=data["box"],
            keypoints=keypoints,
            keypoint_scores=keypoint_scores,
            joints_3d=data.get("joints_3d"),
            track_id=data.get("track_id"),
            gesture=data.get("gesture"),
            gesture_score=data.get("gesture_score", 0.0),
        )


def box_from_keypoints(keypoints: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """Tight box [x0, y0, x1, y1] around (N, 2) points, grown by `margin` x its size per side."""
    keypoints = np.asarray(keypoints, dtype=np.float32)
    lo, hi = keypoints.min(axis=0), keypoints.max(axis=0)
    pad = (hi - lo) * margin
    return np.concatenate([lo - pad, hi + pad]).astype(np.float32)
