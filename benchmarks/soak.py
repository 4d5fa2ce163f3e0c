"""Soak test: the real actfw Application on a looping video for many frames; memory must not grow.

Usage: python benchmarks/soak.py [--frames 10000] [--source FILE] [--models DIR]
                                 [--settings FILE] [--fail-every N] [--corrupt-every N]
                                 [--max-growth 5] [--warmup 300]

Runs what `app/main` runs on the device (Capture -> Detect -> Crop -> Pose -> Present threads,
overlay drawn for the console's Take Photo through a socket-less `CommandServer`, hand events
serialised as `actfw_core.notify` does, heartbeat every frame) on a video file source that loops,
until `--frames` frames have been read. It prints the resident memory (VmRSS) when the models are
loaded, after the warm-up, every 1000 frames and at the last frame (sampled every 100 frames while
the pipeline runs, so nothing has been freed by the stop), the frames presented and dropped (by
reason), the events sent, and exits with status 1 when the RSS at the last frame exceeds the RSS
after the warm-up by more than `--max-growth` percent (first-use allocations such as interpreter
arenas, decoder buffers and fonts happen during the warm-up; a leak shows as growth after it).

`--fail-every N` makes the pose model raise on every N-th call and `--corrupt-every N` hands
every N-th frame over malformed, to soak the fault paths too (each such frame is dropped,
counted and the run goes on).

Models: `--models DIR`, else the bundled `app/handpose/assets/models/default`, else tiny untrained
test models built like tests/conftest_app.app_models_dir() (needs the `train` extra; the
score threshold is then 0.3 so that detections flow; pass `--score-threshold 0.3` when
`--models` names such a folder). One interpreter thread per model.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "app"))  # run from a checkout


def rss_mib() -> float:
    """Resident set size of this process in MiB (Linux /proc; peak RSS elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0)


class FlakyRunner:
    """A `ModelRunner` whose `run` raises on every `every`-th call."""

    def __init__(self, runner: Any, every: int) -> None:
        self.runner, self.every, self.calls = runner, every, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.runner, name)

    def run(self, image: np.ndarray) -> dict[str, np.ndarray]:
        self.calls += 1
        if self.calls % self.every == 0:
            raise RuntimeError(f"injected failure (call {self.calls})")
        return self.runner.run(image)


def models_folder(requested: str | None) -> tuple[Path, bool]:
    """(model folder, True when they are untrained test models)."""
    from handpose.paths import DEFAULT_MODELS_DIR

    if requested:
        return Path(requested), False
    if (DEFAULT_MODELS_DIR / "detector.json").is_file():
        return DEFAULT_MODELS_DIR, False
    print("no bundled models: building tiny untrained test models (tests/conftest_app.py)")
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(ROOT))
    from conftest_app import app_models_dir

    return app_models_dir(), True


