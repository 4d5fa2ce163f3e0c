"""Dataset spec grammar, splits and mixing (models.data.spec)."""

from __future__ import annotations

import numpy as np
import pytest

from handpose.errors import HandposeError
from handpose.hand import Hand
from models.data.handpose_format import DatasetWriter
from models.data.loaders.common import holdout_indices
from models.data.sample import Sample
from models.data.spec import MixedDataset, open_dataset, parse_spec


def _write(path, n, tag):
    with DatasetWriter(path, "detection", tag) as w:
        for i in range(n):
            image = np.full((16, 16, 3), i * 10, np.uint8)
            w.add(Sample(image, [Hand("right", 1.0, [1, 1, 5 + i % 5, 6])], source=tag))


def test_parse_grammar():
    parts = parse_spec(
        "synthetic*3 + rhd:/data/RHD?limit=5*0.5+coco:/a/b.json?images=/x&limit=3"
        "+synthetic?seed=7+synthetic:seed=3&count=4"
    )
    assert [p.name for p in parts] == ["synthetic", "rhd", "coco", "synthetic", "synthetic"]
    assert parts[0].weight == 3 and parts[0].path is None
    assert (parts[1].path, parts[1].options, parts[1].weight) == ("/data/RHD", {"limit": "5"}, 0.5)
    assert parts[2].options == {"images": "/x", "limit": "3"} and parts[2].weight is None
    assert parts[3].options == {"seed": "7"} and parts[4].options == {"seed": "3", "count": "4"}


@pytest.mark.parametrize(
    "spec, message",
    [
        ("", "empty"),
        ("synthetic++dir:/x", "empty part"),
        ("imagenet:/data", "unknown source 'imagenet'"),
        ("rhd", "rhd needs a path"),
        ("dir:/no/such/folder", "/no/such/folder does not exist"),
        ("synthetic:count=5&colour=red", "unknown option"),
        ("synthetic:count=many", "count='many' must be int"),
        ("synthetic:count", "KEY=VALUE"),
        ("synthetic*0", "weight must be positive"),
    ],
)
def test_errors_name_the_part(spec, message):
    with pytest.raises(HandposeError, match=message):
        open_dataset(spec)


def test_dir_source_holdout_and_split_folders(tmp_path):
    _write(tmp_path / "one", 40, "one")
    train = open_dataset(f"dir:{tmp_path / 'one'}")
    val = open_dataset(f"dir:{tmp_path / 'one'}", split="val")
    test = open_dataset(f"dir:{tmp_path / 'one'}", split="test")
    assert (len(train), len(val), len(test)) == (36, 2, 2)
    assert val[0].name == "images/000036.jpg" and test[1].name == "images/000039.jpg"
    assert len(open_dataset(f"dir:{tmp_path / 'one'}?split=all", split="val")) == 40
    assert len(open_dataset(f"dir:{tmp_path / 'one'}?limit=7")) == 7
    for split in ("train", "val"):
        _write(tmp_path / "two" / split, 3 if split == "val" else 5, split)
    assert len(open_dataset(f"dir:{tmp_path / 'two'}", split="val")) == 3
    assert open_dataset(f"dir:{tmp_path / 'two'}")[0].source == "train"
    assert "dir:" in open_dataset(f"dir:{tmp_path / 'two'}").name


def test_holdout_partitions():
    for n in (3, 20, 21, 1000):
        parts = [holdout_indices(n, s) for s in ("train", "val", "test")]
        joined = np.concatenate(parts)
        assert sorted(joined.tolist()) == list(range(n)) and all(len(p) for p in parts)


def test_mixing_by_weight(tmp_path):
    _write(tmp_path / "a", 10, "a")
    _write(tmp_path / "b", 20, "b")
    mix = open_dataset(f"dir:{tmp_path / 'a'}?split=all*3 + dir:{tmp_path / 'b'}?split=all")
    assert isinstance(mix, MixedDataset) and len(mix) == 50
    sources = [mix.datasets[p].name for p in mix.part]
    # each part in proportion in every prefix: 3 a per 2 b
    first10 = [mix[i].source for i in range(10)]
    assert first10.count("a") == 6 and first10.count("b") == 4
    assert sources.count(mix.datasets[0].name) == 30
    # each a item exactly 3 times, each b item once
    a_items = mix.item[mix.part == 0]
    assert np.bincount(a_items, minlength=10).tolist() == [3] * 10
    assert sorted(mix.item[mix.part == 1].tolist()) == list(range(20))
    half = open_dataset(f"dir:{tmp_path / 'b'}?split=all*0.5", seed=1)
    assert len(half) == 10 and len(set(half.item.tolist())) == 10
    again = open_dataset(f"dir:{tmp_path / 'b'}?split=all*0.5", seed=1)
    assert half.item.tolist() == again.item.tolist()


def test_synthetic_source_and_splits():
    pytest.importorskip("models.data.synthetic")
    train = open_dataset("synthetic:count=20&size=64", seed=5)
    val = open_dataset("synthetic:count=20&size=64", split="val", seed=5)
    assert len(train) == 20 and len(val) == 2
    assert train[0].image.shape == (64, 64, 3) and train.name.startswith("synthetic")
    assert not np.array_equal(train[0].image, val[0].image)
    seeded = open_dataset("synthetic?seed=9&count=3&size=64", seed=5)
    assert seeded[0].name.startswith("detection-9-")
    pose = open_dataset("synthetic:count=2&size=64", task="pose")
    assert len(pose[0].hands) == 1
