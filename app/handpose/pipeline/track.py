"""Tracking: a stable id per hand, and crops from the last keypoints so the detector can rest.

One frame, in the app's Detect and Pose tasks or in `HandPipeline`::

    detections = detector.detect(frame) if tracker.needs_detection() else None
    hands = tracker.locate(timestamp, detections)      # what to crop, with track ids
    posed = pose(crop(frame, hands))
    hands = tracker.update(timestamp, posed, (W, H))   # confidence, ids, next crops

The detector runs when tracking is off, when no hand is tracked, after a tracked hand was
dropped (its confidence fell, it merged into another, or it was lost on a frame the detector
did not run on), and at least every `detect_interval` frames to find new hands. In between,
each tracked hand is cropped around

    b_pred = grow(box_from_keypoints(K), m) + (v Δt, v Δt)

the tight box of its last keypoints K grown by m = `KEYPOINT_BOX_MARGIN` of its size per side
(the renderer's silhouette boxes are 3-4 % larger per side than their keypoint boxes), moved by
the hand's velocity v (px/s of the box centre, averaged over frames) times the time since it
was last seen (at most half a box). With tracking on, this keypoint box is also the box a hand
reports; its side may change by at most `MAX_GROWTH` per frame, so keypoints that stray off the
hand cannot blow the crop up.

Association on a frame with detections: a detection takes the id of the tracked hand whose
predicted box it overlaps most (greedy on affinity = IoU + 0.5 [same handedness], IoU >=
`match_iou`), and its box, handedness and score; a tracked hand no detection matched is still
cropped (the detector may miss a hand the tracker holds); an unmatched detection is a new hand.
A new hand takes the id of a hand lost less than `lost_timeout` ago whose last box it overlaps
(IoU >= `match_iou`; the same affinity, so a side the detector got wrong this once does not make
it another hand), else the next free id, so ids stay stable through short misses.

Side: a track keeps a vote s in [-1, 1] (+1 right), set by its first detection and moved by
each later one, s <- (1 - `SIDE_WEIGHT`) s + `SIDE_WEIGHT` (+1 right, -1 left); a matched
detection takes the side sign(s) before it is cropped. One detection of the other side does
not flip a hand that was steady (on real photos the detector's side is its weakest output,
and a wrong side mirrors the pose crop the wrong way); two in a row do. With `pose_sides` (pose
networks that tell the side of an unmirrored crop themselves) the vote is fed by the pose
stage's side on every frame instead, in `update`.

Confidence: the mean keypoint score of a posed hand. A hand no detection confirmed in this frame
(a pure prediction) is dropped when its confidence is below `min_confidence`; detected hands
keep the detector's word. Two hands whose keypoints lie within `DUPLICATE_DISTANCE` of a hand
size of each other (mean over keypoints) are one hand: the younger track is dropped.

Order: `locate` of frame t + 1 must come after `update` of frame t (the app runs all of a frame
in one task, `handpose.tasks.InferTask`, so it reports what `HandPipeline` reports). The methods
still hold a lock, so a caller that breaks the order cannot corrupt the state.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from handpose.codec.boxes import iou as box_iou
from handpose.hand import Hand, box_from_keypoints
from handpose.settings import AppSettings

#: a keypoint box is grown by this fraction of its size on each side (finger thickness)
KEYPOINT_BOX_MARGIN = 0.04
#: a tracked hand's box side may grow or shrink by at most this factor from one frame to the next
MAX_GROWTH = 1.25
#: mean keypoint distance, in hand sizes, under which two hands are the same hand
DUPLICATE_DISTANCE = 0.15
#: weight of the newest frame in the velocity average
VELOCITY_WEIGHT = 0.5
#: weight of the newest detection's side in a track's side vote (module docstring)
SIDE_WEIGHT = 0.35
#: side vote values
SIDES = {"right": 1.0, "left": -1.0}
#: `Hand.extras` key: True when the hand's crop came from the tracker alone (no detection)
PREDICTED = "predicted"
#: `Hand.extras` key of a predicted hand: the keypoints (21, 2) it had when last seen, for
#: croppers that need more than a box (the MediaPipe family's rotated hand region)
LAST_KEYPOINTS = "last_keypoints"


def hand_size(box: np.ndarray) -> float:
    """The longer side of a box."""
    return float(max(box[2] - box[0], box[3] - box[1]))


def keypoint_box(
    keypoints: np.ndarray, previous: np.ndarray | None = None, margin: float = KEYPOINT_BOX_MARGIN
) -> np.ndarray:
    """The box of a hand from its keypoints (21, 2): their tight box grown by `margin` of its
    size per side; with `previous`, its width and height are kept within [1 / MAX_GROWTH,
    MAX_GROWTH] x those of the previous box (about the same centre)."""
    box = box_from_keypoints(keypoints, margin).astype(np.float64)
    centre = (box[:2] + box[2:]) / 2.0
    extent = np.maximum(box[2:] - box[:2], 1.0)
    if previous is not None:
        before = np.maximum(np.asarray(previous[2:] - previous[:2], np.float64), 1.0)
        extent = np.clip(extent, before / MAX_GROWTH, before * MAX_GROWTH)
    return np.concatenate([centre - extent / 2.0, centre + extent / 2.0]).astype(np.float32)


def mean_score(hand: Hand) -> float:
    """Confidence of a posed hand: its mean keypoint score (1.0 without scores)."""
    if hand.keypoint_scores is None:
        return 1.0
    return float(np.mean(hand.keypoint_scores))


@dataclass(eq=False)
class Track:
    """One followed hand (frame pixels, handedness as the image shows it).

    Attributes:
        track_id: the id its hands carry.
        hand: the last hand reported for it.
        velocity: float64 (2,) px/s of its box centre.
        last_seen: timestamp it was last reported.
        lost_at: timestamp it was lost, or None while it is followed.
        side: the side vote, +1 right ... -1 left (0: no side seen).
    """

    track_id: int
    hand: Hand
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    last_seen: float = 0.0
    lost_at: float | None = None
    side: float = 0.0

    def vote(self, handedness: str) -> str:
        """Add a detection's side to the vote; the side the hand keeps (module docstring)."""
        if handedness not in SIDES:
            return handedness
        if self.side == 0.0:
            self.side = SIDES[handedness]
        else:
            self.side += SIDE_WEIGHT * (SIDES[handedness] - self.side)
        return "right" if self.side > 0 else "left" if self.side < 0 else handedness

    def predicted_box(self, timestamp: float) -> np.ndarray:
        """Its box moved by velocity x time since it was seen (at most half its size)."""
        box = self.hand.box.astype(np.float64)
        limit = 0.5 * hand_size(box)
        shift = np.clip(self.velocity * max(timestamp - self.last_seen, 0.0), -limit, limit)
        return (box + np.tile(shift, 2)).astype(np.float32)


