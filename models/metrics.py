"""Evaluation metrics, pure numpy: training validation, `handpose convert verify`, evaluation.

Detection: `average_precision` (PASCAL VOC style, all-point interpolation).
    Per class, predictions of all images sorted by score (descending, stable); a prediction is a
    true positive when its best-IoU ground truth of that class in its image has
    IoU >= iou_threshold and was not matched before, else a false positive. With cumulative
    precision p(r), AP = sum_n (r_n - r_{n-1}) max_{r' >= r_n} p(r').

Pose (2D), over the visible ground-truth keypoints only:
    d = |pred - gt| / box_size (per hand), PCK(t) = fraction of keypoints with d <= t,
    box_size = max(w, h) of the tight box of the hand's visible ground-truth keypoints
    (`keypoint_box_sizes`; callers may pass their own, e.g. of the labelled hand box).
    AUC = area under PCK(t) for t in [0, 0.5] divided by 0.5 (trapezoids; 1.0 = perfect).
    EPE = mean |pred - gt| in pixels.
3D: mean angle in degrees between predicted and ground-truth bone directions.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from handpose.codec.boxes import box_iou

PCK_THRESHOLDS = np.linspace(0.0, 0.5, 51)


# ----------------------------------------------------------------------------------- detection


@dataclass
class DetectionAP:
    """Result of `average_precision`.

    Attributes:
        ap: AP per class (NaN for a class without ground truth).
        map: mean AP over classes with ground truth (NaN when there is none).
        recall: matched ground truths / all ground truths over all classes (at any score).
        num_gt: ground-truth count per class.
    `float(result)` is the mAP; result["map"], result["ap"] also work.
    """

    ap: dict[Any, float]
    map: float
    recall: float
    num_gt: dict[Any, int] = field(default_factory=dict)

    def __float__(self) -> float:
        return float(self.map)

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ap": {str(k): v for k, v in self.ap.items()},
            "map": self.map,
            "recall": self.recall,
        }


def _as_predictions(item: Any) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """(boxes (M, 4), scores (M,), class keys) from a list of Hands or (boxes, scores, labels)."""
    if isinstance(item, tuple) and len(item) == 3:
        boxes, scores, labels = item
        return (
            np.asarray(boxes, np.float64).reshape(-1, 4),
            np.asarray(scores, np.float64).reshape(-1),
            [_key(v) for v in np.asarray(labels).reshape(-1)],
        )
    hands = list(item)
    return (
        np.asarray([h.box for h in hands], np.float64).reshape(-1, 4),
        np.asarray([h.score for h in hands], np.float64),
        [h.handedness for h in hands],
    )


def _as_truths(item: Any) -> tuple[np.ndarray, list[Any]]:
    """(boxes (M, 4), class keys) from a list of Hands or (boxes, labels)."""
    if isinstance(item, tuple) and len(item) == 2:
        boxes, labels = item
        return (
            np.asarray(boxes, np.float64).reshape(-1, 4),
            [_key(v) for v in np.asarray(labels).reshape(-1)],
        )
    hands = list(item)
    return (
        np.asarray([h.box for h in hands], np.float64).reshape(-1, 4),
        [h.handedness for h in hands],
    )


def _key(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """All-point interpolated AP of a precision/recall curve (recall increasing)."""
    r = np.concatenate([[0.0], np.asarray(recall, np.float64), [1.0]])
    p = np.concatenate([[0.0], np.asarray(precision, np.float64), [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    changed = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[changed + 1] - r[changed]) * p[changed + 1]))


def average_precision(
    predictions: Sequence[Any],
    truths: Sequence[Any],
    iou_threshold: float = 0.5,
    classes: Iterable[Any] | None = None,
) -> DetectionAP:
    """VOC-style AP per class and mAP over images (see module docstring).

    Args:
        predictions: per image, a list of `Hand` (class = handedness, score, box) or a tuple
            (boxes (M, 4) [x0, y0, x1, y1], scores (M,), labels (M,)).
        truths: per image, a list of `Hand` or a tuple (boxes (G, 4), labels (G,)).
        iou_threshold: minimum IoU of a true positive.
        classes: class keys to evaluate (default: every key seen in truths or predictions).
    """
    if len(predictions) != len(truths):
        raise ValueError(f"{len(predictions)} prediction lists but {len(truths)} truth lists")
    preds = [_as_predictions(p) for p in predictions]
    gts = [_as_truths(t) for t in truths]
    if classes is None:
        seen = {k for _, _, keys in preds for k in keys} | {k for _, keys in gts for k in keys}
        classes = sorted(seen, key=str)
    ap: dict[Any, float] = {}
    num_gt: dict[Any, int] = {}
    matched_total = 0
    for cls in classes:
        scores, hits = [], []
        n_gt = 0
        for (pb, ps, pk), (gb, gk) in zip(preds, gts, strict=True):
            pmask = np.array([k == cls for k in pk], bool).reshape(-1)
            gmask = np.array([k == cls for k in gk], bool).reshape(-1)
            g = gb[gmask]
            n_gt += len(g)
            b, s = pb[pmask], ps[pmask]
            order = np.argsort(-s, kind="stable")
            used = np.zeros(len(g), bool)
            iou = box_iou(b, g) if len(g) else np.zeros((len(b), 0))
            # greedy matching in score order inside the image; across images the ranking below
            # orders all predictions by score (each image's matches do not depend on others)
            for i in order:
                hit = False
                if len(g):
                    best = int(np.argmax(iou[i]))
                    if iou[i, best] >= iou_threshold and not used[best]:
                        used[best] = hit = True
                scores.append(s[i])
                hits.append(hit)
            matched_total += int(used.sum())
        num_gt[cls] = n_gt
        if n_gt == 0:
            ap[cls] = float("nan")
            continue
        if not scores:
            ap[cls] = 0.0
            continue
        order = np.argsort(-np.asarray(scores), kind="stable")
        tp = np.cumsum(np.asarray(hits, np.float64)[order])
        fp = np.cumsum(1.0 - np.asarray(hits, np.float64)[order])
        ap[cls] = voc_ap(tp / n_gt, tp / np.maximum(tp + fp, 1e-12))
    valid = [v for v in ap.values() if not np.isnan(v)]
    total_gt = sum(num_gt.values())
    return DetectionAP(
        ap=ap,
        map=float(np.mean(valid)) if valid else float("nan"),
        recall=matched_total / total_gt if total_gt else float("nan"),
        num_gt=num_gt,
    )


# ---------------------------------------------------------------------------------------- pose


class PCKCurve(NamedTuple):
    """PCK at each threshold: thresholds (T,), values (T,) in [0, 1]."""

    thresholds: np.ndarray
    values: np.ndarray


def _visible(gt: np.ndarray, visible: np.ndarray | None) -> np.ndarray:
    if visible is None:
        return np.isfinite(gt).all(axis=-1)
    return np.asarray(visible, bool).reshape(gt.shape[:-1]) & np.isfinite(gt).all(axis=-1)


def keypoint_box_sizes(gt: np.ndarray, visible: np.ndarray | None = None) -> np.ndarray:
    """max(w, h) of the tight box of each hand's visible ground-truth keypoints, (N,).

    gt (N, K, 2); a hand with no visible keypoint gets NaN.
    """
    gt = np.asarray(gt, np.float64)
    vis = _visible(gt, visible)
    big = np.where(vis[..., None], gt, np.nan)
    with warnings.catch_warnings():  # all-NaN hands give NaN, without the warning
        warnings.simplefilter("ignore", RuntimeWarning)
        size = np.nanmax(big, axis=1) - np.nanmin(big, axis=1)
        return np.nanmax(size, axis=-1)


def normalized_distances(
    pred: np.ndarray,
    gt: np.ndarray,
    visible: np.ndarray | None = None,
    box_sizes: np.ndarray | None = None,
) -> np.ndarray:
    """|pred - gt| / box_size of every visible keypoint, flattened (V,)."""
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    if pred.shape != gt.shape or pred.shape[-1] != 2:
        raise ValueError(f"pred and gt must both be (N, K, 2), got {pred.shape} and {gt.shape}")
    pred, gt = pred.reshape(-1, gt.shape[-2], 2), gt.reshape(-1, gt.shape[-2], 2)
    vis = _visible(gt, visible)
    sizes = keypoint_box_sizes(gt, vis) if box_sizes is None else box_sizes
    sizes = np.asarray(sizes, np.float64).reshape(-1)
    if len(sizes) != len(gt):
        raise ValueError(f"{len(sizes)} box sizes for {len(gt)} hands")
    dist = np.linalg.norm(pred - np.where(vis[..., None], gt, 0.0), axis=-1)
    dist = np.where(np.isfinite(dist), dist, np.inf)
    norm = dist / np.maximum(sizes, 1e-6)[:, None]
    return norm[vis]


def pck(
    pred: np.ndarray,
    gt: np.ndarray,
    visible: np.ndarray | None = None,
    box_sizes: np.ndarray | None = None,
    thresholds: np.ndarray | Sequence[float] | None = None,
    threshold: float | None = None,
) -> PCKCurve | float:
    """Percentage of correct keypoints.

    Args:
        pred, gt: (N, K, 2) keypoints in pixels.
        visible: (N, K) bool, the keypoints that count (default: all finite gt).
        box_sizes: (N,) normaliser per hand (default `keypoint_box_sizes(gt, visible)`).
        thresholds: thresholds of the curve (default 0, 0.01, .., 0.5).
        threshold: when given, return only PCK at this threshold, a float.

    Returns:
        PCKCurve(thresholds, values), or a float when `threshold` is given. NaN values when no
        keypoint is visible.
    """
    d = normalized_distances(pred, gt, visible, box_sizes)
    if threshold is not None:
        return float(np.mean(d <= threshold)) if d.size else float("nan")
    t = np.asarray(PCK_THRESHOLDS if thresholds is None else thresholds, np.float64)
    values = np.mean(d[None, :] <= t[:, None], axis=1) if d.size else np.full(len(t), float("nan"))
    return PCKCurve(t, values)


def pck_at(
    pred: np.ndarray,
    gt: np.ndarray,
    visible: np.ndarray | None = None,
    box_sizes: np.ndarray | None = None,
    threshold: float = 0.2,
) -> float:
    """PCK at one threshold (0.2 of the box size by default)."""
    return float(pck(pred, gt, visible, box_sizes, threshold=threshold))


def auc(
    curve: PCKCurve | np.ndarray,
    gt: np.ndarray | None = None,
    visible: np.ndarray | None = None,
    box_sizes: np.ndarray | None = None,
    thresholds: np.ndarray | None = None,
) -> float:
    """Normalised area under a PCK curve: trapezoid area / (t_max - t_min), in [0, 1].

    Call as auc(pck_curve), or auc(pred, gt, visible, box_sizes) to compute the curve over
    the default thresholds 0..0.5 first.
    """
    if gt is not None:
        curve = pck(curve, gt, visible, box_sizes, thresholds)  # type: ignore[arg-type]
    if not isinstance(curve, PCKCurve):
        raise TypeError("auc needs a PCKCurve, or pred, gt (and visible, box_sizes)")
    t, v = np.asarray(curve.thresholds, np.float64), np.asarray(curve.values, np.float64)
    span = t[-1] - t[0]
    if len(t) < 2 or span <= 0:
        return float(v[-1]) if len(v) else float("nan")
    return float(np.sum((v[1:] + v[:-1]) / 2 * np.diff(t)) / span)


def nme(
    pred: np.ndarray,
    gt: np.ndarray,
    visible: np.ndarray | None = None,
    box_sizes: np.ndarray | None = None,
) -> float:
    """Normalised mean error: the mean over visible keypoints of |pred - gt| / the hand's size
    (max side of its ground-truth keypoint box, as PCK), NaN if none is visible."""
    d = normalized_distances(pred, gt, visible, box_sizes)
    return float(np.mean(d)) if d.size else float("nan")


def end_point_error(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray | None = None) -> float:
    """Mean Euclidean distance in pixels over the visible keypoints (NaN if none)."""
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    vis = _visible(gt, visible)
    if not vis.any():
        return float("nan")
    return float(np.linalg.norm(pred - gt, axis=-1)[vis].mean())


def bone_angle_error_deg(
    pred_dirs: np.ndarray, gt_dirs: np.ndarray, mask: np.ndarray | None = None
) -> float:
    """Mean angle in degrees between predicted and ground-truth 3D bone directions.

    pred_dirs, gt_dirs: (..., E, 3) (any lengths); bones with a zero or non-finite ground truth,
    or mask False, are left out. A zero prediction counts as 90 degrees. NaN if none counts.
    """
    p = np.asarray(pred_dirs, np.float64)
    g = np.asarray(gt_dirs, np.float64)
    if p.shape != g.shape or p.shape[-1] != 3:
        raise ValueError(f"directions must both be (..., 3), got {p.shape} and {g.shape}")
    gn = np.linalg.norm(g, axis=-1)
    pn = np.linalg.norm(p, axis=-1)
    valid = np.isfinite(gn) & (gn > 1e-9)
    if mask is not None:
        valid &= np.asarray(mask, bool).reshape(valid.shape)
    if not valid.any():
        return float("nan")
    cos = np.sum(p * g, axis=-1) / (np.maximum(pn, 1e-12) * np.where(valid, gn, 1.0))
    cos = np.where(pn > 1e-9, cos, 0.0)
    angle = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    return float(angle[valid].mean())
