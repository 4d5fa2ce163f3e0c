"""Detect stage: frame -> hands with boxes in frame pixels.

The detector sees a square region of the frame resized to its input size S (224):

- ``region="center"`` (the camera path, as the seed's demo): the centre square of side
  min(W, H); hands outside it are not seen.
- ``region="letterbox"`` (still images, `handpose predict`): the square of side max(W, H)
  centred on the image, the outside padded with black, so hands at the edges are found.

With the square's box q = [x0, y0, x0 + s, y0 + s] the frame->input affine is
A = crop_affine(q, S) (p_in = (p_frame - (x0, y0)) * S / s), and a detected box maps back to
the frame with A^-1, then is clipped to the frame.
"""

from __future__ import annotations

import numpy as np

from handpose import geometry
from handpose.codec import boxes as box_codec
from handpose.errors import ModelFileError
from handpose.hand import Hand
from handpose.runner import ModelRunner

REGIONS = ("center", "letterbox")


def detection_square(width: int, height: int, region: str = "center") -> np.ndarray:
    """Box [x0, y0, x1, y1] of the square the detector sees in a W x H frame."""
    if region == "center":
        return np.asarray(geometry.center_square(width, height), np.float32)
    if region == "letterbox":
        side = max(width, height)
        x0, y0 = (width - side) / 2.0, (height - side) / 2.0
        return np.array([x0, y0, x0 + side, y0 + side], np.float32)
    raise ValueError(f"region must be one of {REGIONS}, got {region!r}")


class HandDetector:
    """Runs the detector model on a frame and decodes its boxes.

    Args:
        runner: the detector's `ModelRunner` (its metadata gives classes and default boxes).
        score_threshold: minimum class probability of a kept box.
        nms_threshold: per-class NMS IoU threshold.
    """

    def __init__(
        self, runner: ModelRunner, score_threshold: float = 0.6, nms_threshold: float = 0.45
    ) -> None:
        self.runner = runner
        meta = runner.metadata
        self.classes = list(meta.classes) or ["hand"]
        try:
            self.config = box_codec.DefaultBoxConfig.from_dict(meta.default_boxes)
        except (ValueError, TypeError) as error:
            raise ModelFileError(
                f"{meta.path}: bad default_boxes ({error}); re-create it with `handpose convert`"
            ) from None
        self.default_boxes = box_codec.default_boxes(self.config)
        expected = self.default_boxes.shape[0]
        if list(meta.outputs["locations"].shape[1:]) != [expected, 4]:
            raise ModelFileError(
                f"{meta.path}: 'locations' has shape {meta.outputs['locations'].shape}, the "
                f"default boxes {meta.default_boxes} give {expected}; re-run `handpose convert`"
            )
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        height, width = runner.input_size
        if height != width:
            raise ValueError(
                f"{meta.path}: the detector input must be square, got {height}x{width}"
            )
        self.size = int(height)
        self._input = np.zeros((self.size, self.size, 3), np.uint8)

    def input_affine(self, width: int, height: int, region: str = "center") -> np.ndarray:
        """2x3 affine frame px -> detector input px."""
        square = detection_square(width, height, region)
        return np.asarray(geometry.crop_affine(square, self.size, False), np.float64)

    def detect(self, frame: np.ndarray, region: str = "center") -> list[Hand]:
        """Hands (box, handedness as the image shows it, score) in frame pixels, best first.

        Args:
            frame: RGB uint8 (H, W, 3).
            region: "center" or "letterbox" (see module docstring).
        """
        height, width = frame.shape[:2]
        square = detection_square(width, height, region)
        affine = np.asarray(geometry.crop_affine(square, self.size, False), np.float64)
        geometry.resize_box(frame, square, self.size, out=self._input)  # one Pillow resize
        outputs = self.runner.run(self._input)
        return self.decode(outputs, affine, width, height)

    def decode(
        self, outputs: dict[str, np.ndarray], affine: np.ndarray, width: int, height: int
    ) -> list[Hand]:
        """Hands in frame pixels from the detector's outputs.

        Args:
            outputs: {"locations": (1, N, 4) SSD offsets, "scores": (1, N, C + 1) logits}.
            affine: 2x3 frame px -> detector input px used for this frame.
            width, height: frame size (boxes are clipped to it).
        """
        corners = np.array([[0.0, 0.0], [width, height]], np.float64)
        inside = geometry.apply_affine(corners, affine).reshape(4)
        found = box_codec.decode(
            outputs["locations"][0],
            outputs["scores"][0],
            self.default_boxes,
            self.classes,
            score_threshold=self.score_threshold,
            nms_threshold=self.nms_threshold,
            variance=self.config.variance,
            valid_region=inside,
        )
        inverse = geometry.invert_affine(affine)
        limits = np.array([width, height, width, height], np.float32)
        hands = []
        for hand in found:
            corners = geometry.apply_affine(hand.box.reshape(2, 2), inverse).reshape(4)
            box = np.clip(corners, 0.0, limits)
            if box[2] - box[0] < 1.0 or box[3] - box[1] < 1.0:
                continue
            hands.append(hand.replace(box=box))
        hands.sort(key=lambda h: -h.score)
        return hands
