"""Datasets: the sample type, the synthetic renderer, loaders for real datasets, augmentation."""
