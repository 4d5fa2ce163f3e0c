"""Hand events for Actcast (`actfw_core.notify`): pure classes, no threads, no I/O.

`EventEmitter.update(timestamp, hands, frame_size)` returns the records to notify for one frame
(an empty list most frames); `data_schema.json` is the JSON Schema of a notification. Two kinds
of record, each switched on or off by a setting:

Hand records (`send_hands`): a full snapshot of the hands in view, sent at once when a hand
appears (a hand not seen before) or is lost (a known hand unseen for more than `lost_timeout`
seconds), and every `notify_interval` seconds while hands are present::

    {"timestamp": 1700000000.12,      # seconds (the frame's timestamp)
     "event": "appeared" | "present" | "lost",
     "track_id": 3,                    # stable while the hand stays in view
     "handedness": "left" | "right" | "hand",
     "score": 0.93,
     "box": [x0, y0, x1, y1],          # normalised to the frame: x / width, y / height, in [0, 1]
     "keypoints": [[x, y, score] x 21],# normalised like the box (present after the pose stage)
     "joints_3d": [[x, y, z] x 21],    # mm, wrist-relative, camera axes (x right, y down, z fwd)
     "gesture": "thumbs_up", "gesture_score": 0.91,   # when a gesture is recognised
     "frame": {"width": W, "height": H}}

Events, sent at once: `hand_enter` / `hand_leave` (`send_enter_leave`) when a hand appears / is
lost, and `gesture` (`send_gestures`) when a hand's gesture changes to a recognised one::

    {"timestamp": 1700000000.12, "event": "hand_enter" | "hand_leave" | "gesture",
     "track_id": 3, "handedness": "right",
     "gesture": "thumbs_up", "gesture_score": 0.91}          # gesture events only

In one notification the events come first (enter, gesture, leave), then the hand records.

Track ids: a hand that carries a `track_id` (the app's tracker, `handpose.pipeline.track`) keeps
it; a hand without one takes the id of the closest unmatched known hand of the same handedness
whose box overlaps it (IoU > `match_iou`, greedy by IoU), else a new id.

Rate limit (`NotifyLimiter`, `notify_max_rate`): at most that many notifications per second of
frame time. Records of the frames in between wait and go out merged into the next notification:
events all, in order; hand records of a hand superseded by its newer record (an "appeared" stays
"appeared" with the newer values). Nothing is lost unless more than `max_pending` records wait
(then the oldest are dropped, counted and logged).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from handpose.codec.boxes import iou as box_iou
from handpose.compat import zip_strict
from handpose.hand import Hand
from handpose.settings import AppSettings

log = logging.getLogger(__name__)

#: the "event" of hand records and of events
HAND_RECORD_EVENTS: tuple[str, ...] = ("appeared", "present", "lost")
EVENTS: tuple[str, ...] = ("hand_enter", "hand_leave", "gesture")


@dataclass(eq=False)
class _Track:
    track_id: int
    hand: Hand
    last_seen: float
    gesture: str | None = None


def hand_record(
    hand: Hand, timestamp: float, event: str, track_id: int, frame_size: tuple[int, int]
) -> dict[str, Any]:
    """One notify record for `hand` in a frame of `frame_size` = (width, height)."""
    width, height = frame_size
    scale = np.array([width, height], np.float32)
    box = np.clip(hand.box.reshape(2, 2) / scale, 0.0, 1.0).reshape(4)
    record: dict[str, Any] = {
        "timestamp": round(float(timestamp), 3),
        "event": event,
        "track_id": int(track_id),
        "handedness": hand.handedness,
        "score": round(min(max(hand.score, 0.0), 1.0), 4),
        "box": [round(float(v), 5) for v in box],
    }
    if hand.keypoints is not None:
        points = np.clip(hand.keypoints / scale, 0.0, 1.0)
        scores = (
            np.clip(hand.keypoint_scores, 0.0, 1.0)
            if hand.keypoint_scores is not None
            else np.ones(len(points), np.float32)
        )
        record["keypoints"] = [
            [round(float(x), 5), round(float(y), 5), round(float(s), 4)]
            for (x, y), s in zip_strict(points, scores)
        ]
    if hand.joints_3d is not None:
        record["joints_3d"] = [[round(float(v), 2) + 0.0 for v in p] for p in hand.joints_3d]
    if hand.gesture is not None:
        record["gesture"] = hand.gesture
        record["gesture_score"] = round(min(max(float(hand.gesture_score), 0.0), 1.0), 4)
    record["frame"] = {"width": int(width), "height": int(height)}
    return record


def event_record(hand: Hand, timestamp: float, event: str, track_id: int) -> dict[str, Any]:
    """One `hand_enter` / `hand_leave` / `gesture` event record (module docstring)."""
    record: dict[str, Any] = {
        "timestamp": round(float(timestamp), 3),
        "event": event,
        "track_id": int(track_id),
        "handedness": hand.handedness,
    }
    if event == "gesture":
        record["gesture"] = hand.gesture
        record["gesture_score"] = round(min(max(float(hand.gesture_score), 0.0), 1.0), 4)
    return record


class NotifyLimiter:
    """At most `max_rate` notifications per second of frame time (module docstring).

    Args:
        max_rate: notifications per second; consecutive notifications are at least
            1 / max_rate seconds apart.
        max_pending: most records that may wait; beyond it the oldest are dropped.
    """

    def __init__(self, max_rate: float, max_pending: int = 256) -> None:
        if not max_rate > 0:
            raise ValueError(f"max_rate must be positive, got {max_rate}")
        self.min_gap = 1.0 / float(max_rate)
        self.max_pending = int(max_pending)
        self.dropped = 0  #: records dropped because too many waited
        self._pending: list[dict[str, Any]] = []
        self._last: float | None = None

    @property
    def pending(self) -> int:
        """Records waiting for the next notification."""
        return len(self._pending)

    def push(self, timestamp: float, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The records to notify now (the waiting ones merged with `records`), or [] while the
        last notification is less than 1 / max_rate seconds old."""
        if records:
            self._pending = merge_records(self._pending, records)
            excess = len(self._pending) - self.max_pending
            if excess > 0:
                if self.dropped == 0:
                    log.warning(
                        "more than %d event records wait for the notify rate limit; dropping "
                        "the oldest (raise notify_max_rate or notify_interval)",
                        self.max_pending,
                    )
                self.dropped += excess
                del self._pending[:excess]
        if not self._pending:
            return []
        if self._last is not None and timestamp - self._last < self.min_gap - 1e-9:
            return []
        out, self._pending, self._last = self._pending, [], timestamp
        return out

    def flush(self) -> list[dict[str, Any]]:
        """Every waiting record (at the end of a run)."""
        out, self._pending = self._pending, []
        return out


