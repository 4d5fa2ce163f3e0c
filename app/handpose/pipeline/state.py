"""`FrameState`: what travels between the actfw tasks, one per frame."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from handpose.hand import Hand


@dataclass
class FrameState:
    """One frame and what the stages found in it.

    Attributes:
        index: frame number from the source (0, 1, ...).
        timestamp: seconds (UNIX time for cameras, media time for files).
        image: RGB uint8 (H, W, 3), possibly a non-contiguous view (rotation / flip).
        hands: the hands found so far (boxes after Detect, keypoints after Pose), frame pixels.
        crops: the pose crops (after Crop), `handpose.pipeline.crop.Crop`.
        timings: milliseconds spent per stage name ("detect", "crop", "pose", "track",
            "present").
        detected: whether the detector ran on this frame (False: the tracker located the hands).
        end: True for the end-of-stream marker (no image): the last stage stops the app.
    """

    index: int
    timestamp: float
    image: np.ndarray | None
    hands: list[Hand] = field(default_factory=list)
    crops: list[Any] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    detected: bool = False
    end: bool = False

    @classmethod
    def end_of_stream(cls, index: int = -1) -> FrameState:
        return cls(index=index, timestamp=0.0, image=None, end=True)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frame."""
        assert self.image is not None
        return int(self.image.shape[1]), int(self.image.shape[0])
