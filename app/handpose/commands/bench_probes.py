"""What `handpose bench` measures besides time: CPU use, peak memory, MACs, Pi 4 / Pi 5 estimates.

- `CpuProbe`: process CPU seconds (user + system, every thread: the interpreters' worker
  threads included) over the timed run. "CPU %" = CPU s / wall s x 100 (100 = one core busy;
  up to 100 x cores); "CPU ms/frame" = CPU s / frames.
- `ModelCostProbe`: counts the detector and pose-model invocations of the run (crops that the
  landmark model rejects included; `ModelRunner.invokes`) and, with each model's MAC count from
  its TFLite graph
  (`handpose.tflite_macs`), gives MACs per frame = det runs x det MACs + pose runs x pose MACs
  and an estimated frame time on a Raspberry Pi 4 and 5, model compute only:

      Pi ms/frame = sum over models of runs per frame x MACs / rate(board, precision)

  with the assumed sustained rates `PI_MAC_RATES` (4 threads, TFLite + XNNPACK, MobileNet-class
  networks; the fp16-weight MediaPipe models run in fp32 after their weights are dequantized).
  Frame resizes, crops and decoding are not in it (the measured "crop" and "track" columns
  show their share on this machine).
- `peak_memory`: the peak resident memory (VmHWM) of a fresh Python process that loads one
  model set and runs the same pipeline over the first frames of the same source, streamed (not
  held in memory); "peak MB" is that peak, "models MB" its growth from loading the model set
  and running it (interpreters, arenas, crop buffers) over the process before (imports, one
  decoded frame).

The rates (`PI_MAC_RATES`) are assumptions, derived from the cores' SIMD width and a typical
efficiency, checked against published latencies (README, "`handpose bench`"):
    Pi 4, 4 x Cortex-A72 1.5 GHz (Armv8.0, no dot product): fp32 peak 4 x 1.5 GHz x 4 MAC/cycle
    (one 128-bit FMLA per cycle) = 24 GMAC/s, about 25 % sustained on depthwise-separable
    networks -> 6 GMAC/s; int8 without SDOT gains about 1.7x -> 10 GMAC/s.
    Pi 5, 4 x Cortex-A76 2.4 GHz (Armv8.2 with SDOT): fp32 peak 4 x 2.4 GHz x 8 MAC/cycle
    (two 128-bit FMLA pipes) = 77 GMAC/s -> 25 % = 19 GMAC/s; int8 with SDOT (32 MAC/cycle peak)
    about 2x fp32 in XNNPACK on these networks -> 38 GMAC/s. Raspberry Pi rates the Pi 5 at
    2-3x the Pi 4's CPU performance (launch announcement, October 2023); these give 3.2x (fp32)
    and 3.8x (int8).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

#: assumed sustained MAC rates (MAC/s) per board and precision (module docstring)
PI_MAC_RATES: dict[str, dict[str, float]] = {
    "Pi 4": {"int8": 10e9, "float": 6e9},
    "Pi 5": {"int8": 38e9, "float": 19e9},
}
ROLES = ("detector", "pose")


def rate_key(precision: str) -> str:
    """ "int8" for integer models, "float" for fp32 and fp16-weight models."""
    return "int8" if precision == "int8" else "float"


class CpuProbe:
    """Process CPU time over a run: "cpu_pct" and "cpu_ms_frame" (module docstring)."""

    def __init__(self) -> None:
        self._cpu = self._wall = 0.0

    def begin(self, variant: Any) -> None:
        times = os.times()
        self._cpu = times.user + times.system
        self._wall = time.perf_counter()

    def end(self, variant: Any, frames: int) -> dict[str, float]:
        times = os.times()
        cpu = times.user + times.system - self._cpu
        wall = time.perf_counter() - self._wall
        return {
            "cpu_pct": 100.0 * cpu / wall if wall > 0 else float("nan"),
            "cpu_ms_frame": 1e3 * cpu / max(frames, 1),
        }


class ModelCostProbe:
    """Model invocations per frame, MACs per frame and Pi 4 / Pi 5 estimates of a run.

    Args:
        rates: board -> {"int8" | "float": MAC/s} (default `PI_MAC_RATES`).
    """

    def __init__(self, rates: dict[str, dict[str, float]] | None = None) -> None:
        self.rates = rates or PI_MAC_RATES
        self._macs: dict[Path, int | None] = {}
        self._counts: dict[str, int] = {}

    def macs(self, runner: Any) -> int | None:
        """MACs of one run of `runner`'s model (counted from its graph once, then cached)."""
        path = Path(runner.metadata.model_path)
        if path not in self._macs:
            from handpose.tflite_macs import count_tflite_macs

            self._macs[path] = count_tflite_macs(path)
        return self._macs[path]

    def begin(self, variant: Any) -> None:
        self._counts = {role: getattr(variant.models, role).invokes for role in ROLES}

    def end(self, variant: Any, frames: int) -> dict[str, float]:
        n = max(frames, 1)
        metrics: dict[str, float] = {}
        total = 0.0
        estimates = dict.fromkeys(self.rates, 0.0)
        for role in ROLES:
            runner = getattr(variant.models, role)
            runs = (runner.invokes - self._counts[role]) / n
            macs = self.macs(runner)
            metrics[f"runs_{role}"] = runs
            metrics[f"mmacs_{role}"] = macs / 1e6 if macs is not None else float("nan")
            if macs is None:
                total = float("nan")
                continue
            total += runs * macs
            key = rate_key(runner.metadata.precision)
            for board, rates in self.rates.items():
                estimates[board] += runs * macs / rates[key] * 1e3
        metrics["mmacs_frame"] = total / 1e6
        known = bool(np.isfinite(total))
        for board, ms in estimates.items():
            slug = board.lower().replace(" ", "")
            metrics[f"est_ms_{slug}"] = ms if known else float("nan")
            metrics[f"est_fps_{slug}"] = 1e3 / ms if known and ms > 0 else float("nan")
        return metrics


