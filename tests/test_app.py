"""The real actfw Application with the real tasks and real TFLite models.

Fakes only for hardware: a camera `Producer` that emits actfw `Frame` bytes like
`V4LCameraCapture`, and an HDMI display with the `actfw_raspberrypi.vc4.Display` interface.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import actfw_core
import jsonschema
import numpy as np
import pytest
from actfw_core.capture import Frame
from actfw_core.task import Producer
from conftest_app import app_models_dir, clip_frames, write_clip
from PIL import Image

from handpose.actcast import build_application
from handpose.capture import CameraSource, Orientation, VideoFileSource
from handpose.errors import PipelineError
from handpose.overlay import overlay_size
from handpose.pipeline import load_model_set
from handpose.present import CommandServerSink, HdmiSink, PngFolderSink, Sink
from handpose.settings import AppSettings

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "data_schema.json").read_text())
#: the test detector fires everywhere (conftest_app.fire_everywhere): hands pass this threshold
SETTINGS = AppSettings(score_threshold=0.3, max_hands=2, notify_interval=0.2, num_threads=1)


@pytest.fixture(scope="module")
def models():
    return load_model_set(app_models_dir(), num_threads=1)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    return write_clip(path, clip_frames(12, (240, 320)), fps=10)


@pytest.fixture
def heartbeats():
    count = [0]
    actfw_core.set_heartbeat_function(lambda: count.__setitem__(0, count[0] + 1))
    yield count
    actfw_core.set_heartbeat_function(actfw_core._default_heartbeat)


def notified(stdout: str) -> list[dict]:
    """Every record printed by actfw_core.notify, each line checked against data_schema.json."""
    records = []
    for line in stdout.splitlines():
        batch = json.loads(line)
        jsonschema.validate(batch, SCHEMA)
        records += batch
    return records


@pytest.mark.slow
def test_clip_through_the_real_application(models, clip, tmp_path, capsys, heartbeats):
    out = tmp_path / "overlay"
    app = build_application(SETTINGS, VideoFileSource(clip), [PngFolderSink(out)], models)
    start = time.perf_counter()
    app.run()  # returns when the end-of-stream marker reached the last stage
    assert time.perf_counter() - start < 30
    assert app.presenter.frames == 12
    assert heartbeats[0] == 12
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 12
    with Image.open(pngs[-1]) as image:
        assert image.size == overlay_size(320, 240)
    records = notified(capsys.readouterr().out)
    assert records, "the threshold lets untrained detections through: events expected"
    assert records[0]["event"] == "hand_enter"  # events first, then the hand records
    hand_records = [r for r in records if r["event"] in ("appeared", "present", "lost")]
    assert hand_records[0]["event"] == "appeared"
    assert all(len(r["keypoints"]) == 21 for r in hand_records if r["event"] != "lost")
    entered = {r["track_id"] for r in records if r["event"] == "hand_enter"}
    assert {r["track_id"] for r in hand_records} <= entered


class BrokenSink(Sink):
    def show(self, canvas, state):
        raise RuntimeError("sink exploded")


@pytest.mark.slow
def test_a_stage_failing_on_every_frame_stops_the_application(models, clip, capsys, heartbeats):
    """One failing frame is only dropped (tests/test_reliability.py); `failure_limit` failures
    in a row stop the app with an error naming the stage and the cause."""
    source = VideoFileSource(clip, loop=True)
    app = build_application(SETTINGS, source, [BrokenSink()], models, failure_limit=5)
    start = time.perf_counter()
    app.run()
    assert time.perf_counter() - start < 30
    assert isinstance(app.error, PipelineError)
    message = str(app.error)
    assert "'present' failed on 5 frames in a row" in message and "sink exploded" in message
    assert app.drops.counts == {"present failed (RuntimeError)": 5}
    assert heartbeats[0] == 0  # no frame was presented: the healthchecker would fail too


class FakeCamera(Producer):
    """Stands in for V4LCameraCapture: RGB24 bytes in actfw `Frame`s, `capture_size()`."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        super().__init__()
        self.frames = frames
        self.count = 0

    def capture_size(self) -> tuple[int, int]:
        return self.frames[0].shape[1], self.frames[0].shape[0]

    def proc(self) -> Frame:
        time.sleep(0.01)
        frame = self.frames[self.count % len(self.frames)]
        self.count += 1
        return Frame(frame.tobytes())


class FakeDisplay:
    """The `actfw_raspberrypi.vc4.Display` interface, recording what is blitted.

    Checks layers as its DRM display does (bullseye, bookworm: `Device.pick_plane`): a window
    takes the free plane whose zpos is its layer, else RuntimeError; vc4's overlay planes have
    zpos 1..16 (0 is the primary plane, which the console holds). Closing a window frees it.
    """

    blits: list[int] = []

    def __init__(self):
        self.free = set(range(1, 17))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def size(self):
        return 1920, 1080

    def open_window(self, dst, size, layer):
        zposs = sorted(self.free)
        if layer not in zposs:
            raise RuntimeError(f"layer value must be in {zposs}")
        self.free.remove(layer)
        return FakeWindow(self, size, layer)


