"""Numpy training examples: a `Sample` made into one network input and its labels.

No warping or augmentation is written here: everything geometric is `models.data.augment`
(one affine for image and labels, `handpose.geometry`), so training, validation, calibration
and the app see the same pixels.

- detector: the sample under `augment.random_affine` (rotation about the image centre, zoom,
  shift, mirror; a mirror swaps left <-> right), then the centre square of side min(H, W)
  resized to S x S, as the app's camera path does. Hands keeping less than `MIN_INSIDE` of
  their box area inside the input are dropped. Optionally (augment zoom_out_prob, paste_prob)
  the result is shrunk onto a hand-free background and hands of other samples are pasted in
  (`augment.composite`, `augment.paste_hands`). Labels: 1..C the index in `classes` + 1; with
  C >= 2 classes a hand labelled "hand" (side unknown: real photographs) gets C + 1, which the
  loss counts as "any hand" (`models.losses.multibox_loss`).
- pose: `augment.pose_crop`: exactly the app's crop of the hand's label box (scale
  `APP_CROP_SCALE`, left hands mirrored) and, in training, a random scale U(augment.crop_scale)
  of the box side, shift and rotation about the box centre. 3D joints follow the crop's
  rotation and mirror (`augment.warp_sample`), so bone directions are those the crop shows.
Validation examples use the same functions with augmentation off.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from handpose import geometry
from handpose.codec.skeleton3d import bone_directions
from handpose.hand import Hand
from handpose.skeleton import NUM_BONES
from models.data import augment as aug
from models.data.sample import Sample

#: the app's default crop scale (handpose.settings.AppSettings.crop_scale)
APP_CROP_SCALE = 1.2
#: a hand keeping less than this fraction of its box area inside the input is dropped
MIN_INSIDE = 0.4


def color_config(amount: float) -> aug.ColorJitter | None:
    """The training configs' one colour amount a -> brightness, contrast, saturation U(1 +- a),
    hue U(+-40 a) degrees; a <= 0 means no jitter."""
    amount = float(amount)
    if amount <= 0:
        return None
    return aug.ColorJitter(amount, amount, amount, 40.0 * amount)


@dataclass
class DetectorExample:
    """image uint8 (S, S, 3); boxes float32 (M, 4) [x0, y0, x1, y1]; labels int (M,) 1..C, or
    C + 1 for a hand of unknown side (C >= 2)."""

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray


#: hard negatives: window side as a share of the photo's shorter side, margin kept from boxes
NEGATIVE_SIDE = (0.2, 0.6)
NEGATIVE_MARGIN = 0.15


def hand_free_window(sample: Sample, rng: np.random.Generator, tries: int = 8) -> np.ndarray | None:
    """A random square of the photo that overlaps no hand box (each grown by NEGATIVE_MARGIN of
    its size), or None when `tries` draws find none. Only for samples with labelled hands: an
    unlabelled photo could hide a hand in the window."""
    if not sample.hands:
        return None
    w, h = sample.width, sample.height
    boxes = np.stack([np.asarray(hd.box, np.float64) for hd in sample.hands])
    grow = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) * NEGATIVE_MARGIN
    boxes = boxes + np.stack([-grow, -grow, grow, grow], axis=1)
    for _ in range(tries):
        side = rng.uniform(*NEGATIVE_SIDE) * min(w, h)
        x0, y0 = rng.uniform(0, w - side), rng.uniform(0, h - side)
        x1, y1 = x0 + side, y0 + side
        overlap = (np.minimum(boxes[:, 2], x1) > np.maximum(boxes[:, 0], x0)) & (
            np.minimum(boxes[:, 3], y1) > np.maximum(boxes[:, 1], y0)
        )
        if not overlap.any():
            return np.array([x0, y0, x1, y1], np.float64)
    return None


def detector_example(
    sample: Sample,
    size: int,
    classes: tuple[str, ...],
    augment: dict[str, Any] | None,
    rng: np.random.Generator | None,
    patches: Sequence[aug.HandPatch] = (),
) -> DetectorExample:
    """One detector input from a sample (augment None: the centre square, unchanged).

    `patches`: hands of other samples that augment["paste_prob"] may paste in.
    """
    w, h = sample.width, sample.height
    M = geometry.crop_affine(geometry.center_square(w, h), size, False)
    jitter = None
    zoom = paste = False
    negative_prob = float(augment.get("negative_prob", 0.0)) if augment is not None else 0.0
    window = (
        hand_free_window(sample, rng)
        if negative_prob > 0 and rng is not None and rng.uniform() < negative_prob
        else None
    )
    if window is not None and augment is not None and rng is not None:
        # a hard negative: a hand-free part of the photo (faces, arms, skin-coloured things)
        M = geometry.crop_affine(window, size, bool(augment["flip"]) and rng.uniform() < 0.5)
        jitter = color_config(augment["color"])
    elif augment is not None and rng is not None:
        config = aug.AugmentConfig(
            rotate_deg=float(augment["rotate_deg"]),
            scale=(float(augment["scale"][0]), float(augment["scale"][1])),
            shift=float(augment["shift"]),
            flip=bool(augment["flip"]),
        )
        M = geometry.compose_affine(aug.random_affine(w, h, config, rng), M)
        jitter = color_config(augment["color"])
        # no draw when a probability is 0, so configs without these keep their random stream
        zoom_prob = float(augment.get("zoom_out_prob", 0.0))
        zoom = zoom_prob > 0 and rng.uniform() < zoom_prob
        paste_prob = float(augment.get("paste_prob", 0.0))
        paste = paste_prob > 0 and len(patches) > 0 and rng.uniform() < paste_prob
    if zoom and rng is not None and augment is not None:
        lo, hi = augment["zoom_out"]
        factor = rng.uniform(float(lo), float(hi))
        M = geometry.compose_affine(M, aug.zoom_out_affine(size, size, factor, rng))
        base = aug.hand_free_background(rng, size, size)
        warped = aug.composite(base, sample, M, min_inside=MIN_INSIDE)
    else:
        warped = aug.warp_sample(sample, M, size, min_inside=MIN_INSIDE)
    if paste and rng is not None and augment is not None:
        scale = (float(augment["paste_scale"][0]), float(augment["paste_scale"][1]))
        warped = aug.paste_hands(warped, patches, scale, rng)
    image = warped.image
    if jitter is not None and rng is not None:
        image = aug.color_jitter(image, jitter, rng)
    boxes, labels = [], []
    for hand in warped.hands:
        if len(classes) == 1:
            label = 1
        elif hand.handedness in classes:
            label = classes.index(hand.handedness) + 1
        elif hand.handedness == "hand":  # side unknown: "one of the classes"
            label = len(classes) + 1
        else:
            continue
        if min(hand.box[2] - hand.box[0], hand.box[3] - hand.box[1]) < 2:
            continue
        boxes.append(hand.box)
        labels.append(label)
    return DetectorExample(
        image=image,
        boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
        labels=np.asarray(labels, np.int64),
    )


@dataclass
class PoseExample:
    """image uint8 (S, S, 3); keypoints float32 (21, 2) crop pixels; visible float32 (21,) 1 for
    labelled-visible keypoints inside the crop; inside float32 (21,) 1 for every keypoint inside
    the crop (occluded ones included, for sources whose occluded positions are exact);
    directions float32 (20, 3) unit bone vectors (zeros when unknown); has_3d bool; box (4,)
    the hand's label box in crop pixels; side 1.0 for a right hand as the crop shows it, 0.0
    for a left one, -1.0 when the label has no side."""

    image: np.ndarray
    keypoints: np.ndarray
    visible: np.ndarray
    inside: np.ndarray
    directions: np.ndarray
    has_3d: bool
    box: np.ndarray
    side: float = -1.0


def pose_example(
    sample: Sample,
    hand: Hand,
    size: int,
    augment: dict[str, Any] | None,
    rng: np.random.Generator | None,
    crop_scale: float = APP_CROP_SCALE,
    mirror_left: bool = True,
) -> PoseExample:
    """One pose crop for `hand` (which must have keypoints); left hands are mirrored unless
    `mirror_left` is False (the crop then shows the hand as it is)."""
    if hand.keypoints is None:
        raise ValueError("pose_example needs a hand with keypoints")
    config = aug.PoseCropConfig(color=None)
    if augment is not None and rng is not None:
        config = aug.PoseCropConfig(
            rotate_deg=float(augment["rotate_deg"]),
            scale=(float(augment["crop_scale"][0]), float(augment["crop_scale"][1])),
            shift=float(augment["shift"]),
            color=color_config(augment["color"]),
        )
    crop = aug.pose_crop(
        sample, hand, size, crop_scale, rng=rng, config=config, mirror_left=mirror_left
    )
    seen = hand.handedness
    if crop.meta.get("mirrored"):
        seen = {"left": "right", "right": "left"}.get(seen, seen)
    side = {"right": 1.0, "left": 0.0}.get(seen, -1.0)
    if crop.hands:
        (cropped,) = crop.hands
        keypoints = np.asarray(cropped.keypoints, np.float32)
        visible = np.asarray(cropped.keypoint_scores, np.float32)
        joints = cropped.joints_3d
        box = np.asarray(cropped.box, np.float32)
    else:  # the random crop missed the hand's box entirely: keypoints all outside
        M = crop.meta["affine"]
        keypoints = geometry.apply_affine(hand.keypoints.astype(np.float64), M).astype(np.float32)
        visible = np.zeros(len(keypoints), np.float32)
        joints = None
        box = np.zeros(4, np.float32)
    inside = np.all((keypoints >= 0) & (keypoints < size), axis=1).astype(np.float32)
    visible = ((visible > 0) & (inside > 0)).astype(np.float32)
    has_3d = hand.joints_3d is not None and joints is not None
    directions = (
        bone_directions(np.asarray(joints, np.float64)).astype(np.float32)
        if has_3d
        else np.zeros((NUM_BONES, 3), np.float32)
    )
    return PoseExample(
        image=crop.image,
        keypoints=keypoints,
        visible=visible,
        inside=inside,
        directions=directions,
        has_3d=has_3d,
        box=box,
        side=side,
    )
