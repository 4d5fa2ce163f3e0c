"""The MediaPipe Hands family's stages: palm detector, rotated hand region, landmark model.

Same interfaces as our own family's stages (`HandDetector`, `HandCropper`, `PoseEstimator`), so
the actfw tasks, `HandPipeline`, events and overlay run either family unchanged:

- `PalmDetector.detect(frame)`: the frame letterboxed into the 192 x 192 input (as MediaPipe
  does; `region="center"` sees the centre square like our camera path), palms decoded and
  merged with weighted NMS (`handpose.codec.palm`). Each palm is a `Hand` with handedness
  "hand", its palm box in frame pixels, and in `extras` the unclipped "palm_box" and the 7
  "palm_keypoints" (frame px).
- `HandRegionCropper(frame, hands)`: for each of the best `max_hands` palms, the rotated
  square hand region (`handpose.codec.hand_landmarks.palm_region`; for a hand the tracker
  follows without the detector, the region from its last keypoints, `landmark_region`, as
  MediaPipe tracks), cut out as a 224 x 224 `Crop` whose affine includes the rotation (never
  mirrored).
- `LandmarkEstimator(crops)`: 21 keypoints mapped back to the frame, 3D joints from the world
  landmarks, handedness (MediaPipe assumes mirrored images: swapped into the anatomical side),
  hand presence. Hands whose presence is below the threshold are dropped. The result's box is
  the keypoints' box grown by `BOX_MARGIN` per side (clipped to the frame); its score is
  min(palm score, presence) on a frame the palm detector found it in, else (the tracker
  followed it) the presence.
"""

from __future__ import annotations

import math

import numpy as np

from handpose import geometry
from handpose.codec import hand_landmarks as lm
from handpose.codec import palm as palm_codec
from handpose.compat import zip_strict
from handpose.errors import ModelFileError
from handpose.hand import Hand, box_from_keypoints
from handpose.pipeline.crop import Crop, select_hands
from handpose.pipeline.detect import detection_square
from handpose.pipeline.track import LAST_KEYPOINTS
from handpose.runner import ModelRunner
from handpose.skeleton import NUM_KEYPOINTS

#: a hand known only by its box is cropped as an upright square this many box sides wide:
#: MediaPipe's landmark region is 2 x the landmarks' box, and a hand box is a little larger
BOX_REGION_SCALE = 1.9
#: grow the landmarks' tight box by this fraction of its size on each side (finger thickness:
#: the renderer's silhouette boxes are about this much larger than their keypoint boxes)
BOX_MARGIN = 0.04


def warp_replicate(
    image: np.ndarray, affine: np.ndarray, size: int, out: np.ndarray | None = None
) -> np.ndarray:
    """`geometry.warp_image` as MediaPipe cuts a hand region: bilinear without antialiasing,
    and outside the frame the nearest edge pixel repeated (its BORDER_REPLICATE), not black.

    Args:
        image: RGB uint8 (H, W, 3).
        affine: 2x3 frame px -> crop px.
        size: crop side S.
        out: optional uint8 (S, S, 3) written in place.
    """
    height, width = image.shape[:2]
    inverse = geometry.invert_affine(affine)
    corners = np.array([[0.0, 0.0], [size, 0.0], [0.0, size], [size, size]])
    seen = geometry.apply_affine(corners, inverse)
    lo = np.floor(seen.min(axis=0)).astype(int) - 2
    hi = np.ceil(seen.max(axis=0)).astype(int) + 2
    if lo[0] >= 0 and lo[1] >= 0 and hi[0] <= width and hi[1] <= height:
        return geometry.warp_image(image, affine, size, out=out, antialias=False)
    # the part of the frame the crop sees (at least one pixel), padded out to all it sees
    x0, y0 = min(max(lo[0], 0), width - 1), min(max(lo[1], 0), height - 1)
    x1, y1 = max(min(hi[0], width), x0 + 1), max(min(hi[1], height), y0 + 1)
    pad = ((y0 - lo[1], max(hi[1] - y1, 0)), (x0 - lo[0], max(hi[0] - x1, 0)), (0, 0))
    padded = np.pad(image[y0:y1, x0:x1], pad, mode="edge")
    shifted = geometry.compose_affine(np.array([[1.0, 0.0, lo[0]], [0.0, 1.0, lo[1]]]), affine)
    return geometry.warp_image(padded, shifted, size, out=out, antialias=False)


