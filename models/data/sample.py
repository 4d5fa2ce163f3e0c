"""The one sample type every data source returns (renderer and every dataset loader).

Labels are `handpose.hand.Hand` objects in the conventions of `handpose.hand`: boxes and
keypoints in pixels of `image` (x, y), `keypoint_scores` = visibility (1 visible, 0 occluded or
outside the image), `joints_3d` in camera coordinates, mm (x right, y down, z forward), score 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from handpose.hand import Hand


@dataclass
class Sample:
    """One image with its hands.

    Attributes:
        image: RGB uint8 (H, W, 3).
        hands: the labelled hands (may be empty: an image with no hand).
        intrinsics: float32 (3, 3) camera matrix [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] in pixels
            of `image`, or None when the dataset has none.
        source: name of the data source ("synthetic", "rhd", ...).
        name: identifier of the sample inside its source (file name, index).
        meta: anything else the source knows (subject, camera id, gesture preset, ...).
    """

    image: np.ndarray
    hands: list[Hand] = field(default_factory=list)
    intrinsics: np.ndarray | None = None
    source: str = ""
    name: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.image.dtype != np.uint8 or self.image.ndim != 3 or self.image.shape[2] != 3:
            raise ValueError(
                f"Sample.image must be uint8 (H, W, 3), got {self.image.dtype} {self.image.shape}"
            )
        if self.intrinsics is not None:
            self.intrinsics = np.asarray(self.intrinsics, np.float32).reshape(3, 3)

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])
