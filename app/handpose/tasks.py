"""Thin actfw tasks around the stages (the logic lives in `handpose.pipeline` / `present`).

Every task passes a `FrameState` on; `None` (a dropped camera buffer) passes through untouched.
A file source ends with an end-of-stream `FrameState` that flows through every stage, so the last
stage sees every frame before it stops the application.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from actfw_core.task import Consumer, Pipe, Producer

from handpose.capture import CameraSource, FileSource
from handpose.pipeline.crop import HandCropper
from handpose.pipeline.detect import HandDetector
from handpose.pipeline.pose import PoseEstimator, swap_handedness
from handpose.pipeline.state import FrameState
from handpose.present import Presenter

log = logging.getLogger(__name__)


def _no_handler(error: BaseException) -> None:
    raise error


class _Guarded:
    """A failure inside a stage is reported to `on_error` (the application stops with it)
    instead of silently killing the stage's thread and stalling the pipeline."""

    on_error: Callable[[BaseException], None] = staticmethod(_no_handler)

    def guard(self, work: Callable[[], Any]) -> Any:
        try:
            return work()
        except Exception as error:  # noqa: BLE001 - reported, then the app stops
            self.on_error(error)
            return None


class SourceProducer(_Guarded, Producer):
    """Capture for local runs: pulls frames from a `FileSource`, then one end-of-stream marker."""

    def __init__(self, source: FileSource, max_frames: int | None = None) -> None:
        super().__init__()
        self.source = source
        self.max_frames = max_frames
        self.count = 0
        self._ended = False

    def proc(self) -> FrameState | None:
        if self._ended:  # nothing more: wait for the application to stop us
            while self._is_running():
                time.sleep(0.05)
            return None
        item = None
        if self.max_frames is None or self.count < self.max_frames:
            item = self.guard(self.source.read)
        if item is None:
            self._ended = True
            log.info("%s: end after %d frames", self.source.name, self.count)
            return FrameState.end_of_stream(self.count)
        image, stamp = item
        self.count += 1
        return FrameState(index=self.count - 1, timestamp=stamp, image=image)

    def cleanup(self) -> None:
        self.source.close()


class CameraFrames(_Guarded, Pipe):
    """Capture for cameras: actfw capture frame bytes -> oriented RGB `FrameState`."""

    def __init__(self, source: CameraSource) -> None:
        super().__init__()
        self.source = source
        self.count = 0

    def proc(self, frame: Any) -> FrameState | None:
        decoded = self.guard(lambda: self.source.decode(frame.getvalue()))
        if decoded is None:
            return None
        image, stamp = decoded
        self.count += 1
        return FrameState(index=self.count - 1, timestamp=stamp, image=image)


class _StagePipe(_Guarded, Pipe):
    name = "stage"

    def proc(self, state: FrameState | None) -> FrameState | None:
        if state is None or state.end:
            return state
        start = time.perf_counter()
        if self.guard(lambda: self.work(state) or True) is None:
            return None
        state.timings[self.name] = (time.perf_counter() - start) * 1e3
        return state

    def work(self, state: FrameState) -> None:
        raise NotImplementedError


class DetectTask(_StagePipe):
    """Detect: `state.hands` = boxes in frame pixels."""

    name = "detect"

    def __init__(self, detector: HandDetector) -> None:
        super().__init__()
        self.detector = detector

    def work(self, state: FrameState) -> None:
        state.hands = self.detector.detect(state.image)


class CropTask(_StagePipe):
    """Crop: `state.crops` = square pose crops, left hands mirrored."""

    name = "crop"

    def __init__(self, cropper: HandCropper) -> None:
        super().__init__()
        self.cropper = cropper

    def work(self, state: FrameState) -> None:
        state.crops = self.cropper(state.image, state.hands)


class PoseTask(_StagePipe):
    """Pose: `state.hands` = hands with keypoints in frame pixels and 3D joints."""

    name = "pose"

    def __init__(self, estimator: PoseEstimator, swap: bool = False) -> None:
        super().__init__()
        self.estimator = estimator
        self.swap = swap

    def work(self, state: FrameState) -> None:
        state.hands = swap_handedness(self.estimator(state.crops), self.swap)
        state.crops = []


class PresentTask(_Guarded, Consumer):
    """Present: overlay, events, heartbeat; calls `on_end` at the end-of-stream marker."""

    def __init__(self, presenter: Presenter, on_end: Callable[[], None]) -> None:
        super().__init__()
        self.presenter = presenter
        self.on_end = on_end

    def proc(self, state: FrameState | None) -> None:
        if state is None:
            return
        if state.end:
            self.on_end()
            return
        self.guard(lambda: self.presenter.present(state))

    def cleanup(self) -> None:
        self.presenter.close()