def _bad_metadata(runner: ModelRunner, what: str, error: Exception) -> ModelFileError:
    return ModelFileError(
        f"{runner.metadata.path}: bad {what} ({error}); re-create it with "
        "`handpose convert mediapipe`"
    )


class PalmDetector:
    """Runs MediaPipe's palm detector on a frame and decodes its palms.

    Args:
        runner: the palm model's `ModelRunner` (metadata: anchors in `default_boxes`, decode
            and hand-region options in `decode`).
        score_threshold: minimum palm score (MediaPipe uses 0.5).
        nms_threshold: weighted-NMS IoU threshold (default: the metadata's, MediaPipe's 0.3).
    """

    default_region = "letterbox"

    def __init__(
        self,
        runner: ModelRunner,
        score_threshold: float = 0.5,
        nms_threshold: float | None = None,
    ) -> None:
        self.runner = runner
        meta = runner.metadata
        try:
            self.anchor_options = palm_codec.AnchorOptions.from_dict(meta.default_boxes)
            self.options = palm_codec.PalmDecodeOptions.from_dict(meta.decode)
            self.region_options = lm.RegionOptions.from_dict(meta.decode.get("region", {}))
        except (ValueError, TypeError) as error:
            raise _bad_metadata(runner, "palm anchors / decode options", error) from None
        self.anchors = palm_codec.ssd_anchors(self.anchor_options)
        count, coords = len(self.anchors), 4 + 2 * self.options.num_keypoints
        if list(meta.outputs["boxes"].shape[1:]) != [count, coords]:
            raise ModelFileError(
                f"{meta.path}: 'boxes' has shape {meta.outputs['boxes'].shape}, the anchors "
                f"give [1, {count}, {coords}]; re-run `handpose convert mediapipe`"
            )
        height, width = runner.input_size
        if height != width or height != self.anchor_options.input_size:
            raise ModelFileError(
                f"{meta.path}: input {height}x{width} does not match the anchors' "
                f"{self.anchor_options.input_size}; re-run `handpose convert mediapipe`"
            )
        self.size = int(height)
        self.score_threshold = float(score_threshold)
        self.nms_threshold = (
            self.options.nms_threshold if nms_threshold is None else float(nms_threshold)
        )
        self._input = np.zeros((self.size, self.size, 3), np.uint8)

    def input_affine(self, width: int, height: int, region: str = "letterbox") -> np.ndarray:
        """2x3 affine frame px -> palm-model input px."""
        square = detection_square(width, height, region)
        return np.asarray(geometry.crop_affine(square, self.size, False), np.float64)

    def detect(self, frame: np.ndarray, region: str | None = None) -> list[Hand]:
        """Palms (frame pixels), best first.

        Args:
            frame: RGB uint8 (H, W, 3).
            region: "letterbox" (default, MediaPipe's whole-frame view) or "center".
        """
        height, width = frame.shape[:2]
        affine = self.input_affine(width, height, region or self.default_region)
        # as MediaPipe: bilinear without antialiasing, black letterbox borders
        geometry.warp_image(frame, affine, self.size, out=self._input, antialias=False)
        return self.decode(self.runner.run(self._input), affine, width, height)

    def decode(
        self, outputs: dict[str, np.ndarray], affine: np.ndarray, width: int, height: int
    ) -> list[Hand]:
        """Palms in frame pixels from the model's outputs.

        Args:
            outputs: {"boxes": (1, N, 18) regressors, "scores": (1, N, 1) logits}.
            affine: 2x3 frame px -> input px used for this frame.
            width, height: frame size (the Hand boxes are clipped to it).
        """
        palms = palm_codec.decode_palms(
            outputs["boxes"][0],
            outputs["scores"][0],
            self.anchors,
            self.options,
            min_score=self.score_threshold,
        )
        palms = palm_codec.weighted_nms(palms, self.nms_threshold)
        inverse = geometry.invert_affine(affine)
        limits = np.array([width, height, width, height], np.float32)
        hands = []
        for box, points, score in zip_strict(*palms):
            scale = float(self.size)  # normalized input -> input px -> frame px
            corners = geometry.apply_affine(box.reshape(2, 2).astype(np.float64) * scale, inverse)
            keypoints = geometry.apply_affine(points.astype(np.float64) * scale, inverse)
            palm_box = corners.reshape(4)
            clipped = np.clip(palm_box, 0.0, limits)
            if clipped[2] - clipped[0] < 1.0 or clipped[3] - clipped[1] < 1.0:
                continue
            hands.append(
                Hand(
                    "hand",
                    float(score),
                    clipped,
                    extras={
                        "palm_box": palm_box.astype(np.float32),
                        "palm_keypoints": keypoints.astype(np.float32),
                        "palm_score": float(score),
                        "frame_size": (int(width), int(height)),
                    },
                )
            )
        return hands


