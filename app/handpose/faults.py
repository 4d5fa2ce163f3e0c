"""Faults of a long unattended run: dropped frames by reason, failing stages, stalls.

An Actcast app runs for months; a fault must neither stop it for nothing nor flood its log, and a
fault that does not go away must stop it with one clear line (Actcast then restarts it):

- `DropLog` counts the frames dropped per reason ("corrupt video packet", "pose failed
  (RuntimeError)", ...). The first drop of each reason is logged (WARNING), later ones only when
  the count reaches 10, 100, 1000, ..., so a recurring fault stays visible without filling the log.
- `StageGuard` is the policy for a stage that raises: the frame is dropped (counted, logged as
  above with its traceback the first time) and the pipeline goes on; `limit` failures of one stage
  in a row stop the application with `PipelineError`. A `HandposeError` (a source or a setting
  that cannot work) stops it at once.
- `Watchdog` (an actfw task) stops the application when a camera delivers no frame for
  `stall_timeout` seconds or a stage works on one frame that long. The heartbeat then stops too
  (it is called once per presented frame), so the healthchecker fails if the process hangs on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from actfw_core.task import Task

from handpose.errors import HandposeError, PipelineError, SourceError

log = logging.getLogger(__name__)

#: failures of one stage in a row that stop the application (2 s of frames at 15 fps)
DEFAULT_FAILURE_LIMIT = 30
#: seconds without a camera frame (or on one frame in a stage) that stop the application
DEFAULT_STALL_TIMEOUT = 10.0
#: seconds the camera may take to deliver its first frame
DEFAULT_STARTUP_TIMEOUT = 30.0


def _is_log_point(count: int) -> bool:
    """True for 1, 10, 100, 1000, ...: the counts at which a recurring drop is logged."""
    while count >= 10 and count % 10 == 0:
        count //= 10
    return count == 1


class DropLog:
    """Thread-safe count of dropped frames per reason, logged once per reason (then at 10^k).

    Args:
        logger: where the drops are logged.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or log
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def drop(self, reason: str, detail: str = "", error: BaseException | None = None) -> int:
        """Count one frame dropped for `reason`; returns the count of that reason so far.

        Args:
            reason: the kind of fault, short and stable (it is the key of `counts`).
            detail: what identifies this occurrence (a file name, the error message).
            error: the exception, whose traceback is logged with the first drop of its reason.
        """
        with self._lock:
            count = self._counts.get(reason, 0) + 1
            self._counts[reason] = count
        if count == 1:
            self._log.warning(
                "frame dropped: %s%s (logged once; later drops are counted)",
                reason,
                f": {detail}" if detail else "",
                exc_info=error
                if error is not None and not isinstance(error, HandposeError)
                else None,
            )
        elif _is_log_point(count):
            self._log.warning(
                "%d frames dropped so far: %s%s",
                count,
                reason,
                f" (last: {detail})" if detail else "",
            )
        return count

    @property
    def counts(self) -> dict[str, int]:
        """{reason: frames dropped}, a copy."""
        with self._lock:
            return dict(self._counts)

    @property
    def total(self) -> int:
        """Frames dropped for any reason."""
        with self._lock:
            return sum(self._counts.values())

    def summary(self) -> str:
        """One line: "3 frames dropped (2 corrupt video packet, 1 pose failed (ValueError))"."""
        counts = self.counts
        if not counts:
            return "no frame dropped"
        total = sum(counts.values())
        parts = ", ".join(
            f"{n} {reason}" for reason, n in sorted(counts.items(), key=lambda i: -i[1])
        )
        return f"{total} frame{'s' if total != 1 else ''} dropped ({parts})"


#: what `StageGuard.run` returns for a dropped frame
DROPPED: Any = object()


def _first_line(error: BaseException) -> str:
    lines = str(error).splitlines()
    return lines[0] if lines else ""


