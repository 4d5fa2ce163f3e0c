"""argparse types for counts: a negative (or zero) count is a usage error, not a silent default."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An int >= 1 (frames, repeats, threads, samples, steps)."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text}")
    return value


def non_negative_int(text: str) -> int:
    """An int >= 0 (warm-up frames)."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
