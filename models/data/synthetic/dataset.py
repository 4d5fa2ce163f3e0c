"""`SyntheticHands`: the offline default training data, rendered on the fly and deterministic.

Item i of `SyntheticHands(count, seed, task)` is rendered with `np.random.default_rng([seed, i])`
only, so it is the same whatever the access order, process or worker.
- task "detection": a square scene (image_size, the centre square of a Pi camera frame) with
  0 hands (15 %), 1 hand (55 %) or 2 hands (30 %; left + right 85 % of the time), each filling
  5-80 % of the image side (log-uniform).
- task "pose": a square crop around one hand as the app cuts it from a detector box: the hand's
  silhouette box b, side = max(b_w, b_h) x 1.05 x U(1.0, 1.5), centre jittered by N(0, 0.05 side),
  so the hand fills about 55-90 % (median 70 %) of the side. Labels are in crop pixels and
  `intrinsics` is the crop's own camera matrix (the Pi focal length scaled by image_size / side).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from handpose.errors import HandposeError
from models.data.sample import Sample
from models.data.synthetic.backgrounds import background, camera_effects
from models.data.synthetic.kinematics import GESTURES
from models.data.synthetic.raster import Canvas, Light
from models.data.synthetic.scene import (
    HandState,
    hand_labels,
    keypoint_radii,
    pi_camera_intrinsics,
    render_hands,
    sample_hand,
    square_crop_intrinsics,
)

TASKS = ("detection", "pose")
#: nominal hand extent (mm, wrist to middle fingertip plus margins) used to place hands by size
HAND_EXTENT_MM = 190.0


def _palm_centre(state: HandState) -> np.ndarray:
    """(3,) camera offset of the palm centre from the wrist for the state's rotation."""
    j = state.local_pose().joints
    return state.rotation @ j[[0, 5, 9, 13, 17]].mean(axis=0)


def place_hand(state: HandState, K: np.ndarray, centre_px: np.ndarray, depth: float) -> None:
    """Set the translation so that the palm centre projects to `centre_px` at `depth` mm."""
    ray = np.array([(centre_px[0] - K[0, 2]) / K[0, 0], (centre_px[1] - K[1, 2]) / K[1, 1], 1.0])
    state.translation = ray * depth - _palm_centre(state)


def _label_hands(canvas: Canvas, states: list[HandState]) -> list:
    hands = []
    for n, state in enumerate(states):
        hand = hand_labels(canvas, state, n + 1)
        if hand is not None:
            if state.gesture != "random":
                hand.gesture, hand.gesture_score = state.gesture, 1.0
            hands.append(hand)
    return hands


def render_detection(
    rng: np.random.Generator, size: int, gestures: Sequence[str] | None = None
) -> tuple[np.ndarray, list, np.ndarray, list[str]]:
    """One detection scene: (image uint8 (S, S, 3), hands, intrinsics (3, 3), gesture names)."""
    K = square_crop_intrinsics(size)
    count = int(rng.choice(3, p=[0.15, 0.55, 0.30]))
    first_left = bool(rng.random() < 0.5)
    sides = [first_left, (not first_left) if rng.random() < 0.85 else first_left][:count]
    states: list[HandState] = []
    centres: list[tuple[np.ndarray, float]] = []
    for left in sides:
        state = sample_hand(rng, left, tuple(gestures) if gestures else None)
        frac = float(np.exp(rng.uniform(np.log(0.07), np.log(1.0))))
        depth = K[0, 0] * HAND_EXTENT_MM * state.shape.scale / (frac * size)
        for _ in range(10):  # keep two hands mostly apart (some overlap remains)
            centre = rng.uniform(0.12, 0.88, 2) * size
            if all(np.linalg.norm(centre - c) > 0.35 * (frac + f) * size for c, f in centres):
                break
        centres.append((centre, frac))
        place_hand(state, K, centre, depth)
        if states and states[0].left != left:  # a left + right pair: one person, one skin
            state.skin, state.palm, state.sleeve = states[0].skin, states[0].palm, states[0].sleeve
        states.append(state)
    bg = background(rng, size, size)
    canvas = Canvas(size, size, K)
    composite = render_hands(canvas, states, Light.sample(rng), bg, rng)
    hands = _label_hands(canvas, states)
    image = camera_effects(rng, composite)
    return image, hands, K, [s.gesture for s in states]