class HandRegionCropper:
    """Rotated square hand regions around palms, cut out for the landmark model.

    A ring of `depth` crop buffers is reused (no allocation per frame), as `HandCropper`.

    Args:
        out_size: crop side S (the landmark model's input, 224).
        max_hands: at most this many palms (best scores) get a crop.
        options: palm -> region options (MediaPipe's by default).
        depth: frames whose crops stay valid at once.
    """

    def __init__(
        self,
        out_size: int = 224,
        max_hands: int = 2,
        options: lm.RegionOptions | None = None,
        depth: int = 4,
    ) -> None:
        self.out_size = int(out_size)
        self.max_hands = int(max_hands)
        self.options = options or lm.RegionOptions()
        self._ring = [
            [np.zeros((out_size, out_size, 3), np.uint8) for _ in range(max_hands)]
            for _ in range(max(1, depth))
        ]
        self._next = 0

    def region(self, hand: Hand) -> lm.HandRegion:
        """The hand region to crop for `hand` (frame pixels), by what the hand carries:

        - a palm from `PalmDetector` (palm keypoints): `palm_region`, MediaPipe's detection ROI;
        - keypoints, or the tracker's prediction with the keypoints it had when last seen
          (`handpose.pipeline.track.LAST_KEYPOINTS`): `landmark_region`, MediaPipe's tracking
          ROI, moved with the tracker's predicted box;
        - only a box: an upright square of side `BOX_REGION_SCALE` x max(w, h) on its centre.
        """
        palm = hand.extras.get("palm_keypoints")
        if palm is not None:
            return lm.palm_region(hand.extras.get("palm_box", hand.box), palm, self.options)
        keypoints = hand.keypoints
        if keypoints is None:
            keypoints = hand.extras.get(LAST_KEYPOINTS)
        box = np.asarray(hand.box, np.float64)
        if keypoints is not None and np.isfinite(keypoints).all():
            region = lm.landmark_region(keypoints)
            if hand.keypoints is None:  # a prediction: its box moved since the keypoints
                before = box_from_keypoints(keypoints)
                shift = (box[:2] + box[2:]) / 2.0 - (before[:2] + before[2:]) / 2.0
                region = region._replace(center=region.center + shift)
            return region
        side = max(box[2] - box[0], box[3] - box[1]) * BOX_REGION_SCALE
        return lm.HandRegion((box[:2] + box[2:]) / 2.0, np.array([side, side]), 0.0)

    def __call__(self, frame: np.ndarray, hands: list[Hand]) -> list[Crop]:
        buffers = self._ring[self._next]
        self._next = (self._next + 1) % len(self._ring)
        crops = []
        for i, hand in enumerate(select_hands(hands, self.max_hands)):
            region = self.region(hand)
            affine = lm.region_affine(region, self.out_size)
            image = warp_replicate(frame, affine, self.out_size, out=buffers[i])
            tagged = hand.replace(extras={**hand.extras, "region": region})
            crops.append(Crop(image=image, affine=affine, mirrored=False, hand=tagged))
        return crops


