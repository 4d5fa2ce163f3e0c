"""Hand events for Actcast (`actfw_core.notify`): a pure class, no threads, no I/O.

`EventEmitter.update(timestamp, hands, frame_size)` returns the records to notify for one frame
(an empty list most frames). A notification is a full snapshot of the hands in view, sent

- at once when a hand appears (a hand not matched to one seen before) or is lost (a known hand
  unseen for more than `lost_timeout` seconds), and
- every `notify_interval` seconds while hands are present.

Each record describes one hand (`data_schema.json` is the JSON Schema of a record)::

    {"timestamp": 1700000000.12,      # seconds (the frame's timestamp)
     "event": "appeared" | "present" | "lost",
     "track_id": 3,                    # stable while the hand stays in view
     "handedness": "left" | "right" | "hand",
     "score": 0.93,
     "box": [x0, y0, x1, y1],          # normalised to the frame: x / width, y / height, in [0, 1]
     "keypoints": [[x, y, score] x 21],# normalised like the box (present after the pose stage)
     "joints_3d": [[x, y, z] x 21],    # mm, wrist-relative, camera axes (x right, y down, z fwd)
     "frame": {"width": W, "height": H}}

Matching across frames: a new hand takes the id of the closest unmatched known hand of the same
handedness whose box overlaps it (IoU > `match_iou`); greedy by IoU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from handpose.hand import Hand


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boxes [x0, y0, x1, y1]."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


@dataclass(eq=False)
class _Track:
    track_id: int
    hand: Hand
    last_seen: float


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
            for (x, y), s in zip(points, scores, strict=True)
        ]
    if hand.joints_3d is not None:
        record["joints_3d"] = [[round(float(v), 2) + 0.0 for v in p] for p in hand.joints_3d]
    record["frame"] = {"width": int(width), "height": int(height)}
    return record


class EventEmitter:
    """Decides which hand records to notify, frame by frame.

    Args:
        notify_interval: seconds between periodic snapshots while hands are present.
        lost_timeout: a known hand unseen for longer than this is lost (0: at the first miss).
        match_iou: minimum box IoU for a hand to keep a known hand's id.
    """

    def __init__(
        self, notify_interval: float = 1.0, lost_timeout: float = 0.0, match_iou: float = 0.1
    ) -> None:
        self.notify_interval = float(notify_interval)
        self.lost_timeout = float(lost_timeout)
        self.match_iou = float(match_iou)
        self._tracks: list[_Track] = []
        self._next_id = 0
        self._last_sent: float | None = None

    def update(
        self, timestamp: float, hands: list[Hand], frame_size: tuple[int, int]
    ) -> list[dict[str, Any]]:
        """Records to notify for this frame (possibly none).

        Args:
            timestamp: frame time in seconds (monotonic within a run).
            hands: the hands found in the frame (frame pixels).
            frame_size: (width, height) of the frame.
        """
        matched, appeared = self._match(hands, timestamp)
        lost = [t for t in self._tracks if timestamp - t.last_seen > self.lost_timeout]
        self._tracks = [t for t in self._tracks if t not in lost]
        due = (
            bool(hands)
            and self._last_sent is not None
            and timestamp - self._last_sent >= self.notify_interval - 1e-9
        )
        if not (appeared or lost or due):
            return []
        records = []
        for index, hand in enumerate(hands):
            track = matched[index]
            event = "appeared" if index in appeared else "present"
            records.append(hand_record(hand, timestamp, event, track.track_id, frame_size))
        for track in lost:
            records.append(hand_record(track.hand, timestamp, "lost", track.track_id, frame_size))
        self._last_sent = timestamp
        return records

    def _match(self, hands: list[Hand], timestamp: float) -> tuple[dict[int, _Track], set[int]]:
        pairs = []
        for i, hand in enumerate(hands):
            for track in self._tracks:
                if track.hand.handedness == hand.handedness:
                    iou = box_iou(hand.box, track.hand.box)
                    if iou > self.match_iou:
                        pairs.append((iou, i, track))
        matched: dict[int, _Track] = {}
        used: set[int] = set()
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
                track = _Track(self._next_id, hand, timestamp)
                self._next_id += 1
                self._tracks.append(track)
                matched[i] = track
                appeared.add(i)
        return matched, appeared
