"""Spec source `dir:PATH`: a folder in the project format (`models.data.handpose_format`).

Splits: if PATH holds `train/`, `val/`, `test/` sub-folders that are datasets, the split picks
one; otherwise PATH itself is the dataset and val/test are its held-out tails
(`common.holdout_indices`).
"""

from __future__ import annotations

from pathlib import Path

from models.data.handpose_format import HandposeDataset
from models.data.loaders.common import IndexedDataset, Subset, holdout_indices


def load(root: Path, *, split: str) -> IndexedDataset:
    """The dataset at `root` (or `root/<split>`) for `split`."""
    if split != "all" and (root / split / "dataset.json").is_file():
        ds = HandposeDataset(root / split)
        return Subset(ds, range(len(ds)), ds.name)
    ds = HandposeDataset(root)
    return Subset(ds, holdout_indices(len(ds), split), f"{ds.name} ({split})")
