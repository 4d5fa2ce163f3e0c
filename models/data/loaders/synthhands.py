"""Spec source `synthhands:PATH`: SynthHands (Mueller et al., ICCV 2017).

PATH is `SynthHands_Release`, holding the published layout:

    female_noobject/seq01/cam01/01/00000000_color.png           640x480 colour camera
    female_noobject/seq01/cam01/01/00000000_color_on_depth.png  colour registered to depth
    female_noobject/seq01/cam01/01/00000000_joint_pos.txt       63 comma-separated values:
                                                                21 joints mm, depth camera frame
    (male_noobject, female_object, male_object; seq01..; cam01..; 01..)

Joint order W, T0..T3, I0..I3, M0..M3, R0..R3, L0..L3 = the standard order. Cameras (readme):
colour fx = fy = 617.173, cx 315.453, cy 242.259; depth fx = fy = 475.62, cx 311.125,
cy 245.965; depth -> colour translation [24.7, -0.0471401, 3.72045] mm (no rotation). By
default the colour image with X_c = X_d + t; option `color_on_depth=true` uses
*_color_on_depth.png with the depth intrinsics. All hands are left hands (as the seed system
labels them). Splits (no official one): held-out tails (`common.holdout_indices`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from handpose.errors import HandposeError
from models.data.handpose_format import load_rgb
from models.data.loaders.common import (
    IndexedDataset,
    Subset,
    intrinsics,
    make_hand,
    project,
)
from models.data.loaders.ganerated import _txt
from models.data.sample import Sample

K_COLOR = intrinsics(617.173, 617.173, 315.453, 242.259)
K_DEPTH = intrinsics(475.62, 475.62, 311.125, 245.965)
DEPTH_TO_COLOR = np.array([24.7, -0.0471401, 3.72045], np.float32)


def load(root: Path, *, split: str, color_on_depth: bool = False) -> IndexedDataset:
    """SynthHands samples of `split` (see the module docstring)."""
    from models.data.loaders.common import holdout_indices

    labels = sorted(root.glob("*_*object/seq*/cam*/*/*_joint_pos.txt"))
    if not labels:
        raise HandposeError(
            f"synthhands: no */seq*/cam*/*/*_joint_pos.txt under {root}; point synthhands: at "
            "SynthHands_Release (holding female_noobject/ ...)"
        )
    suffix = "color_on_depth.png" if color_on_depth else "color.png"
    K = K_DEPTH if color_on_depth else K_COLOR

    def get(i: int) -> Sample:
        label = labels[i]
        image = load_rgb(str(label)[: -len("joint_pos.txt")] + suffix)
        joints = _txt(label, 63).reshape(21, 3).astype(np.float32)
        if not color_on_depth:
            joints = joints + DEPTH_TO_COLOR
        hand = make_hand("left", project(joints, K), image.shape[1], image.shape[0], xyz=joints)
        return Sample(
            image,
            [hand] if hand else [],
            K,
            "synthhands",
            str(label.relative_to(root))[: -len("_joint_pos.txt")],
        )

    ds = IndexedDataset(f"synthhands:{root}", len(labels), get)
    return Subset(ds, holdout_indices(len(ds), split), f"synthhands:{root} ({split})")
