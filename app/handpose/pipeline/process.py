"""`HandPipeline`: the three stages for one frame, without threads (predict, tests, bench)."""

from __future__ import annotations

import time

import numpy as np

from handpose.hand import Hand
from handpose.pipeline.crop import HandCropper
from handpose.pipeline.detect import HandDetector
from handpose.pipeline.models import ModelSet
from handpose.pipeline.pose import PoseEstimator, swap_handedness
from handpose.settings import AppSettings


class HandPipeline:
    """Detect -> Crop -> Pose on one frame, configured by `AppSettings`.

    `timings` holds the milliseconds of each stage of the last call.
    """

    def __init__(self, models: ModelSet, settings: AppSettings) -> None:
        self.settings = settings
        self.detector = HandDetector(
            models.detector, settings.score_threshold, settings.nms_threshold
        )
        size = int(models.pose.input_size[0])
        self.cropper = HandCropper(settings.crop_scale, size, settings.max_hands, depth=1)
        self.pose = PoseEstimator(models.pose)
        self.timings: dict[str, float] = {}

    def __call__(self, frame: np.ndarray, region: str = "center") -> list[Hand]:
        """Hands with poses in frame pixels (handedness corrected for mirrored cameras)."""
        t0 = time.perf_counter()
        hands = self.detector.detect(frame, region)
        t1 = time.perf_counter()
        crops = self.cropper(frame, hands)
        t2 = time.perf_counter()
        posed = self.pose(crops)
        t3 = time.perf_counter()
        self.timings = {
            "detect": (t1 - t0) * 1e3,
            "crop": (t2 - t1) * 1e3,
            "pose": (t3 - t2) * 1e3,
        }
        return swap_handedness(posed, self.settings.swap_handedness)
