"""`handpose convert bench DIR`: latency of every converted model with the Pi's interpreter.

For each precision folder of DIR (`int8/`, `fp16/`, `fp32/`, or DIR itself when it holds the
JSON files) and each model in it (`detector.json`, `pose.json`), the model runs through
`handpose.runner.ModelRunner` (tflite-runtime, exactly what the app calls, uint8 pixels in,
dequantized float outputs out) on a fixed random image, `--warmup` times untimed then `--runs`
times timed, for each `--threads` count. Printed per row: model, precision, file size in bytes,
MACs per image (from the metadata), then median and 90th-percentile latency in ms per thread
count.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from handpose.argtypes import non_negative_int, positive_int
from handpose.errors import HandposeError
from handpose.metadata import PRECISIONS, ModelMetadata

MODELS = ("detector", "pose")


def find_models(root: str | Path) -> list[ModelMetadata]:
    """The metadata files of a conversion folder, ordered by precision then model."""
    root = Path(root)
    found = []
    folders = [root / p for p in PRECISIONS if (root / p).is_dir()] or [root]
    for folder in folders:
        for name in MODELS:
            if (folder / f"{name}.json").is_file():
                found.append(ModelMetadata.load(folder / f"{name}.json"))
    if not found:
        raise HandposeError(
            f"{root}: no detector.json / pose.json (nor in int8/, fp16/, fp32/); "
            "write them with `handpose convert keras --out DIR`"
        )
    return found


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table (markdown pipes): numbers right-aligned, text left-aligned."""
    cells = [[str(h) for h in headers]] + [
        [f"{v:.4g}" if isinstance(v, float) else str(v) for v in row] for row in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        text = [c.rjust(w) if _numeric(c) else c.ljust(w) for c, w in zip(row, widths, strict=True)]
        lines.append("| " + " | ".join(text) + " |")
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def time_model(
    meta: ModelMetadata, threads: int, runs: int, warmup: int = 3
) -> tuple[float, float]:
    """(median, p90) milliseconds of `ModelRunner.run` on one random uint8 image."""
    from handpose.runner import ModelRunner

    runner = ModelRunner(meta, num_threads=threads)
    height, width = runner.input_size
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    for _ in range(warmup):
        runner.run(image)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        runner.run(image)
        times.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(times)), float(np.percentile(times, 90))


def benchmark(
    root: str | Path, threads: Sequence[int], runs: int, warmup: int = 3
) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows of the latency table (see module docstring)."""
    headers = ["model", "precision", "size_bytes", "MMACs"]
    for t in threads:
        headers += [f"{t}T median ms", f"{t}T p90 ms"]
    rows = []
    for meta in find_models(root):
        macs = meta.extra.get("macs")
        row: list[Any] = [
            meta.task,
            meta.precision,
            meta.model_path.stat().st_size,
            f"{macs / 1e6:.1f}" if macs else "-",
        ]
        for t in threads:
            median, p90 = time_model(meta, t, runs, warmup)
            row += [f"{median:.2f}", f"{p90:.2f}"]
        rows.append(row)
    return headers, rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="folder written by `handpose convert keras`")
    parser.add_argument(
        "--threads", type=positive_int, nargs="+", default=[1, 2, 4], help="thread counts (1 2 4)"
    )
    parser.add_argument("--runs", type=positive_int, default=30, help="timed runs per cell (30)")
    parser.add_argument("--warmup", type=non_negative_int, default=3, help="untimed runs first (3)")


def main(args: argparse.Namespace) -> int:
    from handpose.runner import RUNTIME

    if args.runs < 1 or any(t < 1 for t in args.threads):
        raise HandposeError("convert bench: --runs and --threads must be >= 1")
    headers, rows = benchmark(args.dir, args.threads, args.runs, args.warmup)
    print(f"interpreter: {RUNTIME}; {args.runs} runs after {args.warmup} warm-up")
    print(format_table(headers, rows))
    return 0
