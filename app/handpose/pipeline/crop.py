"""Crop stage: square pose crops around detected hands.

For a hand box b the crop square q = square_crop_box(b, scale) is centred on b with side
max(b width, b height) x scale (not clipped: outside the frame the crop is black, so the hand is
never squashed). The crop affine A = crop_affine(q, S, mirror) maps frame px -> crop px; for a
left hand it includes a horizontal mirror, so the pose network only sees right hands, and A^-1
maps the crop's keypoints back to frame pixels (un-mirroring them). The crop is cut with one
Pillow resize of q (`geometry.resize_box`, the pixels of `warp_image(frame, A, S)` up to
rounding when enlarging), into buffers reused from frame to frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from handpose import geometry
from handpose.hand import Hand


@dataclass
class Crop:
    """One pose crop.

    Attributes:
        image: RGB uint8 (S, S, 3) crop (S = pose input size).
        affine: float64 (2, 3) frame px -> crop px (includes the mirror when `mirrored`).
        mirrored: True when the crop is mirrored (a left hand).
        hand: the detection it was cut around (frame pixels).
    """

    image: np.ndarray
    affine: np.ndarray
    mirrored: bool
    hand: Hand


def select_hands(hands: list[Hand], max_hands: int) -> list[Hand]:
    """The `max_hands` best-scoring hands."""
    return sorted(hands, key=lambda h: -h.score)[: max(0, int(max_hands))]


def crop_hands(
    frame: np.ndarray,
    hands: list[Hand],
    scale: float = 1.2,
    out_size: int = 224,
    max_hands: int = 2,
    buffers: list[np.ndarray] | None = None,
    mirror_left: bool = True,
) -> list[Crop]:
    """Square crops of the best `max_hands` hands, left hands mirrored (unless `mirror_left` is
    False: pose networks that see every hand as it is and tell its side themselves).

    Args:
        frame: RGB uint8 (H, W, 3).
        hands: detections in frame pixels; handedness as the image shows it.
        scale: crop side / max(box side).
        out_size: crop side S in pixels (the pose input size).
        buffers: optional uint8 (S, S, 3) arrays written in place (one per crop).
    """
    crops = []
    for i, hand in enumerate(select_hands(hands, max_hands)):
        square = geometry.square_crop_box(hand.box, scale)
        mirrored = mirror_left and hand.handedness == "left"
        affine = geometry.crop_affine(square, out_size, mirrored)
        out = buffers[i] if buffers is not None and i < len(buffers) else None
        image = geometry.resize_box(frame, square, out_size, mirrored, out=out)
        crops.append(Crop(image=image, affine=affine, mirrored=mirrored, hand=hand))
    return crops


class HandCropper:
    """`crop_hands` with a ring of reusable crop buffers (no allocation per frame).

    The crops of a frame stay valid while `depth - 1` later frames are cropped, enough for the
    actfw queues between Crop and Pose (one queued frame, one in work).
    """

    def __init__(
        self,
        scale: float,
        out_size: int = 224,
        max_hands: int = 2,
        depth: int = 4,
        mirror_left: bool = True,
    ) -> None:
        self.scale = float(scale)
        self.mirror_left = bool(mirror_left)
        self.out_size = int(out_size)
        self.max_hands = int(max_hands)
        self._ring = [
            [np.zeros((out_size, out_size, 3), np.uint8) for _ in range(max_hands)]
            for _ in range(depth)
        ]
        self._next = 0

    def __call__(self, frame: np.ndarray, hands: list[Hand]) -> list[Crop]:
        buffers = self._ring[self._next]
        self._next = (self._next + 1) % len(self._ring)
        return crop_hands(
            frame, hands, self.scale, self.out_size, self.max_hands, buffers, self.mirror_left
        )
