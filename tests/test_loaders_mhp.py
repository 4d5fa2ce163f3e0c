"""MHP (multiview hand pose) loader on a tiny fixture in the published layout."""

from __future__ import annotations

import pickle

import numpy as np
from PIL import Image

from models.data.loaders.common import project, rodrigues
from models.data.loaders.mhp import FINGERS, K_WEBCAM, PARTS
from models.data.spec import open_dataset


def test_mhp_names_extrinsics_and_palm(tmp_path):
    rng = np.random.default_rng(0)
    uv = rng.uniform(5, 59, (21, 2))
    z = 500.0 + np.arange(21)
    K = K_WEBCAM.astype(float)
    cam = np.column_stack(
        [(uv[:, 0] - K[0, 2]) / K[0, 0] * z, (uv[:, 1] - K[1, 2]) / K[1, 1] * z, z]
    )
    rvec, tvec = np.array([0.1, -0.2, 0.05]), np.array([10.0, -20.0, 30.0])
    R = rodrigues(rvec)
    world = (cam - tvec) @ R  # inverse of X_cam = R X_world + t
    palm = (world[0] + world[9]) / 2
    names = ["PALM_POSITION"] + [f"{f}_{p}" for f in FINGERS for p in PARTS]
    rows = [palm] + list(world[1:])
    order = rng.permutation(21)  # the file's line order does not matter, names do
    for data in ("data_2", "data_10"):
        folder = tmp_path / "annotated_frames" / data
        folder.mkdir(parents=True)
        lines = [f"{names[k]} {rows[k][0]} {rows[k][1]} {rows[k][2]}" for k in order]
        lines.append("PALM_NORMAL 0 -1 0")
        (folder / "0_joints.txt").write_text("\n".join(lines) + "\n")
        Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(folder / "0_webcam_1.jpg")
        calib = tmp_path / "calibrations" / data / "webcam_1"
        calib.mkdir(parents=True)
        for name, value in (("rvec", rvec.reshape(3, 1)), ("tvec", tvec.reshape(3, 1))):
            with open(calib / f"{name}.pkl", "wb") as f:
                pickle.dump(value, f)
    train = open_dataset(f"mhp:{tmp_path}")
    test = open_dataset(f"mhp:{tmp_path}", split="test")
    assert len(train) == 1 and len(test) == 1 and test[0].name == "data_10/0_webcam_1.jpg"
    s = train[0]
    h = s.hands[0]
    assert h.handedness == "right"
    np.testing.assert_allclose(h.joints_3d, cam, atol=1e-2)  # wrist recovered from the palm
    np.testing.assert_allclose(h.keypoints, uv, atol=1e-2)
    np.testing.assert_allclose(project(h.joints_3d, s.intrinsics), h.keypoints, atol=1e-3)
