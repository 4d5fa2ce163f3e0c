"""`handpose run`: the app pipeline on a camera, a video file, an image folder or the sample clip.

Notify records go to stdout, one JSON line per notification (exactly what Actcast receives);
logs go to stderr. Stops at the end of a file source, on Ctrl-C and on SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import actfw_core

from handpose.actcast import HandposeApplication, build_application
from handpose.argtypes import positive_int
from handpose.capture import CameraSource, open_source
from handpose.errors import HandposeError
from handpose.pipeline.models import load_model_set
from handpose.present import HdmiSink, LocalVideoSink, Sink, sink_for_path
from handpose.runner import BROKEN as BROKEN_INTERPRETERS
from handpose.runner import RUNTIME_VERSION
from handpose.settings import AppSettings

log = logging.getLogger("handpose.run")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        default="sample",
        help="sample (bundled clip), a video FILE, an image DIR, /dev/videoN, camera (the "
        "`camera` setting), v4l2, unicam or libcamera (default: sample)",
    )
    parser.add_argument(
        "--display",
        choices=("none", "hdmi"),
        default=None,
        help="show the overlay on HDMI (default: the `display` setting)",
    )
    parser.add_argument("--save", metavar="OUT", help="write the overlay: OUT.mp4 or a PNG DIR")
    parser.add_argument("--max-frames", type=positive_int, metavar="N", help="stop after N frames")
    parser.add_argument(
        "--settings",
        metavar="FILE",
        help="act settings JSON (default: $ACT_SETTINGS_PATH, else built-in defaults)",
    )
    parser.add_argument("--models", metavar="DIR", help="model folder (overrides `models_dir`)")
    parser.add_argument("--loop", action="store_true", help="repeat a file source until stopped")
    parser.add_argument(
        "--browser", action="store_true", help="serve the overlay on http://localhost:5100"
    )


def _heartbeat_file() -> None:
    path = os.environ.get("HANDPOSE_HEARTBEAT")
    if path:
        Path(path).touch()


def main(args: argparse.Namespace) -> int:
    settings_path = args.settings or os.environ.get("ACT_SETTINGS_PATH")
    settings = AppSettings.load(settings_path) if settings_path else AppSettings()
    changes: dict[str, object] = {}
    if args.models:
        changes["models_dir"] = str(args.models)
    if args.display is not None:
        changes["display"] = args.display == "hdmi"
    if args.browser:
        changes["local_video_server"] = True
    if changes:
        settings = settings.replace(**changes)
    app = HandposeApplication()  # installs the SIGINT / SIGTERM handlers first
    models = load_model_set(settings.models_dir, settings.num_threads)
    source = open_source(args.source, settings, loop=args.loop)
    sinks: list[Sink] = []
    if args.save:
        sinks.append(sink_for_path(args.save, settings.capture_fps))
    if settings.display:
        sinks.append(HdmiSink())
    if settings.local_video_server:
        sinks.append(LocalVideoSink())
    actfw_core.set_heartbeat_function(_heartbeat_file)  # local runs: no /root/heartbeat
    log.info(
        "source %s, models %s, interpreter %s, %d sink(s)",
        source.name,
        models.folder,
        RUNTIME_VERSION,
        len(sinks),
    )
    for broken in BROKEN_INTERPRETERS:
        log.warning("installed TFLite interpreter that does not load (skipped): %s", broken)
    build_application(settings, source, sinks, models, args.max_frames, app=app)
    start = time.perf_counter()
    app.run()
    elapsed = time.perf_counter() - start
    presenter = app.presenter
    frames = presenter.frames if presenter else 0
    log.info(
        "processed %d frames in %.1f s (%.1f FPS), %d events, %s",
        frames,
        elapsed,
        frames / elapsed if elapsed > 0 else 0.0,
        presenter.events if presenter else 0,
        app.drops.summary(),
    )
    if isinstance(source, CameraSource) and frames == 0:
        log.warning("no frame came from %s", source.name)
    if app.error is not None:
        if isinstance(app.error, HandposeError):
            raise app.error
        return 1
    if frames == 0 and app.drops.total > 0:  # a short file ends before the failure limit
        print(
            f"handpose run: error: every frame was dropped ({app.drops.summary()}); "
            "the log above names the failing step",
            file=sys.stderr,
            flush=True,
        )
        return 1
    return 0
