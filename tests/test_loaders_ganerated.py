"""GANerated Hands loader on a tiny fixture in the published layout (txt + png)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from models.data.loaders.common import project
from models.data.loaders.ganerated import K_FULL
from models.data.spec import open_dataset


def _write(folder, idx: int, seed: int):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    u0, v0, s = 200.0, 150.0, 0.25  # crop px = s * (px - (u0, v0)); a 64x64 crop
    uv_crop = rng.uniform(5, 59, (21, 2))
    uv_full = uv_crop / s + [u0, v0]
    z = 500.0 + np.arange(21)
    K = K_FULL.astype(float)
    xyz = np.column_stack([(uv_full[:, 0] - K[0, 2]) / K[0, 0] * z,
                           (uv_full[:, 1] - K[1, 2]) / K[1, 1] * z, z])  # fmt: skip
    stem = folder / f"{idx:04d}_"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(f"{stem}color_composed.png")
    np.savetxt(f"{stem}joint_pos_global.txt", xyz.reshape(1, -1), delimiter=",")
    np.savetxt(f"{stem}joint2D.txt", uv_crop.reshape(1, -1), delimiter=",")
    np.savetxt(f"{stem}crop_params.txt", [[u0, v0, s]], delimiter=",")
    return xyz, uv_crop


def test_ganerated_crop_intrinsics_and_split(tmp_path):
    xyz, uv = _write(tmp_path / "data" / "noObject" / "0007", 1, 0)
    _write(tmp_path / "data" / "withObject" / "0002", 1, 1)
    train = open_dataset(f"ganerated:{tmp_path}")
    val = open_dataset(f"ganerated:{tmp_path}", split="val")
    assert len(train) == 1 and len(val) == 1 and val[0].name.startswith("withObject/0002")
    s = train[0]
    h = s.hands[0]
    assert h.handedness == "left"
    np.testing.assert_allclose(h.joints_3d, xyz, atol=1e-2)
    np.testing.assert_allclose(h.keypoints, uv, atol=1e-2)  # projection by the crop's K
    np.testing.assert_allclose(project(h.joints_3d, s.intrinsics), h.keypoints, atol=1e-3)
    assert s.intrinsics[0, 0] == np.float32(617.173 * 0.25)
