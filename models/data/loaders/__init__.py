"""Loaders of public hand datasets, each reading the dataset's own published layout.

Each module has `load(root, *, split, **options) -> IndexedDataset` (a sequence of
`models.data.sample.Sample` with `.name`); `models.data.spec.open_dataset` picks them by name.
"""
