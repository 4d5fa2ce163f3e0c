"""Reliability (issue 11): one test per fault, with the real actfw Application, real TFLite models
and the real healthchecker script.

Fakes only for hardware: cameras that deliver actfw `Frame` bytes like `V4LCameraCapture`, then
stop delivering, die, or deliver short buffers.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import actfw_core
import numpy as np
import pytest
from actfw_core.capture import Frame
from actfw_core.task import Producer
from conftest_app import app_models_dir, clip_frames, write_clip
from PIL import Image

from handpose import actcast
from handpose.actcast import build_application
from handpose.capture import (
    CameraSource,
    FileSource,
    ImageFolderSource,
    Orientation,
    VideoFileSource,
)
from handpose.errors import ModelFileError, PipelineError, SourceError
from handpose.faults import DropLog, StageGuard, Watchdog
from handpose.pipeline import load_model_set
from handpose.pipeline.models import ModelSet
from handpose.settings import AppSettings

ROOT = Path(__file__).resolve().parents[1]
HEALTHCHECKER = ROOT / "app" / "healthchecker"
#: the test detector fires everywhere (conftest_app.fire_everywhere): hands pass this threshold
SETTINGS = AppSettings(score_threshold=0.3, max_hands=2, notify_interval=0.2, num_threads=1)
SIZE = (240, 320)  # frame (height, width)


@pytest.fixture(scope="module")
def models():
    return load_model_set(app_models_dir(), num_threads=1)


@pytest.fixture(scope="module")
def frames():
    return clip_frames(4, SIZE)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    return write_clip(path, clip_frames(12, SIZE), fps=10)


@pytest.fixture
def heartbeats():
    count = [0]
    actfw_core.set_heartbeat_function(lambda: count.__setitem__(0, count[0] + 1))
    yield count
    actfw_core.set_heartbeat_function(actfw_core._default_heartbeat)


def no_notify(records):
    """Events are not what these tests look at."""


def healthcheck(beat: Path) -> int:
    """Exit status of the real `app/healthchecker` for the heartbeat file `beat`."""
    env = {**os.environ, "HANDPOSE_HEARTBEAT": str(beat)}
    return subprocess.run(["sh", str(HEALTHCHECKER)], env=env, timeout=30).returncode


class Camera(Producer):
    """Stands in for an actfw capture task (RGB24 bytes in `Frame`s, like V4LCameraCapture).

    Args:
        frames: the images it cycles through.
        deliver: frames delivered before the fault (None: never stops).
        fault: "stall" (delivers nothing more, like a camera whose cable came loose) or "die"
            (raises like actfw's capture tasks on "Capture timeout").
        short_every: every n-th buffer is cut short (a truncated frame).
    """

    def __init__(self, frames, deliver=None, fault="stall", short_every=0):
        super().__init__()
        self.frames, self.deliver = frames, deliver
        self.fault, self.short_every = fault, short_every
        self.count = 0

    def size(self):
        return self.frames[0].shape[1], self.frames[0].shape[0]

    def proc(self):
        if self.deliver is not None and self.count >= self.deliver:
            if self.fault == "die":
                raise RuntimeError("Capture timeout")
            while self._is_running():
                time.sleep(0.02)
            return None
        time.sleep(0.01)
        data = self.frames[self.count % len(self.frames)].tobytes()
        self.count += 1
        if self.short_every and self.count % self.short_every == 0:
            data = data[: len(data) // 3]
        return Frame(data)


def camera_source(camera: Camera) -> CameraSource:
    return CameraSource(camera, camera.size(), Orientation(), "fake camera")


def stop_when(app, condition, timeout=60.0):
    """Stop `app` from another thread once `condition()` holds (or after `timeout`)."""

    def watch():
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline and app.running:
            time.sleep(0.02)
        app.stop()

    threading.Thread(target=watch, daemon=True).start()


# --------------------------------------------------------------- corrupt and truncated frames


def test_unreadable_and_truncated_images_are_skipped_counted_logged_once(tmp_path, caplog):
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (30, 40, 3), np.uint8)).save(tmp_path / f"{i}.jpg")
    good = (tmp_path / "0.jpg").read_bytes()
    (tmp_path / "1.jpg").write_bytes(good[: len(good) // 2])  # truncated
    (tmp_path / "3.jpg").write_bytes(good[:40])  # truncated in its header
    (tmp_path / "4.png").write_bytes(b"not a png at all")
    source = ImageFolderSource(tmp_path, fps=10)
    with caplog.at_level(logging.WARNING):
        read = []
        while (item := source.read()) is not None:
            read.append(item)
    assert len(read) == 2 and all(image.shape == (30, 40, 3) for image, _ in read)
    assert source.drops.counts == {"unreadable image file": 3} and source.skipped == 3
    warnings = [r for r in caplog.records if "unreadable image file" in r.getMessage()]
    assert len(warnings) == 1 and "1.jpg" in warnings[0].getMessage()  # once per kind


class ArraySource(FileSource):
    """A file source that yields given arrays (what a broken decoder could hand over)."""

    name = "arrays"

    def __init__(self, arrays, loop=False):
        super().__init__(loop=loop)
        self.arrays = arrays

    def _iterate(self):
        for i, array in enumerate(self.arrays):
            yield array, i / 10


def test_malformed_frames_are_skipped_and_a_looping_source_of_junk_ends(caplog):
    good = np.zeros((8, 8, 3), np.uint8)
    junk = [
        np.zeros((8, 8), np.uint8),
        np.zeros((8, 8, 3), np.float32),
        np.zeros((0, 8, 3), np.uint8),
    ]
    source = ArraySource([junk[0], good, *junk[1:], good])
    with caplog.at_level(logging.WARNING):
        assert source.read()[0] is good and source.read()[0] is good and source.read() is None
    assert source.drops.counts == {"malformed frame": 3}
    assert sum("malformed frame" in r.getMessage() for r in caplog.records) == 1
    looping = ArraySource(junk, loop=True)
    assert looping.read() is None  # no good frame in a whole pass: ends instead of spinning


def test_short_camera_buffers_are_skipped_counted_logged_once(caplog):
    image = np.zeros((4, 6, 3), np.uint8)
    source = CameraSource(None, (6, 4), Orientation(), "fake camera")
    with caplog.at_level(logging.WARNING):
        for size in (10, 0, 71):
            assert source.decode(bytes(size)) is None
        assert source.decode(image.tobytes()) is not None
    assert source.drops.counts == {"short camera buffer": 3}
    messages = [r.getMessage() for r in caplog.records]
    assert sum("short camera buffer" in m for m in messages) == 1
    assert "72" in messages[0]  # names what a frame needs


def test_drop_log_logs_each_kind_once_then_at_powers_of_ten(caplog):
    drops = DropLog()
    with caplog.at_level(logging.WARNING):
        for _ in range(100):
            drops.drop("corrupt video packet")
        drops.drop("short camera buffer", "fake: 3 bytes")
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 4  # the first, the 10th, the 100th, the other kind's first
    assert "10 frames dropped so far" in logged[1] and "100 frames" in logged[2]
    assert drops.total == 101
    assert drops.summary() == "101 frames dropped (100 corrupt video packet, 1 short camera buffer)"


@pytest.mark.slow
def test_the_app_goes_on_through_short_camera_buffers(models, frames, heartbeats):
    camera = Camera(frames, short_every=3)
    app = build_application(SETTINGS, camera_source(camera), [], models, notify=no_notify)
    stop_when(app, lambda: app.presenter.frames >= 6)
    app.run()
    assert app.error is None and app.presenter.frames >= 6 and heartbeats[0] >= 6
    assert set(app.drops.counts) == {"short camera buffer"} and app.drops.total >= 2


@pytest.mark.slow
def test_a_camera_delivering_only_short_buffers_stops_the_app_naming_the_settings(
    models, frames, heartbeats
):
    camera = Camera(frames, short_every=1)  # every buffer is a third of a frame
    source = camera_source(camera)
    app = build_application(SETTINGS, source, [], models, failure_limit=5, notify=no_notify)
    app.run()
    assert isinstance(app.error, SourceError)
    message = str(app.error)
    assert "5 camera buffers in a row are no 320x240 RGB24 frame" in message
    assert "(the last had 76800 bytes)" in message and "capture_width" in message
    assert heartbeats[0] == 0 and app.drops.counts == {"short camera buffer": 5}


# ---------------------------------------------------------------------- a stage that raises


class FlakyRunner:
    """A `ModelRunner` whose `run` raises on the given call numbers (1-based)."""

    def __init__(self, runner, fail_on):
        self.runner, self.fail_on, self.calls = runner, set(fail_on), 0

    def __getattr__(self, name):
        return getattr(self.runner, name)

    def run(self, image):
        self.calls += 1
        if self.calls in self.fail_on:
            raise RuntimeError(f"invoke failed (call {self.calls})")
        return self.runner.run(image)


@pytest.mark.slow
def test_a_stage_raising_on_one_frame_drops_it_and_the_pipeline_goes_on(
    models, clip, heartbeats, caplog
):
    pose = FlakyRunner(models.pose, {3})  # frame 1 (two hands a frame)
    flaky = ModelSet(detector=models.detector, pose=pose, folder=models.folder)
    app = build_application(SETTINGS, VideoFileSource(clip), [], flaky, notify=no_notify)
    with caplog.at_level(logging.WARNING):
        app.run()  # to the end of the clip
    assert app.error is None
    assert app.presenter.frames == 11 and heartbeats[0] == 11  # 12 frames, one dropped
    assert app.drops.counts == {"pose failed (RuntimeError)": 1}
    (record,) = [r for r in caplog.records if "pose failed" in r.getMessage()]
    assert "invoke failed (call 3)" in record.getMessage() and record.exc_info is not None


def test_stage_guard_counts_failures_in_a_row_only():
    fatal = []
    guard = StageGuard("detect", DropLog(), fatal.append, limit=3)

    def fail():
        raise ValueError("bad frame")

    for work in (fail, fail, lambda: 1, fail, fail):
        guard.run(work)
    assert fatal == [] and guard.in_a_row == 2
    guard.run(fail)
    assert isinstance(fatal[0], PipelineError) and "3 frames in a row" in str(fatal[0])
    guard.run(lambda: (_ for _ in ()).throw(SourceError("no camera")))
    assert isinstance(fatal[1], SourceError)  # a HandposeError stops at once


# ------------------------------------------------------------- a camera that stops delivering


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["stall", "die"])
def test_a_camera_that_stops_delivering_stops_the_app_and_the_heartbeat(
    models, frames, heartbeats, fault
):
    camera = Camera(frames, deliver=5, fault=fault)
    app = build_application(
        SETTINGS, camera_source(camera), [], models, stall_timeout=1.0, notify=no_notify
    )
    start = time.perf_counter()
    app.run()
    elapsed = time.perf_counter() - start
    assert isinstance(app.error, SourceError)
    assert "fake camera: the camera stopped delivering frames" in str(app.error)
    if fault == "die":
        assert "Capture timeout" in str(app.error)
    assert elapsed < 20
    assert heartbeats[0] == app.presenter.frames <= 5
    assert not any(task.is_alive() for task in app.tasks)


def test_watchdog_names_a_hung_stage_and_a_camera_that_never_started():
    guard = StageGuard("pose", DropLog(), lambda error: None)
    camera = type("Clock", (), {"last_frame": None})()
    watchdog = Watchdog(lambda error: None, [guard], camera, "v4l2 /dev/video0", 5.0, 30.0)
    now = watchdog.started_at
    assert watchdog.check(now + 10) is None  # the camera may take its time to start
    assert "no frame in the first 31 s" in str(watchdog.check(now + 31))
    camera.last_frame = now + 31
    guard.busy_since = now + 32
    assert watchdog.check(now + 33) is None
    error = watchdog.check(now + 38)
    assert isinstance(error, PipelineError) and "'pose' has worked on one frame for 6 s" in str(
        error
    )


@pytest.fixture
def restore_process_state():
    """`actcast.main` installs signal handlers, a heartbeat function and maybe a log handler:
    put them back."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    root = logging.getLogger()
    log_handlers, level = list(root.handlers), root.level
    yield
    for sig, handler in handlers.items():
        signal.signal(sig, handler)
    actfw_core.set_heartbeat_function(actfw_core._default_heartbeat)
    root.handlers[:] = log_handlers
    root.setLevel(level)


@pytest.mark.slow
def test_app_main_exits_with_the_camera_error_and_the_healthchecker_fails(
    tmp_path, monkeypatch, capsys, frames, restore_process_state
):
    beat = tmp_path / "heartbeat"
    settings = tmp_path / "act.json"
    values = {"score_threshold": 0.3, "num_threads": 1, "models_dir": str(app_models_dir())}
    settings.write_text(json.dumps(values))
    monkeypatch.setenv("ACT_SETTINGS_PATH", str(settings))
    monkeypatch.setenv("HANDPOSE_HEARTBEAT", str(beat))
    camera = Camera(frames, deliver=5)
    monkeypatch.setattr(actcast, "open_camera", lambda kind, settings: camera_source(camera))
    fast = functools.partial(actcast.build_application, stall_timeout=1.0)
    monkeypatch.setattr(actcast, "build_application", fast)
    assert healthcheck(beat) == 1  # no heartbeat yet

    assert actcast.main() == 1

    stderr = capsys.readouterr().err
    errors = [line for line in stderr.splitlines() if line.startswith("handpose: error:")]
    assert len(errors) == 1, stderr
    assert errors[0].startswith("handpose: error: fake camera: the camera stopped delivering")
    assert "Traceback" not in stderr
    stamp = beat.stat().st_mtime  # the app touched it while frames flowed
    assert healthcheck(beat) == 0
    time.sleep(0.3)
    assert beat.stat().st_mtime == stamp  # and nothing touches it any more
    os.utime(beat, (stamp - 61, stamp - 61))  # a minute later
    assert healthcheck(beat) == 1


def test_healthchecker_needs_a_heartbeat_in_the_last_minute(tmp_path):
    beat = tmp_path / "heartbeat"
    assert healthcheck(beat) == 1
    beat.touch()
    assert healthcheck(beat) == 0
    old = time.time() - 61
    os.utime(beat, (old, old))
    assert healthcheck(beat) == 1


# ------------------------------------------------------------ a flickering hand (issue 9's limit)


def test_a_flickering_hand_cannot_flood_actcast():
    """A hand that appears and vanishes every frame at 30 fps for a minute: with the app's
    settings at most `notify_max_rate` notifications a second go out (without it, hundreds)."""
    from handpose.events import EventEmitter
    from handpose.hand import Hand

    settings = AppSettings(lost_timeout=0.0, notify_max_rate=2.0)
    limited, unlimited = EventEmitter.from_settings(settings), EventEmitter(lost_timeout=0.0)
    hand = Hand("right", 0.9, [100, 100, 160, 180])
    sent: dict[str, list[float]] = {"limited": [], "unlimited": []}
    for i in range(30 * 60):
        t = i / 30
        hands = [hand] if i % 2 == 0 else []
        for name, emitter in (("limited", limited), ("unlimited", unlimited)):
            if emitter.update(t, hands, (640, 480)):
                sent[name].append(t)
    assert len(sent["unlimited"]) > 1000  # the flood the limit prevents
    assert len(sent["limited"]) <= 2 * 60 + 1
    gaps = np.diff(sent["limited"])
    assert gaps.min() >= 0.5 - 1e-6


# ----------------------------------------------------------------------- a file source ending


@pytest.mark.slow
def test_a_file_source_ending_stops_the_app_cleanly(models, clip, heartbeats):
    app = build_application(SETTINGS, VideoFileSource(clip), [], models, notify=no_notify)
    start = time.perf_counter()
    app.run()
    assert time.perf_counter() - start < 30
    assert app.error is None and app.drops.total == 0
    assert app.presenter.frames == 12 == heartbeats[0]
    assert not any(task.is_alive() for task in app.tasks)


# ------------------------------------------------------------------- stop within two seconds


@pytest.mark.slow
def test_stop_ends_every_task_within_two_seconds(models, frames, heartbeats):
    app = build_application(SETTINGS, camera_source(Camera(frames)), [], models, notify=no_notify)
    stopped = []

    def stop_after_frames():
        while app.presenter.frames < 3:
            time.sleep(0.02)
        stopped.append(time.perf_counter())
        app.stop()  # what the SIGTERM / SIGINT handler calls

    threading.Thread(target=stop_after_frames, daemon=True).start()
    app.run()
    assert time.perf_counter() - stopped[0] < 2.0
    assert not any(task.is_alive() for task in app.tasks)


# ------------------------------------------------------------------ model files at start-up


def _truncate(path: Path, fraction: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def _edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


MODEL_FAULTS = {
    "missing tflite": (
        lambda d: (d / "detector.tflite").unlink(),
        r"detector\.tflite: model file named by .*detector\.json not found; copy the whole",
    ),
    "truncated tflite": (
        lambda d: _truncate(d / "pose.tflite", 0.9),
        r"pose\.tflite: file does not match its metadata .*truncated or replaced.*copy both",
    ),
    "foreign tflite": (
        lambda d: shutil.copy(d / "pose.tflite", d / "detector.tflite"),
        r"detector\.tflite: file does not match its metadata",
    ),
    "foreign tflite with its digest": (
        lambda d: (
            shutil.copy(d / "pose.tflite", d / "detector.tflite"),
            _edit_json(d / "detector.json", sha256=_sha(d / "detector.tflite")),
        ),
        r"detector\.tflite: .*detector\.json does not describe .*handpose convert",
    ),
    "tflite without digest": (
        lambda d: (_truncate(d / "pose.tflite", 0.9), _edit_json(d / "pose.json", sha256="")),
        r"pose\.json: metadata has no sha256 of pose\.tflite.*handpose convert",
    ),
    "not a tflite": (
        lambda d: (
            (d / "pose.tflite").write_text("hello"),
            _edit_json(d / "pose.json", sha256=_sha(d / "pose.tflite")),
        ),
        r"pose\.tflite: not a (valid|complete) TFLite model.*handpose convert",
    ),
    "missing metadata": (
        lambda d: (d / "pose.json").unlink(),
        r"pose\.json: model metadata file not found; point --models",
    ),
    "truncated metadata": (
        lambda d: _truncate(d / "detector.json"),
        r"detector\.json: cannot read model metadata .*handpose convert",
    ),
    "foreign metadata": (
        lambda d: (d / "detector.json").write_text(json.dumps({"model": "yolo", "version": 8})),
        r"detector\.json: not a handpose model metadata file .*handpose convert",
    ),
    "metadata of the other model": (
        lambda d: shutil.copy(d / "pose.json", d / "detector.json"),
        r"detector\.json: .*handpose convert",
    ),
}


def _sha(path: Path) -> str:
    from handpose.metadata import sha256_of

    return sha256_of(path)


@pytest.mark.slow
@pytest.mark.parametrize("fault", sorted(MODEL_FAULTS))
def test_a_bad_model_file_stops_start_up_naming_the_file_and_the_fix(tmp_path, fault):
    folder = tmp_path / "models"
    shutil.copytree(app_models_dir(), folder)
    damage, message = MODEL_FAULTS[fault]
    damage(folder)
    with pytest.raises(ModelFileError, match=message) as error:
        load_model_set(folder, num_threads=1)
    assert "\n" not in str(error.value)


def _handpose_run(*args: str) -> subprocess.CompletedProcess:
    """`handpose run ARGS` in a fresh interpreter, as a user's shell would run it."""
    return subprocess.run(
        [sys.executable, "-m", "handpose.cli", "run", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_run_with_a_truncated_model_exits_2_with_one_line(tmp_path, clip):
    folder = tmp_path / "models"
    shutil.copytree(app_models_dir(), folder)
    _truncate(folder / "pose.tflite")
    result = _handpose_run("--source", str(clip), "--models", str(folder))
    assert result.returncode == 2, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if "error" in line]
    assert "pose.tflite: file does not match its metadata" in line
    assert "Traceback" not in result.stderr


def test_a_run_where_every_frame_is_dropped_is_an_error_not_a_success(tmp_path):
    """A short source can end before `limit` failures in a row stop the app: a run that
    processed nothing but dropped frames exits 1 naming the drops (a corrupt frame among good
    ones is only counted, as the tests above show)."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.png").write_bytes(b"not a png")
    result = _handpose_run("--source", str(folder))
    assert result.returncode == 1, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if "error" in line]
    assert "every frame was dropped (3 frames dropped (3 unreadable image file))" in line
    assert "Traceback" not in result.stderr and result.stdout == ""


# ----------------------------------------------------------------------- settings at start-up


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ('{"score_threshold": NaN}', ["'score_threshold' = nan", "not a finite number"]),
        ('{"max_hands": 3', ["act.json: not a JSON settings file"]),
        ("[1, 2]", ["act.json", "expected a JSON object of settings"]),
        ('{"capture_fps": "15"}', ["'capture_fps'", "'15'", "wrong type"]),
    ],
)
def test_actcast_main_names_the_bad_setting_or_file(tmp_path, content, words):
    path = tmp_path / "act.json"
    path.write_text(content)
    result = subprocess.run(
        [sys.executable, str(ROOT / "app" / "main")],
        env={**os.environ, "ACT_SETTINGS_PATH": str(path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    (line,) = [line for line in result.stderr.splitlines() if "error" in line]
    assert line.startswith("handpose: error:")
    for word in words:
        assert word in line, line
    assert "Traceback" not in result.stderr
