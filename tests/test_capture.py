"""Capture sources: orientation views, video files (PyAV), image folders, camera checks."""

import numpy as np
import pytest
from conftest_app import write_clip
from PIL import Image

from handpose.capture import (
    CameraSource,
    ImageFolderSource,
    Orientation,
    VideoFileSource,
    check_capture_size,
    open_source,
)
from handpose.errors import SettingsError, SourceError
from handpose.settings import AppSettings


def numbered(height=4, width=6):
    return np.arange(height * width * 3, dtype=np.uint8).reshape(height, width, 3)


def test_orientation_is_a_view_and_correct():
    image = numbered()
    rotated = Orientation(rotation=90).apply(image)
    assert rotated.shape == (6, 4, 3) and np.shares_memory(rotated, image)
    # clockwise: the top-left pixel goes to the top-right
    assert (rotated[0, -1] == image[0, 0]).all()
    assert (Orientation(rotation=180).apply(image) == image[::-1, ::-1]).all()
    assert (Orientation(rotation=270).apply(image)[-1, 0] == image[0, 0]).all()
    flipped = Orientation(hflip=True, vflip=True).apply(image)
    assert (flipped[0, 0] == image[-1, -1]).all()
    assert Orientation(rotation=90).size(640, 480) == (480, 640)


def test_video_file_source_reads_every_frame(tmp_path):
    frames = [np.full((48, 64, 3), 20 * i, np.uint8) for i in range(5)]
    path = write_clip(tmp_path / "clip.mp4", frames, fps=10)
    source = VideoFileSource(path, Orientation(rotation=90))
    read = []
    while (item := source.read()) is not None:
        read.append(item)
    assert len(read) == 5
    assert read[0][0].shape == (64, 48, 3)
    assert [round(t, 3) for _, t in read] == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert abs(float(read[3][0].mean()) - 60) < 4  # lossy codec, flat frames
    assert source.skipped == 0


def test_video_loop_keeps_time_increasing(tmp_path):
    path = write_clip(tmp_path / "clip.mp4", [np.zeros((32, 32, 3), np.uint8)] * 3, fps=10)
    source = VideoFileSource(path, loop=True)
    stamps = [source.read()[1] for _ in range(7)]
    assert all(b > a for a, b in zip(stamps, stamps[1:], strict=False))


def test_corrupt_video_packets_are_skipped(tmp_path):
    frames = [np.random.default_rng(i).integers(0, 255, (64, 64, 3), np.uint8) for i in range(8)]
    path = write_clip(tmp_path / "clip.mp4", frames, fps=10)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 400] = bytes(400)
    path.write_bytes(bytes(data))
    source = VideoFileSource(path)
    count = 0
    while source.read() is not None:
        count += 1
    assert 1 <= count <= 8  # never raises on damage


def test_image_folder_source_skips_unreadable(tmp_path):
    (tmp_path / "sub").mkdir()
    Image.new("RGB", (40, 30), (255, 0, 0)).save(tmp_path / "b.png")
    Image.new("RGB", (40, 30), (0, 255, 0)).save(tmp_path / "sub" / "a.jpg")
    (tmp_path / "c.jpg").write_bytes(b"not a jpeg")
    source = ImageFolderSource(tmp_path, fps=5)
    first, t0 = source.read()
    second, t1 = source.read()
    assert source.read() is None
    assert first[0, 0, 0] > 200 and second[0, 0, 1] > 200  # b.png, then sub/a.jpg
    assert (t0, t1) == (0.0, 0.4)  # timestamps follow file positions (c.jpg skipped)
    assert source.skipped == 1


def test_open_source_errors(tmp_path):
    settings = AppSettings()
    with pytest.raises(SourceError, match="no such file"):
        open_source(str(tmp_path / "missing.mp4"), settings)
    with pytest.raises(SourceError, match="no .jpg/.png"):
        open_source(str(tmp_path), settings)
    Image.new("RGB", (8, 8)).save(tmp_path / "one.png")
    with pytest.raises(SourceError, match="handpose predict"):
        open_source(str(tmp_path / "one.png"), settings)
    with pytest.raises(SourceError, match="no camera at /dev/video99.*camera_device"):
        open_source("/dev/video99", settings)


def test_picamera_is_refused_in_one_line_naming_the_alternatives():
    """actfw-raspberrypi's PiCameraCapture refuses bullseye and bookworm: no picamera option."""
    with pytest.raises(SourceError) as error:
        open_source("picamera", AppSettings())
    message = str(error.value)
    assert "\n" not in message and "libcamera" in message and "unicam" in message
    with pytest.raises(SettingsError, match='"libcamera"'):
        AppSettings.from_dict({"camera": "picamera"})


def test_capture_size_mismatch_names_the_settings():
    with pytest.raises(SourceError) as error:
        check_capture_size("v4l2 /dev/video0", (1280, 720), AppSettings())
    message = str(error.value)
    assert "capture_width=1280" in message and "capture_height=720" in message


def test_camera_source_decodes_and_skips_short_buffers():
    image = numbered(4, 6)
    source = CameraSource(None, (6, 4), Orientation(hflip=True), "fake")
    decoded, stamp = source.decode(image.tobytes())
    assert (decoded == image[:, ::-1]).all() and stamp > 0
    assert source.decode(b"\x00" * 10) is None and source.skipped == 1
    # picamera-style padding: width to 32 (6 -> 32 px), height to 16 (4 -> 16 rows)
    padded = np.zeros((16, 32, 3), np.uint8)
    padded[:4, :6] = image
    decoded, _ = source.decode(padded.tobytes())
    assert (decoded == image[:, ::-1]).all()
