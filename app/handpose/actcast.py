"""The application: tasks connected in one place (`build_application`) and the Actcast `main`.

    capture ─▶ Infer ─▶ Present (overlay ▶ sinks, events ▶ notify, heartbeat)

Infer (`handpose.tasks.InferTask`) runs `HandPipeline` on each frame in order: detect (only
when the tracker asks, `handpose.pipeline.track`), crop, pose, then track ids, smoothing and
gestures (`handpose.pipeline.post`), so the tracker is read and written in frame order and the
app reports what `HandPipeline` reports on the same frames, whatever the threads' timing.

`main()` is what `app/main` runs on the device: settings from Actcast (ACT_SETTINGS_PATH through
`Application.get_settings`), the camera from the `camera` setting, Take Photo through
`CommandServer`, HDMI when `display` is on, a browser view when `local_video_server` is on.

Faults (`handpose.faults`): a frame a stage fails on is dropped and the app goes on; a stage that
fails on `failure_limit` frames in a row, hangs, or a camera that stops delivering frames stops
the app with one line on stderr (`handpose: error: ...`) and exit status 1, for Actcast to
restart it; the heartbeat stops with the frames, so the healthchecker (`app/healthchecker`)
fails too if the process could not exit.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import actfw_core
from actfw_core import Application

from handpose.capture import CameraSource, FileSource, open_camera
from handpose.errors import HandposeError, SettingsError, SourceError
from handpose.events import EventEmitter
from handpose.faults import DEFAULT_FAILURE_LIMIT, DEFAULT_STALL_TIMEOUT, DropLog, Watchdog
from handpose.pipeline.models import ModelSet, load_model_set
from handpose.pipeline.process import HandPipeline
from handpose.present import CommandServerSink, HdmiSink, LocalVideoSink, Presenter, Sink
from handpose.runner import BROKEN as BROKEN_INTERPRETERS
from handpose.runner import RUNTIME_VERSION
from handpose.settings import AppSettings
from handpose.tasks import (
    CameraFrames,
    InferTask,
    PresentTask,
    SourceProducer,
    _Guarded,
)

log = logging.getLogger(__name__)


class HandposeApplication(Application):
    """actfw `Application` whose `stop()` also stops the pipeline tasks at once.

    actfw's own `run()` polls its flag once a second before stopping the tasks; stopping them in
    `stop()` (the SIGTERM / SIGINT handler) lets them finish in parallel, and `run()` polls every
    0.1 s, so the app exits within about a second of the signal.

    A task thread that dies of an exception (an actfw capture task raising "Capture timeout")
    stops the application with that error instead of leaving the pipeline stalled.
    """

    def __init__(self) -> None:
        super().__init__()
        self.pipeline_tasks: list = []
        self.presenter: Presenter | None = None
        self.error: BaseException | None = None
        self.drops = DropLog()  #: frames dropped in this run, by reason
        self.camera_task: object | None = None  #: the actfw capture task of a camera source
        self.camera_name = "camera"

    def fail(self, error: BaseException) -> None:
        """A stage failed for good: log it (traceback unless a HandposeError), remember the
        first error, stop everything."""
        if self.error is None:
            self.error = error
            log.error("stopping: %s", error, exc_info=not isinstance(error, HandposeError))
        self.stop()

    def stop(self) -> None:
        super().stop()
        for task in self.pipeline_tasks:
            task.stop()

    def _thread_died(self, args: threading.ExceptHookArgs) -> bool:
        """`threading.excepthook` for the app's tasks: fail with the error; True if handled."""
        if args.thread not in self.tasks or args.exc_value is None:
            return False
        error = args.exc_value
        if args.thread is self.camera_task:
            error = SourceError(
                f"{self.camera_name}: the camera stopped delivering frames ({error}); check its "
                "cable and that no other process uses it"
            )
        elif not isinstance(error, HandposeError):
            log.error(
                "task %s died",
                type(args.thread).__name__,
                exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
            )
        self.fail(error)
        return True

    def run(self) -> None:
        """Start the tasks, wait until `stop()` (signal, end of stream, failure), join them."""
        previous = threading.excepthook

        def hook(args: threading.ExceptHookArgs) -> None:
            if not self._thread_died(args):
                previous(args)

        threading.excepthook = hook
        try:
            for task in self.tasks:
                task.start()
            try:
                while self.running:
                    time.sleep(0.1)
            except KeyboardInterrupt:
                pass
            for task in self.tasks:
                task.stop()
            for task in self.tasks:
                task.join()
        finally:
            threading.excepthook = previous


