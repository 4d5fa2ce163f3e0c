"""COCO-format hand keypoints (COCO-WholeBody and plain 21-point COCO) on tiny fixtures."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from models.data.spec import open_dataset


def _kpts(seed: int, v: int = 2) -> list[float]:
    rng = np.random.default_rng(seed)
    pts = np.column_stack([rng.uniform(10, 50, 21), rng.uniform(10, 40, 21), np.full(21, v)])
    pts[0, :2] = (12.0, 13.0)
    pts[4, :2] = (40.0, 30.0)
    return pts.reshape(-1).tolist()


def test_wholebody_left_right_and_visibility(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "annotations").mkdir()
    for name in ("a.jpg", "b.jpg"):
        Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(tmp_path / "images" / name)
    left = _kpts(0)
    left[3 * 5 + 2] = 1  # index mcp labelled but occluded
    left[3 * 6 : 3 * 6 + 3] = [0, 0, 0]  # index pip not labelled
    data = {
        "images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],
        "annotations": [
            {
                "image_id": 1,
                "lefthand_kpts": left,
                "lefthand_box": [8, 9, 45, 35],
                "lefthand_valid": True,
                "righthand_kpts": _kpts(1),
                "righthand_box": [5, 5, 50, 40],
                "righthand_valid": True,
            },
            {
                "image_id": 2,
                "lefthand_kpts": [0] * 63,
                "lefthand_box": [0, 0, 0, 0],
                "lefthand_valid": False,
                "righthand_kpts": [0] * 63,
                "righthand_valid": False,
            },
        ],
    }
    path = tmp_path / "annotations" / "coco_wholebody_val.json"
    path.write_text(json.dumps(data))
    ds = open_dataset(f"coco:{path}?split=all")  # images found in ../images
    assert len(ds) == 1  # the image without valid hands is skipped
    s = ds[0]
    assert [h.handedness for h in s.hands] == ["left", "right"]
    h = s.hands[0]
    np.testing.assert_allclose(h.box, [8, 9, 53, 44])
    np.testing.assert_allclose(h.keypoints[[0, 4]], [[12, 13], [40, 30]], atol=1e-4)
    assert h.keypoint_scores[5] == 0 and h.keypoint_scores[6] == 0 and h.keypoint_scores.sum() == 19
    np.testing.assert_allclose(h.keypoints[6], [30.5, 26.5])  # unlabelled: box centre
    assert len(open_dataset(f"coco:{path}?split=all&empty=true")) == 2


def test_plain_coco_21_keypoints(tmp_path):
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(tmp_path / "0.jpg")
    data = {
        "images": [{"id": 7, "file_name": "0.jpg"}],
        "annotations": [
            {"image_id": 7, "keypoints": _kpts(3), "bbox": [9, 9, 42, 32], "category_id": 1}
        ],
        "categories": [{"id": 1, "name": "hand", "keypoints": [str(i) for i in range(21)]}],
    }
    (tmp_path / "onehand.json").write_text(json.dumps(data))
    images = tmp_path
    ds = open_dataset(f"coco:{tmp_path / 'onehand.json'}?images={images}&split=all")
    h = ds[0].hands[0]
    assert h.handedness == "hand" and h.keypoint_scores.sum() == 21
    np.testing.assert_allclose(h.keypoints[4], [40, 30], atol=1e-4)
