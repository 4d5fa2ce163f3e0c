"""Present stage: overlay, hand events, heartbeat and the sinks that show the overlay.

`Presenter.present(state)` (no threads) draws the overlay once, hands it to every sink, notifies
the hand events of the frame and calls the heartbeat. Sinks:

- `HdmiSink`: actfw-raspberrypi `vc4.Display` (HDMI), when the `display` setting is on;
- `CommandServerSink`: actfw `CommandServer.update_image` (the console's Take Photo);
- `LocalVideoSink`: actfw `LocalVideoServer` (MJPEG for a browser, port 5100);
- `VideoFileSink` / `PngFolderSink`: annotated video or PNG files (local runs).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from handpose.errors import HandposeError, OutputError
from handpose.events import EventEmitter
from handpose.outputs import check_output_dir, check_output_file
from handpose.overlay import OverlayRenderer
from handpose.pipeline.detect import detection_square
from handpose.pipeline.state import FrameState

log = logging.getLogger(__name__)


class Sink:
    """Receives the overlay of every frame. `tasks()` are actfw tasks to register (servers)."""

    def show(self, canvas: Image.Image, state: FrameState) -> None:
        raise NotImplementedError

    def tasks(self) -> list[Any]:
        return []

    def close(self) -> None:
        pass


class CommandServerSink(Sink):
    """Keeps the latest overlay in actfw's `CommandServer` for the console's Take Photo."""

    def __init__(self, server: Any = None) -> None:
        if server is None:
            from actfw_core import CommandServer

            server = CommandServer()
        self.server = server

    def show(self, canvas: Image.Image, state: FrameState) -> None:
        self.server.update_image(canvas)  # the server copies the image

    def tasks(self) -> list[Any]:
        return [self.server]


class LocalVideoSink(Sink):
    """Streams the overlay to a browser through actfw's `LocalVideoServer` (port 5100)."""

    def __init__(self, server: Any = None) -> None:
        if server is None:
            from actfw_core import LocalVideoServer

            server = LocalVideoServer()
        self.server = server

    def show(self, canvas: Image.Image, state: FrameState) -> None:
        self.server.update_image(canvas)

    def tasks(self) -> list[Any]:
        return [self.server]


def vc4_display_class() -> Callable[[], Any]:
    """actfw-raspberrypi's `vc4.Display` (HDMI on bullseye/bookworm); imported at start-up so
    a missing package stops the app at once with the fix."""
    try:
        from actfw_raspberrypi.vc4 import Display
    except ImportError:
        raise HandposeError(
            "the HDMI display needs actfw-raspberrypi (pip install 'handpose[pi]' on the Pi); "
            "or turn the `display` setting off (--display none)"
        ) from None
    return Display


#: actfw-raspberrypi's DRM display (bullseye, bookworm) gives a window the free vc4 plane whose
#: zpos is the window's layer, else RuntimeError "layer value must be in [...]": the overlay
#: planes are 1..16 (0 is the console's primary plane); Idein's examples use 16
BACKGROUND_LAYER = 15
OVERLAY_LAYER = 16


