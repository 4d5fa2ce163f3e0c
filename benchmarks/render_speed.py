"""Render speed of the synthetic hand renderer on one CPU core.

Usage: python benchmarks/render_speed.py [--count 200] [--size 224] [--seed 0]

Pins the process to one core (sched_setaffinity) with one thread for numpy / OpenMP, renders
`count` detection scenes and `count` pose crops, and prints images/s by wall clock and by CPU
time (CPU time is the figure to trust on a shared machine), the time to pre-render 100k images
extrapolated from the CPU-time rate, and the load average seen before and after.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout


def measure(task: str, count: int, size: int, seed: int) -> tuple[float, float]:
    """(images/s by wall clock, images/s by process CPU time) over `count` fresh samples."""
    from models.data.synthetic import SyntheticHands

    data = SyntheticHands(count + 5, seed=seed, task=task, image_size=size)
    for i in range(5):  # warm-up: imports, background photo cache
        data[count + i]
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(count):
        data[i]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return count / wall, count / cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    load_before = os.getloadavg()
    print(f"one core, {args.count} images per task at {args.size}x{args.size}, "
          f"cpus visible {os.cpu_count()}, load average before {load_before[0]:.2f}")  # fmt: skip
    for task in ("detection", "pose"):
        wall_rate, cpu_rate = measure(task, args.count, args.size, args.seed)
        print(
            f"{task:9s}: {wall_rate:6.1f} images/s wall, {cpu_rate:6.1f} images/s CPU; "
            f"100k images in {100_000 / cpu_rate / 60:5.1f} min CPU "
            f"({100_000 / wall_rate / 60:5.1f} min at this wall rate)"
        )
    print(f"load average after {os.getloadavg()[0]:.2f} (machine shared: wall rates vary)")


if __name__ == "__main__":
    main()
