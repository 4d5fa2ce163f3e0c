"""The threaded actfw application reports, frame for frame, what `HandPipeline` reports.

Real components: the real actfw `Application` built by `build_application`, the bundled int8
models in the real TFLite interpreter, the bundled sample clip. Artificial delays slow one stage
at a time (capture, inference, presentation) so the threads interleave differently; the hands
(track ids, sides, boxes) and the hand events must not change.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from handpose.actcast import build_application
from handpose.capture import open_source
from handpose.events import EventEmitter
from handpose.paths import DEFAULT_MODELS_DIR
from handpose.pipeline import load_model_set
from handpose.pipeline.process import HandPipeline
from handpose.present import Sink
from handpose.settings import AppSettings

FRAMES = 45
SETTINGS = AppSettings(num_threads=1)


class RecordingSink(Sink):
    """Keeps each presented frame's hands (index -> [(id, side, box)]), optionally slowly."""

    def __init__(self, delay: float = 0.0) -> None:
        self.frames: dict[int, list[tuple[Any, str, np.ndarray]]] = {}
        self.delay = delay

    def show(self, canvas: Any, state: Any) -> None:
        if self.delay:
            time.sleep(self.delay)
        self.frames[state.index] = summary(state.hands)


def summary(hands: list) -> list[tuple[Any, str, np.ndarray]]:
    return [(h.track_id, h.handedness, np.asarray(h.box, np.float64)) for h in hands]


@pytest.fixture(scope="module")
def models():
    return load_model_set(DEFAULT_MODELS_DIR, num_threads=1)


@pytest.fixture(scope="module")
def reference(models):
    """Per-frame hands and every event of `HandPipeline` on the first FRAMES frames."""
    pipeline = HandPipeline(models, SETTINGS)
    emitter = EventEmitter.from_settings(SETTINGS)
    source = open_source("sample", SETTINGS)
    frames, events = {}, []
    for index in range(FRAMES):
        image, stamp = source.read()
        hands = pipeline(image, timestamp=stamp)
        frames[index] = summary(hands)
        height, width = image.shape[:2]
        events += emitter.update(stamp, hands, (width, height))
    events += emitter.flush()
    source.close()
    return frames, events


def slow(obj: Any, name: str, delay: float) -> None:
    """Make `obj.name(...)` sleep `delay` seconds first (an artificial stage delay)."""
    original = getattr(obj, name)

    def delayed(*args: Any, **kwargs: Any) -> Any:
        time.sleep(delay)
        return original(*args, **kwargs)

    setattr(obj, name, delayed)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["capture", "infer", "present"])
def test_application_reports_what_the_pipeline_reports(models, reference, where):
    want_frames, want_events = reference
    events: list[dict] = []
    sink = RecordingSink(delay=0.03 if where == "present" else 0.0)
    source = open_source("sample", SETTINGS)
    if where == "capture":
        slow(source, "read", 0.03)
    app = build_application(
        SETTINGS, source, [sink], models, max_frames=FRAMES, notify=events.extend,
        heartbeat=lambda: None,
    )  # fmt: skip
    if where == "infer":
        (infer,) = [t for t in app.pipeline_tasks if type(t).__name__ == "InferTask"]
        slow(infer.pipeline.detector, "detect", 0.03)
    app.run()
    assert sorted(sink.frames) == list(range(FRAMES))
    for index in range(FRAMES):
        got, want = sink.frames[index], want_frames[index]
        assert [(i, s) for i, s, _ in got] == [(i, s) for i, s, _ in want], f"frame {index}"
        for (_, _, a), (_, _, b) in zip(got, want, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-3, err_msg=f"frame {index}")
    assert events == want_events
    assert sum(e["event"] == "hand_enter" for e in events) >= 1