def render_pose(
    rng: np.random.Generator, size: int, gestures: Sequence[str] | None = None
) -> tuple[np.ndarray, list, np.ndarray, list[str]]:
    """One pose crop (see module doc): (image uint8 (S, S, 3), [hand], intrinsics, [gesture])."""
    K_full = pi_camera_intrinsics(640, 480).astype(np.float64)
    state = sample_hand(rng, bool(rng.random() < 0.5), tuple(gestures) if gestures else None)
    depth = float(rng.uniform(250.0, 900.0)) * state.shape.scale
    place_hand(state, K_full, rng.uniform([100, 80], [540, 400]), depth)
    joints = state.joints_camera()
    uv = K_full[:2, :2] @ (joints[:, :2] / joints[:, 2:]).T + K_full[:2, 2:]
    rad = K_full[0, 0] * keypoint_radii(state) / joints[:, 2]
    lo = (uv - rad).min(axis=1)
    hi = (uv + rad).max(axis=1)
    side = float((hi - lo).max() * 1.05 * rng.uniform(1.0, 1.5))
    centre = 0.5 * (lo + hi) + rng.normal(0, 0.05 * side, 2)
    x0, y0 = centre - side / 2
    scale = size / side
    K = np.array(
        [[K_full[0, 0] * scale, 0, (K_full[0, 2] - x0) * scale],
         [0, K_full[1, 1] * scale, (K_full[1, 2] - y0) * scale], [0, 0, 1]], np.float32,
    )  # fmt: skip
    bg = background(rng, size, size)
    canvas = Canvas(size, size, K)
    composite = render_hands(canvas, [state], Light.sample(rng), bg, rng)
    hands = _label_hands(canvas, [state])
    image = camera_effects(rng, composite)
    return image, hands, K, [state.gesture]


class SyntheticHands(Sequence):
    """Rendered hands as a sequence of `models.data.sample.Sample` (see module doc).

    Args:
        count: number of samples (len).
        seed: dataset seed; item i uses np.random.default_rng([seed, i]).
        task: "detection" (scenes with 0-2 hands) or "pose" (one-hand crops).
        image_size: side S of the square images.
        gestures: restrict hand poses to these preset names (default: presets and random poses).
    """

    name = "synthetic"

    def __init__(
        self,
        count: int = 10000,
        seed: int = 0,
        task: str = "detection",
        image_size: int = 224,
        gestures: Sequence[str] | None = None,
    ) -> None:
        if task not in TASKS:
            raise HandposeError(f"synthetic: task must be one of {TASKS}, got {task!r}")
        if count < 0 or image_size < 16:
            raise HandposeError("synthetic: count must be >= 0 and image_size >= 16")
        unknown = sorted(set(gestures or ()) - set(GESTURES))
        if unknown:
            raise HandposeError(
                f"synthetic: unknown gestures {unknown}; choose from {sorted(GESTURES)}"
            )
        self.count, self.seed, self.task = int(count), int(seed), task
        self.image_size = int(image_size)
        self.gestures = tuple(gestures) if gestures else None

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.count))]
        index = int(index)
        if index < 0:
            index += self.count
        if not 0 <= index < self.count:
            raise IndexError(f"SyntheticHands index {index} out of range 0..{self.count - 1}")
        rng = np.random.default_rng([self.seed, index])
        render = render_detection if self.task == "detection" else render_pose
        image, hands, K, names = render(rng, self.image_size, self.gestures)
        return Sample(
            image=image,
            hands=hands,
            intrinsics=K,
            source=self.name,
            name=f"{self.task}-{self.seed}-{index:06d}",
            meta={"gesture": names[0] if names else "none", "gestures": names, "task": self.task},
        )
