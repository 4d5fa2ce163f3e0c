"""Network inputs built from a dataset spec with the training pre-processing, augmentation off.

The int8 calibration set and `handpose convert verify` both use these, so the activation ranges
are measured on exactly what the network saw when it was validated during training
(`models.training.pipeline`, the functions the training loop calls, with `augment=None`):

- detector: `detector_example(sample, S, classes, None, None)`: the centre square of side
  min(H, W) of the scene image resized to S x S (what the app feeds the detector), boxes mapped
  with the same affine.
- pose: `pose_example(sample, hand, S, None, None)` for every labelled hand with keypoints: the
  square of side 1.25 x max(box w, h) around the hand resized to S x S, left hands mirrored.

Samples are taken in order from the spec's split: `convert keras` calibrates on the "train"
split (calibration only measures ranges, training images are what the network is made for),
`convert verify` scores the held-out "val" split; the training seed picks the same splits the
training used.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from handpose.errors import HandposeError


@dataclass
class DetectorInput:
    """One detector input: uint8 (S, S, 3) image, boxes (M, 4) in its pixels, labels (M,)
    int in 1..C (0 = background), and the class names the labels index (1-based)."""

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray


@dataclass
class PoseInput:
    """One pose input: uint8 (S, S, 3) crop, keypoints (21, 2) in crop pixels, visibility
    (21,), bone directions (20, 3), has_3d, and the hand box (4,) in crop pixels."""

    image: np.ndarray
    keypoints: np.ndarray
    visible: np.ndarray
    directions: np.ndarray
    has_3d: bool
    box: np.ndarray


def open_split(spec: str, split: str, seed: int, task: str) -> Sequence[Any]:
    """`models.data.spec.open_dataset(spec, split, seed, task)`; task "detector" | "pose"."""
    from models.data.spec import open_dataset

    data_task = "detection" if task == "detector" else "pose"
    dataset = open_dataset(spec, split=split, seed=seed, task=data_task)
    if len(dataset) == 0:
        raise HandposeError(f"data spec {spec!r} ({split} split) holds no samples")
    return dataset


def detector_inputs(
    spec: str,
    size: int,
    classes: Sequence[str],
    count: int,
    split: str = "val",
    seed: int = 0,
) -> Iterator[DetectorInput]:
    """Up to `count` detector inputs of side `size` from `spec` (see module docstring)."""
    from models.training.pipeline import detector_example

    dataset = open_split(spec, split, seed, "detector")
    for i in range(min(count, len(dataset))):
        ex = detector_example(dataset[i], size, tuple(classes), None, None)
        yield DetectorInput(
            np.asarray(ex.image, np.uint8),
            np.asarray(ex.boxes, np.float32).reshape(-1, 4),
            np.asarray(ex.labels, np.int64).reshape(-1),
        )


def pose_inputs(
    spec: str, size: int, count: int, split: str = "val", seed: int = 0
) -> Iterator[PoseInput]:
    """Up to `count` pose crops of side `size`, one per labelled hand, from `spec`."""
    from models.training.pipeline import pose_example

    dataset = open_split(spec, split, seed, "pose")
    made = 0
    for i in range(len(dataset)):
        sample = dataset[i]
        for hand in sample.hands:
            if hand.keypoints is None:
                continue
            ex = pose_example(sample, hand, size, None, None)
            yield PoseInput(
                np.asarray(ex.image, np.uint8),
                np.asarray(ex.keypoints, np.float32),
                np.asarray(ex.visible, np.float32),
                np.asarray(ex.directions, np.float32),
                bool(ex.has_3d),
                np.asarray(ex.box, np.float32),
            )
            made += 1
            if made >= count:
                return


def representative_images(
    spec: str,
    task: str,
    size: int,
    count: int,
    classes: Sequence[str] = ("left", "right"),
    split: str = "val",
    seed: int = 0,
) -> list[np.ndarray]:
    """uint8 (S, S, 3) calibration images for `task` ("detector" | "pose") from `spec`."""
    if task == "detector":
        images = [x.image for x in detector_inputs(spec, size, classes, count, split, seed)]
    else:
        images = [x.image for x in pose_inputs(spec, size, count, split, seed)]
    if not images:
        raise HandposeError(
            f"--calibration {spec!r} gave no {task} images (no labelled hands in the {split} "
            "split); pass a dataset with hands"
        )
    return images