class HandTracker:
    """Track ids and detector scheduling (module docstring).

    Args:
        enabled: skip the detector while tracked hands are confident (False: detect every
            frame, report the detector's boxes; ids are still kept by matching detections).
        detect_interval: with tracking, run the detector at least every this many frames.
        min_confidence: a predicted hand with a lower mean keypoint score is dropped.
        max_hands: at most this many hands are located and followed.
        lost_timeout: seconds after its last sight that a lost hand's id can be given back to a
            hand found where it was (the events' lost timeout: the same hand, no new events).
        match_iou: minimum IoU to match a detection to a tracked or lost hand.
        pose_sides: the pose stage reports each hand's side (the side vote follows it).
    """

    def __init__(
        self,
        enabled: bool = True,
        detect_interval: int = 10,
        min_confidence: float = 0.3,
        max_hands: int = 2,
        lost_timeout: float = 0.3,
        match_iou: float = 0.1,
        pose_sides: bool = False,
    ) -> None:
        self.enabled = bool(enabled)
        self.detect_interval = max(1, int(detect_interval))
        self.min_confidence = float(min_confidence)
        self.max_hands = int(max_hands)
        self.lost_timeout = float(lost_timeout)
        self.match_iou = float(match_iou)
        self.pose_sides = bool(pose_sides)
        self.tracks: dict[int, Track] = {}
        self.detections = 0  #: frames the detector ran on
        self.frames = 0  #: frames located
        self._next_id = 0
        self._since_detection = 0
        self._force = True
        self._detected = False  # whether the last located frame ran the detector
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: AppSettings, pose_sides: bool = False) -> HandTracker:
        return cls(
            pose_sides=pose_sides,
            enabled=settings.tracking,
            detect_interval=settings.detect_interval,
            min_confidence=settings.track_threshold,
            max_hands=settings.max_hands,
            lost_timeout=settings.lost_timeout,
        )

    def _active(self) -> list[Track]:
        return [t for t in self.tracks.values() if t.lost_at is None]

    def needs_detection(self) -> bool:
        """Whether the detector must run on the next frame (module docstring)."""
        with self._lock:
            if not self.enabled or self._force or not self._active():
                return True
            return self._since_detection + 1 >= self.detect_interval

    def locate(self, timestamp: float, detections: list[Hand] | None) -> list[Hand]:
        """The hands to crop in this frame: the followed hands at their predicted boxes, merged
        with `detections` when the detector ran (None when it did not); best `max_hands` by
        score. Followed hands carry their `track_id`; `extras[PREDICTED]` is True for the hands
        no detection confirmed."""
        with self._lock:
            self.frames += 1
            self._detected = detections is not None
            if detections is not None:
                self.detections += 1
                self._since_detection, self._force = 0, False
            else:
                self._since_detection += 1
            located = self._merge(timestamp, detections)
            located.sort(key=lambda h: -h.score)
            return located[: self.max_hands]

    def _merge(self, timestamp: float, detections: list[Hand] | None) -> list[Hand]:
        predicted = {
            t.track_id: t.hand.replace(
                box=t.predicted_box(timestamp),
                keypoints=None,
                keypoint_scores=None,
                joints_3d=None,
                gesture=None,
                gesture_score=0.0,
                extras={PREDICTED: True, LAST_KEYPOINTS: t.hand.keypoints},
            )
            for t in self._active()
        }
        if detections is None:
            return list(predicted.values()) if self.enabled else []
        pairs = []
        for i, hand in enumerate(detections):
            for track_id, guess in predicted.items():
                iou = box_iou(hand.box, guess.box)
                if iou >= self.match_iou:
                    same = hand.handedness == guess.handedness
                    pairs.append((iou + 0.5 * same, i, track_id))
        taken: dict[int, int] = {}
        used: set[int] = set()
        for _, i, track_id in sorted(pairs, key=lambda p: -p[0]):
            if i not in taken and track_id not in used:
                taken[i], _ = track_id, used.add(track_id)
        located = []
        for i, hand in enumerate(detections):
            side = hand.handedness
            if i in taken and not self.pose_sides:
                side = self.tracks[taken[i]].vote(side)
            extras = {**hand.extras, PREDICTED: False}
            located.append(hand.replace(track_id=taken.get(i), handedness=side, extras=extras))
        if self.enabled:  # followed hands the detector missed are still cropped
            located += [guess for track_id, guess in predicted.items() if track_id not in used]
        return located

    def update(
        self, timestamp: float, hands: list[Hand], frame_size: tuple[int, int] | None = None
    ) -> list[Hand]:
        """The posed hands of this frame with their `track_id` (and, with tracking on, their
        keypoint box, clipped to `frame_size` (W, H) when given); drops unconfident predicted
        hands and duplicates, and learns where to crop next (module docstring)."""
        with self._lock:
            kept: list[Hand] = []
            for hand in hands:
                predicted = bool(hand.extras.get(PREDICTED, False))
                if self.enabled and predicted and mean_score(hand) < self.min_confidence:
                    continue
                kept.append(self._place(hand, timestamp))
            kept = self._without_duplicates(kept)[: self.max_hands]
            seen = set()
            out = []
            for hand in kept:
                track = self.tracks.get(hand.track_id)  # type: ignore[arg-type]
                if track is None:
                    track = Track(int(hand.track_id), hand, last_seen=timestamp)  # type: ignore[arg-type]
                    track.vote(hand.handedness)
                    self.tracks[track.track_id] = track
                elif self.pose_sides:
                    hand = hand.replace(handedness=track.vote(hand.handedness))
                self._follow(track, hand, timestamp)
                seen.add(track.track_id)
                out.append(self._reported(hand, frame_size))
            for track in self._active():
                if track.track_id not in seen:
                    track.lost_at = timestamp
                    # the detector looks for it next frame, unless it just did not see it
                    self._force = self._force or not self._detected
            self.tracks = {  # lost ids can come back until lost_timeout after their last sight
                key: t
                for key, t in self.tracks.items()
                if t.lost_at is None or timestamp - t.last_seen <= self.lost_timeout
            }
            return out

    def _place(self, hand: Hand, timestamp: float) -> Hand:
        """The hand with its id (new hands: a recently lost id where it overlaps, else a new
        one) and, with tracking on, its keypoint box."""
        track_id = hand.track_id
        side = hand.handedness
        if track_id is None:
            track_id = self._reidentify(hand)
            back = self.tracks.get(track_id)
            if back is not None and not self.pose_sides:  # a lost hand back: its side vote
                side = back.vote(side)
        previous = self.tracks.get(track_id)
        box = hand.box
        if self.enabled and hand.keypoints is not None and np.isfinite(hand.keypoints).all():
            before = previous.hand.box if previous is not None else hand.box
            box = keypoint_box(hand.keypoints, before)
        return hand.replace(track_id=track_id, box=box, handedness=side)

    def _reidentify(self, hand: Hand) -> int:
        """The id of the lost hand this new hand most likely is (affinity IoU + 0.5 [same
        side], IoU >= match_iou), else a new id."""
        best, best_affinity = None, -1.0
        for track in self.tracks.values():
            if track.lost_at is None:
                continue
            iou = box_iou(hand.box, track.hand.box)
            affinity = iou + 0.5 * (track.hand.handedness == hand.handedness)
            if iou >= self.match_iou and affinity > best_affinity:
                best, best_affinity = track, affinity
        if best is not None:
            return best.track_id
        self._next_id += 1
        return self._next_id - 1

    def _without_duplicates(self, hands: list[Hand]) -> list[Hand]:
        kept: list[Hand] = []
        for hand in sorted(hands, key=lambda h: h.track_id):  # type: ignore[arg-type,return-value]
            duplicate = any(
                other.keypoints is not None
                and hand.keypoints is not None
                and np.linalg.norm(other.keypoints - hand.keypoints, axis=1).mean()
                < DUPLICATE_DISTANCE * max(hand_size(other.box), 1.0)
                for other in kept
            )
            if duplicate:
                self._force = True
            else:
                kept.append(hand)
        return sorted(kept, key=lambda h: -h.score)

    def _follow(self, track: Track, hand: Hand, timestamp: float) -> None:
        dt = timestamp - track.last_seen
        if track.lost_at is None and dt > 0:
            motion = (hand.box[:2] + hand.box[2:]) - (track.hand.box[:2] + track.hand.box[2:])
            velocity = motion.astype(np.float64) / (2.0 * dt)
            track.velocity += VELOCITY_WEIGHT * (velocity - track.velocity)
        elif track.lost_at is not None:
            track.velocity = np.zeros(2)
        track.hand, track.last_seen, track.lost_at = hand, timestamp, None

    def _reported(self, hand: Hand, frame_size: tuple[int, int] | None) -> Hand:
        if frame_size is None or not self.enabled:
            return hand
        width, height = frame_size
        box = np.clip(hand.box, 0.0, [width, height, width, height])
        if box[2] - box[0] < 1.0 or box[3] - box[1] < 1.0:
            return hand
        return hand.replace(box=box)
