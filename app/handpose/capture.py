"""Capture sources: cameras (through actfw capture tasks), video files, image folders, the sample.

Two kinds, both ending in RGB uint8 (H, W, 3) frames with a timestamp:

- `FileSource` subclasses (`VideoFileSource`, `ImageFolderSource`) are pulled frame by frame
  (`read()`), for local runs; `handpose.tasks.SourceProducer` wraps them.
- `CameraSource` wraps an actfw capture `Producer` that emits `actfw_core.capture.Frame` bytes:
  `V4LCameraCapture` (USB), `UnicamIspCapture` (CSI on bullseye), `LibcameraCapture` (bookworm);
  `CameraSource.decode` turns the bytes into a frame (`handpose.tasks.CameraFrames`).

Rotation (clockwise degrees) and flips from the settings are applied as numpy views (no copy).
Sizes are asked of the camera/ISP directly, so the CPU never resizes the full frame. A camera
that cannot deliver the settings raises `SourceError` naming the setting to change.

A corrupt or truncated frame (a damaged video packet, an unreadable image file, a short camera
buffer, an array that is not RGB uint8 (H, W, 3)) is skipped and counted in the source's
`drops` (`handpose.faults.DropLog`, logged once per kind); `skipped` is their total.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from handpose.errors import SourceError
from handpose.faults import DropLog
from handpose.paths import SAMPLE_CLIP
from handpose.settings import AppSettings

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".h264", ".mjpeg")
CAMERAS = ("v4l2", "unicam", "libcamera")
#: picamera (the legacy camera stack) cannot be installed or started on bullseye or bookworm:
#: actfw-raspberrypi's PiCameraCapture refuses both
NO_PICAMERA = (
    "picamera is not supported on bullseye or bookworm (actfw-raspberrypi refuses it): use "
    "libcamera (CSI camera on bookworm), unicam (CSI camera on bullseye) or v4l2 (USB camera)"
)


@dataclass(frozen=True)
class Orientation:
    """Rotation (clockwise, degrees) then flips, applied as numpy views."""

    rotation: int = 0
    hflip: bool = False
    vflip: bool = False

    @classmethod
    def from_settings(cls, settings: AppSettings) -> Orientation:
        return cls(settings.rotation, settings.hflip, settings.vflip)

    def apply(self, image: np.ndarray) -> np.ndarray:
        """The oriented image (H', W', 3), a view of `image`."""
        if self.rotation:
            image = np.rot90(image, k=-(self.rotation // 90))
        if self.hflip:
            image = image[:, ::-1]
        if self.vflip:
            image = image[::-1]
        return image

    def size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) after rotation."""
        return (height, width) if self.rotation in (90, 270) else (width, height)


class FileSource:
    """A pulled source of frames. `read()` returns (image, timestamp) or None at the end."""

    name = "file"

    def __init__(self, orientation: Orientation | None = None, loop: bool = False) -> None:
        self.orientation = orientation or Orientation()
        self.loop = loop
        self.drops = DropLog()  #: corrupt frames / unreadable files skipped, by kind
        self._frames: Iterator[tuple[np.ndarray, float]] | None = None
        self._offset = 0.0
        self._last = 0.0

    @property
    def skipped(self) -> int:
        """Corrupt frames and unreadable files skipped so far."""
        return self.drops.total

    def _iterate(self) -> Iterator[tuple[np.ndarray, float]]:
        raise NotImplementedError

    def read(self) -> tuple[np.ndarray, float] | None:
        """Next (RGB uint8 (H, W, 3), timestamp s), or None at the end of the source.

        Malformed frames are skipped (counted in `drops`). A looping source that yields no
        good frame in a whole pass ends instead of spinning.
        """
        restarts = 0
        while restarts < 2:
            if self._frames is None:
                self._frames = self._iterate()
            item = next(self._frames, None)
            if item is None:
                self._frames = None
                if not self.loop:
                    return None
                restarts += 1
                self._offset = self._last + 0.1
                continue
            image, stamp = item
            problem = frame_problem(image)
            if problem is not None:
                self.drops.drop("malformed frame", f"{self.name}: {problem}")
                continue
            self._last = self._offset + float(stamp)
            return self.orientation.apply(image), self._last
        return None

    def close(self) -> None:
        self._frames = None


