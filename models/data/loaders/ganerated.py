"""Spec source `ganerated:PATH`: GANerated Hands (Mueller et al., CVPR 2018).

PATH is `GANeratedHands_Release`, holding the published layout:

    data/noObject/0001/0001_color_composed.png   256x256 crop of a 640x480 render
    data/noObject/0001/0001_joint_pos_global.txt 63 comma-separated values: 21 joints (x, y, z)
                                                 mm in the camera frame
    data/noObject/0001/0001_joint2D.txt          42 values: 21 (u, v) in crop pixels
    data/noObject/0001/0001_crop_params.txt      "u0, v0, scale": crop px = scale (px - (u0, v0))
    data/noObject/0001/0001_joint_pos.txt        root-relative joints (unused)
    data/withObject/...                          the same with objects

Joint order: W, T0..T3, I0..I3, M0..M3, R0..R3, L0..L3 (each finger base to tip), which is the
standard order. Intrinsics of the full render (readme): fx = fy = 617.173, cx 315.453,
cy 242.259; the crop's K scales and shifts it: fx' = s fx, cx' = s (cx - u0). Keypoints are
the projection of the global joints by K' (joint2D.txt when joint_pos_global.txt is absent).
All hands are left hands (as the seed system labels them). Splits (no official one): val =
test = partitions 0001-0003 of both folders (the seed's held-out set), train = the rest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from handpose.errors import HandposeError
from models.data.handpose_format import load_rgb
from models.data.loaders.common import (
    IndexedDataset,
    intrinsics,
    make_hand,
    project,
    require_dir,
)
from models.data.sample import Sample

K_FULL = intrinsics(617.173, 617.173, 315.453, 242.259)
HELD_OUT = ("0001", "0002", "0003")


def _txt(path: Path, n: int) -> np.ndarray:
    try:
        values = np.loadtxt(path, delimiter=",", ndmin=1).reshape(-1)
    except (OSError, ValueError) as error:
        raise HandposeError(f"cannot read {path}: {error}") from None
    if values.size < n:
        raise HandposeError(f"{path}: expected {n} comma-separated numbers, got {values.size}")
    return values[:n]


def load(root: Path, *, split: str) -> IndexedDataset:
    """GANerated samples of `split` (see the module docstring)."""
    data = require_dir(
        root / "data",
        "GANerated data folder",
        "point ganerated: at GANeratedHands_Release (holding data/)",
    )
    images = []
    for obj in ("noObject", "withObject"):
        for part in sorted(p for p in (data / obj).glob("*") if p.is_dir()):
            held = part.name in HELD_OUT
            if split == "all" or (split == "train") != held:
                images += sorted(part.glob("*_color_composed.png"))
    if not images:
        raise HandposeError(f"ganerated: no *_color_composed.png for split {split} under {data}")

    def get(i: int) -> Sample:
        path = images[i]
        stem = str(path)[: -len("color_composed.png")]
        image = load_rgb(path)
        h, w = image.shape[:2]
        u0, v0, s = _txt(Path(stem + "crop_params.txt"), 3)
        K = np.array(
            [
                [s * K_FULL[0, 0], 0, s * (K_FULL[0, 2] - u0)],
                [0, s * K_FULL[1, 1], s * (K_FULL[1, 2] - v0)],
                [0, 0, 1],
            ],
            np.float32,
        )
        global_path = Path(stem + "joint_pos_global.txt")
        if global_path.is_file():
            joints = _txt(global_path, 63).reshape(21, 3).astype(np.float32)
            uv = project(joints, K)
        else:
            joints = None
            uv = _txt(Path(stem + "joint2D.txt"), 42).reshape(21, 2)
        hand = make_hand("left", uv, w, h, xyz=joints)
        name = str(path.relative_to(data))
        return Sample(
            image, [hand] if hand else [], K if joints is not None else None, "ganerated", name
        )

    return IndexedDataset(f"ganerated:{root} ({split})", len(images), get)
