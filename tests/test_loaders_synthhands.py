"""SynthHands loader on a tiny fixture in the published layout."""

from __future__ import annotations

import numpy as np
from PIL import Image

from models.data.loaders.common import project
from models.data.loaders.synthhands import DEPTH_TO_COLOR, K_COLOR, K_DEPTH
from models.data.spec import open_dataset


def test_synthhands_depth_to_colour_and_holdout(tmp_path):
    folder = tmp_path / "female_noobject" / "seq01" / "cam01" / "01"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    joints = []
    for i in range(3):
        uv = rng.uniform(5, 59, (21, 2))
        z = 400.0 + np.arange(21) + i
        K = K_COLOR.astype(float)
        cam = np.column_stack(
            [(uv[:, 0] - K[0, 2]) / K[0, 0] * z, (uv[:, 1] - K[1, 2]) / K[1, 1] * z, z]
        )
        depth_frame = cam - DEPTH_TO_COLOR
        np.savetxt(folder / f"{i:08d}_joint_pos.txt", depth_frame.reshape(1, -1), delimiter=",")
        Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(folder / f"{i:08d}_color.png")
        # the depth camera sees the same joints elsewhere: a full 640x480 frame
        Image.fromarray(np.zeros((480, 640, 3), np.uint8)).save(
            folder / f"{i:08d}_color_on_depth.png"
        )
        joints.append(cam)
    ds = open_dataset(f"synthhands:{tmp_path}?split=all")
    assert len(ds) == 3
    s = ds[1]
    h = s.hands[0]
    assert h.handedness == "left" and s.name.endswith("00000001")
    np.testing.assert_allclose(h.joints_3d, joints[1], atol=1e-2)
    np.testing.assert_allclose(h.joints_3d[4], joints[1][4], atol=1e-2)
    np.testing.assert_allclose(project(h.joints_3d, s.intrinsics), h.keypoints, atol=1e-3)
    assert (
        len(open_dataset(f"synthhands:{tmp_path}")),
        len(open_dataset(f"synthhands:{tmp_path}", split="val")),
    ) == (1, 1)
    depth = open_dataset(f"synthhands:{tmp_path}?color_on_depth=true&split=all")[1]
    np.testing.assert_allclose(depth.intrinsics, K_DEPTH)
    np.testing.assert_allclose(depth.hands[0].joints_3d, joints[1] - DEPTH_TO_COLOR, atol=1e-2)
    np.testing.assert_allclose(
        project(depth.hands[0].joints_3d, K_DEPTH), depth.hands[0].keypoints, atol=1e-3
    )
