"""Spec source `synthetic`: the procedural renderer `models.data.synthetic.SyntheticHands`.

Splits: train renders `count` items from `seed`; val and test render `count // 10` (at least 1)
items from seed + 1000 and seed + 2000. The spec's `seed=` option overrides open_dataset's seed.
"""

from __future__ import annotations

from collections.abc import Sequence

from models.data.sample import Sample

SPLIT_SEED_OFFSET = {"train": 0, "all": 0, "val": 1000, "test": 2000}


def load(
    *,
    split: str,
    seed: int,
    task: str,
    count: int = 10000,
    size: int = 224,
    gestures: str = "",
) -> Sequence[Sample]:
    """`SyntheticHands` for a split. gestures: comma-free list joined by '/' (e.g. fist/open)."""
    from models.data.synthetic import SyntheticHands

    n = count if split in ("train", "all") else max(1, count // 10)
    names = [g for g in gestures.split("/") if g] or None
    dataset = SyntheticHands(n, seed + SPLIT_SEED_OFFSET[split], task, size, names)
    dataset.name = f"synthetic:count={n}&seed={seed + SPLIT_SEED_OFFSET[split]}&size={size}"
    return dataset