def _status_mb(field: str) -> float | None:
    """A memory figure of /proc/self/status in MB (None off Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def memory_child(argv: list[str]) -> None:
    """Entry of the `peak_memory` process: argv = [models DIR, source, frames, settings JSON].

    Prints one JSON line {"baseline_mb", "peak_mb"}.
    """
    import resource

    from handpose.capture import open_source
    from handpose.pipeline.models import load_model_set
    from handpose.pipeline.process import HandPipeline
    from handpose.settings import AppSettings

    folder, spec, count, data = argv[0], argv[1], int(argv[2]), json.loads(argv[3])
    settings = AppSettings.from_dict(data, "bench")
    source = open_source(spec, settings)
    first = source.read()
    baseline = _status_mb("VmRSS")
    models = load_model_set(folder, settings.num_threads)
    pipeline = HandPipeline(models, settings)
    item, n = first, 0
    while item is not None and n < count:
        pipeline(item[0], timestamp=item[1])
        n += 1
        item = source.read()
    source.close()
    peak = _status_mb("VmHWM")
    if peak is None:  # not Linux: ru_maxrss (kB on Linux, bytes on macOS)
        scale = 1 / (1024.0 * 1024.0) if sys.platform == "darwin" else 1 / 1024.0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    print(json.dumps({"baseline_mb": baseline, "peak_mb": peak, "frames": n}))


def peak_memory(folder: Path, source: str, frames: int, settings: Any) -> dict[str, float]:
    """{"peak_mb", "models_mb"} of a fresh process running `folder` (module docstring)."""
    data = asdict(settings)
    code = (
        "import sys; from handpose.commands.bench_probes import memory_child; "
        "memory_child(sys.argv[1:])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(folder), source, str(frames), json.dumps(data)],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"memory measurement of {folder} failed: {reason}")
    out = json.loads(lines[-1])
    peak, base = out.get("peak_mb"), out.get("baseline_mb")
    return {
        "peak_mb": float(peak) if peak is not None else float("nan"),
        "models_mb": float(peak - base) if peak is not None and base is not None else float("nan"),
    }


def rates_note(rates: dict[str, dict[str, float]] | None = None) -> str:
    """One line naming the assumed MAC rates."""
    rates = rates or PI_MAC_RATES
    parts = [
        f"{board} int8 {r['int8'] / 1e9:g} / float {r['float'] / 1e9:g} GMAC/s"
        for board, r in rates.items()
    ]
    return "Pi estimates: model compute only, assumed sustained rates " + "; ".join(parts)
