"""Hand events: when records are sent, what they hold, and that they match data_schema.json."""

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from handpose.events import EventEmitter, box_iou, hand_record
from handpose.hand import Hand

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
