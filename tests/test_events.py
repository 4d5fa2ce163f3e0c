"""Hand events: when records are sent, what they hold, and that they match data_schema.json."""

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from handpose.events import EventEmitter, NotifyLimiter, box_iou, hand_record, merge_records
from handpose.hand import Hand
from handpose.settings import AppSettings

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "data_schema.json").read_text())
SIZE = (640, 480)


def make_hand(x0=100.0, side="right", pose=True, score=0.9):
    rng = np.random.default_rng(int(x0))
    box = np.array([x0, 100.0, x0 + 80.0, 200.0])
    keypoints = box[:2] + rng.uniform(0, 80, (21, 2)) if pose else None
    return Hand(
        handedness=side,
        score=score,
        box=box,
        keypoints=keypoints,
        keypoint_scores=rng.uniform(0, 1, 21) if pose else None,
        joints_3d=rng.normal(0, 50, (21, 3)) if pose else None,
    )


def check(records):
    jsonschema.validate(records, SCHEMA)
    return records


def test_appear_periodic_lost_sequence():
    emitter = EventEmitter(notify_interval=1.0, lost_timeout=0.0)
    assert check(emitter.update(0.0, [make_hand()], SIZE))[0]["event"] == "appeared"
    assert emitter.update(0.5, [make_hand(102)], SIZE) == []  # same hand, not due yet
    periodic = check(emitter.update(1.0, [make_hand(104)], SIZE))
    assert [r["event"] for r in periodic] == ["present"]
    assert periodic[0]["track_id"] == 0
    second = check(emitter.update(1.2, [make_hand(104), make_hand(400, "left")], SIZE))
    assert sorted(r["event"] for r in second) == ["appeared", "present"]
    lost = check(emitter.update(1.3, [make_hand(400, "left")], SIZE))
    assert {(r["event"], r["handedness"]) for r in lost} == {("present", "left"), ("lost", "right")}
    assert emitter.update(1.4, [], SIZE)[0]["event"] == "lost"
    assert emitter.update(5.0, [], SIZE) == []  # nothing present: no periodic records


def test_lost_timeout_bridges_a_missed_frame():
    emitter = EventEmitter(notify_interval=10.0, lost_timeout=0.3)
    emitter.update(0.0, [make_hand()], SIZE)
    assert emitter.update(0.1, [], SIZE) == []
    assert emitter.update(0.2, [make_hand()], SIZE) == []  # came back: same track, no event
    assert emitter.update(0.6, [], SIZE)[0]["event"] == "lost"


def test_handedness_change_is_a_new_hand():
    emitter = EventEmitter(lost_timeout=0.0)
    emitter.update(0.0, [make_hand(side="right")], SIZE)
    events = {r["event"] for r in emitter.update(0.1, [make_hand(side="left")], SIZE)}
    assert events == {"appeared", "lost"}


def test_record_is_normalised():
    hand = make_hand(pose=True)
    hand.keypoints[0] = [-5.0, 700.0]  # outside the frame: clipped
    record = check([hand_record(hand, 12.5, "present", 3, SIZE)])[0]
    assert record["box"] == pytest.approx([100 / 640, 100 / 480, 180 / 640, 200 / 480], abs=1e-5)
    assert record["keypoints"][0][:2] == [0.0, 1.0]
    assert record["keypoints"][1][0] == pytest.approx(hand.keypoints[1, 0] / 640, abs=1e-5)
    assert len(record["joints_3d"]) == 21
    assert record["frame"] == {"width": 640, "height": 480}
    assert json.loads(json.dumps(record)) == record


def test_record_without_pose_is_valid():
    check([hand_record(make_hand(pose=False), 0.0, "appeared", 0, SIZE)])


def test_schema_rejects_a_bad_record():
    record = hand_record(make_hand(), 0.0, "present", 0, SIZE)
    record["box"] = [0.1, 0.2, 1.5, 0.3]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([record], SCHEMA)


def test_box_iou():
    a = np.array([0, 0, 10, 10.0])
    assert box_iou(a, a) == 1.0
    assert box_iou(a, np.array([5, 0, 15, 10.0])) == pytest.approx(50 / 150)
    assert box_iou(a, np.array([20, 20, 30, 30.0])) == 0.0


def events_of(records):
    return [(r["event"], r["track_id"]) for r in check(records)]


def test_enter_leave_and_gesture_events():
    emitter = EventEmitter(lost_timeout=0.2, hand_records=False, enter_leave=True, gestures=True)
    fist = make_hand().replace(track_id=7, gesture="fist", gesture_score=0.9)
    assert events_of(emitter.update(0.0, [fist], SIZE)) == [("hand_enter", 7), ("gesture", 7)]
    assert emitter.update(0.1, [fist], SIZE) == []  # same gesture: nothing
    assert emitter.update(0.2, [fist.replace(gesture=None)], SIZE) == []  # ended: not sent
    point = fist.replace(gesture="point", gesture_score=0.8)
    (record,) = check(emitter.update(0.3, [point], SIZE))
    assert record == {"timestamp": 0.3, "event": "gesture", "track_id": 7,
                      "handedness": "right", "gesture": "point", "gesture_score": 0.8}  # fmt: skip
    assert emitter.update(0.4, [], SIZE) == []  # within lost_timeout
    assert events_of(emitter.update(0.6, [], SIZE)) == [("hand_leave", 7)]


