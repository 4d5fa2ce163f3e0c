"""CMU hand keypoint loader on tiny fixtures in the published layouts (jpg + json)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from handpose.errors import HandposeError
from models.data.spec import open_dataset


def _pts(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pts = np.column_stack([rng.uniform(10, 50, 21), rng.uniform(10, 40, 21), np.ones(21)])
    pts[0, :2] = (11.0, 12.0)  # wrist
    pts[4, :2] = (44.0, 33.0)  # thumb tip
    return pts


def _image(path):
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(path)


def test_cmu_manual_handedness_visibility_and_split(tmp_path):
    root = tmp_path / "hand_labels"
    for folder, n in (("manual_train", 2), ("manual_test", 1)):
        (root / folder).mkdir(parents=True)
        for i in range(n):
            pts = _pts(i)
            pts[7] = (0, 0, 0)  # an unlabelled point
            label = {"hand_pts": pts.tolist(), "is_left": i % 2, "head_size": 20.0}
            (root / folder / f"{i:03d}_01_x.json").write_text(json.dumps(label))
            _image(root / folder / f"{i:03d}_01_x.jpg")
    train = open_dataset(f"cmu:{root}")
    assert len(train) == 2 and len(open_dataset(f"cmu:{root}", split="test")) == 1
    assert [s.hands[0].handedness for s in train] == ["right", "left"]
    h = train[0].hands[0]
    np.testing.assert_allclose(h.keypoints[0], (11, 12))
    np.testing.assert_allclose(h.keypoints[4], (44, 33))
    assert h.keypoint_scores[7] == 0 and h.keypoint_scores.sum() == 20
    assert h.joints_3d is None and train[0].intrinsics is None
    # the unlabelled point does not stretch the box to (0, 0)
    assert h.box[0] > 5 and h.box[1] > 5


def test_cmu_panoptic_and_parent_folder(tmp_path):
    pan = tmp_path / "hand143_panopticdb"
    (pan / "imgs").mkdir(parents=True)
    entries = []
    for i in range(4):
        _image(pan / "imgs" / f"{i:08d}.jpg")
        entries.append({"img_paths": f"imgs/{i:08d}.jpg", "joint_self": _pts(i).tolist()})
    (pan / "hands_v143_14817.json").write_text(json.dumps({"root": entries}))
    synth = tmp_path / "hand_labels_synth"
    for k in (2, 4):
        (synth / f"synth{k}").mkdir(parents=True)
        (synth / f"synth{k}" / "a.json").write_text(
            json.dumps({"hand_pts": _pts(k).tolist(), "is_left": 1})
        )
        _image(synth / f"synth{k}" / "a.jpg")
    ds = open_dataset(f"cmu:{pan}?split=all")
    assert len(ds) == 4 and ds[2].hands[0].handedness == "hand"
    both = open_dataset(f"cmu:{tmp_path}", split="val")  # synth4 + panoptic held-out tail
    assert len(both) == 2 and {s.name for s in both} == {"synth4/a", "imgs/00000002.jpg"}
    with pytest.raises(HandposeError, match="hand_labels"):
        open_dataset(f"cmu:{pan / 'imgs'}")
