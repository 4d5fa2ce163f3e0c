"""`handpose bench`: whole-pipeline frames/s and per-stage milliseconds, per model set and mode.

The frames of a clip (default: the bundled sample clip) are decoded into memory first, so the
figures are the pipeline's alone. Every variant, each model set of `--models` (repeatable)
with tracking off and on (`--tracking`), runs the app's per-frame work in one thread,
`HandPipeline` as a stream: detect (or the tracker's prediction), crop, pose, then track ids,
smoothing and gestures ("track"). All variants run in the same process, round-robin when
`--repeat` > 1 (the median run of each is kept), so their ratios compare like with like on a
busy machine.

Printed per variant: frames/s = frames / wall seconds of the loop; "ratio" = frames/s over the
first row's; ms/frame; the mean milliseconds per frame of each stage (a skipped detector counts
0); "non-model %", the share of the frame time spent outside the models' invokes; the share of
frames the detector ran on; hands per frame. The first line names the TFLite interpreter and its
version (`handpose.runner.RUNTIME_VERSION`).

Time split (a table of its own): each `ModelRunner` adds up its invokes' wall and CPU time, so
the detect stage splits into "detect model" (the detector's invokes) and "detect other" (resize,
box decoding, the tracker's prediction), the pose stage into "pose model" and "pose other" (the
crops' keypoint decoding); crop and track are all "other". "model ms" = both models' invokes per
frame, "other ms" = ms/frame - model ms, "non-model %" = other / ms/frame, and "non-model CPU %"
the same from CPU time (process CPU of the run less the invokes' CPU), steadier on a busy
machine where waiting for a core lands in whichever step was running.

Also measured (`handpose.commands.bench_probes`): CPU use of the process over the run ("CPU %",
100 = one core), the peak memory of a fresh process running each model set ("peak MB", and
"models MB" what loading and running the models added to it), and a
second table of model cost: detector and pose-model runs per frame, MACs per frame from each
model's TFLite graph, and the frame time those MACs take on a Raspberry Pi 4 / 5 at assumed
MAC rates (printed under the table). A third lists each model's file, precision and MACs.

Extending: a `Probe` measures something around each timed run (`begin()` before the first
frame, `end(frames)` after the last, returning named numbers), a `Column` prints one of the
numbers; append to `PROBES` / `COLUMNS` (or pass them to `benchmark` / `format_table`). `--json`
writes every number of every row.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from handpose.argtypes import non_negative_int, positive_int
from handpose.capture import FileSource, open_source
from handpose.commands.bench_probes import CpuProbe, ModelCostProbe, peak_memory, rates_note
from handpose.compat import zip_strict
from handpose.errors import HandposeError
from handpose.pipeline.models import ModelSet, load_model_set
from handpose.pipeline.process import HandPipeline
from handpose.runner import RUNTIME_VERSION
from handpose.settings import AppSettings

log = logging.getLogger("handpose.bench")

STAGES: tuple[str, ...] = ("detect", "crop", "pose", "track")


@dataclass
class Variant:
    """One row: a model set and the settings it runs with."""

    name: str
    models: ModelSet
    settings: AppSettings


@dataclass
class Result:
    """The numbers measured for one variant (`metrics`: name -> value)."""

    variant: Variant
    metrics: dict[str, float] = field(default_factory=dict)


class Probe(Protocol):
    """Measures something around a timed run of a variant (CPU time, memory, ...)."""

    def begin(self, variant: Variant) -> None: ...

    def end(self, variant: Variant, frames: int) -> dict[str, float]: ...


@dataclass(frozen=True)
class Column:
    """A printed column: header, the metric it shows, its format (a str.format spec)."""

    header: str
    key: str
    fmt: str = "{:.1f}"

    def cell(self, result: Result) -> str:
        value = result.metrics.get(self.key)
        return "-" if value is None or not np.isfinite(value) else self.fmt.format(value)


#: extra measurements around each run (see the module docstring)
PROBES: list[Probe] = [CpuProbe(), ModelCostProbe()]

#: the table, in order ("name" and "tracking" come first, from the variant)
COLUMNS: list[Column] = [
    Column("frames/s", "fps"),
    Column("ratio", "ratio", "{:.2f}x"),
    Column("ms/frame", "ms_frame"),
    *(Column(f"{stage} ms", f"ms_{stage}") for stage in STAGES),
    Column("non-model %", "other_share", "{:.0%}"),
    Column("detector runs", "detect_share", "{:.0%}"),
    Column("hands/frame", "hands", "{:.2f}"),
    Column("CPU %", "cpu_pct", "{:.0f}"),
    Column("peak MB", "peak_mb", "{:.0f}"),
    Column("models MB", "models_mb", "{:.0f}"),
]

#: the time-split table: model invokes and everything else, ms per frame (module docstring)
SPLIT_COLUMNS: list[Column] = [
    Column("detect model", "ms_detect_model", "{:.2f}"),
    Column("detect other", "ms_detect_other", "{:.2f}"),
    Column("crop", "ms_crop", "{:.2f}"),
    Column("pose model", "ms_pose_model", "{:.2f}"),
    Column("pose other", "ms_pose_other", "{:.2f}"),
    Column("track", "ms_track", "{:.2f}"),
    Column("model ms", "ms_model", "{:.2f}"),
    Column("other ms", "ms_other", "{:.2f}"),
    Column("non-model %", "other_share", "{:.0%}"),
    Column("non-model CPU %", "other_cpu_share", "{:.0%}"),
]

#: the model-cost table (`ModelCostProbe`)
COST_COLUMNS: list[Column] = [
    Column("det runs/frame", "runs_detector", "{:.2f}"),
    Column("pose runs/frame", "runs_pose", "{:.2f}"),
    Column("MMAC/frame", "mmacs_frame", "{:.0f}"),
    Column("CPU ms/frame", "cpu_ms_frame", "{:.1f}"),
    Column("Pi 4 est ms", "est_ms_pi4", "{:.0f}"),
    Column("Pi 4 est fps", "est_fps_pi4", "{:.1f}"),
    Column("Pi 5 est ms", "est_ms_pi5", "{:.0f}"),
    Column("Pi 5 est fps", "est_fps_pi5", "{:.1f}"),
]


def load_frames(source: FileSource, limit: int | None) -> list[tuple[np.ndarray, float]]:
    """Up to `limit` frames (RGB uint8, timestamp s) of a file source, in memory."""
    frames = []
    try:
        while limit is None or len(frames) < limit:
            item = source.read()
            if item is None:
                break
            image, stamp = item
            frames.append((np.ascontiguousarray(image), stamp))
    finally:
        source.close()
    if not frames:
        raise HandposeError(f"{source.name}: no frames to benchmark")
    return frames


def _invoke_totals(models: ModelSet) -> list[tuple[float, float]]:
    """(wall s, CPU s) of the detector's and the pose model's invokes so far."""
    return [(r.invoke_seconds, r.invoke_cpu_seconds) for r in (models.detector, models.pose)]


def run_once(variant: Variant, frames: Sequence[tuple[np.ndarray, float]]) -> dict[str, float]:
    """One timed pass of a fresh `HandPipeline` over `frames`: the variant's metrics."""
    pipeline = HandPipeline(variant.models, variant.settings)
    stage_ms = dict.fromkeys(STAGES, 0.0)
    detections = hands = 0
    for probe in PROBES:
        probe.begin(variant)
    invokes = _invoke_totals(variant.models)
    cpu = time.process_time()
    start = time.perf_counter()
    for image, stamp in frames:
        hands += len(pipeline(image, timestamp=stamp))
        detections += pipeline.detected
        for stage in STAGES:
            stage_ms[stage] += pipeline.timings.get(stage, 0.0)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    invokes = [
        (wall - wall0, used - used0)
        for (wall, used), (wall0, used0) in zip_strict(_invoke_totals(variant.models), invokes)
    ]
    n = len(frames)
    metrics = {
        "frames": float(n),
        "fps": n / elapsed if elapsed > 0 else float("nan"),
        "ms_frame": elapsed * 1e3 / n,
        "detect_share": detections / n,
        "hands": hands / n,
        **{f"ms_{stage}": total / n for stage, total in stage_ms.items()},
        **split_metrics(stage_ms, invokes, elapsed, cpu, n),
    }
    for probe in PROBES:
        metrics.update(probe.end(variant, n))
    return metrics


