"""Spec source `fhad:PATH`: First-Person Hand Action Benchmark (F-PHAB, Garcia-Hernando et al.).

PATH is the dataset folder holding the published layout:

    Video_files/Subject_1/<action>/<seq>/color/color_0000.jpeg        1920x1080
    Hand_pose_annotation_v1/Subject_1/<action>/<seq>/skeleton.txt     one line per frame:
        frame_id, then 21 x (x, y, z) mm in the world (depth sensor) frame

Joint order: Wrist, TMCP, IMCP, MMCP, RMCP, PMCP, TPIP, TDIP, TTIP, IPIP, IDIP, ITIP, MPIP,
MDIP, MTIP, RPIP, RDIP, RTIP, PPIP, PDIP, PTIP (the thumb's MCP, PIP, DIP, TIP become cmc,
mcp, ip, tip). World -> colour camera with the published extrinsics X_c = R X_w + t
(R ~ I, t = [25.7, 1.22, 3.902] mm) and colour intrinsics fx 1395.749023, fy 1395.749268,
cx 935.732544, cy 540.681030. Right hands. Splits (no official pose split): val = test =
sequence 3 of every subject and action (the seed's held-out set), train = the others.
Option `step=N` keeps every N-th frame (default 1).
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
    to_camera,
)
from models.data.sample import Sample

K_COLOR = intrinsics(1395.749023, 1395.749268, 935.732544, 540.681030)
EXTRINSICS = np.array(
    [
        [0.999988496304, -0.00468848412856, 0.000982563360594, 25.7],
        [0.00469115935266, 0.999985218048, -0.00273845880292, 1.22],
        [-0.000969709653873, 0.00274303671904, 0.99999576807, 3.902],
    ]
)
SOURCE_NAMES = [
    "Wrist",
    "TMCP",
    "IMCP",
    "MMCP",
    "RMCP",
    "PMCP",
    "TPIP",
    "TDIP",
    "TTIP",
    "IPIP",
    "IDIP",
    "ITIP",
    "MPIP",
    "MDIP",
    "MTIP",
    "RPIP",
    "RDIP",
    "RTIP",
    "PPIP",
    "PDIP",
    "PTIP",
]
STANDARD_FROM = [0] + [
    SOURCE_NAMES.index(f + j) for f in "TIMRP" for j in ("MCP", "PIP", "DIP", "TIP")
]
HELD_OUT_SEQ = "3"


def load(root: Path, *, split: str, step: int = 1) -> IndexedDataset:
    """F-PHAB samples of `split` (see the module docstring)."""
    fix = "point fhad: at the folder holding Video_files/ and Hand_pose_annotation_v1/"
    annotations = require_dir(root / "Hand_pose_annotation_v1", "F-PHAB annotation folder", fix)
    videos = require_dir(root / "Video_files", "F-PHAB video folder", fix)
    entries: list[tuple[Path, np.ndarray]] = []
    for skeleton in sorted(annotations.glob("Subject_*/*/*/skeleton.txt")):
        seq = skeleton.parent.name
        if not (split == "all" or (split == "train") != (seq == HELD_OUT_SEQ)):
            continue
        if skeleton.stat().st_size == 0:
            continue
        try:
            rows = np.loadtxt(skeleton, ndmin=2)
        except ValueError as error:
            raise HandposeError(f"cannot read {skeleton}: {error}") from None
        if rows.shape[1] != 64:
            raise HandposeError(f"{skeleton}: expected 64 columns per line, got {rows.shape[1]}")
        rel = skeleton.parent.relative_to(annotations)
        for row in rows[:: max(1, step)]:
            image = videos / rel / "color" / f"color_{int(row[0]):04d}.jpeg"
            if image.is_file():
                entries.append((image, row[1:].reshape(21, 3)))
    if not entries:
        raise HandposeError(f"fhad: no labelled colour frames for split {split} under {root}")

    def get(i: int) -> Sample:
        path, world = entries[i]
        image = load_rgb(path)
        joints = to_camera(world, EXTRINSICS)[STANDARD_FROM]
        hand = make_hand(
            "right", project(joints, K_COLOR), image.shape[1], image.shape[0], xyz=joints
        )
        return Sample(image, [hand] if hand else [], K_COLOR, "fhad", str(path.relative_to(videos)))

    return IndexedDataset(f"fhad:{root} ({split})", len(entries), get)
