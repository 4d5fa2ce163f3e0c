"""Thin actfw tasks around the stages (the logic lives in `handpose.pipeline` / `present`).

Every task passes a `FrameState` on; `None` (a dropped frame) passes through untouched.
A file source ends with an end-of-stream `FrameState` that flows through every stage, so the last
stage sees every frame before it stops the application.

Each frame's work runs under the task's `StageGuard` (`handpose.faults`): a stage that raises on
one frame drops that frame (counted in the run's `DropLog`, logged once per kind) and the
pipeline goes on; `limit` failures in a row, or a `HandposeError`, call `on_error` (the
application stops with it). `build_application` wires `on_error` and the shared `DropLog`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from actfw_core.task import Consumer, Pipe, Producer

from handpose.capture import CameraSource, FileSource
from handpose.errors import SourceError
from handpose.faults import DEFAULT_FAILURE_LIMIT, DROPPED, DropLog, StageGuard
from handpose.pipeline.process import HandPipeline
from handpose.pipeline.state import FrameState
from handpose.present import Presenter

log = logging.getLogger(__name__)


def _no_handler(error: BaseException) -> None:
    raise error


class _Guarded:
    """A failure inside a stage never silently kills the stage's thread (which would stall the
    pipeline): it goes through the task's `StageGuard` (module docstring).

    Attributes:
        stage: the stage's name in logs and drop reasons.
        on_error: called with an error that must stop the application.
    """

    stage = "stage"
    on_error: Callable[[BaseException], None] = staticmethod(_no_handler)
    _stage_guard: StageGuard | None = None

    def guarded_by(self, drops: DropLog, limit: int = DEFAULT_FAILURE_LIMIT) -> StageGuard:
        """Count this task's dropped frames in `drops`; `limit` failures in a row are fatal."""
        part = getattr(self, "part", None)
        self._stage_guard = StageGuard(self.stage, drops, self._fatal, limit, part)
        return self._stage_guard

    @property
    def stage_guard(self) -> StageGuard:
        """The guard (a private `DropLog` until `guarded_by` is called)."""
        if self._stage_guard is None:
            self.guarded_by(DropLog())
        assert self._stage_guard is not None
        return self._stage_guard

    def _fatal(self, error: BaseException) -> None:
        self.on_error(error)  # looked up at call time: `on_error` may be set after the guard

    def attempt(self, work: Callable[[], Any]) -> Any:
        """`work()`, or `DROPPED` when it raised (see `StageGuard.run`)."""
        return self.stage_guard.run(work)

    def guard(self, work: Callable[[], Any]) -> Any:
        """`work()`, or None when it raised and the frame is dropped."""
        result = self.attempt(work)
        return None if result is DROPPED else result


class SourceProducer(_Guarded, Producer):
    """Capture for local runs: pulls frames from a `FileSource`, then one end-of-stream marker."""

    stage = "capture"

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
            item = self.attempt(self.source.read)
            if item is DROPPED:  # counted and logged by the guard; read on
                return None
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
    """Capture for cameras: actfw capture frame bytes -> oriented RGB `FrameState`.

    `last_frame` (time.monotonic()) is when the camera last delivered a buffer: the watchdog
    (`handpose.faults.Watchdog`) stops the application when it gets old. A buffer that is no
    frame is dropped (counted in the source's `drops`); as many in a row as the guard's limit
    stop the application with a `SourceError` (the camera delivers another size).
    """

    stage = "capture"

    def __init__(self, source: CameraSource) -> None:
        super().__init__()
        self.source = source
        self.count = 0
        self.last_frame: float | None = None
        self.bad_in_a_row = 0
        self._last_size = 0

    def _decode(self, frame: Any) -> tuple[Any, float] | None:
        value = frame.getvalue()
        self._last_size = len(value)
        return self.source.decode(value)

    def proc(self, frame: Any) -> FrameState | None:
        if frame is None:  # a capture task that had nothing (it is stopping)
            return None
        self.last_frame = time.monotonic()
        decoded = self.guard(lambda: self._decode(frame))
        if decoded is None:
            self.bad_in_a_row += 1
            if self.bad_in_a_row == self.stage_guard.limit:
                source = self.source
                self.on_error(
                    SourceError(
                        f"{source.name}: {self.bad_in_a_row} camera buffers in a row are no "
                        f"{source.width}x{source.height} RGB24 frame (the last had "
                        f"{self._last_size} bytes); set capture_width and capture_height to a "
                        "size the camera delivers"
                    )
                )
            return None
        self.bad_in_a_row = 0
        image, stamp = decoded
        self.count += 1
        return FrameState(index=self.count - 1, timestamp=stamp, image=image)


class _StagePipe(_Guarded, Pipe):
    name = "stage"

    @property
    def stage(self) -> str:  # type: ignore[override]
        return self.name

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


class InferTask(_StagePipe):
    """Detect -> Crop -> Pose -> track ids, smoothing, gestures of one frame, in one task:
    `state.hands` = the frame's hands as `HandPipeline` reports them.

    The tracker is read (where to look, whether to detect) and written (the posed hands) by the
    same thread in frame order, so the application reports, frame for frame, what `HandPipeline`
    reports on the same frames, whatever the timing of the threads around it. (Detect, crop
    and pose in three tasks let the detect step of frame n+1 read the tracker before the pose
    step had written frame n: hands were born twice.) Each stage's time goes into
    `state.timings` ("detect", "crop", "pose", "track").
    """

    name = "infer"

    def __init__(self, pipeline: HandPipeline) -> None:
        super().__init__()
        self.pipeline = pipeline

    def part(self) -> str:
        """The step that was running (drop reasons name it: "pose failed (...)")."""
        return self.pipeline.step

    def work(self, state: FrameState) -> None:
        assert state.image is not None
        state.hands = self.pipeline(state.image, timestamp=state.timestamp)
        state.detected = self.pipeline.detected
        state.timings.update(self.pipeline.timings)

    def proc(self, state: FrameState | None) -> FrameState | None:
        out = super().proc(state)
        if out is not None and not out.end:
            out.timings.pop(self.name, None)  # the stages' own times are in timings
        return out


class PresentTask(_Guarded, Consumer):
    """Present: overlay, events, heartbeat; calls `on_end` at the end-of-stream marker."""

    stage = "present"

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