def split_metrics(
    stage_ms: dict[str, float],
    invokes: Sequence[tuple[float, float]],
    elapsed: float,
    cpu: float,
    frames: int,
) -> dict[str, float]:
    """The time split of a run (module docstring), per frame.

    Args:
        stage_ms: total milliseconds of each stage over the run.
        invokes: (wall s, CPU s) of the detector's and the pose model's invokes over the run.
        elapsed, cpu: wall and process CPU seconds of the run.
        frames: frames in the run.
    """
    (det_wall, det_cpu), (pose_wall, pose_cpu) = invokes
    n = max(frames, 1)
    ms_frame, model = elapsed * 1e3 / n, (det_wall + pose_wall) * 1e3 / n
    cpu_frame, cpu_model = cpu * 1e3 / n, (det_cpu + pose_cpu) * 1e3 / n
    return {
        "ms_detect_model": det_wall * 1e3 / n,
        "ms_detect_other": (stage_ms["detect"] - det_wall * 1e3) / n,
        "ms_pose_model": pose_wall * 1e3 / n,
        "ms_pose_other": (stage_ms["pose"] - pose_wall * 1e3) / n,
        "ms_model": model,
        "ms_other": ms_frame - model,
        "other_share": (ms_frame - model) / ms_frame if ms_frame > 0 else float("nan"),
        "cpu_ms_model": cpu_model,
        "other_cpu_share": (cpu_frame - cpu_model) / cpu_frame if cpu_frame > 0 else float("nan"),
    }


