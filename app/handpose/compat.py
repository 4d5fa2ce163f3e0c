"""What the runtime needs from Python 3.10+ and Pillow 9.1+, on the Pi's older ones too.

The runtime package runs on the Pi's own Python and libraries: Python 3.9, numpy 1.19.5 and
Pillow 8.1.2 on bullseye; Python 3.11, numpy 1.24.2 and Pillow 9.4.0 on bookworm. Helpers here
stand in for the newer features; `tests/test_py39_runtime.py` keeps the rest of the package off
them. (Pillow's `Image.Resampling` / `Image.Transform` enums are looked up in `geometry`, their
only user.)
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterable, Iterator
from typing import Any


def _zip_strict_py39(*iterables: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
    """`zip(*iterables, strict=True)` written for Python 3.9: ValueError when lengths differ."""
    missing = object()
    for items in itertools.zip_longest(*iterables, fillvalue=missing):
        if any(item is missing for item in items):
            raise ValueError("zip_strict: the iterables have different lengths")
        yield items


if sys.version_info >= (3, 10):  # noqa: UP036 (ruff targets 3.11; the Pi's bullseye has 3.9)

    def zip_strict(*iterables: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
        """`zip(*iterables, strict=True)`: ValueError when the iterables' lengths differ."""
        return zip(*iterables, strict=True)

else:
    zip_strict = _zip_strict_py39
