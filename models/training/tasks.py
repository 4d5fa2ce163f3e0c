"""What differs between the two networks during training: data, targets, loss, validation.

`Task.train_batch(step, seed)` returns (images float32 (B, S, S, 3) in 0..255, targets dict of
numpy arrays); `Task.loss(outputs, targets)` the loss terms (models.losses); `Task.validate(
predict)` the validation metrics on a fixed set ("ap50" for the detector, "pck@0.2" for pose).
Batches depend only on (seed, step), so a resumed run sees the batches it would have seen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from handpose.errors import HandposeError
from handpose.skeleton import NUM_BONES, NUM_KEYPOINTS
from models.data.sample import Sample
from models.networks.pose import pose_grid
from models.training.pipeline import PoseExample, detector_example, pose_example
from models.training.run import default_box_config

log = logging.getLogger(__name__)

Predict = Callable[[np.ndarray], dict[str, np.ndarray]]
PCK_THRESHOLDS = tuple(np.round(np.linspace(0.0, 0.5, 26), 3).tolist())


def open_samples(spec: str, split: str, seed: int, task: str, size: int) -> Sequence[Sample]:
    """The data issue's loader (`models.data.spec.open_dataset`): a sequence of Samples.

    Without models.data.spec (a partial install), the plain spec "synthetic" still works: the
    renderer directly, 10000 items, the validation split on seed + 1000.
    """
    try:
        from models.data.spec import open_dataset
    except ImportError:
        if spec != "synthetic":
            raise
        from models.data.synthetic import SyntheticHands

        offset = 0 if split == "train" else 1000
        return SyntheticHands(10000, seed + offset, task, max(size, 128))
    dataset = open_dataset(spec, split=split, seed=seed, task=task)
    if len(dataset) == 0:
        raise HandposeError(f"data spec {spec!r} ({split} split) holds no samples")
    return dataset


class CachedSamples:
    """Index access to a dataset keeping up to `capacity` decoded samples in memory."""

    def __init__(self, dataset: Sequence[Sample], capacity: int) -> None:
        self.dataset = dataset
        self.capacity = capacity
        self.cache: dict[int, Sample] = {}

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Sample:
        sample = self.cache.get(index)
        if sample is None:
            sample = self.dataset[index]
            if len(self.cache) < self.capacity:
                self.cache[index] = sample
        return sample


class Task:
    """Base class; see module docstring."""

    name = ""
    metric = ""
    data_task = ""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.size = int(config["model"]["input_size"])
        self.batch = int(config["train"]["batch"])
        self.augment = config["augment"]
        seed = int(config["train"]["seed"])
        data = config["data"]
        self.train_data = CachedSamples(
            open_samples(data["train"], "train", seed, self.data_task, self.size),
            int(data["cache"]),
        )
        self._val_spec = (data["val"], seed)
        self._val: Any = None

    def train_batch(self, step: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        raise NotImplementedError

    def loss(self, outputs: dict[str, Any], targets: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def validate(self, predict: Predict) -> dict[str, Any]:
        raise NotImplementedError

    def _val_samples(self) -> list[Sample]:
        spec, seed = self._val_spec
        dataset = open_samples(spec, "val", seed, self.data_task, self.size)
        count = min(int(self.config["train"]["val_samples"]), len(dataset))
        return [dataset[i] for i in range(count)]


class DetectorTask(Task):
    name = "detector"
    metric = "ap50"
    data_task = "detection"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        from handpose.codec import boxes as box_codec

        self.codec = box_codec
        self.classes = tuple(config["model"]["classes"])
        self.box_config = default_box_config(config)
        self.match_iou = float(config["train"]["match_iou"])
        self.priors = box_codec.default_boxes(self.box_config)

    def encode(self, boxes: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """boxes (M, 4), labels (M,) 1..C (C + 1: side unknown, C >= 2) -> loc (N, 4), labels
        (N,) 0 = background, else the matched box's label."""
        known = len(self.classes) + (1 if len(self.classes) > 1 else 0)
        loc, lab = self.codec.encode(
            self.priors,
            boxes,
            labels - 1,
            iou_threshold=self.match_iou,
            variance=self.box_config.variance,
            num_classes=known,  # the codec passes label indices through unchanged
        )
        return np.asarray(loc, np.float32), np.asarray(lab, np.int32)

    def train_batch(self, step: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        rng = np.random.default_rng([seed, step])
        idx = rng.integers(0, len(self.train_data), self.batch)
        samples = [self.train_data[int(i)] for i in idx]
        # paste augmentation: the hands of the batch's other samples (no extra decoding, and
        # the batch still depends only on (seed, step))
        pool: list[Any] = []
        if float(self.augment.get("paste_prob", 0.0)) > 0:
            from models.data.augment import hand_patches

            for j, sample in enumerate(samples):
                pool += hand_patches(sample, origin=int(idx[j]))
        images, locs, labels = [], [], []
        for j, sample in enumerate(samples):
            others = [p for p in pool if p.origin != int(idx[j])]
            ex = detector_example(sample, self.size, self.classes, self.augment, rng, others)
            loc, lab = self.encode(ex.boxes, ex.labels)
            images.append(ex.image)
            locs.append(loc)
            labels.append(lab)
        return np.stack(images).astype(np.float32), {
            "loc": np.stack(locs),
            "labels": np.stack(labels),
        }

    def loss(self, outputs: dict[str, Any], targets: dict[str, Any]) -> dict[str, Any]:
        from models.losses import multibox_loss

        return multibox_loss(
            outputs["locations"], outputs["scores"], targets["loc"], targets["labels"]
        )

    def validate(self, predict: Predict) -> dict[str, Any]:
        from models.metrics import average_precision

        if self._val is None:
            examples = [
                detector_example(s, self.size, self.classes, None, None)
                for s in self._val_samples()
            ]
            self._val = examples
        predictions, truths = [], []
        for start in range(0, len(self._val), 16):
            chunk = self._val[start : start + 16]
            out = predict(np.stack([e.image for e in chunk]).astype(np.float32))
            for j, ex in enumerate(chunk):
                predictions.append(self.decode(out["locations"][j], out["scores"][j]))
                truths.append(self.truth(ex))
        sided = len(self.classes) > 1
        unknown = sided and any(h.handedness == "hand" for hands in truths for h in hands)
        # per-side AP over the classes only: truths of unknown side ("hand") count in the
        # class-agnostic AP below
        classes = self.classes if unknown else None
        result = average_precision(predictions, truths, iou_threshold=0.5, classes=classes)
        row = {"ap50": float(result.map), "recall": float(result.recall)}
        for name, value in result.ap.items():
            row[f"ap50_{name}"] = float(value)
        if sided:  # class-agnostic AP: localisation without the side
            anon = [[h.replace(handedness="hand") for h in hands] for hands in predictions]
            anon_t = [[h.replace(handedness="hand") for h in hands] for hands in truths]
            agnostic = average_precision(anon, anon_t, iou_threshold=0.5)
            row["ap50_any_side"] = float(agnostic.map)
            if not any(h.handedness in self.classes for hands in truths for h in hands):
                # no validation hand has a side (real photographs): rank checkpoints by
                # localisation
                row["ap50"], row["recall"] = float(agnostic.map), float(agnostic.recall)
        return row

    def decode(self, locations: np.ndarray, scores: np.ndarray) -> list[Any]:
        """Hands for AP: a low score threshold (0.01) so the whole precision/recall curve counts."""
        return self.codec.decode(
            locations,
            scores,
            self.priors,
            classes=self.classes,
            score_threshold=0.01,
            max_detections=20,
            variance=self.box_config.variance,
        )

    def truth(self, ex: Any) -> list[Any]:
        from handpose.hand import Hand

        # label C + 1 (C >= 2): a hand of unknown side
        names = (*self.classes, "hand") if len(self.classes) > 1 else ("hand",)
        return [
            Hand(handedness=names[int(lab) - 1], score=1.0, box=box)
            for box, lab in zip(ex.boxes, ex.labels, strict=True)
        ]


class PoseTask(Task):
    name = "pose"
    metric = "pck@0.2"
    data_task = "pose"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        from handpose.codec import ppn

        self.codec = ppn
        stride = int(config["model"].get("grid_stride", 32))
        self.ppn_config = ppn.PPNConfig(input_size=self.size, grid=pose_grid(self.size, stride))
        self.mirror_left = bool(config["data"].get("mirror_left", True))
        self.side_head = bool(config["model"].get("side_head", False))
        self.rendered_sides = bool(config["train"].get("rendered_sides", True))

    def _hand(self, sample: Sample, rng: np.random.Generator | None) -> Any:
        hands = [h for h in sample.hands if h.keypoints is not None]
        if not hands:
            return None
        return hands[int(rng.integers(len(hands)))] if rng is not None else hands[0]

    def targets(self, ex: PoseExample) -> dict[str, np.ndarray]:
        """Codec targets -> the arrays of models.losses.ppn_loss (one example, no batch axis)."""
        known = ex.inside if self.config["data"]["occluded"] == "train" else ex.visible
        t = self.codec.encode_targets(
            ex.keypoints, known, ex.directions if ex.has_3d else None, self.ppn_config
        )
        return {
            "resp": np.asarray(t["resp"], np.float32),
            "xy": np.asarray(t["xy"], np.float32),
            "wh": np.asarray(t["wh"], np.float32),
            "vect": np.asarray(t["vect"], np.float32),
            "vect_mask": np.asarray(t["vect_mask"], np.float32),
            "side": np.asarray([ex.side], np.float32),
        }

    def train_batch(self, step: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        rng = np.random.default_rng([seed, step])
        images, targets = [], []
        tries = 0
        while len(images) < self.batch:
            tries += 1
            if tries > 50 * self.batch:
                raise HandposeError("the training data holds no hand with keypoints (pose task)")
            sample = self.train_data[int(rng.integers(len(self.train_data)))]
            hand = self._hand(sample, rng)
            if hand is None:
                continue
            ex = pose_example(
                sample, hand, self.size, self.augment, rng, mirror_left=self.mirror_left
            )
            if not self.rendered_sides and sample.source.startswith("synthetic"):
                ex.side = -1.0  # the renderer's palm and back look alike: its side is no cue
            images.append(ex.image)
            targets.append(self.targets(ex))
        batch = {k: np.stack([t[k] for t in targets]) for k in targets[0]}
        return np.stack(images).astype(np.float32), batch

    def loss(self, outputs: dict[str, Any], targets: dict[str, Any]) -> dict[str, Any]:
        from models.losses import ppn_loss, side_loss

        terms = ppn_loss(
            outputs["pose"],
            outputs["vect"],
            targets["resp"],
            targets["xy"],
            targets["wh"],
            targets["vect"],
            targets["vect_mask"],
        )
        if self.side_head:
            weight = float(self.config["train"].get("side_weight", 1.0))
            terms["side"] = side_loss(outputs["side"], targets["side"], weight)
            terms["total"] = terms["total"] + terms["side"]
        return terms

    def validate(self, predict: Predict) -> dict[str, Any]:
        from models import metrics

        if self._val is None:
            examples = []
            for sample in self._val_samples():
                hand = self._hand(sample, None)
                if hand is not None:
                    examples.append(
                        pose_example(
                            sample, hand, self.size, None, None, mirror_left=self.mirror_left
                        )
                    )
            if not examples:
                raise HandposeError("the validation data holds no hand with keypoints")
            self._val = examples
        pred_kp, pred_dirs, pred_side = [], [], []
        for start in range(0, len(self._val), 16):
            chunk = self._val[start : start + 16]
            out = predict(np.stack([e.image for e in chunk]).astype(np.float32))
            if "side" in out:
                pred_side.extend(np.asarray(out["side"]).reshape(-1).tolist())
            for j in range(len(chunk)):
                kp, dirs = self.decode(out["pose"][j], out["vect"][j])
                pred_kp.append(kp)
                pred_dirs.append(dirs)
        pred = np.stack(pred_kp)
        gt = np.stack([e.keypoints for e in self._val])
        vis = np.stack([e.visible for e in self._val])
        curve = metrics.pck(pred, gt, vis, None, thresholds=np.asarray(PCK_THRESHOLDS))
        row: dict[str, Any] = {
            "pck@0.2": float(metrics.pck(pred, gt, vis, None, threshold=0.2)),
            "auc": float(metrics.auc(curve)),
            "epe_px": float(metrics.end_point_error(pred, gt, vis)),
            "pck_curve": [[float(t), float(v)] for t, v in zip(*curve, strict=True)],
        }
        with_3d = [i for i, e in enumerate(self._val) if e.has_3d]
        if with_3d:
            pd = np.stack([pred_dirs[i] for i in with_3d])
            gd = np.stack([self._val[i].directions for i in with_3d])
            row["bone_angle_deg"] = float(metrics.bone_angle_error_deg(pd, gd))
        sided = [i for i, e in enumerate(self._val) if e.side >= 0]
        if pred_side and sided:
            right = np.asarray(pred_side)[sided] >= 0.5
            truth = np.asarray([self._val[i].side for i in sided]) >= 0.5
            row["side_acc"] = float(np.mean(right == truth))
        return row

    def decode(self, pose: np.ndarray, vect: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """-> keypoints (21, 2) in input pixels, bone directions (20, 3)."""
        result = self.codec.decode(pose, vect, self.ppn_config)
        kp = np.asarray(result.keypoints, np.float32).reshape(NUM_KEYPOINTS, 2)
        dirs = np.asarray(result.directions, np.float32).reshape(NUM_BONES, 3)
        return kp, dirs


def make_task(config: dict[str, Any]) -> Task:
    return DetectorTask(config) if config["task"] == "detector" else PoseTask(config)
