"""The per-frame stages, each a plain class or function testable without threads.

frame (RGB uint8 HxWx3) -> `HandDetector` (hands with boxes in frame pixels) -> `crop_hands`
(224x224 crops with the frame->crop affine, left hands mirrored) -> `PoseEstimator` (keypoints in
frame pixels, 3D joints) -> `Postprocess` (track ids from `HandTracker`, which also decides when
the detector may rest, `HandSmoother`, gestures) -> presentation and events. `HandPipeline`
chains them for one frame; the actfw tasks in `handpose.tasks` call the same stages one per
thread.
"""

from handpose.pipeline.crop import Crop, HandCropper, crop_hands
from handpose.pipeline.detect import HandDetector
from handpose.pipeline.models import ModelSet, load_model_set
from handpose.pipeline.pose import PoseEstimator, swap_handedness
from handpose.pipeline.post import Postprocess
from handpose.pipeline.process import HandPipeline
from handpose.pipeline.smooth import HandSmoother, OneEuroFilter
from handpose.pipeline.state import FrameState
from handpose.pipeline.track import HandTracker

__all__ = [
    "Crop",
    "FrameState",
    "HandCropper",
    "HandDetector",
    "HandPipeline",
    "HandSmoother",
    "HandTracker",
    "ModelSet",
    "OneEuroFilter",
    "PoseEstimator",
    "Postprocess",
    "crop_hands",
    "load_model_set",
    "swap_handedness",
]
