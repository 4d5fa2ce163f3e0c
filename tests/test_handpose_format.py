"""Round trip of the project dataset format (models.data.handpose_format)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from handpose.errors import HandposeError
from handpose.hand import Hand
from models.data.handpose_format import DatasetWriter, HandposeDataset
from models.data.sample import Sample


def _sample(seed: int, with_pose: bool = True) -> Sample:
    rng = np.random.default_rng(seed)
    image = np.zeros((48, 64, 3), np.uint8)
    image[10:30, 20:40] = (200, 100, 50)
    hands = []
    kp = rng.uniform(5, 40, (21, 2)).astype(np.float32)
    vis = (rng.uniform(size=21) > 0.3).astype(np.float32)
    j3 = rng.uniform(-50, 500, (21, 3)).astype(np.float32)
    hands.append(
        Hand(
            "left",
            1.0,
            [1.5, 2.25, 40.0, 44.0],
            kp if with_pose else None,
            vis if with_pose else None,
            j3 if with_pose else None,
        )
    )
    hands.append(Hand("hand", 1.0, [3.0, 4.0, 10.0, 12.0]))
    K = np.array([[100.0, 0, 32.0], [0, 101.0, 24.0], [0, 0, 1]]) if with_pose else None
    return Sample(image=image, hands=hands, intrinsics=K, source="test", name=str(seed))


def test_round_trip(tmp_path):
    samples = [_sample(0), _sample(1, with_pose=False), Sample(np.zeros((20, 30, 3), np.uint8))]
    with DatasetWriter(tmp_path / "ds", "detection", "test", "make it") as writer:
        for s in samples:
            writer.add(s)
    info = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert info == {
        "format": "handpose-dataset/1",
        "task": "detection",
        "source": "test",
        "count": 3,
        "command": "make it",
    }
    assert (tmp_path / "ds" / "images" / "000002.jpg").is_file()
    ds = HandposeDataset(tmp_path / "ds")
    assert len(ds) == 3 and ds.task == "detection" and ds.name.startswith("dir:")
    for original, loaded in zip(samples, ds, strict=True):
        assert loaded.image.shape == original.image.shape
        # JPEG q95 of flat colours stays close
        assert np.abs(loaded.image.astype(int) - original.image.astype(int)).mean() < 3
        assert len(loaded.hands) == len(original.hands)
        for a, b in zip(original.hands, loaded.hands, strict=True):
            assert a.handedness == b.handedness
            np.testing.assert_allclose(a.box, b.box, atol=0.005)
            for field in ("keypoints", "keypoint_scores", "joints_3d"):
                va, vb = getattr(a, field), getattr(b, field)
                assert (va is None) == (vb is None)
                if va is not None:
                    np.testing.assert_allclose(va, vb, atol=0.005)
        if original.intrinsics is None:
            assert loaded.intrinsics is None
        else:
            np.testing.assert_allclose(loaded.intrinsics, original.intrinsics)
    assert loaded.hands == [] and ds[-1].name == "images/000002.jpg"


def test_labels_jsonl_layout(tmp_path):
    with DatasetWriter(tmp_path, "pose", "x") as writer:
        writer.add(_sample(3))
    line = json.loads((tmp_path / "labels.jsonl").read_text().splitlines()[0])
    assert line["file"] == "images/000000.jpg" and (line["width"], line["height"]) == (64, 48)
    assert np.asarray(line["hands"][0]["keypoints"]).shape == (21, 3)
    assert np.asarray(line["hands"][0]["joints_3d"]).shape == (21, 3)
    assert "keypoints" not in line["hands"][1]


def test_missing_and_malformed(tmp_path):
    with pytest.raises(HandposeError, match="dataset.json"):
        HandposeDataset(tmp_path)
    with DatasetWriter(tmp_path / "a", "detection", "x") as writer:
        writer.add(_sample(0))
    labels = tmp_path / "a" / "labels.jsonl"
    good = labels.read_text()
    labels.write_text(good + '{"file": "images/000001.jpg"}\n')
    with pytest.raises(HandposeError, match=r"labels.jsonl line 2"):
        HandposeDataset(tmp_path / "a")
    labels.write_text(good + good)
    with pytest.raises(HandposeError, match="count 1"):
        HandposeDataset(tmp_path / "a")
    labels.unlink()
    with pytest.raises(HandposeError, match="labels.jsonl not found"):
        HandposeDataset(tmp_path / "a")
    (tmp_path / "a" / "dataset.json").write_text("{not json")
    with pytest.raises(HandposeError, match=str(tmp_path / "a" / "dataset.json")):
        HandposeDataset(tmp_path / "a")


def test_writer_refuses_existing_dataset(tmp_path):
    DatasetWriter(tmp_path, "detection", "x").close()
    with pytest.raises(HandposeError, match="already holds a dataset"):
        DatasetWriter(tmp_path, "detection", "x")
    with pytest.raises(HandposeError, match="task"):
        DatasetWriter(tmp_path / "b", "segmentation", "x")


def test_missing_image_names_file(tmp_path):
    with DatasetWriter(tmp_path, "detection", "x") as writer:
        writer.add(_sample(0))
    (tmp_path / "images" / "000000.jpg").unlink()
    ds = HandposeDataset(tmp_path / "dataset.json")
    with pytest.raises(HandposeError, match="000000.jpg"):
        ds[0]
