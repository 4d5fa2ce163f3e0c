"""Spec source `freihand:PATH`: FreiHAND (Zimmermann et al., ICCV 2019).

PATH is `FreiHAND_pub_v2`, holding the published layout:

    training_xyz.json   [32560 x (21, 3)] camera frame, metres
    training_K.json     [32560 x (3, 3)]
    training/rgb/%08d.jpg   224x224; 130240 images = 4 versions x 32560 (image i uses label
                            i % 32560: green screen, and three background/post-processing variants)
    evaluation_xyz.json, evaluation_K.json, evaluation/rgb/%08d.jpg   3960 (the evaluation
                            release FreiHAND_pub_v2_eval; looked for in PATH, in a sibling
                            folder FreiHAND_pub_v2_eval, or given as option eval_dir=FOLDER)

Keypoints are already in the standard order; all hands are right hands (MANO right hand).
Splits: train = training, val = test = evaluation (the official split).
Option `versions=N` (1-4): how many of the 4 training image versions to use (default 4).
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
    make_hand,
    project,
    require_file,
    to_millimetres,
)
from models.data.sample import Sample


def _read_json(path: Path) -> list:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise HandposeError(f"cannot read FreiHAND annotations {path}: {error}") from None


def _part(base: Path, prefix: str, versions: int) -> IndexedDataset:
    fix = "point freihand: at FreiHAND_pub_v2 (holding training_xyz.json and training/rgb/)"
    xyz = _read_json(require_file(base / f"{prefix}_xyz.json", "FreiHAND file", fix))
    Ks = _read_json(require_file(base / f"{prefix}_K.json", "FreiHAND file", fix))
    if len(xyz) != len(Ks):
        raise HandposeError(f"{base}: {prefix}_xyz.json and {prefix}_K.json differ in length")
    n = len(xyz)
    rgb = base / prefix / "rgb"

    def get(i: int) -> Sample:
        label = i % n
        image = load_rgb(rgb / f"{i:08d}.jpg")
        h, w = image.shape[:2]
        joints = to_millimetres(np.asarray(xyz[label], np.float64).reshape(21, 3))
        K = np.asarray(Ks[label], np.float32).reshape(3, 3)
        hand = make_hand("right", project(joints, K), w, h, xyz=joints)
        return Sample(
            image, [hand] if hand else [], K, "freihand", f"{prefix}/{i:08d}", {"version": i // n}
        )

    return IndexedDataset(f"freihand:{base} ({prefix})", n * versions, get)


def load(root: Path, *, split: str, versions: int = 4, eval_dir: str = "") -> IndexedDataset:
    """FreiHAND samples of `split` (see the module docstring)."""
    if not 1 <= versions <= 4:
        raise HandposeError(f"freihand: versions must be 1..4, got {versions}")
    parts = []
    if split in ("train", "all"):
        parts.append(_part(root, "training", versions))
    if split in ("val", "test", "all"):
        candidates = [Path(eval_dir)] if eval_dir else [root, root.parent / "FreiHAND_pub_v2_eval"]
        base = next((c for c in candidates if (c / "evaluation_xyz.json").is_file()), None)
        if base is None:
            raise HandposeError(
                f"freihand: evaluation_xyz.json not found in {' or '.join(map(str, candidates))}; "
                "unpack FreiHAND_pub_v2_eval next to the training set or give ?eval_dir=FOLDER"
            )
        parts.append(_part(base, "evaluation", 1))
    if len(parts) == 1:
        parts[0].name = f"freihand:{root} ({split})"
        return parts[0]
    return ConcatDataset(parts, f"freihand:{root} ({split})")