class LandmarkEstimator:
    """Runs MediaPipe's hand landmark model on region crops.

    Args:
        runner: the landmark model's `ModelRunner` (outputs landmarks, presence, handedness and
            optionally world_landmarks).
        presence_threshold: hands whose presence is below this are dropped (default: the
            metadata's, MediaPipe's 0.5).
    """

    def __init__(self, runner: ModelRunner, presence_threshold: float | None = None) -> None:
        self.runner = runner
        decode = runner.metadata.decode
        try:
            self.presence_threshold = float(
                decode.get("presence_threshold", 0.5)
                if presence_threshold is None
                else presence_threshold
            )
            self.normalize_z = float(decode.get("normalize_z", 0.4))
            self.first_label = str(decode.get("handedness_first_label", "left"))
            self.assumes_mirrored = bool(decode.get("handedness_assumes_mirrored", True))
        except (TypeError, ValueError) as error:
            raise _bad_metadata(runner, "landmark decode options", error) from None
        if self.first_label not in ("left", "right"):
            raise _bad_metadata(runner, "handedness_first_label", ValueError(self.first_label))
        count = NUM_KEYPOINTS * 3
        for key in ("landmarks", "world_landmarks"):
            spec = runner.metadata.outputs.get(key)
            if spec is not None and int(np.prod(spec.shape)) != count:
                raise ModelFileError(
                    f"{runner.metadata.path}: {key!r} has shape {spec.shape}, expected {count} "
                    "values (21 x, y, z); re-run `handpose convert mediapipe`"
                )
        self.size = int(runner.input_size[0])

    def estimate(self, crop: Crop) -> Hand | None:
        """The crop's hand with keypoints, or None when the model sees no hand in it."""
        return self.decode(self.runner.run(crop.image), crop)

    def decode(self, outputs: dict[str, np.ndarray], crop: Crop) -> Hand | None:
        """The crop's hand from the model's outputs (None below the presence threshold).

        Args:
            outputs: {"landmarks": (1, 63), "presence": (1, 1), "handedness": (1, 1),
                optionally "world_landmarks": (1, 63)}.
            crop: the crop they were computed on (its affine maps the landmarks back).
        """
        presence = float(np.asarray(outputs["presence"]).reshape(-1)[0])
        if presence < self.presence_threshold:
            return None
        keypoints, depth = lm.landmarks_to_frame(
            outputs["landmarks"].reshape(-1), crop.affine, self.normalize_z
        )
        affine = np.asarray(crop.affine, np.float64)
        rotation = math.atan2(affine[0, 1], affine[0, 0])  # linear part = k R(r)^T
        if "world_landmarks" in outputs:
            joints = lm.joints_from_world(outputs["world_landmarks"].reshape(-1), rotation)
        else:
            joints = lm.joints_from_landmarks(keypoints, depth)
        side, side_score = lm.handedness_from_score(
            float(np.asarray(outputs["handedness"]).reshape(-1)[0]),
            self.first_label,
            self.assumes_mirrored,
        )
        palm_score = crop.hand.extras.get("palm_score")  # None: a tracked hand, no palm now
        score = presence if palm_score is None else min(float(palm_score), presence)
        box = box_from_keypoints(keypoints, BOX_MARGIN)
        extras = {
            **crop.hand.extras,
            "presence": presence,
            "handedness_score": side_score,
            "depth": depth,
        }
        return crop.hand.replace(
            handedness=side,
            score=score,
            box=_clip_to_frame(box, crop),
            keypoints=keypoints,
            keypoint_scores=np.full(NUM_KEYPOINTS, presence, np.float32),
            joints_3d=joints,
            extras=extras,
        )

    def __call__(self, crops: list[Crop]) -> list[Hand]:
        hands = []
        for crop in crops:
            hand = self.estimate(crop)
            if hand is not None:
                hands.append(hand)
        return hands


def _clip_to_frame(box: np.ndarray, crop: Crop) -> np.ndarray:
    """`box` clipped to the frame whose size `PalmDetector` recorded (else left as it is)."""
    size = crop.hand.extras.get("frame_size")
    if size is None:
        return box
    width, height = size
    return np.clip(box, 0.0, np.array([width, height, width, height], np.float32))