def merge_records(
    pending: list[dict[str, Any]], newer: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """`pending` then `newer`, without the hand records that `newer` supersedes: a waiting
    "present" record of a hand with a newer hand record goes; a waiting "appeared" record
    gives its event to the hand's newer "present" record. Events are all kept, in order."""
    latest = {
        r["track_id"]: r["event"] for r in newer if r["event"] in HAND_RECORD_EVENTS
    }  # the newer hand record of each hand
    appeared = set()
    kept = []
    for record in pending:
        event, track_id = record["event"], record["track_id"]
        superseded = track_id in latest and (
            event == "present" or (event == "appeared" and latest[track_id] == "present")
        )
        if superseded and event == "appeared":
            appeared.add(track_id)
        if not superseded:
            kept.append(record)
    for record in newer:
        if record["event"] == "present" and record["track_id"] in appeared:
            record = {**record, "event": "appeared"}
        kept.append(record)
    return _events_first(kept)


def _events_first(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["event"] in EVENTS] + [
        r for r in records if r["event"] in HAND_RECORD_EVENTS
    ]


class EventEmitter:
    """Decides which records to notify, frame by frame (module docstring).

    The defaults are hand records only, without a rate limit; `from_settings` gives the app's.

    Args:
        notify_interval: seconds between periodic snapshots while hands are present.
        lost_timeout: a known hand unseen for longer than this is lost (0: at the first miss).
        match_iou: minimum box IoU for a hand without a track id to keep a known hand's id.
        hand_records: send the hand records (snapshots).
        enter_leave: send `hand_enter` / `hand_leave` events.
        gestures: send `gesture` events.
        max_rate: at most this many notifications per second (None: no limit).
    """

    def __init__(
        self,
        notify_interval: float = 1.0,
        lost_timeout: float = 0.0,
        match_iou: float = 0.1,
        hand_records: bool = True,
        enter_leave: bool = False,
        gestures: bool = False,
        max_rate: float | None = None,
    ) -> None:
        self.notify_interval = float(notify_interval)
        self.lost_timeout = float(lost_timeout)
        self.match_iou = float(match_iou)
        self.hand_records = bool(hand_records)
        self.enter_leave = bool(enter_leave)
        self.gestures = bool(gestures)
        self.limiter = NotifyLimiter(max_rate) if max_rate is not None else None
        self._tracks: list[_Track] = []
        self._next_id = 0
        self._last_sent: float | None = None

    @classmethod
    def from_settings(cls, settings: AppSettings) -> EventEmitter:
        """The app's emitter: interval, timeout, which records and the rate limit."""
        return cls(
            notify_interval=settings.notify_interval,
            lost_timeout=settings.lost_timeout,
            hand_records=settings.send_hands,
            enter_leave=settings.send_enter_leave,
            gestures=settings.send_gestures,
            max_rate=settings.notify_max_rate,
        )

    def update(
        self, timestamp: float, hands: list[Hand], frame_size: tuple[int, int]
    ) -> list[dict[str, Any]]:
        """Records to notify for this frame (possibly none).

        Args:
            timestamp: frame time in seconds (monotonic within a run).
            hands: the hands found in the frame (frame pixels).
            frame_size: (width, height) of the frame.
        """
        records = self._records(timestamp, hands, frame_size)
        if self.limiter is None:
            return records
        return self.limiter.push(timestamp, records)

    def flush(self) -> list[dict[str, Any]]:
        """Records still held back by the rate limit (call once at the end of a run)."""
        return self.limiter.flush() if self.limiter is not None else []

    def _records(
        self, timestamp: float, hands: list[Hand], frame_size: tuple[int, int]
    ) -> list[dict[str, Any]]:
        matched, appeared = self._match(hands, timestamp)
        lost = [t for t in self._tracks if timestamp - t.last_seen > self.lost_timeout]
        self._tracks = [t for t in self._tracks if t not in lost]
        events: list[dict[str, Any]] = []
        for index, hand in enumerate(hands):
            track = matched[index]
            if self.enter_leave and index in appeared:
                events.append(event_record(hand, timestamp, "hand_enter", track.track_id))
            if hand.gesture != track.gesture:
                track.gesture = hand.gesture
                if self.gestures and hand.gesture is not None:
                    events.append(event_record(hand, timestamp, "gesture", track.track_id))
        if self.enter_leave:
            for track in lost:
                events.append(event_record(track.hand, timestamp, "hand_leave", track.track_id))
        if not self.hand_records:
            return events
        due = (
            bool(hands)
            and self._last_sent is not None
            and timestamp - self._last_sent >= self.notify_interval - 1e-9
        )
        if not (appeared or lost or due):
            return events
        records = []
        for index, hand in enumerate(hands):
            event = "appeared" if index in appeared else "present"
            records.append(hand_record(hand, timestamp, event, matched[index].track_id, frame_size))
        for track in lost:
            records.append(hand_record(track.hand, timestamp, "lost", track.track_id, frame_size))
        self._last_sent = timestamp
        return events + records

    def _match(self, hands: list[Hand], timestamp: float) -> tuple[dict[int, _Track], set[int]]:
        matched: dict[int, _Track] = {}
        by_id = {t.track_id: t for t in self._tracks}
        for i, hand in enumerate(hands):  # hands with a tracker's id keep it
            if hand.track_id is not None and hand.track_id in by_id:
                matched[i] = by_id.pop(hand.track_id)
        used = {t.track_id for t in matched.values()}
        pairs = []
        for i, hand in enumerate(hands):
            if hand.track_id is not None:
                continue
            for track in self._tracks:
                if track.track_id not in used and track.hand.handedness == hand.handedness:
                    iou = box_iou(hand.box, track.hand.box)
                    if iou > self.match_iou:
                        pairs.append((iou, i, track))
        for _, i, track in sorted(pairs, key=lambda p: -p[0]):
            if i in matched or track.track_id in used:
                continue
            matched[i] = track
            used.add(track.track_id)
        appeared = set()
        for i, hand in enumerate(hands):
            if i in matched:
                matched[i].hand, matched[i].last_seen = hand, timestamp
            else:
                track_id = self._next_id if hand.track_id is None else int(hand.track_id)
                self._next_id = max(self._next_id, track_id + 1)
                track = _Track(track_id, hand, timestamp)
                self._tracks.append(track)
                matched[i] = track
                appeared.add(i)
        return matched, appeared
