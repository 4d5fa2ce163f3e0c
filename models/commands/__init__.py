"""Subcommands of `handpose` that belong to the training side."""
