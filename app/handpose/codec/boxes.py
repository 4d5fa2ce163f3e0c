"""SSD box coding (ChainerCV-style MultiboxCoder) for the hand detector, pure numpy.

Default boxes (priors), `default_boxes(config)`, as [cx, cy, w, h] in input pixels:
    for each source map k = 0..K-1 with grid G_k (28, 14, 7, 4, 2, 1 at input S = 224):
        step_k = S / G_k; for each cell, row i then column j (cell-major, row-major):
            centre (cx, cy) = ((j + 0.5) step_k, (i + 0.5) step_k)
            box 0: square of side s_k;  box 1: square of side sqrt(s_k s_{k+1})
    with s_k = int(S * 2^k * smin) (k = 0..K-1, truncated to an integer as the seed's
    `SSD.__init__` does; round_sizes=False keeps the exact product) and s_K = S. With the seed's
    smin = 0.025 the sides at 224 are 5, 11, 22, 44, 89, 179 and 224 (at 256: 6, 12, 25, 51,
    102, 204, 256), so imported seed weights see the priors they were trained with.
    N = 2 * sum_k G_k^2 (2100 at 224). This is the order of the detector's flattened outputs.
    Steps: S / G_k; the seed used ceil(S / G_k), the same for every S divisible by the grids
    (224, 256); at 224 the 4x4 map has step 56 and covers the input evenly.

Encoding (SSD), for a prior m = (m_cx, m_cy, m_w, m_h) matched to ground truth b, variance v:
    dx = (b_cx - m_cx) / (m_w v0),   dy = (b_cy - m_cy) / (m_h v0)
    dw = log(b_w / m_w) / v1,        dh = log(b_h / m_h) / v1
Matching: every ground truth first takes its best prior (greedy bipartite, highest IoU first,
as ChainerCV), then every other prior whose best IoU is >= iou_threshold takes that ground truth.
(The seed's coder then also topped up ground truths with fewer than the mean number of matched
priors using priors of IoU >= 0.1; we do not: a training-time choice that weights cannot see.)
Labels: 0 = background, 1..C = ground-truth class (0-based class index + 1).

Decoding: the detector outputs class LOGITS (N, C + 1) (background = column 0); `decode`
applies softmax (pass from_logits=False for probabilities), keeps per class the boxes with
probability >= score_threshold, runs per-class NMS and returns `Hand`s in input pixels.
Non-finite outputs (NaN, +-inf, offsets that overflow) never make a detection: a prior whose
probabilities or decoded box are not finite is dropped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from handpose.compat import zip_strict
from handpose.errors import ModelFileError
from handpose.hand import HANDEDNESS, Hand

#: largest |log size ratio| accepted when decoding (exp(8) ~ 3000x the prior)
_MAX_LOG_RATIO = 8.0

#: NMS over at most this many boxes works on their IoU matrix (`non_maximum_suppression`)
_MATRIX_NMS_MAX = 256
#: NMS over at most this many finite boxes runs greedy on Python floats
_PYTHON_NMS_MAX = 16

#: slack (logit units) of the logit pre-filter in `decode`, far above float32 rounding
_PREFILTER_SLACK = 0.01

#: the seed (ChainerCV) codes a box as (dy, dx, dh, dw): ours[..., c] = seed[..., SEED_LOC_ORDER[c]]
SEED_LOC_ORDER: tuple[int, int, int, int] = (1, 0, 3, 2)


@dataclass
class DefaultBoxConfig:
    """Default-box layout of the SSD detector (stored as metadata JSON "default_boxes").

    Attributes:
        input_size: side S of the square detector input in pixels.
        grids: grid side G_k of each source feature map, in output order.
        smin: smallest box side as a fraction of S (s_k = S 2^k smin, s_K = S).
        variance: SSD variances (centre, size).
        round_sizes: truncate s_k to an integer like the seed (True) or keep it exact.
    """

    input_size: int = 224
    grids: tuple[int, ...] = (28, 14, 7, 4, 2, 1)
    smin: float = 0.025
    variance: tuple[float, float] = (0.1, 0.2)
    round_sizes: bool = True

    def __post_init__(self) -> None:
        self.input_size = int(self.input_size)
        self.grids = tuple(int(g) for g in self.grids)
        self.smin = float(self.smin)
        self.variance = (float(self.variance[0]), float(self.variance[1]))
        self.round_sizes = bool(self.round_sizes)
        if self.input_size <= 0 or not self.grids or min(self.grids) <= 0:
            raise ValueError(f"bad default box config {self}")

    boxes_per_cell = 2

    @property
    def steps(self) -> tuple[float, ...]:
        """Cell size S / G_k of each map in input pixels."""
        return tuple(self.input_size / g for g in self.grids)

    @property
    def sizes(self) -> tuple[float, ...]:
        """s_0..s_K: s_k = S 2^k smin (int() when round_sizes) for k < K, s_K = S."""
        s = [self.input_size * 2.0**k * self.smin for k in range(len(self.grids))]
        if self.round_sizes:
            s = [float(int(v)) for v in s]
        return tuple(s + [float(self.input_size)])

    @property
    def num_boxes(self) -> int:
        """N = 2 sum_k G_k^2."""
        return self.boxes_per_cell * sum(g * g for g in self.grids)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (lists, not tuples)."""
        data = asdict(self)
        data["grids"] = list(self.grids)
        data["variance"] = list(self.variance)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> DefaultBoxConfig:
        """Inverse of `to_dict` (the metadata's "default_boxes"); missing keys take the defaults.

        Raises ModelFileError for unknown keys or bad values (the metadata was not written by
        this version of `handpose convert`).
        """
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ModelFileError(
                f"metadata default_boxes has unknown keys {sorted(unknown)} (expected some of "
                f"{sorted(known)}); re-create the metadata with `handpose convert`"
            )
        try:
            return cls(**data)
        except (TypeError, ValueError, IndexError) as error:
            raise ModelFileError(
                f"metadata default_boxes {data} is invalid ({error}); re-create the metadata "
                "with `handpose convert`"
            ) from error


