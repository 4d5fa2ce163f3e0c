"""Smooth synthetic video clips: hands that move, turn and change gesture, with exact labels.

Each hand follows key frames one second apart (image position, depth, yaw / pitch / roll)
interpolated with Catmull-Rom splines, so motion is C1-smooth. Gestures change on a schedule:
each gesture is held for `hold` seconds, then the joint angles blend to the next preset over
`blend` seconds with a smoothstep (3s^2 - 2s^3). `Hand.gesture` carries the preset name while it
is held, None during a blend. `Hand.track_id` is the hand's index (stable through the clip).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from handpose.hand import Hand
from models.data.synthetic.backgrounds import background
from models.data.synthetic.dataset import place_hand
from models.data.synthetic.kinematics import (
    GESTURES,
    HandShape,
    clip_angles,
    rotation_from_euler,
)
from models.data.synthetic.raster import Canvas, Light
from models.data.synthetic.scene import (
    HandState,
    hand_labels,
    pi_camera_intrinsics,
    render_hands,
    sample_appearance,
)

#: gestures of the default clip (thumbs_down is left out: its label depends on the orientation)
CLIP_GESTURES: tuple[str, ...] = (
    "open_palm", "point", "victory", "fist", "ok", "call", "thumbs_up", "pinch",
)  # fmt: skip


def _catmull_rom(keys: np.ndarray, t: float) -> np.ndarray:
    """Value at time t (in key units) of the Catmull-Rom spline through keys (K, D)."""
    k = int(np.clip(np.floor(t), 0, len(keys) - 2))
    s = t - k
    p0, p1 = keys[max(k - 1, 0)], keys[k]
    p2, p3 = keys[k + 1], keys[min(k + 2, len(keys) - 1)]
    return 0.5 * (
        2 * p1
        + (-p0 + p2) * s
        + (2 * p0 - 5 * p1 + 4 * p2 - p3) * s * s
        + (-p0 + 3 * p1 - 3 * p2 + p3) * s**3
    )


def render_clip(
    n_frames: int,
    seed: int = 0,
    size: tuple[int, int] = (480, 640),
    fps: float = 15.0,
    hands: int = 2,
    gestures: Sequence[str] | None = None,
    crossing: bool = False,
    hold: float = 0.9,
    blend: float = 0.6,
) -> Iterator[tuple[np.ndarray, list[Hand]]]:
    """Yield n_frames of (image uint8 (H, W, 3), hands) of a smooth animation.

    Args:
        size: (H, W) of the frames; the camera is the Pi camera of that frame (62.2 deg HFOV).
        hands: 1 (a random side) or 2 (the person's right hand on the image left, left on the
            right, as a camera facing the person sees them).
        gestures: the presets to cycle through (default `CLIP_GESTURES`), each hand starting at
            a different place in the cycle.
        crossing: the two hands swap sides during the clip (they cross in the middle).
    """
    height, width = size
    rng = np.random.default_rng([seed, 7_919])
    names = tuple(gestures) if gestures else CLIP_GESTURES
    unknown = sorted(set(names) - set(GESTURES))
    if unknown:
        raise ValueError(f"unknown gestures {unknown}; choose from {sorted(GESTURES)}")
    K = pi_camera_intrinsics(width, height).astype(np.float64)
    bg = background(rng, height, width, photo_share=1.0)
    light = Light.sample(rng)
    light.direction = np.array([0.3, -0.4, -0.87], np.float32)  # from the upper left, soft
    light.colour = np.array([0.85, 0.8, 0.75], np.float32)
    light.ambient = np.array([0.42, 0.4, 0.4], np.float32)
    duration = n_frames / fps
    n_keys = int(np.ceil(duration)) + 2
    sides = [False, True] if hands == 2 else [bool(rng.random() < 0.5)]
    tracks = []
    for h, left in enumerate(sides):
        base_x = (0.3 if not left else 0.7) if hands == 2 else 0.5
        xs = base_x + rng.uniform(-0.12, 0.12, n_keys)
        if crossing and hands == 2:
            xs = np.linspace(base_x, 1.0 - base_x, n_keys) + rng.uniform(-0.04, 0.04, n_keys)
        keys = np.stack(
            [
                xs * width,
                rng.uniform(0.35, 0.65, n_keys) * height,
                rng.uniform(380, 560, n_keys) + 90 * h,
                rng.uniform(-1.3, 1.3, n_keys),  # yaw: palm to side views
                rng.normal(0.5, 0.2, n_keys),  # pitch: the forearm recedes to the body
                rng.normal(0, 0.35, n_keys),  # roll
            ],
            axis=1,
        )
        state = HandState(GESTURES[names[0]].copy(), HandShape.sample(rng), left, np.eye(3),
                          np.zeros(3), **sample_appearance(rng))  # fmt: skip
        state.sleeve = None
        if tracks:  # both hands belong to one person
            state.skin, state.palm = tracks[0][1].skin, tracks[0][1].palm
        tracks.append((keys, state, (h * len(names)) // max(hands, 1)))
    period = hold + blend
    for frame in range(n_frames):
        time = frame / fps
        states = []
        gesture_names = []
        for keys, state, offset in tracks:
            x, y, depth, yaw, pitch, roll = _catmull_rom(keys, time)
            slot = int(time // period)
            phase = time - slot * period
            current = names[(slot + offset) % len(names)]
            nxt = names[(slot + 1 + offset) % len(names)]
            if phase <= hold:
                state.angles = GESTURES[current].copy()
                gesture_names.append(current)
            else:
                s = (phase - hold) / blend
                s = s * s * (3 - 2 * s)
                state.angles = clip_angles((1 - s) * GESTURES[current] + s * GESTURES[nxt])
                gesture_names.append(None)
            if state.left:  # mirror the yaw/roll so both hands turn symmetrically
                yaw, roll = -yaw, -roll
            state.rotation = rotation_from_euler(yaw, pitch, roll)
            place_hand(state, K, np.array([x, y]), depth)
            states.append(state)
        canvas = Canvas(height, width, K)
        image = render_hands(canvas, states, light, bg)
        labels = []
        for n, (state, name) in enumerate(zip(states, gesture_names, strict=True)):
            hand = hand_labels(canvas, state, n + 1)
            if hand is not None:
                hand.track_id = n
                if name is not None:
                    hand.gesture, hand.gesture_score = name, 1.0
                labels.append(hand)
        yield np.clip(image, 0, 255).astype(np.uint8), labels
