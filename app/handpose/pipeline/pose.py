"""Pose stage: crop -> Hand with 21 keypoints in frame pixels and 3D joints.

The pose network outputs `pose` (Gh, Gw, 6K) after sigmoid and `vect` (Gh, Gw, 3E) after tanh;
`handpose.codec.ppn.decode` turns them into keypoints in crop pixels, their scores and 20 bone
directions. Keypoints map back to the frame with the inverse crop affine, p_frame = A^-1 p_crop,
which also undoes the mirror of a left-hand crop. The 3D joints (wrist-relative, mm) are built from
the bone directions; for a mirrored crop x is negated (x -> -x) to undo the mirror.

Pose models whose metadata says `decode.mirror_left = false` see every crop unmirrored, so a wrong
detector side cannot scramble the fingers. A `side` output (`decode.side_output`) is p(right
hand) of the crop: its side goes to `extras["pose_side"]` (confidence `extras["side_score"]`,
the detector's side kept in `extras["detector_side"]`), and `decode.side_source` says which side
the hand reports, whichever was measured more accurate when the model was converted: "pose" (the
default), "detector", or "fused": the mean of the two networks' p(right), the detector's read
from its class probabilities (p_right / (p_left + p_right)); a hand the detector did not see
this frame (the tracker's prediction) has no detector probability and reports the pose side.
"""

from __future__ import annotations

import numpy as np

from handpose import geometry
from handpose.codec import ppn, skeleton3d
from handpose.errors import ModelFileError
from handpose.hand import Hand
from handpose.pipeline.crop import Crop
from handpose.runner import ModelRunner

#: what `decode.side_source` may say (see the module docstring)
SIDE_SOURCES = ("pose", "detector", "fused")


def detector_p_right(hand: Hand) -> float | None:
    """The detector's p(right) of a detected hand from its class probability, None when the
    hand carries none (a tracked hand, or a detector without left/right classes)."""
    p_label = hand.extras.get("class_probability")
    if p_label is None or hand.handedness not in ("left", "right") or hand.score <= 0:
        return None
    share = min(max(float(p_label) / float(hand.score), 0.0), 1.0)  # p_label / (p_l + p_r)
    return share if hand.handedness == "right" else 1.0 - share


class PoseEstimator:
    """Runs the pose network on crops.

    Args:
        runner: the pose model's `ModelRunner`.
    """

    def __init__(self, runner: ModelRunner) -> None:
        self.runner = runner
        try:
            self.config = ppn.PPNConfig.from_metadata(runner.metadata)
        except (ValueError, TypeError) as error:
            raise ModelFileError(
                f"{runner.metadata.path}: pose grid/keypoints do not fit the model ({error}); "
                "re-create it with `handpose convert`"
            ) from None
        self.size = int(runner.input_size[0])
        decode = runner.metadata.decode or {}
        self.mirror_left = bool(decode.get("mirror_left", True))
        self.side_output = decode.get("side_output")
        self.side_source = str(decode.get("side_source", "pose"))
        if self.side_source not in SIDE_SOURCES:
            raise ModelFileError(
                f"{runner.metadata.path}: decode.side_source must be one of {SIDE_SOURCES}, got "
                f"{self.side_source!r}; re-create it with `handpose convert`"
            )
        if self.side_output is not None and self.side_output not in runner.metadata.outputs:
            raise ModelFileError(
                f"{runner.metadata.path}: decode.side_output names {self.side_output!r}, which "
                "is not an output of the model; re-create it with `handpose convert`"
            )

    def estimate(self, crop: Crop) -> Hand:
        """The crop's hand with keypoints (frame px), keypoint scores and joints_3d (mm)."""
        return self.decode(self.runner.run(crop.image), crop)

    def decode(self, outputs: dict[str, np.ndarray], crop: Crop) -> Hand:
        """The crop's hand from the pose network's outputs.

        Args:
            outputs: {"pose": (1, Gh, Gw, 6K) after sigmoid, "vect": (1, Gh, Gw, 3E) after tanh}.
            crop: the crop they were computed on (its affine maps the keypoints back).
        """
        keypoints, scores, directions = ppn.decode(
            outputs["pose"][0], outputs["vect"][0], self.config
        )
        joints = np.asarray(skeleton3d.joints_from_directions(directions), np.float32)
        if crop.mirrored:
            joints = skeleton3d.mirror_x_3d(joints)
        inverse = geometry.invert_affine(crop.affine)
        points = geometry.apply_affine(np.asarray(keypoints, np.float64), inverse)
        hand = crop.hand
        if self.side_output is not None and self.side_output in outputs:
            p_right = float(np.asarray(outputs[self.side_output]).reshape(-1)[0])
            if crop.mirrored:
                p_right = 1.0 - p_right
            side = "right" if p_right >= 0.5 else "left"
            extras = dict(
                hand.extras,
                pose_side=side,
                side_score=max(p_right, 1.0 - p_right),
                detector_side=hand.handedness,
            )
            reported = side if self.side_source == "pose" else hand.handedness
            if self.side_source == "fused":
                p_detector = detector_p_right(hand)
                p_fused = p_right if p_detector is None else (p_right + p_detector) / 2.0
                reported = "right" if p_fused >= 0.5 else "left"
                extras.update(fused_side=reported, side_score=max(p_fused, 1.0 - p_fused))
            hand = hand.replace(handedness=reported, extras=extras)
        return hand.replace(keypoints=points, keypoint_scores=np.asarray(scores), joints_3d=joints)

    def __call__(self, crops: list[Crop]) -> list[Hand]:
        return [self.estimate(crop) for crop in crops]


_SWAP = {"left": "right", "right": "left", "hand": "hand"}


def swap_handedness(hands: list[Hand], swap: bool) -> list[Hand]:
    """Hands with left/right swapped when the processed image is a mirror of reality."""
    if not swap:
        return hands
    return [hand.replace(handedness=_SWAP[hand.handedness]) for hand in hands]