def _message(error: BaseException) -> str:
    """`ValueError: the first line of its message`."""
    text = _first_line(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class StageGuard:
    """Runs one stage's work on a frame and applies the fault policy (module docstring).

    Args:
        name: the stage ("capture", "infer", "present").
        drops: where dropped frames are counted.
        on_fatal: called with the error that stops the application.
        limit: failures in a row that stop the application.
        part: names the step of the stage that was running when it raised ("detect", "crop",
            "pose", "track" inside "infer"), for drop reasons; None: the stage's name.
    """

    def __init__(
        self,
        name: str,
        drops: DropLog,
        on_fatal: Callable[[BaseException], None],
        limit: int = DEFAULT_FAILURE_LIMIT,
        part: Callable[[], str] | None = None,
    ) -> None:
        self.name = name
        self.part = part
        self.drops = drops
        self.on_fatal = on_fatal
        self.limit = max(1, int(limit))
        self.in_a_row = 0
        #: time.monotonic() when the work in progress started, None when idle
        self.busy_since: float | None = None

    def where(self) -> str:
        """The stage's name, or the step of it that is running (`part`)."""
        return self.part() if self.part is not None else self.name

    def run(self, work: Callable[[], Any]) -> Any:
        """`work()`, or `DROPPED` when it raised (the error is counted, logged, maybe fatal)."""
        self.busy_since = time.monotonic()
        try:
            result = work()
        except HandposeError as error:  # a source or setting that cannot work: stop now
            self.on_fatal(error)
            return DROPPED
        except Exception as error:  # noqa: BLE001 - one frame's failure: drop it, go on
            self.in_a_row += 1
            where = self.where()
            reason = f"{where} failed ({type(error).__name__})"
            self.drops.drop(reason, _first_line(error), error)
            if self.in_a_row >= self.limit:
                self.on_fatal(
                    PipelineError(
                        f"stage {where!r} failed on {self.in_a_row} frames in a row (last: "
                        f"{_message(error)}); stopping so that Actcast restarts the app"
                    )
                )
            return DROPPED
        finally:
            self.busy_since = None
        self.in_a_row = 0
        return result


class FrameClock(Protocol):
    """What the watchdog reads from the capture stage."""

    #: time.monotonic() of the last frame received, None before the first
    last_frame: float | None


class Watchdog(Task):
    """Stops the application when the camera or a stage stalls (module docstring).

    Args:
        on_fatal: called once with the `SourceError` / `PipelineError` that stops the app.
        guards: the stages' guards (a stage busy on one frame for `stall_timeout` is hung).
        camera: the capture stage of a camera (None for file sources, which cannot stall).
        camera_name: for the message ("v4l2 /dev/video0").
        stall_timeout: seconds without a frame, or on one frame, that stop the app.
        startup_timeout: seconds allowed before the first camera frame.
        period: seconds between checks.
    """

    def __init__(
        self,
        on_fatal: Callable[[BaseException], None],
        guards: Sequence[StageGuard],
        camera: FrameClock | None = None,
        camera_name: str = "camera",
        stall_timeout: float = DEFAULT_STALL_TIMEOUT,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
        period: float = 0.1,
    ) -> None:
        super().__init__()
        self.daemon = True
        self.on_fatal = on_fatal
        self.guards = list(guards)
        self.camera = camera
        self.camera_name = camera_name
        self.stall_timeout = float(stall_timeout)
        self.startup_timeout = max(float(startup_timeout), self.stall_timeout)
        self.period = float(period)
        self.started_at = time.monotonic()

    def check(self, now: float | None = None) -> BaseException | None:
        """The error to stop with, or None while frames flow."""
        now = time.monotonic() if now is None else now
        for guard in self.guards:
            since = guard.busy_since
            if since is not None and now - since > self.stall_timeout:
                return PipelineError(
                    f"stage {guard.where()!r} has worked on one frame for {now - since:.0f} s "
                    "(hung); "
                    "stopping so that Actcast restarts the app"
                )
        if self.camera is None:
            return None
        last = self.camera.last_frame
        if last is None:
            if now - self.started_at > self.startup_timeout:
                return SourceError(
                    f"{self.camera_name}: no frame in the first {now - self.started_at:.0f} s; "
                    "check that the camera is connected and not used by another process"
                )
            return None
        if now - last > self.stall_timeout:
            return SourceError(
                f"{self.camera_name}: the camera stopped delivering frames (none for "
                f"{now - last:.0f} s); check its cable and power; stopping so that Actcast "
                "restarts the app"
            )
        return None

    def run(self) -> None:
        self.started_at = time.monotonic()
        while self._is_running():
            error = self.check()
            if error is not None:
                self.on_fatal(error)
                return
            time.sleep(self.period)
