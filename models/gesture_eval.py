"""Gesture accuracy on rendered clips with exact labels (`handpose.gestures` on label joints).

Usage: python -m models.gesture_eval [--seeds 0 1 2] [--frames 45] [--noise 0 5 10 15]

For each gesture preset of the renderer, a clip of two hands (the person's right hand on the
image left, the left hand on the image right) holding that preset while they move and turn
(`render_clip(..., gestures=[preset])`, one gesture for the whole clip, so every frame is
labelled). The renderer does not orient `thumbs_down` (its clip turns the hand freely, see
`models.data.synthetic.clip`), so the thumbs_down clip is the thumbs_up clip turned 180° in the
image plane: a rotation about the camera axis, exact for the image (principal point at the
centre) and for the labels: (x, y, z) -> (-x, -y, z), (u, v) -> (W - u, H - v); handedness
stays.

The classifier sees the ground-truth 3D joints of each hand (the trained pose network is not
part of this measure), optionally with noise: every bone direction gets isotropic Gaussian
noise of `sigma` per component and is renormalised, and the joints are rebuilt with the hand's
own bone lengths; the printed noise is the measured mean angle between noisy and true bone
directions. A frame counts as right when the gesture reported for the hand (`GestureRecognizer`
with the app's default threshold and hysteresis, one filter per hand, so the first
`frames - 1` frames of a clip are misses by design) equals the label. `raw` is the per-frame
classification without hysteresis.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from handpose.codec import skeleton3d
from handpose.gestures import GESTURES, GestureRecognizer, classify
from handpose.hand import Hand
from handpose.settings import AppSettings

#: render size (H, W) of the evaluation clips: the labels do not depend on it, small is fast
CLIP_SIZE = (120, 160)


def rotate_180(image: np.ndarray, hands: list[Hand]) -> tuple[np.ndarray, list[Hand]]:
    """An image and its hand labels turned 180° about the camera axis (module docstring)."""
    height, width = image.shape[:2]
    size = np.array([width, height], np.float32)
    turned = []
    for hand in hands:
        x0, y0, x1, y1 = hand.box
        changes: dict = {"box": [width - x1, height - y1, width - x0, height - y0]}
        if hand.keypoints is not None:
            changes["keypoints"] = size - hand.keypoints
        if hand.joints_3d is not None:
            changes["joints_3d"] = hand.joints_3d * np.array([-1.0, -1.0, 1.0], np.float32)
        turned.append(hand.replace(**changes))
    return np.ascontiguousarray(image[::-1, ::-1]), turned


def preset_clip(
    preset: str,
    n_frames: int = 45,
    seed: int = 0,
    size: tuple[int, int] = CLIP_SIZE,
    fps: float = 15.0,
) -> Iterator[tuple[np.ndarray, list[Hand]]]:
    """Frames (image, label hands) of two hands holding `preset` for the whole clip; every
    label has `gesture == preset` and a `track_id` (0: right hand, 1: left hand)."""
    from models.data.synthetic import render_clip

    rendered = "thumbs_up" if preset == "thumbs_down" else preset
    hold = n_frames / fps + 1.0  # one gesture slot longer than the clip: no blend frames
    for image, hands in render_clip(
        n_frames, seed, size, fps, hands=2, gestures=[rendered], hold=hold
    ):
        if preset == "thumbs_down":
            image, hands = rotate_180(image, hands)
        yield image, [h.replace(gesture=preset, gesture_score=1.0) for h in hands]


def perturb_bones(
    joints_3d: np.ndarray, sigma: float, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """Joints rebuilt from noisy bone directions, and the mean bone angle error in degrees.

    d'_e = normalize(d_e + n_e), n_e ~ N(0, sigma^2 I3); joints from d' with the hand's own
    bone lengths, the wrist kept in place.
    """
    joints = np.asarray(joints_3d, np.float64)
    directions = skeleton3d.bone_directions(joints).astype(np.float64)
    noisy = skeleton3d.normalize(directions + rng.normal(0.0, sigma, directions.shape))
    cos = np.clip(np.sum(noisy * directions, axis=1), -1.0, 1.0)
    rebuilt = skeleton3d.joints_from_directions(noisy, skeleton3d.bone_lengths(joints))
    return rebuilt + joints[0], float(np.degrees(np.arccos(cos)).mean())


@dataclass
class GestureResult:
    """Accuracy of one preset at one noise level, per hand side."""

    preset: str
    sigma: float
    angle_error_deg: float
    right: dict[str, int]  # "frames", "correct", "raw_correct"
    left: dict[str, int]

    def accuracy(self, side: str, key: str = "correct") -> float:
        counts = self.right if side == "right" else self.left
        return counts[key] / max(counts["frames"], 1)


def evaluate(
    presets: Sequence[str] = GESTURES,
    seeds: Sequence[int] = (0, 1, 2),
    n_frames: int = 45,
    sigmas: Sequence[float] = (0.0,),
    settings: AppSettings | None = None,
    noise_seed: int = 0,
) -> list[GestureResult]:
    """Accuracy per preset and noise level (module docstring); each clip is rendered once."""
    settings = settings or AppSettings()
    results = []
    for preset in presets:
        clips = [list(preset_clip(preset, n_frames, seed)) for seed in seeds]
        for sigma in sigmas:
            rng = np.random.default_rng([noise_seed, int(sigma * 1000)])
            counts = {side: {"frames": 0, "correct": 0, "raw_correct": 0} for side in SIDES}
            errors = []
            for clip in clips:
                recognizer = GestureRecognizer(settings.gesture_threshold, settings.gesture_frames)
                for n, (_, hands) in enumerate(clip):
                    seen = []
                    for hand in hands:
                        joints = hand.joints_3d
                        if sigma > 0:
                            joints, error = perturb_bones(joints, sigma, rng)
                            errors.append(error)
                        seen.append(hand.replace(joints_3d=joints, gesture=None))
                    for truth, hand in zip(hands, recognizer(seen, n / 15.0), strict=True):
                        side = counts[truth.handedness]
                        side["frames"] += 1
                        side["correct"] += hand.gesture == preset
                        side["raw_correct"] += (
                            classify(hand.joints_3d, settings.gesture_threshold)[0] == preset
                        )
            results.append(
                GestureResult(
                    preset,
                    sigma,
                    float(np.mean(errors)) if errors else 0.0,
                    counts["right"],
                    counts["left"],
                )
            )
    return results


SIDES = ("right", "left")


def format_results(results: list[GestureResult]) -> str:
    """A text table: preset, noise, then right / left accuracy with hysteresis and raw."""
    header = (
        f"{'gesture':<12} {'noise':>6} {'frames':>7} {'right':>7} {'left':>7} "
        f"{'right raw':>9} {'left raw':>9}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        frames = r.right["frames"] + r.left["frames"]
        lines.append(
            f"{r.preset:<12} {r.angle_error_deg:>5.1f}° {frames:>7} "
            f"{r.accuracy('right'):>7.1%} {r.accuracy('left'):>7.1%} "
            f"{r.accuracy('right', 'raw_correct'):>9.1%} {r.accuracy('left', 'raw_correct'):>9.1%}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--frames", type=int, default=45, help="frames per clip (15 fps)")
    parser.add_argument(
        "--noise",
        type=float,
        nargs="+",
        default=[0.0],
        help="per-component sigma of the bone direction noise (0.1 is about 7 degrees)",
    )
    parser.add_argument("--gestures", nargs="+", default=list(GESTURES), choices=GESTURES)
    args = parser.parse_args(argv)
    results = evaluate(args.gestures, args.seeds, args.frames, args.noise)
    print(format_results(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