class HdmiSink(Sink):
    """Shows the overlay full-screen (aspect kept) through a vc4 `Display`-like object.

    Args:
        display_factory: returns an object with the `actfw_raspberrypi.vc4.Display` interface
            (context manager, `size()`, `open_window(dst, size, layer)` whose windows have
            `blit(bytes)` and `update()`).
    """

    def __init__(self, display_factory: Callable[[], Any] | None = None) -> None:
        self._factory = display_factory or vc4_display_class()
        self._display: Any = None
        self._window: Any = None
        self._background: Any = None
        self._size: tuple[int, int] | None = None

    def show(self, canvas: Image.Image, state: FrameState) -> None:
        if self._window is None or self._size != canvas.size:
            self._open(canvas.size)
        self._window.blit(canvas.tobytes())
        self._window.update()

    def _open(self, size: tuple[int, int]) -> None:
        self.close()
        self._display = self._factory()
        self._display.__enter__()
        screen_w, screen_h = self._display.size()
        scale = min(screen_w / size[0], screen_h / size[1])
        width, height = int(size[0] * scale), int(size[1] * scale)
        dst = ((screen_w - width) // 2, (screen_h - height) // 2, width, height)
        # a black background window hides the console, the overlay goes on top of it
        self._background = self._display.open_window(
            (0, 0, screen_w, screen_h), (32, 1), BACKGROUND_LAYER
        )
        self._background.__enter__()
        self._background.blit(bytes(32 * 3))
        self._background.update()
        self._window = self._display.open_window(dst, size, OVERLAY_LAYER)
        self._window.__enter__()
        self._size = size

    def close(self) -> None:
        for window in (self._window, self._background):
            if window is not None:
                window.__exit__(None, None, None)
        self._window = self._background = None
        if self._display is not None:
            self._display.__exit__(None, None, None)
            self._display = None


class VideoFileSink(Sink):
    """Writes the overlay frames to a video file with PyAV (H.264 if available, else MPEG-4)."""

    def __init__(self, path: str | Path, fps: float = 15.0) -> None:
        from handpose.capture import _import_av

        self.av = _import_av()
        self.path = check_output_file(path, "--save")
        self.fps = max(1, round(fps))
        self._container: Any = None
        self._stream: Any = None
        self.frames = 0

    def show(self, canvas: Image.Image, state: FrameState) -> None:
        try:
            self._write(canvas)
        except Exception as error:  # noqa: BLE001 - any failed write stops the run (OutputError)
            raise OutputError(
                f"writing the overlay video {self.path} failed at frame {self.frames} "
                f"({error}); the run stops (disk full or the file went away)"
            ) from error
        self.frames += 1

    def _write(self, canvas: Image.Image) -> None:
        width, height = canvas.size[0] // 2 * 2, canvas.size[1] // 2 * 2
        if self._container is None:
            self._container = self.av.open(str(self.path), "w")
            for codec in ("libx264", "h264", "mpeg4"):
                try:
                    self._stream = self._container.add_stream(codec, rate=self.fps)
                    break
                except (self.av.error.FFmpegError, ValueError, KeyError):
                    continue
            self._stream.width, self._stream.height = width, height
            self._stream.pix_fmt = "yuv420p"
        pixels = np.asarray(canvas)[:height, :width]
        frame = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        if self._container is not None:
            container, self._container = self._container, None
            try:
                for packet in self._stream.encode():
                    container.mux(packet)
            finally:
                container.close()  # keeps what was written, even after a failed write
            log.info("wrote %d overlay frames to %s", self.frames, self.path)


class PngFolderSink(Sink):
    """Writes every overlay as DIR/000000.png, DIR/000001.png, ... (frame index)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = check_output_dir(folder, "--save")

    def show(self, canvas: Image.Image, state: FrameState) -> None:
        path = self.folder / f"{state.index:06d}.png"
        try:
            canvas.save(path)
        except OSError as error:
            raise OutputError(
                f"writing {path} failed ({error.strerror or error}); the run stops (disk full "
                "or the folder went away); the frames before it are kept"
            ) from error


def sink_for_path(path: str | Path, fps: float) -> Sink:
    """`--save`: a video file (by suffix) or a folder of PNGs."""
    path = Path(path)
    if path.suffix.lower() in (".mp4", ".mkv", ".avi", ".mov"):
        return VideoFileSink(path, fps)
    return PngFolderSink(path)


class FpsMeter:
    """Frames per second over the last `window` frames (wall clock)."""

    def __init__(self, window: int = 30) -> None:
        self.window = window
        self._times: list[float] = []

    def tick(self, now: float | None = None) -> float | None:
        self._times.append(time.perf_counter() if now is None else now)
        del self._times[: -self.window]
        if len(self._times) < 2:
            return None
        return (len(self._times) - 1) / max(self._times[-1] - self._times[0], 1e-9)


def _default_notify(records: list[dict[str, Any]]) -> None:
    import actfw_core

    actfw_core.notify(records)


def _default_heartbeat() -> None:
    import actfw_core

    actfw_core.heartbeat()


class Presenter:
    """The last stage's logic: overlay to sinks, hand events to `notify`, `heartbeat()`.

    Args:
        sinks: where the overlay goes (no overlay is drawn when empty).
        emitter: decides the hand events; None for no events.
        notify: called with each non-empty list of records (default `actfw_core.notify`).
        heartbeat: called once per frame (default `actfw_core.heartbeat`).
        detect_region: "center" or "letterbox": the detector's square drawn on the overlay.
    """

    def __init__(
        self,
        sinks: Sequence[Sink],
        emitter: EventEmitter | None,
        notify: Callable[[list[dict[str, Any]]], None] = _default_notify,
        heartbeat: Callable[[], None] = _default_heartbeat,
        detect_region: str | None = "center",
    ) -> None:
        self.sinks = list(sinks)
        self.emitter = emitter
        self.notify = notify
        self.heartbeat = heartbeat
        self.detect_region = detect_region
        self.renderer = OverlayRenderer()
        self.fps = FpsMeter()
        self.frames = 0
        self.events = 0
        self._present_ms = 0.0

    def present(self, state: FrameState) -> list[dict[str, Any]]:
        """Show, notify and heartbeat one frame; returns the records notified."""
        start = time.perf_counter()
        fps = self.fps.tick(start)
        width, height = state.size
        records: list[dict[str, Any]] = []
        if self.emitter is not None:
            records = self.emitter.update(state.timestamp, state.hands, (width, height))
            if records:
                self.notify(records)
                self.events += len(records)
        if self.sinks:
            timings = {**state.timings, "present": self._present_ms}
            region = (
                detection_square(width, height, self.detect_region) if self.detect_region else None
            )
            canvas = self.renderer.render(state.image, state.hands, fps, timings, region)
            for sink in self.sinks:
                sink.show(canvas, state)
        self.heartbeat()
        self.frames += 1
        self._present_ms = (time.perf_counter() - start) * 1e3
        return records

    def close(self) -> None:
        """Send the records the rate limit still holds, close the sinks."""
        if self.emitter is not None:
            try:
                records = self.emitter.flush()
                if records:
                    self.notify(records)
                    self.events += len(records)
            except Exception as error:  # closing must go on
                log.warning("sending the last hand events failed: %s", error)
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as error:  # a failing sink must not hide the others
                log.warning("closing %s failed: %s", type(sink).__name__, error)