class Monitor:
    """Heartbeat and notify of the run: counts frames and events, samples RSS."""

    def __init__(self, warmup: int, every: int = 1000) -> None:
        self.warmup, self.every = warmup, every
        self.frames = 0
        self.notifications = 0
        self.records = 0
        self.bytes = 0
        self.rss_warm: float | None = None
        self.rss_last: tuple[int, float] | None = None  # (frame, rss MiB), every 100 frames
        self.start = time.perf_counter()

    def heartbeat(self) -> None:
        self.frames += 1
        if self.frames % 100 == 0:
            self.rss_last = (self.frames, rss_mib())
        if self.frames == self.warmup:
            self.rss_warm = rss_mib()
            print(f"rss after warm-up ({self.warmup} frames): {self.rss_warm:.1f} MiB", flush=True)
        if self.frames % self.every == 0:
            elapsed = time.perf_counter() - self.start
            rss = rss_mib()
            print(
                f"frame {self.frames:6d}: rss {rss:7.1f} MiB, {self.frames / elapsed:5.1f} FPS",
                flush=True,
            )

    def notify(self, records: list[dict[str, Any]]) -> None:
        self.bytes += len(json.dumps(records))  # what actfw_core.notify prints
        self.notifications += 1
        self.records += len(records)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000, help="frames to read (10000)")
    parser.add_argument("--source", help="video file to loop (default: the bundled sample clip)")
    parser.add_argument("--models", help="model folder (default: bundled, else test models)")
    parser.add_argument("--settings", help="act settings JSON (default: built-in defaults)")
    parser.add_argument(
        "--score-threshold", type=float, help="override (0.3 for untrained test models)"
    )
    parser.add_argument("--fail-every", type=int, default=0, metavar="N", help="pose raises")
    parser.add_argument("--corrupt-every", type=int, default=0, metavar="N", help="bad frames")
    parser.add_argument("--max-growth", type=float, default=5.0, help="percent (5)")
    parser.add_argument("--warmup", type=int, default=300, help="frames before the baseline")
    args = parser.parse_args()

    from handpose.actcast import HandposeApplication, build_application
    from handpose.capture import VideoFileSource
    from handpose.paths import SAMPLE_CLIP
    from handpose.pipeline.models import ModelSet, load_model_set
    from handpose.present import CommandServerSink
    from handpose.settings import AppSettings

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    folder, test_models = models_folder(args.models)
    settings = AppSettings.load(args.settings) if args.settings else AppSettings()
    threshold = args.score_threshold
    if threshold is None and test_models:
        threshold = 0.3
    if threshold is not None:
        settings = settings.replace(score_threshold=threshold)
    settings = settings.replace(num_threads=1)
    source_path = Path(args.source) if args.source else SAMPLE_CLIP
    models = load_model_set(folder, settings.num_threads)
    if args.fail_every:
        models = ModelSet(models.detector, FlakyRunner(models.pose, args.fail_every), folder)

    class Source(VideoFileSource):
        """The looping clip, every `--corrupt-every`-th frame handed over malformed."""

        def _iterate(self):  # type: ignore[override]
            for image, stamp in super()._iterate():
                self.served = getattr(self, "served", 0) + 1
                if args.corrupt_every and self.served % args.corrupt_every == 0:
                    image = image[:, :, :2]  # two channels: not an RGB frame
                yield image, stamp

    source = Source(source_path, loop=True)
    probe = VideoFileSource(source_path)
    first = probe.read()
    probe.close()
    height, width = first[0].shape[:2] if first else (0, 0)

    print(
        f"soak: {args.frames} frames of {source_path.name} ({width}x{height}, looped) through "
        "the real actfw Application (overlay for Take Photo, events, heartbeat)"
    )
    print(f"models: {folder}{' (untrained test models)' if test_models else ''}")
    print(
        f"settings: score_threshold {settings.score_threshold}, max_hands {settings.max_hands}, "
        f"num_threads {settings.num_threads}; injected: pose failure every "
        f"{args.fail_every or '-'} calls, malformed frame every {args.corrupt_every or '-'} frames"
    )
    monitor = Monitor(min(args.warmup, max(1, args.frames // 2)))
    from actfw_core import CommandServer

    sink = CommandServerSink(CommandServer(sock_path=None))  # the overlay, as on the device
    app = HandposeApplication()
    rss_start = rss_mib()
    print(f"rss at start (models loaded, no frame yet): {rss_start:.1f} MiB", flush=True)
    build_application(
        settings,
        source,
        [sink],
        models,
        max_frames=args.frames,
        app=app,
        notify=monitor.notify,
        heartbeat=monitor.heartbeat,
    )
    start = time.perf_counter()
    app.run()
    elapsed = time.perf_counter() - start
    rss_stopped = rss_mib()

    presented = app.presenter.frames if app.presenter else 0
    last_frame, rss_end = monitor.rss_last or (presented, rss_stopped)
    base = monitor.rss_warm or rss_start
    growth = 100.0 * (rss_end - base) / base
    print(
        f"rss at end (frame {last_frame}, running): {rss_end:.1f} MiB ({growth:+.1f}% over the "
        f"warm-up); after the stop: {rss_stopped:.1f} MiB"
    )
    print(f"frames: {presented} presented, {app.drops.summary()}")
    print(
        f"events: {monitor.notifications} notifications, {monitor.records} hand records, "
        f"{monitor.bytes / 1024:.0f} KiB of JSON"
    )
    print(f"time: {elapsed:.0f} s ({presented / elapsed if elapsed else 0:.1f} FPS)")
    if app.error is not None:
        print(f"FAIL: the app stopped with an error: {app.error}")
        return 1
    expected = args.frames - app.drops.counts.get("pose failed (RuntimeError)", 0)
    if presented != expected:
        print(f"FAIL: {presented} frames presented, {expected} expected")
        return 1
    if growth > args.max_growth:
        print(f"FAIL: memory grew {growth:.1f}% after the warm-up (limit {args.max_growth:g}%)")
        return 1
    print(f"PASS: memory grew {growth:+.1f}% after the warm-up (limit {args.max_growth:g}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