def benchmark(
    variants: Sequence[Variant],
    frames: Sequence[tuple[np.ndarray, float]],
    repeat: int = 1,
    warmup: int = 5,
    progress: Callable[[str], None] | None = None,
) -> list[Result]:
    """Every variant over the frames, `repeat` times round-robin; per variant the run with the
    median frames/s is kept; "ratio" is frames/s over the first variant's."""
    for variant in variants:  # warm the interpreters (first-run allocations) out of the timing
        run_once(variant, frames[:warmup])
    runs: list[list[dict[str, float]]] = [[] for _ in variants]
    for r in range(repeat):
        for i, variant in enumerate(variants):
            if progress:
                progress(f"run {r + 1}/{repeat}: {variant.name}")
            runs[i].append(run_once(variant, frames))
    results = []
    for variant, measured in zip_strict(variants, runs):
        ordered = sorted(measured, key=lambda m: m["fps"])
        results.append(Result(variant, dict(ordered[(len(ordered) - 1) // 2])))
    first = results[0].metrics["fps"] if results else float("nan")
    for result in results:
        result.metrics["ratio"] = result.metrics["fps"] / first
    return results


def format_table(results: Sequence[Result], columns: Sequence[Column] | None = None) -> str:
    """A plain-text table with a header row; numbers right-aligned."""
    columns = list(COLUMNS if columns is None else columns)
    headers = ["models", "tracking", *(c.header for c in columns)]
    rows = [
        [
            r.variant.name,
            "on" if r.variant.settings.tracking else "off",
            *(c.cell(r) for c in columns),
        ]
        for r in results
    ]
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = []
    for row in [headers, *rows]:
        cells = [
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip_strict(row, widths))
        ]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def model_lines(results: Sequence[Result]) -> str:
    """One line per model set: each model's file, task, precision and MMACs per run."""
    lines, seen = [], set()
    probe = next((p for p in PROBES if isinstance(p, ModelCostProbe)), ModelCostProbe())
    for result in results:
        models = result.variant.models
        if models.folder in seen:
            continue
        seen.add(models.folder)
        parts = []
        for role in ("detector", "pose"):
            runner = getattr(models, role)
            meta = runner.metadata
            macs = probe.macs(runner)
            cost = f"{macs / 1e6:.1f} MMACs" if macs is not None else "MACs unknown"
            parts.append(f"{meta.model_file} ({meta.family} {meta.task}, {meta.precision}, {cost})")
        lines.append(f"{result.variant.name}: " + "; ".join(parts))
    return "\n".join(lines)


def _setting(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--models",
        metavar="DIR",
        action="append",
        help="model folder, repeatable (default: the `models_dir` setting, else bundled)",
    )
    parser.add_argument(
        "--source", default="sample", help="sample (bundled clip), a video FILE or an image DIR"
    )
    parser.add_argument(
        "--frames", type=positive_int, metavar="N", help="at most N frames (default all)"
    )
    parser.add_argument(
        "--tracking",
        choices=("both", "off", "on"),
        default="both",
        help="rows without and with tracking (default both, off first)",
    )
    parser.add_argument(
        "--repeat",
        type=positive_int,
        default=1,
        help="timed passes per row, the median kept (default 1)",
    )
    parser.add_argument(
        "--warmup", type=non_negative_int, default=5, help="untimed frames per row (default 5)"
    )
    parser.add_argument(
        "--threads", type=positive_int, help="TFLite threads (default: `num_threads`)"
    )
    parser.add_argument("--settings", metavar="FILE", help="act settings JSON (default built-in)")
    parser.add_argument(
        "--set",
        metavar="KEY=VALUE",
        type=_setting,
        action="append",
        default=[],
        help="override one setting, repeatable (e.g. --set detect_interval=5)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write every number as JSON")
    parser.add_argument(
        "--memory-frames",
        type=int,
        default=30,
        metavar="N",
        help="frames the peak-memory process runs per model set (0: skip; default 30)",
    )


def _short(folder: Path) -> str:
    parts = folder.resolve().parts
    return "/".join(parts[-2:]) if len(parts) >= 2 else str(folder)


def main(args: argparse.Namespace) -> int:
    settings = AppSettings.load(args.settings) if args.settings else AppSettings()
    changes = dict(args.set)
    if args.threads is not None:
        changes["num_threads"] = args.threads
    if changes:
        settings = settings.replace(**changes)
    if args.repeat < 1 or (args.frames is not None and args.frames < 1) or args.warmup < 0:
        raise HandposeError("--repeat and --frames must be at least 1, --warmup at least 0")
    source = open_source(args.source, settings)
    if not isinstance(source, FileSource):
        raise HandposeError(f"--source {args.source}: bench needs a video file or image folder")
    frames = load_frames(source, args.frames)
    modes = {"both": (False, True), "off": (False,), "on": (True,)}[args.tracking]
    variants = []
    for folder in args.models or [settings.models_dir]:
        models = load_model_set(folder, settings.num_threads)
        for tracking in modes:
            mode = settings.replace(tracking=tracking)
            variants.append(Variant(_short(models.folder), models, mode))
    height, width = frames[0][0].shape[:2]
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    print(
        f"{source.name}: {len(frames)} frames {width}x{height}; {settings.num_threads} "
        f"thread(s); detect_interval {settings.detect_interval}, track_threshold "
        f"{settings.track_threshold:g}, score_threshold {settings.score_threshold:g}; "
        f"{os.cpu_count()} CPUs, load {load}; interpreter {RUNTIME_VERSION}"
    )
    results = benchmark(variants, frames, args.repeat, args.warmup, log.info)
    if args.memory_frames > 0:
        measured: dict[Path, dict[str, float]] = {}
        for result in results:
            folder = result.variant.models.folder
            if folder not in measured:
                log.info("peak memory: %s", folder)
                count = min(args.memory_frames, len(frames))
                measured[folder] = peak_memory(folder, args.source, count, settings)
            result.metrics.update(measured[folder])
    print(format_table(results))
    print()
    print(format_table(results, COST_COLUMNS))
    print(rates_note())
    print()
    print("time split, ms per frame (model = the interpreters' invokes):")
    print(format_table(results, SPLIT_COLUMNS))
    print()
    print(model_lines(results))
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        rows = [
            {"models": str(r.variant.models.folder), "tracking": r.variant.settings.tracking,
             **r.metrics}
            for r in results
        ]  # fmt: skip
        out.write_text(json.dumps({"source": source.name, "rows": rows}, indent=2) + "\n")
    return 0