def build_application(
    settings: AppSettings,
    source: FileSource | CameraSource,
    sinks: Sequence[Sink],
    models: ModelSet | None = None,
    max_frames: int | None = None,
    app: HandposeApplication | None = None,
    failure_limit: int = DEFAULT_FAILURE_LIMIT,
    stall_timeout: float = DEFAULT_STALL_TIMEOUT,
    **presenter_options: object,
) -> HandposeApplication:
    """The actfw application for `source` -> Infer (detect, crop, pose, track) -> Present ->
    `sinks`.

    Args:
        settings: validated settings.
        source: a local `FileSource` or a `CameraSource` (actfw capture task).
        sinks: where the overlay goes.
        models: the model pair (default: `load_model_set(settings.models_dir, ...)`).
        max_frames: stop a file source after this many frames.
        app: an application created earlier (its signal handlers are installed at creation).
        failure_limit: failures of one stage in a row that stop the app (one is only dropped).
        stall_timeout: seconds without a camera frame, or on one frame in a stage, that stop it.
        presenter_options: passed to `Presenter` (`notify`, `heartbeat`).
    """
    app = app or HandposeApplication()
    models = models or load_model_set(settings.models_dir, settings.num_threads)

    if isinstance(source, CameraSource):
        capture, frames = source.task, CameraFrames(source)
        capture_tasks = [capture, frames]
    else:
        frames = SourceProducer(source, max_frames)
        capture_tasks = [frames]
    # detect, crop, pose and the tracker in one task: frame for frame what HandPipeline does
    infer = InferTask(HandPipeline(models, settings, stream=True))
    emitter = EventEmitter.from_settings(settings)
    presenter = Presenter(sinks, emitter, **presenter_options)  # type: ignore[arg-type]
    present = PresentTask(presenter, on_end=app.stop)

    # the pipeline, in one place
    if isinstance(source, CameraSource):
        capture.connect(frames)  # actfw capture task -> RGB frames
    frames.connect(infer)
    infer.connect(present)

    app.pipeline_tasks = [*capture_tasks, infer, present]
    for task in (frames, infer, present):
        task.on_error = app.fail
    # faults: one DropLog for the run (the source's, which counts corrupt frames), every stage
    # guarded, a watchdog for stalls (`handpose.faults`)
    app.drops = source.drops
    guards = [
        task.guarded_by(app.drops, failure_limit)
        for task in app.pipeline_tasks
        if isinstance(task, _Guarded)
    ]
    camera = frames if isinstance(frames, CameraFrames) else None
    if camera is not None:
        app.camera_task, app.camera_name = capture, source.name
    watchdog = Watchdog(app.fail, guards, camera, source.name, stall_timeout)
    app.presenter = presenter
    for task in app.pipeline_tasks:
        app.register_task(task)
    for sink in sinks:
        for task in sink.tasks():
            app.register_task(task)
    app.register_task(watchdog)
    return app


def actcast_settings(app: Application) -> AppSettings:
    """Settings from Actcast (`ACT_SETTINGS_PATH`), defaults for what is not set."""
    source = f"act settings {os.environ.get('ACT_SETTINGS_PATH', '(ACT_SETTINGS_PATH)')}"
    if app.settings is not None and not isinstance(app.settings, dict):
        raise SettingsError(
            f"{source}: expected a JSON object of settings, got {app.settings!r:.80}"
        )
    return AppSettings.from_dict(app.get_settings({}), source)


def main() -> int:
    """Entry point of `app/main` on the device; returns the exit code."""
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    beat = os.environ.get("HANDPOSE_HEARTBEAT")
    if beat:  # the healthchecker reads the same variable (default /root/heartbeat)
        actfw_core.set_heartbeat_function(lambda: Path(beat).touch())
    try:
        app = new_application()
        settings = actcast_settings(app)
        log.info("settings: %s", settings)
        log.info("TFLite interpreter: %s", RUNTIME_VERSION)
        for broken in BROKEN_INTERPRETERS:
            log.warning("installed TFLite interpreter that does not load (skipped): %s", broken)
        source = open_camera(settings.camera, settings)
        sinks: list[Sink] = [CommandServerSink()]
        if settings.display:
            sinks.append(HdmiSink())
        if settings.local_video_server:
            sinks.append(LocalVideoSink())
        build_application(settings, source, sinks, app=app).run()
    except HandposeError as error:  # start-up: a setting, a model file, the camera
        print(f"handpose: error: {error}", file=sys.stderr, flush=True)
        return 2
    log.info("stopped: %s", app.drops.summary())
    if isinstance(app.error, HandposeError):  # at run time: the camera, a failing stage
        print(f"handpose: error: {app.error}", file=sys.stderr, flush=True)
    return 1 if app.error is not None else 0


def new_application() -> HandposeApplication:
    """`HandposeApplication()`, which reads ACT_SETTINGS_PATH; a file that is no JSON object is a
    `SettingsError` naming it (actfw would raise a bare JSONDecodeError)."""
    try:
        return HandposeApplication()
    except (ValueError, RecursionError, UnicodeDecodeError, OSError) as error:
        path = os.environ.get("ACT_SETTINGS_PATH", "ACT_SETTINGS_PATH")
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise SettingsError(f"{path}: not a JSON settings file ({reason})") from None