class VideoFileSource(FileSource):
    """Frames of a video file decoded with PyAV (the `video` extra); corrupt packets skipped."""

    def __init__(
        self, path: str | Path, orientation: Orientation | None = None, loop: bool = False
    ) -> None:
        super().__init__(orientation, loop)
        self.path = Path(path)
        self.name = str(self.path)
        if not self.path.is_file():
            raise SourceError(f"{self.path}: video file not found")
        self._av = _import_av()
        self._container: Any = None

    def _iterate(self) -> Iterator[tuple[np.ndarray, float]]:
        av = self._av
        try:
            self._container = container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError) as error:
            raise SourceError(f"{self.path}: cannot open as a video ({error})") from None
        if not container.streams.video:
            raise SourceError(f"{self.path}: has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or 30)
        count = 0
        try:
            packets = container.demux(stream)
            while True:
                try:
                    packet = next(packets, None)
                except av.error.FFmpegError as error:  # the container itself is damaged here
                    self.drops.drop("unreadable video data", f"{self.path}: {error}")
                    return
                if packet is None:
                    return
                try:
                    frames = packet.decode()
                except av.error.FFmpegError as error:
                    self.drops.drop("corrupt video packet", f"{self.path}: {error}")
                    continue
                for frame in frames:
                    stamp = float(frame.time) if frame.time is not None else count / rate
                    count += 1
                    yield frame.to_ndarray(format="rgb24"), stamp
        finally:
            container.close()

    def close(self) -> None:
        super().close()
        if self._container is not None:
            self._container.close()


class ImageFolderSource(FileSource):
    """Every jpg/png under a folder (recursively, sorted), at a nominal `fps` for timestamps."""

    def __init__(
        self,
        folder: str | Path,
        orientation: Orientation | None = None,
        loop: bool = False,
        fps: float = 10.0,
    ) -> None:
        super().__init__(orientation, loop)
        self.folder = Path(folder)
        self.name = str(self.folder)
        self.fps = float(fps)
        self.files = list_images(self.folder)
        if not self.files:
            raise SourceError(f"{self.folder}: no .jpg/.png images found")

    def _iterate(self) -> Iterator[tuple[np.ndarray, float]]:
        for index, path in enumerate(self.files):
            try:
                image = read_image(path)
            except ImageError as error:
                self.drops.drop("unreadable image file", str(error))
                continue
            yield image, index / self.fps


def list_images(folder: Path) -> list[Path]:
    """Image files under `folder`, recursively, sorted by path."""
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


class ImageError(Exception):
    """An image file that cannot be read (missing, truncated, not an image)."""


def read_image(path: Path) -> np.ndarray:
    """RGB uint8 (H, W, 3) of an image file; `ImageError` naming the file if it cannot be read
    (missing, truncated, not an image, a decompression bomb)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as error:
        raise ImageError(f"{path}: not a readable image ({error})") from None
    problem = frame_problem(pixels)
    if problem is not None:
        raise ImageError(f"{path}: {problem}")
    return pixels


def load_image(path: Path) -> np.ndarray | None:
    """RGB uint8 (H, W, 3) of an image file, or None (logged) if it cannot be read."""
    try:
        return read_image(path)
    except ImageError as error:
        log.warning("skipped: %s", error)
        return None


def frame_problem(image: object) -> str | None:
    """Why `image` is not a usable frame (RGB uint8 (H, W, 3), H, W >= 1), or None if it is."""
    if not isinstance(image, np.ndarray):
        return f"not an array ({type(image).__name__})"
    if image.dtype != np.uint8:
        return f"dtype {image.dtype}, not uint8"
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        return f"shape {image.shape}, not (H, W, 3)"
    return None


def _import_av() -> Any:
    try:
        import av
    except ImportError:
        raise SourceError("reading video files needs PyAV: pip install 'handpose[video]'") from None
    return av


class CameraSource:
    """An actfw capture task and how to turn its frame bytes into oriented RGB frames.

    Args:
        task: the actfw capture `Producer` (emits frames whose `getvalue()` is RGB24 bytes).
        size: (width, height) the camera delivers.
        orientation: rotation / flips applied to every frame.
        name: for logs ("v4l2 /dev/video0", ...).
    """

    def __init__(
        self, task: Any, size: tuple[int, int], orientation: Orientation, name: str
    ) -> None:
        self.task = task
        self.width, self.height = size
        self.orientation = orientation
        self.name = name
        self.drops = DropLog()  #: camera buffers that are no frame, by kind

    @property
    def skipped(self) -> int:
        """Camera buffers skipped so far (short or of a layout that is no frame)."""
        return self.drops.total

    def decode(self, value: bytes) -> tuple[np.ndarray, float] | None:
        """(oriented RGB frame, UNIX time) from one RGB24 capture buffer; None if it is short.

        Rows may be padded (the width to 32 and the height to 16 pixels, as the legacy camera
        stack did; some ISPs align the stride): with r buffer rows of stride b bytes, the frame
        is the view buffer.reshape(r, b)[:H, :3W].
        """
        width, height = self.width, self.height
        size = len(value)
        layouts = [(height, 3 * width), (-(-height // 16) * 16, 3 * (-(-width // 32) * 32))]
        if size % height == 0:  # any other row stride (ISP alignment)
            layouts.append((height, size // height))
        layout = next(((r, b) for r, b in layouts if r * b == size and b >= 3 * width), None)
        if layout is None:
            self.drops.drop(
                "short camera buffer",
                f"{self.name}: {size} bytes, a {width}x{height} RGB24 frame needs "
                f"{3 * width * height}",
            )
            return None
        buffer = np.frombuffer(value, np.uint8).reshape(layout)
        image = buffer[:height, : 3 * width].reshape(height, width, 3)
        return self.orientation.apply(image), time.time()


def check_capture_size(
    name: str, delivered: tuple[int, int], settings: AppSettings
) -> tuple[int, int]:
    """`SourceError` naming capture_width/capture_height when the camera chose another size."""
    asked = (settings.capture_width, settings.capture_height)
    if tuple(delivered) != asked:
        raise SourceError(
            f"{name}: the camera delivers {delivered[0]}x{delivered[1]}, not the "
            f"{asked[0]}x{asked[1]} asked; set capture_width={delivered[0]} and "
            f"capture_height={delivered[1]} (or a size the camera lists)"
        )
    return asked


def open_camera(kind: str, settings: AppSettings, device: str | None = None) -> CameraSource:
    """The camera `kind` ("v4l2", "unicam", "libcamera"; "auto" picks by OS)."""
    if kind == "picamera":
        raise SourceError(NO_PICAMERA)
    if kind == "auto":
        kind = auto_camera()
    device = device or settings.camera_device
    size = (settings.capture_width, settings.capture_height)
    fps = settings.capture_fps
    orientation = Orientation.from_settings(settings)
    asked = f"{size[0]}x{size[1]} at {fps} fps"
    hint = "change capture_width, capture_height or capture_fps"
    if kind in ("v4l2", "unicam") and not Path(device).exists():
        raise SourceError(
            f"no camera at {device}: connect one, or set `camera_device` (and `camera`: "
            f"{', '.join(CAMERAS)})"
        )
    try:
        if kind == "v4l2":
            from actfw_core.capture import V4LCameraCapture

            task = V4LCameraCapture(device, size, fps)
            delivered = task.capture_size()
        elif kind == "unicam":
            from actfw_core.unicam_isp_capture import UnicamIspCapture

            task = UnicamIspCapture(unicam=device, size=size, framerate=fps)
            delivered = task.capture_size()
        elif kind == "libcamera":
            import libcamera  # noqa: F401  (python3-libcamera, bookworm)
            from actfw_core.libcamera_capture import LibcameraCapture

            # actfw notes that libcamera's BGR888 is RGB byte order in memory
            task = LibcameraCapture(size, libcamera.PixelFormat("BGR888"), framerate=fps)
            delivered = task.capture_size()
        else:
            raise SourceError(f"unknown camera {kind!r}; `camera` is one of {', '.join(CAMERAS)}")
    except SourceError:
        raise
    except ImportError as error:
        raise SourceError(
            f"{kind} capture is not available here ({error}); choose another camera "
            f"(--source or the `camera` setting: {', '.join(CAMERAS)})"
        ) from None
    except (RuntimeError, OSError, ValueError, AssertionError) as error:
        raise SourceError(
            f"{kind} camera {device}: cannot capture {asked} ({error}); {hint}"
        ) from None
    delivered = (int(delivered[0]), int(delivered[1]))
    check_capture_size(f"{kind} camera {device}", delivered, settings)
    return CameraSource(task, delivered, orientation, f"{kind} {device}")


def auto_camera() -> str:
    """The capture backend for this OS: libcamera on bookworm, unicam (CSI) or v4l2."""
    try:
        from actfw_core.system import get_actcast_firmware_type

        firmware = get_actcast_firmware_type()
    except Exception:  # not on Actcast (no firmware variable)
        firmware = ""
    if firmware == "raspberrypi-bookworm":
        return "libcamera"
    if firmware == "raspberrypi-bullseye":
        return "unicam" if _csi_camera() else "v4l2"
    return "v4l2"


def _csi_camera() -> bool:
    try:
        from actfw_core.v4l2.video import Video, VideoPort

        video = Video("/dev/video0")
        try:
            return video.query_capability() == VideoPort.CSI
        finally:
            video.close()
    except Exception:
        return False


def open_source(spec: str, settings: AppSettings, loop: bool = False) -> FileSource | CameraSource:
    """A source from a `--source` spec.

    "sample" (the bundled clip), a video FILE, an image DIR, "/dev/videoN" (V4L2), "camera"
    (the `camera` setting), or one of "v4l2", "unicam", "libcamera".
    """
    orientation = Orientation.from_settings(settings)
    if spec == "sample":
        if not SAMPLE_CLIP.is_file():
            raise SourceError(
                f"{SAMPLE_CLIP}: the sample clip is not bundled in this install; pass "
                "--source FILE|DIR instead"
            )
        return VideoFileSource(SAMPLE_CLIP, orientation, loop)
    if spec == "camera":
        return open_camera(settings.camera, settings)
    if spec in CAMERAS or spec == "picamera":
        return open_camera(spec, settings)
    if spec.startswith("/dev/video"):
        return open_camera("v4l2", settings, device=spec)
    path = Path(spec)
    if path.is_dir():
        return ImageFolderSource(path, orientation, loop, fps=settings.capture_fps)
    if path.is_file():
        if path.suffix.lower() in IMAGE_SUFFIXES:
            raise SourceError(f"{path}: a single image; pass its folder, or use `handpose predict`")
        return VideoFileSource(path, orientation, loop)
    raise SourceError(
        f"--source {spec!r}: no such file or folder (use sample, FILE, DIR, /dev/videoN, "
        "camera, v4l2, unicam or libcamera)"
    )
