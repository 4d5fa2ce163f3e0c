"""Hand gestures from a hand's 3D joints: finger states, one rule per gesture, hysteresis.

Pure numpy, no model. Works on `Hand.joints_3d` (21, 3) in mm, camera axes (x right, y down,
z forward; wrist-relative or absolute, any bone lengths). Every measure is an angle, a ratio or
the vertical direction, so it is the same for a left hand and its mirror image: no handedness
needed, and a mirrored camera does not change the gesture.

Measures of one hand (J = joints, ∠ = angle in degrees, palm = |J_middle_mcp - J_wrist|):

- finger curl c_f, f = index..little: ∠(wrist→MCP, MCP→tip), the turn of the finger's chord
  against its metacarpal (about 5 straight, 90 half bent, 145 in a fist);
- thumb reach r = (J_thumb_tip - J_index_mcp) · e / palm with e = the unit vector from the
  little MCP to the index MCP: how far the thumb tip stands out beyond the index side of the
  palm (0.65-0.9 out, -0.25 touching the index tip, -0.65 folded across the palm);
- contact d = |J_thumb_tip - J_index_tip| / palm (0.3 touching, 1 and more apart);
- thumb direction u = (J_thumb_tip - J_thumb_mcp) / |.|, u_y < 0: the thumb points up.

Chords and positions average the error of several bones, so they stay usable with noisy joints
(a sum of joint angles grows with the noise of every bone).

Conditions are probabilities made with the logistic σ(z) = 1 / (1 + e^-z):

    extended_f = σ((80° - c_f) / 10°)              curled_f = 1 - extended_f
    thumb_out  = σ(r / 0.15)                       thumb_in = 1 - thumb_out
    touch      = σ((0.62 - d) / 0.1)               apart = 1 - touch
    up         = σ(-u_y / 0.12)                    down = σ(u_y / 0.12)

A gesture (`RULES`) is a set of conditions; its score is the least probable of them (min), so
a score of 0.8 means every condition of the gesture holds with at least 0.8. The midpoints sit
halfway between the renderer's presets (`models.data.synthetic.kinematics.GESTURES`): extended
fingers turn 2-35°, curled ones 125-147°; the thumb reaches 0.65-0.92 out, -0.63 folded; the
thumb and index tips are 0.28 apart in OK and pinch, 0.96 and more in the other presets.

`GestureFilter` adds hysteresis for one tracked hand: a gesture is reported once it has been the
best one with a score ≥ `threshold` for `frames` frames in a row, and kept while its score stays
≥ `threshold - HOLD_MARGIN` (or until another gesture has been confirmed the same way).
`GestureRecognizer` keeps one filter per `Hand.track_id`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from handpose.compat import zip_strict
from handpose.hand import Hand
from handpose.skeleton import NUM_KEYPOINTS

#: the gestures, in the order of their rules
GESTURES: tuple[str, ...] = (
    "open_palm", "fist", "point", "victory", "thumbs_up", "thumbs_down", "ok", "pinch", "call",
)  # fmt: skip

#: gesture -> the conditions that must hold (names of `conditions()`); score = min over them
RULES: dict[str, tuple[str, ...]] = {
    "open_palm": ("thumb_out", "apart", "index_extended", "middle_extended", "ring_extended",
                  "little_extended"),
    "fist": ("thumb_in", "apart", "index_curled", "middle_curled", "ring_curled",
             "little_curled"),
    "point": ("apart", "index_extended", "middle_curled", "ring_curled", "little_curled"),
    "victory": ("apart", "index_extended", "middle_extended", "ring_curled", "little_curled"),
    "thumbs_up": ("thumb_out", "apart", "up", "index_curled", "middle_curled", "ring_curled",
                  "little_curled"),
    "thumbs_down": ("thumb_out", "apart", "down", "index_curled", "middle_curled", "ring_curled",
                    "little_curled"),
    "ok": ("touch", "middle_extended", "ring_extended", "little_extended"),
    "pinch": ("touch", "middle_curled", "ring_curled", "little_curled"),
    "call": ("thumb_out", "apart", "index_curled", "middle_curled", "ring_curled",
             "little_extended"),
}  # fmt: skip

#: logistic midpoints and widths of the conditions (module docstring)
CURL_MID_DEG, CURL_WIDTH_DEG = 80.0, 10.0
REACH_MID, REACH_WIDTH = 0.0, 0.15
TOUCH_MID, TOUCH_WIDTH = 0.62, 0.1
UP_WIDTH = 0.12
#: a reported gesture is kept while its score is at least threshold - HOLD_MARGIN
HOLD_MARGIN = 0.2

_FINGER_NAMES = ("index", "middle", "ring", "little")
_MCPS = np.array([5, 9, 13, 17])
_TIPS = _MCPS + 3


@dataclass(frozen=True)
class HandMeasures:
    """The raw measures of one hand (module docstring).

    Attributes:
        finger_curl: float (4,) c_f in degrees for index, middle, ring, little.
        thumb_reach: r in palm lengths.
        contact: d in palm lengths.
        thumb_direction: float (3,) unit u (camera axes).
    """

    finger_curl: np.ndarray
    thumb_reach: float
    contact: float
    thumb_direction: np.ndarray


def _unit(v: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(norm, 1e-9)


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in degrees between vectors a and b (..., 3)."""
    cos = np.sum(_unit(a) * _unit(b), axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def _sigmoid(z: float) -> float:
    return float(1.0 / (1.0 + np.exp(-np.clip(z, -60.0, 60.0))))


def measure(joints_3d: np.ndarray) -> HandMeasures | None:
    """The measures of a hand from joints (21, 3), or None when they are not finite or the hand
    has no size (a degenerate pose)."""
    j = np.asarray(joints_3d, np.float64)
    if j.shape != (NUM_KEYPOINTS, 3) or not np.isfinite(j).all():
        return None
    palm = float(np.linalg.norm(j[9] - j[0]))
    if palm < 1e-6:
        return None
    curl = _angle(j[_MCPS] - j[0], j[_TIPS] - j[_MCPS])
    across = _unit(j[5] - j[17])
    return HandMeasures(
        finger_curl=curl,
        thumb_reach=float((j[4] - j[5]) @ across / palm),
        contact=float(np.linalg.norm(j[4] - j[8]) / palm),
        thumb_direction=_unit(j[4] - j[2]),
    )


#: the conditions `conditions` computes as logistics, in order, and their complements
_LOGISTIC = (
    *(f"{name}_extended" for name in _FINGER_NAMES), "thumb_out", "touch", "up", "down",
)  # fmt: skip
_COMPLEMENT = (*(f"{name}_curled" for name in _FINGER_NAMES), "thumb_in", "apart")


def conditions(measures: HandMeasures) -> dict[str, float]:
    """Probability in [0, 1] of each named condition (module docstring).

    The eight logistics go through one array (`_sigmoid`'s operations element by element: the
    same floats as eight calls, a quarter of the time)."""
    z = np.empty(len(_LOGISTIC))
    z[:4] = (CURL_MID_DEG - np.asarray(measures.finger_curl, np.float64)) / CURL_WIDTH_DEG
    uy = float(measures.thumb_direction[1])
    z[4:] = (
        (measures.thumb_reach - REACH_MID) / REACH_WIDTH,
        (TOUCH_MID - measures.contact) / TOUCH_WIDTH,
        -uy / UP_WIDTH,
        uy / UP_WIDTH,
    )
    probs = (1.0 / (1.0 + np.exp(-np.clip(z, -60.0, 60.0)))).tolist()
    out = dict(zip_strict(_LOGISTIC, probs))
    out.update(zip_strict(_COMPLEMENT, (1.0 - p for p in probs[:6])))
    return out


def gesture_scores(joints_3d: np.ndarray | None) -> dict[str, float]:
    """Score in [0, 1] of every gesture in `GESTURES` (all 0 without usable joints)."""
    measures = measure(joints_3d) if joints_3d is not None else None
    if measures is None:
        return dict.fromkeys(GESTURES, 0.0)
    probs = conditions(measures)
    return {name: min(probs[c] for c in RULES[name]) for name in GESTURES}


def best_gesture(scores: dict[str, float], threshold: float = 0.6) -> tuple[str | None, float]:
    """The best-scoring gesture and its score, or (None, 0.0) when it scores below `threshold`."""
    name = max(scores, key=scores.__getitem__)
    return (name, scores[name]) if scores[name] >= threshold else (None, 0.0)


def classify(joints_3d: np.ndarray | None, threshold: float = 0.6) -> tuple[str | None, float]:
    """The gesture of one frame (no hysteresis): `best_gesture(gesture_scores(joints_3d))`."""
    return best_gesture(gesture_scores(joints_3d), threshold)


@dataclass
class GestureFilter:
    """Hysteresis for one hand's gesture over frames (module docstring).

    Args:
        threshold: score a gesture needs to be reported (and to replace another).
        frames: frames in a row it must be the best with that score (1: at once).
    """

    threshold: float = 0.6
    frames: int = 3
    current: str | None = None
    score: float = 0.0
    _candidate: str | None = field(default=None, repr=False)
    _count: int = field(default=0, repr=False)

    def update(self, scores: dict[str, float]) -> tuple[str | None, float]:
        """Feed one frame's `gesture_scores`; returns the stable gesture (or None) and its score
        in this frame."""
        best = max(scores, key=scores.__getitem__) if scores else None
        candidate = best if best is not None and scores[best] >= self.threshold else None
        if candidate == self._candidate:
            self._count += 1
        else:
            self._candidate, self._count = candidate, 1
        holding = (
            self.current is not None
            and scores.get(self.current, 0.0) >= self.threshold - HOLD_MARGIN
        )
        confirmed = candidate != self.current and self._count >= self.frames
        if confirmed and (candidate is not None or not holding):
            self.current = candidate
        self.score = scores.get(self.current, 0.0) if self.current is not None else 0.0
        return self.current, self.score


class GestureRecognizer:
    """Gestures of tracked hands: one `GestureFilter` per `Hand.track_id`.

    Hands without a track id are classified frame by frame (no hysteresis), which is what still
    images want. A filter is forgotten when its hand has not been seen for `forget_after` s.

    Args:
        threshold: see `GestureFilter`.
        frames: see `GestureFilter`.
        forget_after: seconds after which an unseen track's filter is dropped.
    """

    def __init__(self, threshold: float = 0.6, frames: int = 3, forget_after: float = 2.0) -> None:
        self.threshold = float(threshold)
        self.frames = int(frames)
        self.forget_after = float(forget_after)
        self._filters: dict[int, tuple[GestureFilter, float]] = {}

    def __call__(self, hands: list[Hand], timestamp: float = 0.0) -> list[Hand]:
        """The hands with `gesture` and `gesture_score` set (copies; the input is not changed)."""
        out = []
        for hand in hands:
            scores = gesture_scores(hand.joints_3d)
            if hand.track_id is None:
                name, score = best_gesture(scores, self.threshold)
            else:
                entry = self._filters.get(hand.track_id)
                gesture_filter = entry[0] if entry else GestureFilter(self.threshold, self.frames)
                name, score = gesture_filter.update(scores)
                self._filters[hand.track_id] = (gesture_filter, timestamp)
            out.append(hand.replace(gesture=name, gesture_score=float(score)))
        self._filters = {
            key: (f, seen)
            for key, (f, seen) in self._filters.items()
            if timestamp - seen <= self.forget_after
        }
        return out
