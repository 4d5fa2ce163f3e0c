"""F-PHAB loader on a tiny fixture in the published layout (skeleton.txt + color jpeg)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from models.data.loaders.common import project
from models.data.loaders.fhad import EXTRINSICS, K_COLOR, SOURCE_NAMES
from models.data.spec import open_dataset

STANDARD_NAMES = ["Wrist"] + [f + j for f in "TIMRP" for j in ("MCP", "PIP", "DIP", "TIP")]


def test_fhad_order_and_camera(tmp_path):
    rng = np.random.default_rng(0)
    cams = {}
    for seq in ("1", "3"):
        uv = rng.uniform(5, 59, (21, 2))
        z = 400.0 + np.arange(21)
        K = K_COLOR.astype(float)
        cam = np.column_stack(
            [(uv[:, 0] - K[0, 2]) / K[0, 0] * z, (uv[:, 1] - K[1, 2]) / K[1, 1] * z, z]
        )
        R, t = EXTRINSICS[:, :3], EXTRINSICS[:, 3]
        world = (cam - t) @ np.linalg.inv(R).T
        source = np.array([world[STANDARD_NAMES.index(n)] for n in SOURCE_NAMES])
        ann = tmp_path / "Hand_pose_annotation_v1" / "Subject_1" / "pour_milk" / seq
        ann.mkdir(parents=True)
        rows = np.vstack([np.r_[0, source.reshape(-1)], np.r_[1, source.reshape(-1)]])
        np.savetxt(ann / "skeleton.txt", rows)
        video = tmp_path / "Video_files" / "Subject_1" / "pour_milk" / seq / "color"
        video.mkdir(parents=True)
        for frame in (0, 1):
            Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(video / f"color_{frame:04d}.jpeg")
        cams[seq] = (cam, uv)
    train = open_dataset(f"fhad:{tmp_path}")
    assert len(train) == 2 and len(open_dataset(f"fhad:{tmp_path}?step=2")) == 1
    val = open_dataset(f"fhad:{tmp_path}", split="val")
    assert val[0].name == "Subject_1/pour_milk/3/color/color_0000.jpeg"
    s = train[1]
    h = s.hands[0]
    cam, uv = cams["1"]
    assert h.handedness == "right"
    np.testing.assert_allclose(h.joints_3d[0], cam[0], atol=1e-2)  # wrist
    np.testing.assert_allclose(h.joints_3d[4], cam[4], atol=1e-2)  # thumb tip (TTIP)
    np.testing.assert_allclose(h.joints_3d, cam, atol=1e-2)
    np.testing.assert_allclose(h.keypoints, uv, atol=1e-2)
    np.testing.assert_allclose(project(h.joints_3d, s.intrinsics), h.keypoints, atol=1e-3)
