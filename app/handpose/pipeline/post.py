"""After the pose stage: track ids, handedness for the camera, smoothing, gestures.

    posed hands (frame px, handedness as the image shows it)
      -> HandTracker.update      track ids, keypoint boxes, where to crop next
      -> swap_handedness         the anatomical side (mirrored cameras)
      -> HandSmoother            One Euro filters per track (video only)
      -> GestureRecognizer       gesture and its confidence, hysteresis per track

`Postprocess.from_settings(settings, tracker)` builds it for a video stream;
`Postprocess.for_images(settings)` for still images (no tracking, no smoothing, a gesture per
image without hysteresis).
"""

from __future__ import annotations

from dataclasses import dataclass

from handpose.gestures import GestureRecognizer
from handpose.hand import Hand
from handpose.pipeline.pose import swap_handedness
from handpose.pipeline.smooth import HandSmoother
from handpose.pipeline.track import HandTracker
from handpose.settings import AppSettings


@dataclass
class Postprocess:
    """The steps after the pose stage (module docstring); None skips a step."""

    tracker: HandTracker | None = None
    smoother: HandSmoother | None = None
    gestures: GestureRecognizer | None = None
    swap: bool = False

    @classmethod
    def from_settings(cls, settings: AppSettings, tracker: HandTracker | None) -> Postprocess:
        """The app's steps for a video stream; `tracker` is shared with the detect step."""
        smoother = (
            HandSmoother(settings.smoothing_min_cutoff, settings.smoothing_beta)
            if settings.smoothing
            else None
        )
        gestures = (
            GestureRecognizer(settings.gesture_threshold, settings.gesture_frames)
            if settings.gestures
            else None
        )
        return cls(tracker, smoother, gestures, settings.swap_handedness)

    @classmethod
    def for_images(cls, settings: AppSettings) -> Postprocess:
        """Still images: no tracking or smoothing; gestures of each image on their own."""
        gestures = GestureRecognizer(settings.gesture_threshold) if settings.gestures else None
        return cls(None, None, gestures, settings.swap_handedness)

    def __call__(
        self, timestamp: float, hands: list[Hand], frame_size: tuple[int, int] | None = None
    ) -> list[Hand]:
        """The posed hands of one frame after every step.

        Args:
            timestamp: frame time in seconds.
            hands: the pose stage's hands (frame px, image handedness).
            frame_size: (width, height) of the frame (reported boxes are clipped to it).
        """
        if self.tracker is not None:
            hands = self.tracker.update(timestamp, hands, frame_size)
        hands = swap_handedness(hands, self.swap)
        if self.smoother is not None:
            hands = self.smoother(hands, timestamp)
        if self.gestures is not None:
            hands = self.gestures(hands, timestamp)
        return hands
