"""RHD loader on a tiny fixture in the published layout (pickle + color/mask PNGs)."""

from __future__ import annotations

import pickle

import numpy as np
from PIL import Image

from models.data.loaders.common import TIP_FIRST_TO_STANDARD, project
from models.data.spec import open_dataset

K = np.array([[300.0, 0, 40], [0, 300.0, 30], [0, 0, 1]])


def _hand(offset: float) -> np.ndarray:
    """21 distinct camera points (mm) in the STANDARD order, projecting inside 80x60."""
    rng = np.random.default_rng(int(offset))
    uv = np.column_stack([rng.uniform(10, 70, 21), rng.uniform(8, 52, 21)])
    z = 500.0 + offset + np.arange(21)
    return np.column_stack([(uv[:, 0] - 40) / 300 * z, (uv[:, 1] - 30) / 300 * z, z])


def _to_rhd(std: np.ndarray) -> np.ndarray:
    """Standard order -> RHD order (wrist, then each finger tip..mcp)."""
    out = np.zeros_like(std)
    out[list(TIP_FIRST_TO_STANDARD)] = std
    return out


def _write(root, folder, left_visible: bool):
    (root / folder / "color").mkdir(parents=True)
    (root / folder / "mask").mkdir()
    left, right = _hand(0), _hand(100)
    xyz = np.concatenate([_to_rhd(left), _to_rhd(right)]) / 1000.0  # metres
    uv = project(xyz * 1000, K)
    vis = np.ones((42, 1))
    vis[:21] = 1.0 if left_visible else 0.0
    annos = {0: {"uv_vis": np.hstack([uv, vis]), "xyz": xyz, "K": K}}
    with open(root / folder / f"anno_{folder}.pickle", "wb") as f:
        pickle.dump(annos, f)
    Image.fromarray(np.full((60, 80, 3), 90, np.uint8)).save(root / folder / "color/00000.png")
    mask = np.zeros((60, 80), np.uint8)
    mask[5:20, 6:30] = 19  # right hand pixels only (18..33)
    if left_visible:
        mask[30:50, 40:70] = 3  # left hand (2..17)
    Image.fromarray(mask).save(root / folder / "mask/00000.png")
    return left, right


def test_rhd_order_units_handedness_and_split(tmp_path):
    left, right = _write(tmp_path, "training", left_visible=True)
    _write(tmp_path, "evaluation", left_visible=False)
    ds = open_dataset(f"rhd:{tmp_path}")
    assert len(ds) == 1
    s = ds[0]
    assert [h.handedness for h in s.hands] == ["left", "right"]
    np.testing.assert_allclose(s.intrinsics, K)
    lh, rh = s.hands
    # wrist and thumb tip at standard indices 0 and 4, in mm
    np.testing.assert_allclose(lh.joints_3d[0], left[0], atol=1e-2)
    np.testing.assert_allclose(lh.joints_3d[4], left[4], atol=1e-2)
    np.testing.assert_allclose(rh.joints_3d, right, atol=1e-2)
    np.testing.assert_allclose(project(rh.joints_3d, s.intrinsics), rh.keypoints, atol=1e-3)
    # box from the mask pixels (and visible keypoints)
    assert rh.box[0] <= 6 and rh.box[1] <= 5
    val = open_dataset(f"rhd:{tmp_path}", split="val")
    assert [h.handedness for h in val[0].hands] == ["right"]  # no left mask pixels
    assert val[0].name.startswith("evaluation/")