def default_boxes(config: DefaultBoxConfig | None = None) -> np.ndarray:
    """Priors float32 (N, 4) as [cx, cy, w, h] in input pixels (order: see module docstring)."""
    config = config or DefaultBoxConfig()
    sizes = config.sizes
    out = []
    for k, (grid, step) in enumerate(zip_strict(config.grids, config.steps)):
        i, j = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
        centres = np.stack([(j.ravel() + 0.5) * step, (i.ravel() + 0.5) * step], axis=1)
        sides = np.array([sizes[k], np.sqrt(sizes[k] * sizes[k + 1])])
        boxes = np.empty((grid * grid, 2, 4))
        boxes[:, :, :2] = centres[:, None, :]
        boxes[:, :, 2] = sides[None, :]
        boxes[:, :, 3] = sides[None, :]
        out.append(boxes.reshape(-1, 4))
    return np.concatenate(out).astype(np.float32)


# ------------------------------------------------------------------------------ box utilities


def xyxy_to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    """(..., 4) [x0, y0, x1, y1] -> [cx, cy, w, h]."""
    b = np.asarray(boxes, np.float64)
    return np.concatenate([(b[..., :2] + b[..., 2:]) / 2, b[..., 2:] - b[..., :2]], axis=-1)


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """(..., 4) [cx, cy, w, h] -> [x0, y0, x1, y1]."""
    b = np.asarray(boxes, np.float64)
    return np.concatenate([b[..., :2] - b[..., 2:] / 2, b[..., :2] + b[..., 2:] / 2], axis=-1)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU (N, M) float64 of boxes a (N, 4) and b (M, 4), both [x0, y0, x1, y1].

    IoU = area(a ∩ b) / (area(a) + area(b) - area(a ∩ b)); 0 where the union is empty.
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0.0, None), axis=-1)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0.0, None), axis=-1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0.0, None), axis=-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boxes [x0, y0, x1, y1]: `box_iou` of one pair, the same float64 operations in
    the same order on Python floats (the trackers call it per pair and frame; numpy's per-call
    overhead made it 10x slower). Non-finite boxes go through `box_iou`."""
    first = np.asarray(a, np.float64).reshape(-1).tolist()
    second = np.asarray(b, np.float64).reshape(-1).tolist()
    if len(first) != 4 or len(second) != 4 or not math.isfinite(sum(first) + sum(second)):
        return float(box_iou(a, b)[0, 0])
    return _iou_floats(first, second)


def _iou_floats(first: Sequence[float], second: Sequence[float]) -> float:
    """`box_iou` of two finite boxes given as 4 Python floats, its operations in its order."""
    ax0, ay0, ax1, ay1 = first
    bx0, by0, bx1, by1 = second
    inter = max(min(ax1, bx1) - max(ax0, bx0), 0.0) * max(min(ay1, by1) - max(ay0, by0), 0.0)
    union = max(ax1 - ax0, 0.0) * max(ay1 - ay0, 0.0) + max(bx1 - bx0, 0.0) * max(by1 - by0, 0.0)
    union -= inter
    return inter / union if union > 0 else 0.0


def non_maximum_suppression(
    boxes: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float,
    limit: int | None = None,
) -> np.ndarray:
    """Greedy NMS: indices (int64, best score first) of the kept boxes.

    Walk the boxes by decreasing score; keep a box unless its IoU with an already kept box is
    > iou_threshold. Ties in score keep the lower index first. Stops after `limit` boxes.

    Up to `_PYTHON_NMS_MAX` finite boxes (a detector's candidates after the score threshold,
    1 to 8 on the sample clip) it is that walk on Python floats (`_iou_floats`, the arithmetic
    of `box_iou`). Up to `_MATRIX_NMS_MAX` boxes it works on the IoU matrix of the sorted
    boxes: over[i, j] = IoU > threshold for i before j, and keep[j] = no kept i with over[i, j],
    iterated from keep = all until it does not change (position j is settled once every
    position before it is, so it ends with greedy's answer after at most n rounds, in practice
    2 or 3). More boxes: greedy, one IoU row per kept box.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    if len(boxes) != len(scores):
        raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores")
    order = np.argsort(-scores, kind="stable")
    count = len(order) if limit is None else max(int(limit), 0)
    if len(order) <= _PYTHON_NMS_MAX and np.isfinite(boxes).all():
        # a detector's few candidates: greedy on Python floats (`_iou_floats`, box_iou's
        # arithmetic), 4x faster than the numpy matrix for so few boxes; the same boxes kept
        ordered = boxes[order].tolist()
        kept: list[int] = []
        for i, box in enumerate(ordered):
            if len(kept) >= count:
                break
            if all(_iou_floats(ordered[k], box) <= iou_threshold for k in kept):
                kept.append(i)
        return order[kept].astype(np.int64)
    if len(order) <= _MATRIX_NMS_MAX:
        ordered = boxes[order]
        over = np.triu(~(box_iou(ordered, ordered) <= iou_threshold), 1)  # NaN IoU suppresses
        keep = np.ones(len(order), bool)
        for _ in range(len(order)):
            settled = ~(over & keep[:, None]).any(axis=0)
            if np.array_equal(settled, keep):
                break
            keep = settled
        return order[keep][:count].astype(np.int64)
    kept: list[int] = []
    while order.size and len(kept) < count:
        best = int(order[0])
        kept.append(best)
        iou = box_iou(boxes[best : best + 1], boxes[order[1:]])[0]
        order = order[1:][iou <= iou_threshold]
    return np.asarray(kept, np.int64)


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along `axis` (float32 out for float32 in)."""
    x = np.asarray(logits)
    x = x.astype(np.float32) if not np.issubdtype(x.dtype, np.floating) else x
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# ------------------------------------------------------------------------------------ encoding


def encode(
    default_boxes: np.ndarray,
    gt_boxes: np.ndarray,
    gt_labels: np.ndarray,
    iou_threshold: float = 0.5,
    variance: Sequence[float] = (0.1, 0.2),
    num_classes: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """SSD training targets for one image.

    Args:
        default_boxes: float (N, 4) priors [cx, cy, w, h] in input pixels.
        gt_boxes: (M, 4) [x0, y0, x1, y1] in input pixels (M may be 0).
        gt_labels: (M,) int class index in 0..C-1.
        iou_threshold: a prior whose best IoU reaches it is positive.
        variance: (v0, v1), see the module docstring.
        num_classes: C; when given, labels outside 0..C-1 raise ValueError.

    Returns:
        loc float32 (N, 4) offsets (dx, dy, dw, dh) (zeros for background priors), and
        labels int32 (N,) with 0 = background, 1..C = gt_label + 1.
    """
    priors = np.asarray(default_boxes, np.float64).reshape(-1, 4)
    n = len(priors)
    gt_boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    gt_labels = np.asarray(gt_labels).reshape(-1).astype(np.int64)
    if len(gt_boxes) != len(gt_labels):
        raise ValueError(f"{len(gt_boxes)} boxes but {len(gt_labels)} labels")
    if gt_labels.size and gt_labels.min() < 0:
        raise ValueError(f"gt_labels must be class indices 0..C-1, got {gt_labels.tolist()}")
    if num_classes is not None and gt_labels.size and gt_labels.max() >= num_classes:
        raise ValueError(
            f"gt_labels must be class indices 0..{num_classes - 1}, got {gt_labels.tolist()}"
        )
    loc = np.zeros((n, 4), np.float32)
    labels = np.zeros(n, np.int32)
    if len(gt_boxes) == 0:
        return loc, labels

    iou = box_iou(cxcywh_to_xyxy(priors), gt_boxes)  # (N, M)
    index = iou.argmax(axis=1)
    matched = iou[np.arange(n), index] >= iou_threshold
    # best prior per ground truth, greedy on the IoU matrix (highest pair first)
    work = iou.copy()
    for _ in range(len(gt_boxes)):
        p, g = np.unravel_index(int(work.argmax()), work.shape)
        if work[p, g] <= 0:
            break
        index[p], matched[p] = g, True
        work[p, :] = -1.0
        work[:, g] = -1.0

    gt = xyxy_to_cxcywh(gt_boxes[index[matched]])
    m = priors[matched]
    v0, v1 = float(variance[0]), float(variance[1])
    wh = np.maximum(gt[:, 2:], 1e-6)
    loc[matched, :2] = (gt[:, :2] - m[:, :2]) / (m[:, 2:] * v0)
    loc[matched, 2:] = np.log(wh / m[:, 2:]) / v1
    labels[matched] = gt_labels[index[matched]] + 1
    return loc, labels


def decode_boxes(
    loc: np.ndarray, default_boxes: np.ndarray, variance: Sequence[float] = (0.1, 0.2)
) -> np.ndarray:
    """Inverse of the box part of `encode`: offsets (N, 4) -> boxes (N, 4) [x0, y0, x1, y1].

    cx = m_cx + dx v0 m_w, w = m_w exp(dw v1) (log ratio clipped to +-8), same for y / h.
    """
    loc = np.asarray(loc, np.float64).reshape(-1, 4)
    m = np.asarray(default_boxes, np.float64).reshape(-1, 4)
    if len(loc) != len(m):
        raise ValueError(f"{len(loc)} box offsets but {len(m)} default boxes")
    v0, v1 = float(variance[0]), float(variance[1])
    with np.errstate(over="ignore", invalid="ignore"):  # non-finite offsets: non-finite boxes
        centre = m[:, :2] + loc[:, :2] * v0 * m[:, 2:]
        size = m[:, 2:] * np.exp(np.clip(loc[:, 2:] * v1, -_MAX_LOG_RATIO, _MAX_LOG_RATIO))
        return np.concatenate([centre - size / 2, centre + size / 2], axis=1)


def _logit_prefilter(logits: np.ndarray, score_threshold: float) -> np.ndarray | None:
    """Rows of logits (N, C + 1) (background column 0) that can reach `score_threshold`, found
    without a softmax; None when every row can (threshold outside (0, 1)).

    A box passes `decode` when sum_c p_c >= t (merge_sides) or some p_c >= t, and either needs
    C exp(max_c l_c - l_bg) >= sum_c exp(l_c - l_bg) >= t / (1 - t), i.e.
        max_c (l_c - l_bg) >= log(t / (1 - t)) - log(C).
    Rows that meet it (less `_PREFILTER_SLACK`; NaN rows never do) go on to the exact test, so
    the result is the same as thresholding the softmax of every row. One column at a time:
    numpy reduces (N, 3) along its short axis 30x slower.
    """
    t = float(score_threshold)
    if not 0.0 < t < 1.0:
        return None
    x = logits if np.issubdtype(logits.dtype, np.floating) else logits.astype(np.float32)
    best = x[:, 1]
    for c in range(2, x.shape[1]):  # over the classes, not the boxes
        best = np.maximum(best, x[:, c])
    bound = np.log(t / (1.0 - t)) - np.log(x.shape[1] - 1) - _PREFILTER_SLACK
    with np.errstate(invalid="ignore"):  # inf - inf: NaN, dropped
        return np.flatnonzero(best - x[:, 0] >= bound)


def _handedness(name: str) -> str:
    return name if name in HANDEDNESS else "hand"


def decode(
    loc: np.ndarray,
    scores: np.ndarray,
    default_boxes: np.ndarray,
    classes: Sequence[str] = ("left", "right"),
    score_threshold: float = 0.6,
    nms_threshold: float = 0.45,
    max_detections: int = 20,
    variance: Sequence[float] = (0.1, 0.2),
    from_logits: bool = True,
    valid_region: Sequence[float] | None = None,
    merge_sides: bool = True,
) -> list[Hand]:
    """Detections of one image as `Hand`s (box in input pixels), best score first.

    Two ways to read the class scores p (N, C + 1):
    - merge_sides=True (the product's default): a box is a hand with probability
      1 - p_background = sum_c p_c; that is its score, its class is argmax_c p_c, and NMS runs
      over all classes at once, so one hand gives one box even when the network hesitates
      between left and right (p_left = p_right = 0.45 is a sure hand of unsure side).
    - merge_sides=False (the seed's decoding): every class is thresholded and suppressed on its
      own; a hand of unsure side may come out twice, or not at all.

    Args:
        loc: (N, 4) predicted offsets (the network's "locations").
        scores: (N, C + 1) class logits (background column 0), as the network outputs them;
            with from_logits=False, probabilities.
        default_boxes: (N, 4) priors from `default_boxes`.
        classes: the C class names without background, e.g. ("left", "right") or ("hand",);
            empty means one class "hand". A name other than left/right/hand gives handedness
            "hand" (the name stays in `hand.extras["class_name"]`).
        score_threshold: minimum class probability of a kept box.
        nms_threshold: per-class NMS IoU threshold.
        max_detections: most detections returned (over all classes).
        valid_region: optional [x0, y0, x1, y1] in input px (the image inside letterbox
            padding); boxes whose centre lies outside it are dropped before NMS and top-k.
        merge_sides: see above.

    Returns:
        list of Hand(handedness, score, box [x0, y0, x1, y1] in input px, not clipped), extras
        {"label": class index 0..C-1, "class_name": name, "class_probability": p_label}.
    """
    scores = np.asarray(scores)
    names = tuple(classes) or ("hand",)
    if scores.ndim != 2 or scores.shape[1] != len(names) + 1:
        raise ValueError(
            f"scores must have shape (N, {len(names) + 1}) for classes {names} plus background, "
            f"got {scores.shape}"
        )
    loc = np.asarray(loc).reshape(-1, 4)
    priors = np.asarray(default_boxes).reshape(-1, 4)
    if not len(loc) == len(priors) == len(scores):
        raise ValueError(
            f"{len(loc)} box offsets, {len(scores)} score rows but {len(priors)} default boxes"
        )
    rows = _logit_prefilter(scores, score_threshold) if from_logits else None
    if rows is not None:  # only the rows that can pass get a softmax and a box
        scores, loc, priors = scores[rows], loc[rows], priors[rows]
    with np.errstate(over="ignore", invalid="ignore"):  # NaN probabilities never pass below
        probs = softmax(scores, axis=1) if from_logits else scores.astype(np.float32)
    foreground = probs[:, 1:]
    if merge_sides:
        candidates = np.flatnonzero(foreground.sum(axis=1) >= score_threshold)
    else:
        candidates = np.flatnonzero((foreground >= score_threshold).any(axis=1))
    boxes = decode_boxes(loc[candidates], priors[candidates], variance)  # only what can pass
    finite = np.isfinite(boxes).all(axis=1) & np.isfinite(probs[candidates]).all(axis=1)
    candidates, boxes = candidates[finite], boxes[finite]
    if valid_region is not None and len(boxes):
        x0, y0, x1, y1 = (float(v) for v in valid_region)
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
        inside = (cx >= x0) & (cx <= x1) & (cy >= y0) & (cy <= y1)
        candidates, boxes = candidates[inside], boxes[inside]
    found: list[tuple[float, int, np.ndarray]] = []
    if merge_sides:
        fg = foreground[candidates]
        total, label = np.minimum(fg.sum(axis=1), 1.0), fg.argmax(axis=1)
        picked = non_maximum_suppression(boxes, total, nms_threshold, max_detections)
        found = [(float(total[i]), int(label[i]), boxes[i]) for i in picked]
        side = {id(item[2]): float(fg[i, label[i]]) for i, item in zip_strict(picked, found)}
    for c in range(len(names) if not merge_sides else 0):
        p = probs[candidates, c + 1]
        keep = np.flatnonzero(p >= score_threshold)
        if keep.size == 0:
            continue
        picked = non_maximum_suppression(boxes[keep], p[keep], nms_threshold, max_detections)
        found += [(float(p[keep[i]]), c, boxes[keep[i]]) for i in picked]
    found.sort(key=lambda item: -item[0])
    return [
        Hand(
            handedness=_handedness(names[c]),
            score=score,
            box=box,
            extras={
                "label": c,
                "class_name": names[c],
                "class_probability": side[id(box)] if merge_sides else score,
            },
        )
        for score, c, box in found[: max(0, int(max_detections))]
    ]
