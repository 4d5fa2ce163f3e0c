"""`HandPipeline`: the stages for one frame, without threads (predict, tests, bench).

For a video stream (`stream=True`) it runs what the app runs: the tracker decides whether the
detector runs (`handpose.pipeline.track`), and after the pose stage come track ids, smoothing and
gestures (`handpose.pipeline.post`). For still images (`stream=False`, `handpose predict`) every
image is detected on its own, nothing is smoothed, and gestures have no hysteresis.
"""

from __future__ import annotations

import time

import numpy as np

from handpose.hand import Hand
from handpose.pipeline.family import build_stages
from handpose.pipeline.models import ModelSet
from handpose.pipeline.post import Postprocess
from handpose.pipeline.track import HandTracker
from handpose.settings import AppSettings


class HandPipeline:
    """Detect -> Crop -> Pose on one frame, configured by `AppSettings`, for either model
    family (`handpose.pipeline.family.build_stages`).

    `timings` holds the milliseconds of each stage of the last call ("detect" is 0 when the
    tracker skipped the detector, "track" is the steps after the pose stage); `detected` tells
    whether the detector ran.

    Args:
        models: the loaded model set.
        settings: thresholds, tracking, smoothing and gesture settings.
        stream: frames of one video (tracking, smoothing, hysteresis) or independent images.
    """

    def __init__(self, models: ModelSet, settings: AppSettings, stream: bool = True) -> None:
        self.settings = settings
        self.detector, self.cropper, self.pose = build_stages(models, settings, crop_depth=1)
        pose_sides = getattr(self.pose, "side_output", None) is not None and getattr(
            self.pose, "side_source", "pose"
        ) in ("pose", "fused")
        self.tracker = HandTracker.from_settings(settings, pose_sides) if stream else None
        self.post = (
            Postprocess.from_settings(settings, self.tracker)
            if stream
            else Postprocess.for_images(settings)
        )
        self.timings: dict[str, float] = {}
        self.detected = False
        #: the step running or last run: "detect", "crop", "pose" or "track" (fault reports)
        self.step = "detect"
        self._frames = 0

    def __call__(
        self, frame: np.ndarray, region: str | None = None, timestamp: float | None = None
    ) -> list[Hand]:
        """Hands with poses in frame pixels (handedness corrected for mirrored cameras).

        Args:
            frame: RGB uint8 (H, W, 3).
            region: what the detector sees, "center" or "letterbox" (None: the family's
                camera default, our centre square or MediaPipe's letterboxed frame).
            timestamp: frame time in seconds (default: frame count / `capture_fps`).
        """
        if timestamp is None:
            timestamp = self._frames / float(self.settings.capture_fps)
        self._frames += 1
        t0 = time.perf_counter()
        self.step = "detect"
        detections = None
        if self.tracker is None or self.tracker.needs_detection():
            if region is None:
                detections = self.detector.detect(frame)
            else:
                detections = self.detector.detect(frame, region)
        self.detected = detections is not None
        hands = detections if self.tracker is None else self.tracker.locate(timestamp, detections)
        t1 = time.perf_counter()
        self.step = "crop"
        crops = self.cropper(frame, hands)
        t2 = time.perf_counter()
        self.step = "pose"
        posed = self.pose(crops)
        t3 = time.perf_counter()
        self.step = "track"
        height, width = frame.shape[:2]
        hands = self.post(timestamp, posed, (width, height))
        t4 = time.perf_counter()
        self.timings = {
            "detect": (t1 - t0) * 1e3,
            "crop": (t2 - t1) * 1e3,
            "pose": (t3 - t2) * 1e3,
            "track": (t4 - t3) * 1e3,
        }
        return hands
