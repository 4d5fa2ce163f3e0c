"""STB loader on a tiny fixture in the published layout (labels/*_SK.mat + SK_color_N.png)."""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy.io import savemat

from models.data.loaders.common import project
from models.data.loaders.stb import K_COLOR, R_COLOR_TO_DEPTH, T_COLOR_TO_DEPTH
from models.data.spec import open_dataset

FINGERS = ("thumb", "index", "middle", "ring", "little")
STB_ORDER = [(f, j) for f in ("little", "ring", "middle", "index", "thumb") for j in range(4)]


def _hand(seed: int) -> np.ndarray:
    """Standard-order colour-camera joints projecting inside a 64x48 image."""
    rng = np.random.default_rng(seed)
    uv = np.column_stack([rng.uniform(5, 59, 21), rng.uniform(5, 43, 21)])
    z = 450.0 + 2 * np.arange(21)
    K = K_COLOR.astype(float)
    return np.column_stack(
        [(uv[:, 0] - K[0, 2]) / K[0, 0] * z, (uv[:, 1] - K[1, 2]) / K[1, 1] * z, z]
    )


def _to_stb_depth(std: np.ndarray) -> np.ndarray:
    """(21, 3) standard -> STB order (palm, little..thumb mcp..tip) in the depth camera frame."""
    palm = (std[0] + std[9]) / 2  # palm centre midway between wrist and middle mcp
    rows = [palm] + [std[1 + 4 * FINGERS.index(f) + j] for f, j in STB_ORDER]
    cam = np.array(rows)
    return cam @ R_COLOR_TO_DEPTH.T + T_COLOR_TO_DEPTH


def test_stb_palm_to_wrist_order_and_extrinsics(tmp_path):
    (tmp_path / "labels").mkdir()
    hands = {}
    for seq in ("B1Counting", "B2Random"):
        hands[seq] = [_hand(i + len(seq)) for i in range(2)]
        para = np.stack([_to_stb_depth(h) for h in hands[seq]]).transpose(2, 1, 0)  # (3, 21, N)
        savemat(tmp_path / "labels" / f"{seq}_SK.mat", {"handPara": para})
        (tmp_path / "images" / seq).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(
                tmp_path / "images" / seq / f"SK_color_{i}.png"
            )
    train = open_dataset(f"stb:{tmp_path}")
    test = open_dataset(f"stb:{tmp_path}", split="test")
    assert len(train) == 2 and len(test) == 2
    s = train[1]
    h = s.hands[0]
    assert h.handedness == "left" and s.name == "B2Random/SK_color_1.png"
    np.testing.assert_allclose(h.joints_3d, hands["B2Random"][1], atol=1e-2)  # wrist recovered
    np.testing.assert_allclose(h.joints_3d[4], hands["B2Random"][1][4], atol=1e-2)  # thumb tip
    np.testing.assert_allclose(project(h.joints_3d, s.intrinsics), h.keypoints, atol=1e-3)
    assert h.keypoint_scores.sum() == 21
