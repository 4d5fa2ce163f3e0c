"""Spec source `cmu:PATH`: the CMU Panoptic hand keypoint data (Simon et al., CVPR 2017).

PATH is one of the published folders, or a folder holding several of them:

    hand_labels/manual_train/<name>.jpg + <name>.json    {"hand_pts": [[x, y, v] x 21],
    hand_labels/manual_test/...                            "is_left": 0 | 1, ...}
    hand_labels_synth/synth1 .. synth4/<name>.jpg + .json (the same json)
    hand143_panopticdb/hands_v143_14817.json + imgs/    {"root": [{"img_paths": "imgs/..",
                                                          "joint_self": [[x, y, v] x 21]}, ...]}

Keypoints are in the standard order, (x, y) image pixels; v = 1 labelled, 0 not (a point with
v = 0 gets visibility 0). Handedness from "is_left" ("hand" for the panoptic set, whose json does
not say). Only 2D: no 3D joints or intrinsics. Splits: manual: train = manual_train, val =
test = manual_test; synth: val = test = synth4, train = the other synthN; panoptic: held-out
tails (`common.holdout_indices`). Not confirmed here: whether coordinates use the
pixel-centre-at-.5 convention (used as is). Each manual image is a crop around one labelled
hand; other hands in it are unlabelled (use for pose more than for detection).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from handpose.errors import HandposeError
from models.data.handpose_format import load_rgb
from models.data.loaders.common import (
    ConcatDataset,
    IndexedDataset,
    Subset,
    holdout_indices,
    keypoint_box,
    make_hand,
)
from models.data.sample import Sample


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise HandposeError(f"cannot read CMU label {path}: {error}") from None


def _hand_sample(image_path: Path, points, handedness: str, name: str) -> Sample:
    image = load_rgb(image_path)
    h, w = image.shape[:2]
    pts = np.asarray(points, np.float64).reshape(21, 3)
    labelled = pts[:, 2] > 0
    uv = pts[:, :2].copy()
    hands = []
    if labelled.any():
        box = keypoint_box(uv, w, h, labelled)
        uv[~labelled] = (box[:2] + box[2:]) / 2  # unlabelled points: box centre, visibility 0
        hand = make_hand(handedness, uv, w, h, labelled, box=box)
        hands = [hand] if hand else []
    return Sample(image, hands, None, "cmu", name)


def _json_folder(folders: list[Path], name: str) -> IndexedDataset:
    files = [f for folder in folders for f in sorted(folder.glob("*.json"))]

    def get(i: int) -> Sample:
        label = _read_json(files[i])
        side = "left" if int(label.get("is_left", 0)) else "right"
        return _hand_sample(
            files[i].with_suffix(".jpg"),
            label["hand_pts"],
            side,
            f"{files[i].parent.name}/{files[i].stem}",
        )

    return IndexedDataset(name, len(files), get)


def _manual(root: Path, split: str) -> IndexedDataset:
    names = {
        "train": ["manual_train"],
        "val": ["manual_test"],
        "test": ["manual_test"],
        "all": ["manual_train", "manual_test"],
    }[split]
    return _json_folder([root / n for n in names if (root / n).is_dir()], f"cmu:{root} ({split})")


def _synth(root: Path, split: str) -> IndexedDataset:
    folders = sorted(p for p in root.glob("synth*") if p.is_dir())
    if split in ("val", "test"):
        folders = [p for p in folders if p.name == "synth4"]
    elif split == "train":
        folders = [p for p in folders if p.name != "synth4"]
    return _json_folder(folders, f"cmu:{root} ({split})")


def _panoptic(root: Path, split: str) -> IndexedDataset:
    files = sorted(root.glob("hands_v143_*.json"))
    entries = [e for f in files for e in _read_json(f).get("root", [])]

    def get(i: int) -> Sample:
        e = entries[i]
        return _hand_sample(root / e["img_paths"], e["joint_self"], "hand", str(e["img_paths"]))

    ds = IndexedDataset(f"cmu:{root}", len(entries), get)
    return Subset(ds, holdout_indices(len(ds), split), f"cmu:{root} ({split})")


def _kind(path: Path) -> str | None:
    if (path / "manual_train").is_dir() or (path / "manual_test").is_dir():
        return "manual"
    if any(p.is_dir() for p in path.glob("synth[0-9]")):
        return "synth"
    if any(path.glob("hands_v143_*.json")):
        return "panoptic"
    return None


def load(root: Path, *, split: str) -> IndexedDataset:
    """CMU hand samples of `split` (see the module docstring)."""
    readers = {"manual": _manual, "synth": _synth, "panoptic": _panoptic}
    kind = _kind(root)
    if kind is not None:
        return readers[kind](root, split)
    children = [(c, _kind(c)) for c in sorted(root.iterdir()) if c.is_dir()]
    parts = [readers[k](c, split) for c, k in children if k is not None]
    if not parts:
        raise HandposeError(
            f"cmu: {root} holds none of hand_labels (manual_train/), hand_labels_synth "
            "(synth1..4/), hand143_panopticdb (hands_v143_*.json); point cmu: at one of them"
        )
    return ConcatDataset(parts, f"cmu:{root} ({split})")