class FakeWindow:
    def __init__(self, display, size, layer):
        self.display, self.size, self.layer = display, size, layer

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.display.free.add(self.layer)
        return False

    def blit(self, data: bytes) -> None:
        assert len(data) == self.size[0] * self.size[1] * 3
        FakeDisplay.blits.append(self.size)

    def update(self) -> None:
        pass


def test_hdmi_windows_use_layers_the_drm_display_accepts():
    displays = []

    def factory():
        displays.append(FakeDisplay())
        return displays[-1]

    FakeDisplay.blits = []
    sink = HdmiSink(factory)
    for size in [(480, 240), (480, 240), (640, 320)]:  # the second size opens the windows anew
        sink.show(Image.new("RGB", size), None)
    assert FakeDisplay.blits == [(32, 1), (480, 240), (480, 240), (32, 1), (640, 320)]
    assert displays[0].free == set(range(1, 17))  # its windows were closed: planes freed
    sink.close()
    assert displays[1].free == set(range(1, 17))
    with pytest.raises(RuntimeError, match="layer value must be in"):
        FakeDisplay().open_window((0, 0, 32, 1), (32, 1), 1000)  # what the real one raises


@pytest.mark.slow
def test_camera_path_with_hdmi_and_take_photo(models, capsys, heartbeats, tmp_path):
    frames = clip_frames(4, (240, 320))
    camera = FakeCamera(frames)
    source = CameraSource(camera, camera.capture_size(), Orientation(rotation=90), "fake camera")
    FakeDisplay.blits = []
    server = actfw_core.CommandServer(sock_path=str(tmp_path / "command.sock"))
    sinks = [HdmiSink(FakeDisplay), CommandServerSink(server)]
    app = build_application(SETTINGS, source, sinks, models)

    def stop_after_frames():
        while app.presenter.frames < 6:
            time.sleep(0.02)
        app.stop()

    threading.Thread(target=stop_after_frames, daemon=True).start()
    start = time.perf_counter()
    app.run()
    assert time.perf_counter() - start < 30
    width, height = overlay_size(240, 320)  # rotated 90 degrees: 240 x 320 frames
    assert FakeDisplay.blits[0] == (32, 1)  # the black background
    assert FakeDisplay.blits[1:7] == [(width, height)] * 6
    assert heartbeats[0] >= 6
    assert server.img is not None and server.img.size == (width, height)  # Take Photo image
    notified(capsys.readouterr().out)


def run_command(*args, **kwargs):
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen(
        [sys.executable, "-m", "handpose.cli", "run", *args], text=True, **kwargs
    )


@pytest.mark.slow
def test_run_command_writes_events_and_video(clip, tmp_path):
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"score_threshold": 0.3, "notify_interval": 0.2}))
    video = tmp_path / "out.mp4"
    process = run_command(
        "--source",
        str(clip),
        "--models",
        str(app_models_dir()),
        "--settings",
        str(settings),
        "--save",
        str(video),
        "--max-frames",
        "8",
    )
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert notified(stdout)
    assert "processed 8 frames" in stderr
    source = VideoFileSource(video)
    count, first = 0, None
    while (item := source.read()) is not None:
        first = item[0] if first is None else first
        count += 1
    assert count == 8
    assert first.shape[:2] == (240, 320 + 2 * 80)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_signal_stops_within_two_seconds(clip, tmp_path, sig):
    beat = tmp_path / "heartbeat"
    process = run_command(
        "--source",
        str(clip),
        "--loop",
        "--models",
        str(app_models_dir()),
        env={**os.environ, "HANDPOSE_HEARTBEAT": str(beat)},
        # nobody reads the events while it runs: a full stdout pipe (64 KB, about a second of
        # the untrained models' events) would block the writer and the stop with it
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not beat.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert beat.exists(), process.stderr.read() if process.poll() is not None else "no frame"
    time.sleep(0.5)
    sent = time.monotonic()
    process.send_signal(sig)
    process.wait(timeout=10)
    elapsed = time.monotonic() - sent
    assert process.returncode == 0, process.stderr.read()
    assert elapsed < 2.0, f"stopped {elapsed:.2f} s after {sig.name}"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_hands": 99}, "setting 'max_hands' = 99 is out of range"),
        ({"camera": "v4l2", "camera_device": "/dev/video77"}, "no camera at /dev/video77"),
    ],
)
def test_actcast_main_stops_with_one_line(tmp_path, settings, message):
    path = tmp_path / "act.json"
    path.write_text(json.dumps(settings))
    result = subprocess.run(
        [sys.executable, str(ROOT / "app" / "main")],
        env={**os.environ, "ACT_SETTINGS_PATH": str(path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.stderr
