"""FreiHAND loader on a tiny fixture in the published layout (json + rgb/%08d.jpg)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from handpose.errors import HandposeError
from models.data.loaders.common import project
from models.data.spec import open_dataset

K = [[250.0, 0, 32.0], [0, 250.0, 32.0], [0, 0, 1]]


def _hand(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    uv = rng.uniform(8, 56, (21, 2))
    z = 600.0 + np.arange(21)
    return np.column_stack([(uv[:, 0] - 32) / 250 * z, (uv[:, 1] - 32) / 250 * z, z])


def _write(root, prefix: str, n: int, versions: int):
    hands = [_hand(i) for i in range(n)]
    (root / f"{prefix}_xyz.json").write_text(json.dumps([(h / 1000).tolist() for h in hands]))
    (root / f"{prefix}_K.json").write_text(json.dumps([K] * n))
    (root / prefix / "rgb").mkdir(parents=True)
    for i in range(n * versions):
        Image.fromarray(np.full((64, 64, 3), i * 20, np.uint8)).save(
            root / prefix / "rgb" / f"{i:08d}.jpg"
        )
    return hands


def test_freihand_versions_labels_and_projection(tmp_path):
    hands = _write(tmp_path, "training", 2, 2)
    with pytest.raises(HandposeError, match="evaluation_xyz.json"):
        open_dataset(f"freihand:{tmp_path}", split="test")
    ds = open_dataset(f"freihand:{tmp_path}?versions=2")
    assert len(ds) == 4
    s = ds[3]  # version 1 of label 1
    h = s.hands[0]
    assert h.handedness == "right" and s.meta["version"] == 1
    np.testing.assert_allclose(h.joints_3d, hands[1], atol=1e-2)  # metres -> mm
    np.testing.assert_allclose(project(h.joints_3d, s.intrinsics), h.keypoints, atol=1e-3)
    assert len(open_dataset(f"freihand:{tmp_path}?versions=1")) == 2
    eval_dir = tmp_path.parent / "FreiHAND_pub_v2_eval"
    eval_dir.mkdir()
    _write(eval_dir, "evaluation", 3, 1)
    test = open_dataset(f"freihand:{tmp_path}?eval_dir={eval_dir}", split="test")
    assert len(test) == 3 and test[0].name == "evaluation/00000000"
