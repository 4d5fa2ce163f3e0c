"""The application: tasks connected in one place (`build_application`) and the Actcast `main`.

    capture ─▶ Detect ─▶ Crop ─▶ Pose ─▶ Present (overlay ▶ sinks, events ▶ notify, heartbeat)

`main()` is what `app/main` runs on the device: settings from Actcast (ACT_SETTINGS_PATH through
`Application.get_settings`), the camera from the `camera` setting, Take Photo through
`CommandServer`, HDMI when `display` is on, a browser view when `local_video_server` is on.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import actfw_core
from actfw_core import Application

from handpose.capture import CameraSource, FileSource, open_camera
from handpose.errors import HandposeError
from handpose.events import EventEmitter
from handpose.pipeline.crop import HandCropper
from handpose.pipeline.detect import HandDetector
from handpose.pipeline.models import ModelSet, load_model_set
from handpose.pipeline.pose import PoseEstimator
from handpose.present import CommandServerSink, HdmiSink, LocalVideoSink, Presenter, Sink
from handpose.settings import AppSettings
from handpose.tasks import (
    CameraFrames,
    CropTask,
    DetectTask,
    PoseTask,
    PresentTask,
    SourceProducer,
)

log = logging.getLogger(__name__)


class HandposeApplication(Application):
    """actfw `Application` whose `stop()` also stops the pipeline tasks at once.

    actfw's own `run()` polls its flag once a second before stopping the tasks; stopping them in
    `stop()` (the SIGTERM / SIGINT handler) lets them finish in parallel, so the app exits within
    about a second of the signal.
    """

    def __init__(self) -> None:
        super().__init__()
        self.pipeline_tasks: list = []
        self.presenter: Presenter | None = None
        self.error: BaseException | None = None

    def fail(self, error: BaseException) -> None:
        """A stage failed: log it with its traceback, remember it, stop everything."""
        if self.error is None:
            self.error = error
            log.error("stopping: %s", error, exc_info=not isinstance(error, HandposeError))
        self.stop()

    def stop(self) -> None:
        super().stop()
        for task in self.pipeline_tasks:
            task.stop()


def build_application(
    settings: AppSettings,
    source: FileSource | CameraSource,
    sinks: Sequence[Sink],
    models: ModelSet | None = None,
    max_frames: int | None = None,
    app: HandposeApplication | None = None,
    **presenter_options: object,
) -> HandposeApplication:
    """The actfw application for `source` -> Detect -> Crop -> Pose -> Present -> `sinks`.

    Args:
        settings: validated settings.
        source: a local `FileSource` or a `CameraSource` (actfw capture task).
        sinks: where the overlay goes.
        models: the model pair (default: `load_model_set(settings.models_dir, ...)`).
        max_frames: stop a file source after this many frames.
        app: an application created earlier (its signal handlers are installed at creation).
        presenter_options: passed to `Presenter` (`notify`, `heartbeat`).
    """
    app = app or HandposeApplication()
    models = models or load_model_set(settings.models_dir, settings.num_threads)
    pose_size = int(models.pose.input_size[0])

    if isinstance(source, CameraSource):
        capture, frames = source.task, CameraFrames(source)
        capture_tasks = [capture, frames]
    else:
        frames = SourceProducer(source, max_frames)
        capture_tasks = [frames]
    detect = DetectTask(
        HandDetector(models.detector, settings.score_threshold, settings.nms_threshold)
    )
    crop = CropTask(HandCropper(settings.crop_scale, pose_size, settings.max_hands))
    pose = PoseTask(PoseEstimator(models.pose), swap=settings.swap_handedness)
    emitter = EventEmitter(settings.notify_interval, settings.lost_timeout)
    presenter = Presenter(sinks, emitter, **presenter_options)  # type: ignore[arg-type]
    present = PresentTask(presenter, on_end=app.stop)

    # the pipeline, in one place
    if isinstance(source, CameraSource):
        capture.connect(frames)  # actfw capture task -> RGB frames
    frames.connect(detect)
    detect.connect(crop)
    crop.connect(pose)
    pose.connect(present)

    app.pipeline_tasks = [*capture_tasks, detect, crop, pose, present]
    for task in (frames, detect, crop, pose, present):
        task.on_error = app.fail
    app.presenter = presenter
    for task in app.pipeline_tasks:
        app.register_task(task)
    for sink in sinks:
        for task in sink.tasks():
            app.register_task(task)
    return app


def actcast_settings(app: Application) -> AppSettings:
    """Settings from Actcast (`ACT_SETTINGS_PATH`), defaults for what is not set."""
    return AppSettings.from_dict(app.get_settings({}), "act settings (ACT_SETTINGS_PATH)")


def main() -> int:
    """Entry point of `app/main` on the device; returns the exit code."""
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    beat = os.environ.get("HANDPOSE_HEARTBEAT")
    if beat:  # the healthchecker reads the same variable (default /root/heartbeat)
        actfw_core.set_heartbeat_function(lambda: Path(beat).touch())
    try:
        app = HandposeApplication()
        settings = actcast_settings(app)
        log.info("settings: %s", settings)
        source = open_camera(settings.camera, settings)
        sinks: list[Sink] = [CommandServerSink()]
        if settings.display:
            sinks.append(HdmiSink())
        if settings.local_video_server:
            sinks.append(LocalVideoSink())
        build_application(settings, source, sinks, app=app).run()
    except HandposeError as error:
        print(f"handpose: error: {error}", file=sys.stderr, flush=True)
        return 2
    return 1 if app.error is not None else 0
