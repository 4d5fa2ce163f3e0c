"""Augmentation of `Sample`s, written once for training and for the int8 calibration set.

Everything geometric is one 2x3 affine M (source px -> output px, `handpose.geometry`) applied
by `warp_sample` to the image (`geometry.warp_image`) and to every label:
- keypoints p -> M p; a keypoint that leaves the output image gets visibility 0;
- boxes: the tight box of the mapped keypoints grown by the label's own margin (the margin of
  the original box around the original keypoints) where keypoints exist, else the box of the 4
  mapped box corners; clipped to the output; hands whose box vanishes are dropped;
- 3D joints and intrinsics: M = [s O | t] with O orthonormal (a rotation, or a rotation times a
  mirror when det M < 0). With Q = [[O, 0], [0, 1]] (3x3) and A = [[M], [0, 0, 1]]:
      X' = Q X,   K' = A K Q^T,
  so K' X' = A K X: the new joints project onto the new keypoints exactly, and K' stays a
  pinhole matrix (fx' = fy' = s f, zero skew) when fx = fy.
- a mirror (det M < 0) swaps handedness "left" <-> "right" ("hand" stays).

`augment_sample` draws M (rotation about the image centre, scale, shift, flip) and a colour
jitter from a config; `pose_crop` cuts the square crop the pose network sees, exactly as the
app's crop stage (`handpose.pipeline.crop`): q = square_crop_box(box, scale),
A = crop_affine(q, S, mirror = hand is left), plus in training a random scale, shift and
rotation about the box centre.

Defaults are the seed system's (docs SEED_SYSTEM.md): detector x-flip and rotation ±30°;
pose rotation ±90°, crop scale 1.0-1.5, shift ±0.15, 224x224.

Two detector augmentations make big hands small (real photographs are often close-ups, the Pi
camera sees hands at arm's length), both compositing with `composite`, which warps a sample by
its affine and blends it by the warp of an all-ones mask over another image:
- zoom-out: the sample shrunk by f ~ U(lo, hi) < 1 and moved to a random position
  (`zoom_out_affine`) over a hand-free background of the synthetic renderer
  (`hand_free_background`) instead of a black border;
- paste: the pixels around a labelled hand of another sample (`hand_patches`) pasted 1-2 times
  at a random size and position that overlaps no existing box (`paste_hands`); their labels
  are added.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from handpose import geometry
from handpose.hand import Hand
from models.data.sample import Sample

SWAP_HANDEDNESS = {"left": "right", "right": "left", "hand": "hand"}


@dataclass(frozen=True)
class ColorJitter:
    """Colour jitter amounts; each factor is drawn from U(1 - a, 1 + a) (hue: U(-a, a) degrees).

    Applied in this order on float RGB: brightness gain, contrast about the mean grey,
    saturation (blend with the per-pixel grey), hue rotation about the grey axis.
    """

    brightness: float = 0.25
    contrast: float = 0.25
    saturation: float = 0.25
    hue_deg: float = 10.0


@dataclass(frozen=True)
class AugmentConfig:
    """Random geometric + colour augmentation of a whole sample (the detector's defaults).

    Attributes:
        rotate_deg: rotation angle ~ U(-rotate_deg, rotate_deg) about the image centre.
        scale: zoom factor ~ U(scale[0], scale[1]) (> 1 enlarges the content).
        shift: translation ~ U(-shift, shift) x image side, per axis.
        flip: mirror horizontally with probability 0.5 (swaps "left" / "right").
        color: colour jitter, or None for none.
    """

    rotate_deg: float = 30.0
    scale: tuple[float, float] = (1.0, 1.0)
    shift: float = 0.0
    flip: bool = True
    color: ColorJitter | None = ColorJitter()


DETECTION_AUGMENT = AugmentConfig()


@dataclass(frozen=True)
class PoseCropConfig:
    """Random pose-crop parameters in training (the seed's pose defaults).

    Attributes:
        rotate_deg: rotation ~ U(-rotate_deg, rotate_deg) about the hand box centre.
        scale: crop side = max(box w, h) x base scale x U(scale[0], scale[1]).
        shift: crop centre moved by U(-shift, shift) x crop side, per axis.
        color: colour jitter of the crop, or None.
    """

    rotate_deg: float = 90.0
    scale: tuple[float, float] = (1.0, 1.5)
    shift: float = 0.15
    color: ColorJitter | None = ColorJitter()


POSE_AUGMENT = PoseCropConfig()


# ------------------------------------------------------------------------------ warping


def _orthonormal_part(M: np.ndarray) -> tuple[np.ndarray, float]:
    """(O, s) with M[:, :2] ~= s O, O orthonormal (polar decomposition via SVD)."""
    u, sv, vt = np.linalg.svd(M[:, :2])
    return u @ vt, float(np.sqrt(sv[0] * sv[1]))


def _warp_hand(
    hand: Hand, M: np.ndarray, Q: np.ndarray, width: int, height: int, min_inside: float = 0.0
) -> Hand | None:
    mirrored = np.linalg.det(M[:, :2]) < 0
    size = np.array([width, height, width, height], np.float32)
    keypoints = scores = joints = None
    if hand.keypoints is not None:
        kp = hand.keypoints.astype(np.float64)
        lo, hi = kp.min(axis=0), kp.max(axis=0)
        extent = np.maximum(hi - lo, 1e-3)
        margin = np.clip(((lo - hand.box[:2]) + (hand.box[2:] - hi)) / 2 / extent, 0, 1).mean()
        keypoints = geometry.apply_affine(kp, M).astype(np.float32)
        klo, khi = keypoints.min(axis=0), keypoints.max(axis=0)
        pad = (khi - klo) * margin
        box = np.concatenate([klo - pad, khi + pad])
        inside = (
            (keypoints[:, 0] >= 0)
            & (keypoints[:, 0] < width)
            & (keypoints[:, 1] >= 0)
            & (keypoints[:, 1] < height)
        )
        base = hand.keypoint_scores if hand.keypoint_scores is not None else np.ones(21)
        scores = (np.asarray(base) * inside).astype(np.float32)
    else:
        box = geometry.transform_boxes(hand.box[None], M)[0]
    if hand.joints_3d is not None:
        joints = (hand.joints_3d.astype(np.float64) @ Q.T).astype(np.float32)
    area = max(float((box[2] - box[0]) * (box[3] - box[1])), 1e-9)
    box = np.clip(box, 0, size).astype(np.float32)
    if box[2] - box[0] < 1e-3 or box[3] - box[1] < 1e-3:
        return None
    if (box[2] - box[0]) * (box[3] - box[1]) < min_inside * area:
        return None
    return hand.replace(
        handedness=SWAP_HANDEDNESS[hand.handedness] if mirrored else hand.handedness,
        box=box,
        keypoints=keypoints,
        keypoint_scores=scores,
        joints_3d=joints,
    )


def warp_sample(
    sample: Sample,
    M: np.ndarray,
    out_size: int | tuple[int, int],
    hands: list[Hand] | None = None,
    fill: int = 0,
    min_inside: float = 0.0,
) -> Sample:
    """The sample seen through affine M (source px -> output px): image and all labels.

    Args:
        sample: the source sample.
        M: (2, 3) affine; out_size: S (square) or (height, width) of the output.
        hands: the labels to carry (default all of `sample.hands`); hands that end up outside
            the output are dropped, and so are hands that keep less than `min_inside` of
            their (unclipped) box area inside it.
    Returns:
        a new Sample (see the module docstring for how labels, 3D joints and K are mapped);
        meta["affine"] is M (sample px -> output px).
    """
    M = geometry.as_affine(M)
    h, w = (out_size, out_size) if np.isscalar(out_size) else (int(v) for v in out_size)
    h, w = int(h), int(w)
    image = geometry.warp_image(sample.image, M, (h, w), fill=fill)
    O, _ = _orthonormal_part(M)
    Q = np.eye(3)
    Q[:2, :2] = O
    warped = [
        _warp_hand(hand, M, Q, w, h, min_inside)
        for hand in (sample.hands if hands is None else hands)
    ]
    K = None
    if sample.intrinsics is not None:
        A = np.vstack([M, [0.0, 0.0, 1.0]])
        K = (A @ sample.intrinsics.astype(np.float64) @ Q.T).astype(np.float32)
    meta = dict(sample.meta)
    meta["affine"] = M
    return replace(
        sample, image=image, hands=[x for x in warped if x is not None], intrinsics=K, meta=meta
    )


# ------------------------------------------------------------------------------- colour


def color_jitter(image: np.ndarray, jitter: ColorJitter, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast, saturation and hue of an RGB uint8 (H, W, 3) image.

    x' = b x; x' = (x - mean) c + mean; x' = g + s (x - g) with g the per-pixel grey
    (0.299 R + 0.587 G + 0.114 B); hue: rotation by theta about the (1, 1, 1) axis.
    """
    x = image.astype(np.float32)
    x *= rng.uniform(1 - jitter.brightness, 1 + jitter.brightness)
    mean = x.mean()
    x = (x - mean) * rng.uniform(1 - jitter.contrast, 1 + jitter.contrast) + mean
    grey = (x @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    x = grey + (x - grey) * rng.uniform(1 - jitter.saturation, 1 + jitter.saturation)
    theta = np.deg2rad(rng.uniform(-jitter.hue_deg, jitter.hue_deg))
    if theta != 0.0:
        c, s = np.cos(theta), np.sin(theta)
        k = 1.0 / 3.0
        sq = np.sqrt(k)
        # Rodrigues rotation about the unit grey axis (1, 1, 1) / sqrt(3)
        R = np.array(
            [
                [c + k * (1 - c), k * (1 - c) - sq * s, k * (1 - c) + sq * s],
                [k * (1 - c) + sq * s, c + k * (1 - c), k * (1 - c) - sq * s],
                [k * (1 - c) - sq * s, k * (1 - c) + sq * s, c + k * (1 - c)],
            ],
            np.float32,
        )
        x = x @ R.T
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------- augmentation


def random_affine(
    width: int, height: int, config: AugmentConfig, rng: np.random.Generator
) -> np.ndarray:
    """A random (2, 3) affine of a width x height image onto itself (see `AugmentConfig`).

    M = [flip about the vertical centre line] after rotation_affine(centre, angle, zoom, shift).
    """
    centre = (width / 2.0, height / 2.0)
    angle = rng.uniform(-config.rotate_deg, config.rotate_deg)
    zoom = rng.uniform(*config.scale)
    shift = rng.uniform(-config.shift, config.shift, 2) * np.array([width, height])
    M = geometry.rotation_affine(centre, angle, zoom, shift)
    if config.flip and rng.uniform() < 0.5:
        M = geometry.compose_affine(M, geometry.mirror_affine(width))
    return M


def augment_sample(
    sample: Sample,
    config: AugmentConfig = DETECTION_AUGMENT,
    rng: np.random.Generator | None = None,
) -> Sample:
    """`sample` under a random affine and colour jitter (same image size; labels follow).

    rng None means no augmentation (the sample is returned unchanged), so calibration and
    validation code can call this with the same signature.
    """
    if rng is None:
        return sample
    M = random_affine(sample.width, sample.height, config, rng)
    out = warp_sample(sample, M, (sample.height, sample.width))
    if config.color is not None:
        out.image = color_jitter(out.image, config.color, rng)
    return out


def pose_crop(
    sample: Sample,
    hand: int | Hand,
    out_size: int = 224,
    scale: float = 1.0,
    mirror_left: bool = True,
    rng: np.random.Generator | None = None,
    config: PoseCropConfig = POSE_AUGMENT,
) -> Sample:
    """The out_size x out_size crop the pose network sees for one hand of a sample.

    Without rng: exactly the app's crop (`handpose.pipeline.crop.crop_hands`, pixels from
    `geometry.resize_box`, the warp's up to rounding):
        q = square_crop_box(hand.box, scale), M = crop_affine(q, out_size, mirror),
    mirror = mirror_left and the hand is "left", so the network only sees right hands (the
    cropped label then says "right"). With rng (training): the side is further multiplied by
    U(config.scale), the centre moved by U(+-config.shift) x side, the frame rotated by
    U(+-config.rotate_deg) about the box centre before cropping, and the colours jittered.

    Args:
        sample: the full image with its labels; hand: index into sample.hands, or a Hand.
    Returns:
        Sample (out_size, out_size, 3) holding only that hand; meta["affine"] (2, 3) maps
        sample px -> crop px, meta["mirrored"] says whether the crop was mirrored.
    """
    target = sample.hands[hand] if isinstance(hand, (int, np.integer)) else hand
    mirror = bool(mirror_left and target.handedness == "left")
    box = np.asarray(target.box, np.float64)
    centre = (box[:2] + box[2:]) / 2.0
    rotate = geometry.identity_affine()
    side_scale = float(scale)
    if rng is not None:
        side_scale *= rng.uniform(*config.scale)
        rotate = geometry.rotation_affine(
            centre, rng.uniform(-config.rotate_deg, config.rotate_deg)
        )
    square = geometry.square_crop_box(box, side_scale)
    if rng is not None:
        square = square + np.tile(rng.uniform(-config.shift, config.shift, 2), 2) * (
            square[2] - square[0]
        )
    M = geometry.compose_affine(rotate, geometry.crop_affine(square, out_size, mirror))
    out = warp_sample(sample, M, out_size, hands=[target])
    if rng is None:  # the app cuts its crops with one Pillow resize: the same pixels here
        out.image = geometry.resize_box(sample.image, square, out_size, mirror)
    out.meta["mirrored"] = mirror
    if rng is not None and config.color is not None:
        out.image = color_jitter(out.image, config.color, rng)
    return out


# -------------------------------------------------------------------- zoom-out and paste


def composite(
    base: np.ndarray,
    sample: Sample,
    M: np.ndarray,
    hands: list[Hand] | None = None,
    min_inside: float = 0.0,
) -> Sample:
    """`sample` warped by M (sample px -> base px) and laid over the image `base`.

    out = a * warp(sample.image) + (1 - a) * base, with a = warp of an all-ones mask of the
    sample's size (1 where the sample covers the output). Labels are those of
    `warp_sample(sample, M, base size, hands, min_inside)` (the hands of `base` are not known
    here: the caller keeps them).

    Args:
        base: uint8 (H, W, 3), the image the sample is laid over (the output size).
    Returns: a new Sample (H, W, 3); meta["affine"] is M.
    """
    h, w = base.shape[:2]
    warped = warp_sample(sample, M, (h, w), hands=hands, min_inside=min_inside)
    ones = np.full(sample.image.shape[:2], 255, np.uint8)
    alpha = geometry.warp_image(ones, M, (h, w)).astype(np.float32)[..., None] / 255.0
    image = alpha * warped.image.astype(np.float32) + (1.0 - alpha) * base.astype(np.float32)
    warped.image = np.clip(image + 0.5, 0, 255).astype(np.uint8)
    return warped


def hand_free_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A uint8 (H, W, 3) background without hands: the synthetic renderer's
    (`models.data.synthetic.backgrounds.background`: photographs or procedural textures, with
    distractors)."""
    from models.data.synthetic.backgrounds import background

    return np.clip(background(rng, height, width) + 0.5, 0, 255).astype(np.uint8)


def zoom_out_affine(width: int, height: int, factor: float, rng: np.random.Generator) -> np.ndarray:
    """Shrink a width x height image by `factor` (< 1) to a random place inside itself:
    p -> factor p + t, t ~ U(0, (1 - factor) (W, H)) per axis. (2, 3)."""
    t = rng.uniform(0.0, 1.0, 2) * (1.0 - factor) * np.array([width, height], np.float64)
    return np.array([[factor, 0.0, t[0]], [0.0, factor, t[1]]], np.float64)


@dataclass(frozen=True)
class HandPatch:
    """The pixels around one labelled hand, to paste into other images.

    Attributes:
        image: uint8 (h, w, 3), the hand's box grown by `grow` (side x (1 + grow), about its
            centre), clipped to the image.
        hand: its label in patch pixels (box clipped to the patch, no 3D joints).
        origin: identifies the sample it came from (a sample never receives its own hands).
    """

    image: np.ndarray
    hand: Hand
    origin: Any = None


def hand_patches(
    sample: Sample, origin: Any = None, grow: float = 0.1, min_side: float = 4.0
) -> list[HandPatch]:
    """A `HandPatch` per labelled hand of `sample` whose box is at least `min_side` px a side."""
    patches = []
    for hand in sample.hands:
        box = np.asarray(hand.box, np.float64)
        centre, half = (box[:2] + box[2:]) / 2, (box[2:] - box[:2]) / 2 * (1.0 + grow)
        x0, y0 = np.maximum(np.floor(centre - half), 0).astype(int)
        x1 = int(min(np.ceil(centre[0] + half[0]), sample.width))
        y1 = int(min(np.ceil(centre[1] + half[1]), sample.height))
        if min(x1 - x0, y1 - y0) < min_side or min(box[2:] - box[:2]) < min_side:
            continue
        shift = np.array([x0, y0], np.float32)
        local = np.clip(box - np.tile(shift, 2), 0, [x1 - x0, y1 - y0, x1 - x0, y1 - y0])
        keypoints = None if hand.keypoints is None else hand.keypoints - shift
        patches.append(
            HandPatch(
                image=np.ascontiguousarray(sample.image[y0:y1, x0:x1]),
                hand=hand.replace(box=local, keypoints=keypoints, joints_3d=None),
                origin=origin,
            )
        )
    return patches


def paste_hands(
    sample: Sample,
    patches: Sequence[HandPatch],
    scale: tuple[float, float],
    rng: np.random.Generator,
    count: int | None = None,
    tries: int = 20,
) -> Sample:
    """`sample` with `count` (default 1 or 2) patches pasted over it, their hands added.

    Each patch is scaled so its longer side is U(scale) x min(H, W) and put at a uniform random
    position inside the image whose rectangle has no overlap (IoU 0) with any box already
    there (pasted ones included); after `tries` positions that all overlap the paste is
    skipped. Pixels and labels follow the same affine p -> s p + t (`composite`).
    """
    if not patches:
        return sample
    h, w = sample.height, sample.width
    count = int(rng.integers(1, 3)) if count is None else int(count)
    out = replace(sample, hands=list(sample.hands), meta=dict(sample.meta))
    for _ in range(count):
        patch = patches[int(rng.integers(len(patches)))]
        ph, pw = patch.image.shape[:2]
        s = rng.uniform(*scale) * min(h, w) / max(ph, pw)
        nw, nh = s * pw, s * ph
        if nw >= w or nh >= h:
            continue
        corners = rng.uniform(0.0, 1.0, (tries, 2)) * np.array([w - nw, h - nh])
        rects = np.concatenate([corners, corners + [nw, nh]], axis=1)  # (tries, 4)
        boxes = np.asarray([hand.box for hand in out.hands], np.float64).reshape(-1, 4)
        overlap_w = np.minimum(rects[:, None, 2], boxes[None, :, 2]) - np.maximum(
            rects[:, None, 0], boxes[None, :, 0]
        )
        overlap_h = np.minimum(rects[:, None, 3], boxes[None, :, 3]) - np.maximum(
            rects[:, None, 1], boxes[None, :, 1]
        )
        free = ~np.any((overlap_w > 0) & (overlap_h > 0), axis=1)
        if not free.any():
            continue
        x0, y0 = corners[int(np.argmax(free))]
        M = np.array([[s, 0.0, x0], [0.0, s, y0]], np.float64)
        pasted = composite(out.image, Sample(image=patch.image, hands=[patch.hand]), M)
        out.image = pasted.image
        lo, hi = np.array([x0, y0]), np.array([x0 + nw, y0 + nh])
        out.hands.extend(  # keypoint-grown boxes stay inside the pasted rectangle
            hand.replace(box=np.clip(hand.box, np.tile(lo, 2), np.tile(hi, 2)))
            for hand in pasted.hands
        )
    return out
