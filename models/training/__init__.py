"""Training: TOML configs, the tasks (detector, pose), the training loop, run folders, plots."""
