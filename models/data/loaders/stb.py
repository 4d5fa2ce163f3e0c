"""Spec source `stb:PATH`: the Stereo Hand Pose Tracking Benchmark (Zhang et al., ICIP 2017).

PATH is the STB folder holding the published layout:

    images/B1Counting/SK_color_%d.png    640x480 (Intel RealSense F200 colour), also
                                         B1Random, B2Counting ... B6Random (SK_depth_*, BB_* unused)
    labels/B1Counting_SK.mat             "handPara" (3, 21, 1500): joints in mm in the depth
                                         camera frame, per frame

(sequence folders directly in PATH are accepted too). Joint order: palm centre, then little,
ring, middle, index, thumb, each mcp, pip, dip, tip. Converted: fingers to the standard order
(the thumb's mcp, pip, dip, tip become cmc, mcp, ip, tip), the palm centre to a wrist estimate
(`common.palm_to_wrist`: wrist = 2 palm - middle_mcp), and the joints to the colour camera
with the readme's extrinsics (rotation vector r = [0.00531, -0.01196, 0.00301], translation
T = [-24.0381, -0.4563, -1.2326] map colour -> depth: X_d = R X_c + T, so X_c = R^T (X_d - T)).
Colour intrinsics fx 607.92271, fy 607.88192, cx 314.78337, cy 236.42484. The hand is a left
hand (as the seed system labels it). Splits: train = B2-B6, val = test = B1 (the usual split).
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
    palm_to_wrist,
    project,
    require_dir,
    rodrigues,
)
from models.data.sample import Sample

K_COLOR = intrinsics(607.92271, 607.88192, 314.78337, 236.42484)
R_COLOR_TO_DEPTH = rodrigues([0.00531, -0.01196, 0.00301])
T_COLOR_TO_DEPTH = np.array([-24.0381, -0.4563, -1.2326])
SEQUENCES = {
    "train": [f"B{i}{k}" for i in range(2, 7) for k in ("Counting", "Random")],
    "val": ["B1Counting", "B1Random"],
    "test": ["B1Counting", "B1Random"],
}
SEQUENCES["all"] = SEQUENCES["val"] + SEQUENCES["train"]
SOURCE_NAMES = ["palm"] + [
    f"{f}_{j}"
    for f in ("little", "ring", "middle", "index", "thumb")
    for j in ("mcp", "pip", "dip", "tip")
]
STANDARD_FROM = [0] + [
    SOURCE_NAMES.index(f"{f}_{j}")
    for f in ("thumb", "index", "middle", "ring", "little")
    for j in ("mcp", "pip", "dip", "tip")
]


def _load_mat(path: Path) -> np.ndarray:
    from scipy.io import loadmat

    try:
        para = np.asarray(loadmat(str(path))["handPara"], np.float64)
    except (OSError, ValueError, KeyError) as error:
        raise HandposeError(f"cannot read STB labels {path} (handPara): {error}") from None
    if para.ndim != 3 or para.shape[:2] != (3, 21):
        raise HandposeError(f"{path}: handPara must be (3, 21, frames), got {para.shape}")
    return para.transpose(2, 1, 0)  # (frames, 21, 3)


def load(root: Path, *, split: str) -> IndexedDataset:
    """STB samples of `split` (see the module docstring)."""
    labels = require_dir(root / "labels", "STB labels folder", "point stb: at the STB folder")
    images = root / "images" if (root / "images").is_dir() else root
    entries: list[tuple[Path, np.ndarray]] = []
    for seq in SEQUENCES[split]:
        mat = labels / f"{seq}_SK.mat"
        if not mat.is_file():
            continue
        for frame, joints in enumerate(_load_mat(mat)):
            path = images / seq / f"SK_color_{frame}.png"
            if path.is_file():
                entries.append((path, joints))
    if not entries:
        raise HandposeError(
            f"stb: no labelled SK_color images of {SEQUENCES[split]} under {root} "
            "(expected images/<seq>/SK_color_N.png and labels/<seq>_SK.mat)"
        )

    def get(i: int) -> Sample:
        path, depth_joints = entries[i]
        image = load_rgb(path)
        cam = (depth_joints - T_COLOR_TO_DEPTH) @ R_COLOR_TO_DEPTH  # R^T (X - T), row vectors
        joints = palm_to_wrist(cam[STANDARD_FROM]).astype(np.float32)
        hand = make_hand(
            "left", project(joints, K_COLOR), image.shape[1], image.shape[0], xyz=joints
        )
        name = f"{path.parent.name}/{path.name}"
        return Sample(image, [hand] if hand else [], K_COLOR, "stb", name)

    return IndexedDataset(f"stb:{root} ({split})", len(entries), get)
