"""Spec source `rhd:PATH`: the Rendered Hand Pose Dataset (Zimmermann & Brox, ICCV 2017).

PATH is `RHD_published_v2`, holding the published layout:

    training/anno_training.pickle     {sample_id: {"uv_vis": (42, 3), "xyz": (42, 3), "K": (3, 3)}}
    training/color/%05d.png           320x320 RGB
    training/mask/%05d.png            0 background, 1 person, 2-17 left hand, 18-33 right hand
    evaluation/...                    the same with anno_evaluation.pickle

Keypoints 0-20 are the left hand, 21-41 the right hand, each in the order wrist, then per
finger (thumb, index, middle, ring, little) tip, dip, pip, mcp; converted with
`common.TIP_FIRST_TO_STANDARD`. uv_vis[:, 2] is the visibility flag; xyz is the camera frame in
metres (converted to mm; `common.to_millimetres` checks the unit). A hand is labelled when its
mask has pixels (or, without masks, a keypoint is visible); its box is the tight box of its mask
pixels and visible keypoints. Splits: train = training, val = test = evaluation (the official
split). Not confirmed here: whether uv uses the pixel-centre-at-.5 convention (used as is).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from handpose.errors import HandposeError
from models.data.handpose_format import load_rgb
from models.data.loaders.common import (
    TIP_FIRST_TO_STANDARD,
    IndexedDataset,
    make_hand,
    reorder,
    require_file,
    to_millimetres,
)
from models.data.sample import Sample

FOLDERS = {
    "train": ("training",),
    "val": ("evaluation",),
    "test": ("evaluation",),
    "all": ("training", "evaluation"),
}
#: mask values of each hand: left 2..17, right 18..33
MASK_RANGES = {"left": (2, 17), "right": (18, 33)}


def _read_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="latin1")
    except (OSError, pickle.UnpicklingError, EOFError) as error:
        raise HandposeError(f"cannot read RHD annotations {path}: {error}") from None


def _sample(root: Path, folder: str, sample_id: int, anno: dict, use_mask: bool) -> Sample:
    base = root / folder
    image = load_rgb(base / "color" / f"{sample_id:05d}.png")
    h, w = image.shape[:2]
    mask = None
    mask_path = base / "mask" / f"{sample_id:05d}.png"
    if use_mask and mask_path.is_file():
        mask = np.asarray(Image.open(mask_path))
        if mask.ndim == 3:
            mask = mask[..., 0]
    uv_vis = np.asarray(anno["uv_vis"], np.float64).reshape(42, 3)
    xyz = to_millimetres(np.asarray(anno["xyz"], np.float64).reshape(42, 3))
    hands = []
    for side, offset in (("left", 0), ("right", 21)):
        uv = reorder(uv_vis[offset : offset + 21, :2], TIP_FIRST_TO_STANDARD)
        vis = reorder(uv_vis[offset : offset + 21, 2], TIP_FIRST_TO_STANDARD) > 0
        box = None
        if mask is not None:
            lo, hi = MASK_RANGES[side]
            ys, xs = np.nonzero((mask >= lo) & (mask <= hi))
            if xs.size == 0:
                continue
            box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
            if vis.any():
                box[:2] = np.minimum(box[:2], uv[vis].min(axis=0))
                box[2:] = np.maximum(box[2:], uv[vis].max(axis=0))
            box = np.clip(box, 0, [w, h, w, h])
        elif not vis.any():
            continue
        hand = make_hand(
            side, uv, w, h, vis, reorder(xyz[offset : offset + 21], TIP_FIRST_TO_STANDARD), box
        )
        if hand is not None:
            hands.append(hand)
    return Sample(
        image=image,
        hands=hands,
        intrinsics=np.asarray(anno["K"], np.float32),
        source="rhd",
        name=f"{folder}/{sample_id:05d}",
        meta={"split_folder": folder},
    )


def load(root: Path, *, split: str, use_mask: bool = True) -> IndexedDataset:
    """RHD samples of `split` (see the module docstring)."""
    entries: list[tuple[str, int, dict]] = []
    for folder in FOLDERS[split]:
        anno_path = require_file(
            root / folder / f"anno_{folder}.pickle",
            "RHD annotation file",
            "point rhd: at RHD_published_v2 (the folder holding training/ and evaluation/)",
        )
        annos = _read_pickle(anno_path)
        entries += [(folder, int(k), annos[k]) for k in sorted(annos)]
    return IndexedDataset(
        f"rhd:{root} ({split})",
        len(entries),
        lambda i: _sample(root, entries[i][0], entries[i][1], entries[i][2], use_mask),
    )
