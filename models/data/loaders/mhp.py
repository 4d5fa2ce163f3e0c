"""Spec source `mhp:PATH`: the Large-scale Multiview 3D Hand Pose Dataset (Gomez-Donoso et al.).

PATH is the dataset folder holding the published layout:

    annotated_frames/data_1/0_webcam_1.jpg   640x480, 4 webcams (_webcam_1 .. _webcam_4)
    annotated_frames/data_1/0_joints.txt     22 lines "NAME x y z" (Leap Motion, mm, world
                                             frame); the 22nd (PALM_NORMAL) is not a point
    calibrations/data_1/webcam_1/rvec.pkl, tvec.pkl   pickled world -> webcam extrinsics:
                                             X_cam = Rodrigues(rvec) X_world + tvec

Joint names (Leap Motion): F4 index, F3 middle, F2 ring, F1 little, TH thumb; per finger
KNU1_B (base), KNU1_A, KNU2_A, KNU3_A (tip); PALM_POSITION (palm centre), converted to a wrist
estimate (`common.palm_to_wrist`). Webcam intrinsics (as the seed system used them):
fx 614.878, fy 615.479, cx 313.219, cy 231.288. Right hands. Splits (no official one):
val = test = data_1, data_10, data_20 (the seed's held-out folders), train = the rest.
Not confirmed here: the format of the *_jointsCam_N.txt / *_bbox_N.txt files (unused; the 2D
keypoints are the projection of the 3D joints).
"""

from __future__ import annotations

import pickle
import re
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

K_WEBCAM = intrinsics(614.878, 615.479, 313.219, 231.288)
HELD_OUT = ("data_1", "data_10", "data_20")
FINGERS = ("TH", "F4", "F3", "F2", "F1")  # thumb, index, middle, ring, little
PARTS = ("KNU1_B", "KNU1_A", "KNU2_A", "KNU3_A")  # base .. tip
STANDARD_NAMES = ["PALM_POSITION"] + [f"{f}_{p}" for f in FINGERS for p in PARTS]


def read_joints(path: Path) -> np.ndarray:
    """(21, 3) world joints in the standard order (root still the palm centre) from *_joints.txt."""
    named: dict[str, np.ndarray] = {}
    try:
        for line in path.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 4:
                named[fields[0]] = np.array([float(v) for v in fields[1:4]])
    except (OSError, ValueError) as error:
        raise HandposeError(f"cannot read MHP joints {path}: {error}") from None
    missing = [n for n in STANDARD_NAMES if n not in named]
    if missing:
        raise HandposeError(f"{path}: joints {missing} missing")
    return np.stack([named[n] for n in STANDARD_NAMES])


def _pickle(path: Path) -> np.ndarray:
    try:
        with open(path, "rb") as f:
            return np.asarray(pickle.load(f, encoding="latin1"), np.float64).reshape(3)
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as error:
        raise HandposeError(f"cannot read MHP calibration {path}: {error}") from None


def load(root: Path, *, split: str) -> IndexedDataset:
    """MHP samples of `split` (see the module docstring)."""
    frames = require_dir(
        root / "annotated_frames",
        "MHP folder",
        "point mhp: at the folder holding annotated_frames/ and calibrations/",
    )
    entries: list[tuple[Path, Path, str, int]] = []
    pattern = re.compile(r"^(\d+)_webcam_(\d+)\.jpg$")
    for folder in sorted(p for p in frames.iterdir() if p.is_dir()):
        held = folder.name in HELD_OUT
        if not (split == "all" or (split == "train") != held):
            continue
        for image in sorted(folder.glob("*_webcam_*.jpg")):
            m = pattern.match(image.name)
            if m:
                entries.append(
                    (image, folder / f"{m.group(1)}_joints.txt", folder.name, int(m.group(2)))
                )
    if not entries:
        raise HandposeError(f"mhp: no <frame>_webcam_<cam>.jpg for split {split} under {frames}")
    calib: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}

    def extrinsics(folder: str, cam: int) -> tuple[np.ndarray, np.ndarray]:
        if (folder, cam) not in calib:
            base = root / "calibrations" / folder / f"webcam_{cam}"
            calib[folder, cam] = (rodrigues(_pickle(base / "rvec.pkl")), _pickle(base / "tvec.pkl"))
        return calib[folder, cam]

    def get(i: int) -> Sample:
        path, joints_path, folder, cam = entries[i]
        image = load_rgb(path)
        R, t = extrinsics(folder, cam)
        cam_joints = read_joints(joints_path) @ R.T + t
        joints = palm_to_wrist(cam_joints).astype(np.float32)
        hand = make_hand(
            "right", project(joints, K_WEBCAM), image.shape[1], image.shape[0], xyz=joints
        )
        return Sample(image, [hand] if hand else [], K_WEBCAM, "mhp", f"{folder}/{path.name}")

    return IndexedDataset(f"mhp:{root} ({split})", len(entries), get)