def test_hand_records_carry_the_gesture_and_follow_events():
    emitter = EventEmitter(enter_leave=True, gestures=True)
    hand = make_hand().replace(track_id=3, gesture="ok", gesture_score=0.77)
    records = check(emitter.update(0.0, [hand], SIZE))
    assert [r["event"] for r in records] == ["hand_enter", "gesture", "appeared"]
    assert records[2]["gesture"] == "ok" and records[2]["gesture_score"] == 0.77
    assert records[2]["track_id"] == 3


def test_track_ids_from_the_tracker_are_kept():
    emitter = EventEmitter(lost_timeout=1.0)
    first = emitter.update(0.0, [make_hand(100).replace(track_id=5)], SIZE)
    assert events_of(first) == [("appeared", 5)]
    # far away but the same track id: the same hand (no IoU matching for tracked hands)
    assert emitter.update(0.1, [make_hand(500).replace(track_id=5)], SIZE) == []
    # an untracked hand gets an id above every id seen
    assert events_of(emitter.update(0.2, [make_hand(500).replace(track_id=5), make_hand(200)],
                                    SIZE)) == [("present", 5), ("appeared", 6)]  # fmt: skip


def test_rate_limit_merges_records_and_loses_no_event():
    emitter = EventEmitter(notify_interval=0.1, lost_timeout=0.0, enter_leave=True, max_rate=2.0)
    sent = []
    for n in range(20):  # a hand that flickers in and out at 10 fps for 2 s
        hands = [make_hand().replace(track_id=n)] if n % 2 == 0 else []
        records = emitter.update(n / 10, hands, SIZE)
        if records:
            sent.append((n / 10, check(records)))
    times = [t for t, _ in sent]
    assert all(b - a >= 0.5 - 1e-9 for a, b in zip(times, times[1:], strict=False))
    assert len(sent) == 4
    records = [r for _, batch in sent for r in batch] + check(emitter.flush())
    enters = [r["track_id"] for r in records if r["event"] == "hand_enter"]
    leaves = [r["track_id"] for r in records if r["event"] == "hand_leave"]
    assert enters == list(range(0, 20, 2)) and leaves == list(range(0, 19, 2))
    assert emitter.flush() == []


def test_merge_keeps_appeared_and_lost_drops_stale_present():
    def record(event, track_id, t=0.0):
        return {"event": event, "track_id": track_id, "timestamp": t}

    pending = [record("appeared", 1), record("present", 2), record("hand_enter", 1)]
    newer = [record("present", 1, 1.0), record("lost", 2, 1.0), record("gesture", 1, 1.0)]
    merged = merge_records(pending, newer)
    assert [(r["event"], r["track_id"], r["timestamp"]) for r in merged] == [
        ("hand_enter", 1, 0.0),
        ("gesture", 1, 1.0),
        ("appeared", 1, 1.0),  # the newer values, still "appeared"
        ("lost", 2, 1.0),
    ]


def test_limiter_caps_what_waits(caplog):
    limiter = NotifyLimiter(max_rate=1.0, max_pending=3)
    assert limiter.push(0.0, [{"event": "gesture", "track_id": 0}]) != []
    for n in range(5):
        assert limiter.push(0.1 + n / 100, [{"event": "gesture", "track_id": n}]) == []
    assert limiter.pending == 3 and limiter.dropped == 2
    assert "dropping the oldest" in caplog.text
    assert [r["track_id"] for r in limiter.push(1.0, [])] == [2, 3, 4]
    with pytest.raises(ValueError):
        NotifyLimiter(0.0)


def test_emitter_from_settings():
    settings = AppSettings(send_hands=False, send_gestures=False, notify_max_rate=5.0)
    emitter = EventEmitter.from_settings(settings)
    assert not emitter.hand_records and emitter.enter_leave and not emitter.gestures
    assert emitter.limiter is not None and emitter.limiter.min_gap == pytest.approx(0.2)
    hand = make_hand().replace(track_id=0, gesture="fist")
    assert events_of(emitter.update(0.0, [hand], SIZE)) == [("hand_enter", 0)]


@pytest.mark.parametrize(
    "record",
    [
        {"timestamp": 0.0, "event": "gesture", "track_id": 0, "handedness": "left"},
        {"timestamp": 0.0, "event": "hand_enter", "track_id": 0, "handedness": "left",
         "gesture": "fist", "gesture_score": 0.5},
        {"timestamp": 0.0, "event": "gesture", "track_id": 0, "handedness": "left",
         "gesture": "wave", "gesture_score": 0.5},
    ],
)  # fmt: skip
def test_schema_rejects_bad_events(record):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([record], SCHEMA)
