"""Invoke time of each model under every installed TFLite interpreter and thread count.

Usage: python benchmarks/interpreters.py [--models DIR ...] [--threads 1 2 4] [--invokes 40]
                                         [--repeat 3] [--json FILE]

Times `interpreter.invoke()` of every .tflite file of the bundled model set
(app/handpose/assets/models/default) and of each `--models` folder (e.g. MediaPipe's), under
each interpreter that imports here: ai-edge-litert, tflite-runtime and TensorFlow's own
(`tensorflow.lite`), with 1, 2 and 4 threads. It backs the interpreter order of
`handpose.runner` (ai-edge-litert first: XNNPACK runs int8 models; tflite-runtime 2.14 runs them
on its built-in kernels).

Each interpreter runs in a child process of its own (their bundled TFLite libraries are not
meant to share a process); the children take turns, `--repeat` rounds of all of them, so a busy
machine slows them alike. A child loads each model with each thread count, invokes it 5 times
untimed, then `--invokes` times (fewer when they take over `--seconds`) on random input, and
reports the median wall ms per invoke and the mean process CPU ms per invoke. Printed per model:
ms and CPU ms (medians over the rounds), and "x base" / "x base CPU" = ms / ms and CPU ms / CPU ms
of the base row (the first interpreter with the first thread count) of the same model. On a busy
machine wall ms is mostly waiting for a core: compare CPU ms there (with 1 thread CPU ms is the
invoke's own time); thread counts above the free cores measure waiting, not the interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "app" / "handpose" / "assets" / "models" / "default"

#: name -> (module with Interpreter, distribution that gives its version)
INTERPRETERS: dict[str, tuple[str, str]] = {
    "ai-edge-litert": ("ai_edge_litert.interpreter", "ai-edge-litert"),
    "tflite-runtime": ("tflite_runtime.interpreter", "tflite-runtime"),
    "tensorflow": ("tensorflow.lite.python.interpreter", "tensorflow-cpu"),
}


def installed() -> list[str]:
    """The interpreters whose module can be found here (not imported: TensorFlow takes seconds)."""
    from importlib.util import find_spec

    names = []
    for name, (module, _) in INTERPRETERS.items():
        try:
            found = find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if found:
            names.append(name)
    return names


def child(name: str, models: list[str], threads: list[int], invokes: int, seconds: float) -> None:
    """Child process: time every model x thread count under one interpreter; one JSON line."""
    import importlib
    from importlib.metadata import version

    import numpy as np

    module, distribution = INTERPRETERS[name]
    Interpreter = importlib.import_module(module).Interpreter
    rng = np.random.default_rng(0)
    rows = []
    for path in models:
        for count in threads:
            interpreter = Interpreter(model_path=path, num_threads=count)
            interpreter.allocate_tensors()
            for detail in interpreter.get_input_details():
                dtype = np.dtype(detail["dtype"])
                if np.issubdtype(dtype, np.integer):
                    info = np.iinfo(dtype)
                    data = rng.integers(info.min, info.max, detail["shape"], endpoint=True)
                else:
                    data = rng.uniform(0, 1, detail["shape"])
                interpreter.set_tensor(detail["index"], data.astype(dtype))
            for _ in range(5):
                interpreter.invoke()
            times, cpu, deadline = [], time.process_time(), time.perf_counter() + seconds
            while len(times) < invokes and (len(times) < 5 or time.perf_counter() < deadline):
                start = time.perf_counter()
                interpreter.invoke()
                times.append(time.perf_counter() - start)
            cpu = time.process_time() - cpu
            rows.append(
                {
                    "model": path,
                    "threads": count,
                    "ms": 1e3 * statistics.median(times),
                    "cpu_ms": 1e3 * cpu / len(times),
                    "invokes": len(times),
                }
            )
    print(json.dumps({"interpreter": name, "version": version(distribution), "rows": rows}))


def run_child(
    name: str, models: list[Path], threads: list[int], invokes: int, seconds: float
) -> dict:
    command = [
        sys.executable, __file__, "--child", name, "--invokes", str(invokes),
        "--seconds", str(seconds), "--threads", *map(str, threads),
        "--models-files", *map(str, models),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{name}: the child failed: {reason}")
    return json.loads(lines[-1])


def label(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        metavar="DIR",
        action="append",
        default=[],
        help="another folder of .tflite files (repeatable); the bundled set comes first",
    )
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--invokes", type=int, default=40, help="timed invokes per model (40)")
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="fewer invokes past this (3 s, at least 5)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds of all interpreters (3)")
    parser.add_argument("--interpreters", nargs="+", choices=list(INTERPRETERS),
                        help="default: every installed one")  # fmt: skip
    parser.add_argument("--json", metavar="FILE", help="also write every measurement as JSON")
    parser.add_argument("--child", choices=list(INTERPRETERS), help=argparse.SUPPRESS)
    parser.add_argument("--models-files", nargs="+", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.models_files, args.threads, args.invokes, args.seconds)
        return

    models = sorted(BUNDLED.glob("*.tflite"))
    for folder in args.models:
        models += sorted(Path(folder).glob("*.tflite"))
    names = args.interpreters or installed()
    if not models or not names:
        sys.exit(f"nothing to time: {len(models)} models, interpreters {names}")
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"{len(models)} models x {names} x threads {args.threads}; {args.invokes} invokes "
          f"each, {args.repeat} rounds; {os.cpu_count()} CPUs, load before {load}")  # fmt: skip
    rounds: dict[str, list[dict]] = {name: [] for name in names}
    versions: dict[str, str] = {}
    for r in range(args.repeat):
        for name in names:
            print(f"  round {r + 1}/{args.repeat}: {name}", file=sys.stderr, flush=True)
            out = run_child(name, models, args.threads, args.invokes, args.seconds)
            versions[name] = out["version"]
            rounds[name].append({(row["model"], row["threads"]): row for row in out["rows"]})

    table = []
    for path in models:
        base = None
        for name in names:
            for count in args.threads:
                key = (str(path), count)
                ms = statistics.median(run[key]["ms"] for run in rounds[name])
                cpu = statistics.median(run[key]["cpu_ms"] for run in rounds[name])
                base = (ms, cpu) if base is None else base
                row = (label(path), f"{name} {versions[name]}", count, ms, cpu)
                table.append((*row, ms / base[0], cpu / base[1]))
    headers = ("model", "interpreter", "threads", "ms", "CPU ms", "x base", "x base CPU")
    cells = [
        (m, i, str(t), f"{ms:.2f}", f"{cpu:.2f}", f"{ratio:.2f}x", f"{cpu_ratio:.2f}x")
        for m, i, t, ms, cpu, ratio, cpu_ratio in table
    ]
    widths = [max(len(row[c]) for row in [headers, *cells]) for c in range(len(headers))]
    for n, row in enumerate([headers, *cells]):
        padded = (
            value.ljust(width) if c < 2 else value.rjust(width)
            for c, (value, width) in enumerate(zip(row, widths, strict=True))
        )
        print("  ".join(padded).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"load after {load}; x base (CPU) = (CPU) ms / that of the model's first row (the first "
          f"interpreter, {args.threads[0]} thread(s)), same run")  # fmt: skip
    if args.json:
        keys = ("model", "interpreter", "threads", "ms", "cpu_ms", "x_base", "x_base_cpu")
        rows = [dict(zip(keys, row, strict=True)) for row in table]
        Path(args.json).write_text(json.dumps({"versions": versions, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
