"""The three per-frame stages of a model set, whichever family it is (one place to choose).

    family      detect (frame -> hands)   crop (frame, hands -> crops)   pose (crops -> hands)
    handpose    HandDetector              HandCropper                    PoseEstimator
    mediapipe   PalmDetector              HandRegionCropper              LandmarkEstimator

The stages of both families have the same call signatures (`detect(frame[, region])`,
`cropper(frame, hands)`, `estimator(crops)`) and produce the same `Hand` results, so the actfw
tasks, `HandPipeline`, events and overlay never look at the family.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from handpose.errors import ModelFileError
from handpose.pipeline.crop import HandCropper
from handpose.pipeline.detect import HandDetector
from handpose.pipeline.models import ModelSet
from handpose.pipeline.pose import PoseEstimator
from handpose.settings import AppSettings


class Stages(NamedTuple):
    """Detect, crop and pose stage objects of one model set."""

    detector: Any
    cropper: Any
    estimator: Any


def build_stages(models: ModelSet, settings: AppSettings, crop_depth: int = 4) -> Stages:
    """The stages for `models`, configured by `settings`.

    Args:
        models: a loaded model set (its family picks the stage classes).
        settings: thresholds, crop scale (our family) and `max_hands`.
        crop_depth: frames whose crops stay valid at once (1 without threads).
    """
    size = int(models.pose.input_size[0])
    if models.family == "handpose":
        estimator = PoseEstimator(models.pose)
        return Stages(
            HandDetector(models.detector, settings.score_threshold, settings.nms_threshold),
            HandCropper(
                settings.crop_scale,
                size,
                settings.max_hands,
                depth=crop_depth,
                mirror_left=estimator.mirror_left,
            ),
            estimator,
        )
    if models.family == "mediapipe":
        from handpose.pipeline.mediapipe import HandRegionCropper, LandmarkEstimator, PalmDetector

        detector = PalmDetector(models.detector, settings.score_threshold)
        return Stages(
            detector,
            HandRegionCropper(size, settings.max_hands, detector.region_options, crop_depth),
            LandmarkEstimator(models.pose),
        )
    raise ModelFileError(f"{models.folder}: unknown model family {models.family!r}")
