"""MediaPipe palm detection decoding (pure numpy): SSD anchors, boxes + 7 palm keypoints, NMS.

The palm detector (`palm_detection_{lite,full}.tflite`) sees the frame letterboxed into a
192 x 192 input and outputs, for each of N = 2016 anchors, 18 regressors and 1 score logit.
Everything here works in *normalized input coordinates*: (x, y) in [0, 1] of the model input,
x right, y down (multiply by the input size for input pixels).

Anchors, `ssd_anchors(options)` (MediaPipe's SsdAnchorsCalculator), as (N, 4) [cx, cy, w, h]:
    layers l = 0..L-1 with strides s_l; consecutive layers with the same stride share one grid
    of side ceil(S / s_l); per cell, for each layer of the group, one anchor per aspect ratio at
    scale_l = min_scale + (max_scale - min_scale) l / (L - 1), plus one at
    sqrt(scale_l scale_{l+1}) (scale_L = 1) when interpolated_scale_aspect_ratio > 0.
    Centre (cx, cy) = ((j + offset_x) / G, (i + offset_y) / G), cell-major, row-major.
    fixed_anchor_size: every w = h = 1 (the palm models use it: the regressors carry the size).
    Palm options (`PALM_ANCHORS`): L = 4, strides (8, 16, 16, 16), S = 192 ->
    24 x 24 x 2 + 12 x 12 x 6 = 2016 anchors.

Decoding, `decode_palms` (TensorsToDetectionsCalculator, reverse_output_order, scales 192):
    cx = r0 / 192 * a_w + a_cx,  cy = r1 / 192 * a_h + a_cy,  w = r2 / 192 * a_w,
    h = r3 / 192 * a_h,  keypoint k: (r[4 + 2k] / 192 * a_w + a_cx, r[5 + 2k] / 192 * a_h + a_cy)
    score = sigmoid(clip(logit, -100, 100)); boxes with score >= min_score are kept.
The 7 palm keypoints are: 0 wrist centre, 1 index MCP, 2 middle MCP, 3 ring MCP, 4 little MCP,
5 thumb CMC, 6 thumb MCP (MediaPipe's palm model card).

Weighted NMS, `weighted_nms` (NonMaxSuppressionCalculator, algorithm WEIGHTED): walk by
decreasing score; the best remaining box b takes every remaining box c with IoU(b, c) > t
(b itself included); its box corners and keypoints become the score-weighted mean of that
group, sum_c s_c p_c / sum_c s_c; its score stays s_b.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, NamedTuple

import numpy as np

from handpose.codec.boxes import box_iou

#: names of the 7 palm keypoints, in the model's order
PALM_KEYPOINTS: tuple[str, ...] = (
    "wrist",
    "index_mcp",
    "middle_mcp",
    "ring_mcp",
    "little_mcp",
    "thumb_cmc",
    "thumb_mcp",
)


@dataclass
class AnchorOptions:
    """MediaPipe `SsdAnchorsCalculatorOptions` (the fields the palm models use).

    Attributes:
        input_size: side S of the square model input in pixels.
        num_layers: L, number of anchor layers (one per entry of `strides`).
        min_scale, max_scale: anchor scales of the first and the last layer.
        strides: stride of each layer in input pixels (consecutive equal strides share a grid).
        aspect_ratios: aspect ratios of each layer's anchors.
        interpolated_scale_aspect_ratio: aspect ratio of the extra anchor at the geometric mean
            of a layer's scale and the next one (<= 0: no extra anchor).
        anchor_offset_x, anchor_offset_y: anchor centre inside its cell (0.5 = the middle).
        fixed_anchor_size: all anchors get w = h = 1 (the regressors carry the size).
        reduce_boxes_in_lowest_layer: SSD's 3 smaller boxes in layer 0 (not used by palms).
    """

    input_size: int = 192
    num_layers: int = 4
    min_scale: float = 0.1484375
    max_scale: float = 0.75
    strides: tuple[int, ...] = (8, 16, 16, 16)
    aspect_ratios: tuple[float, ...] = (1.0,)
    interpolated_scale_aspect_ratio: float = 1.0
    anchor_offset_x: float = 0.5
    anchor_offset_y: float = 0.5
    fixed_anchor_size: bool = True
    reduce_boxes_in_lowest_layer: bool = False

    def __post_init__(self) -> None:
        self.input_size = int(self.input_size)
        self.num_layers = int(self.num_layers)
        self.strides = tuple(int(s) for s in self.strides)
        self.aspect_ratios = tuple(float(a) for a in self.aspect_ratios)
        if self.num_layers != len(self.strides) or self.num_layers < 1:
            raise ValueError(
                f"anchor options: num_layers {self.num_layers} != len(strides) {self.strides}"
            )
        if self.input_size <= 0 or min(self.strides) <= 0 or not self.aspect_ratios:
            raise ValueError(f"bad anchor options {self}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["strides"], data["aspect_ratios"] = list(self.strides), list(self.aspect_ratios)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnchorOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown anchor options {unknown}")
        return cls(**data)


#: the anchors of MediaPipe's palm_detection_{lite,full} (palm_detection_cpu.pbtxt)
PALM_ANCHORS = AnchorOptions()


def _layer_scale(options: AnchorOptions, layer: int) -> float:
    if options.num_layers == 1:
        return (options.min_scale + options.max_scale) / 2.0
    return options.min_scale + (options.max_scale - options.min_scale) * layer / (
        options.num_layers - 1.0
    )


def ssd_anchors(options: AnchorOptions = PALM_ANCHORS) -> np.ndarray:
    """Anchors float32 (N, 4) [cx, cy, w, h] in normalized input coordinates.

    The order is the order of the model's flattened outputs (see module docstring).
    """
    out: list[np.ndarray] = []
    layer = 0
    while layer < options.num_layers:
        ratios: list[float] = []
        scales: list[float] = []
        last = layer
        while last < options.num_layers and options.strides[last] == options.strides[layer]:
            scale = _layer_scale(options, last)
            if last == 0 and options.reduce_boxes_in_lowest_layer:
                ratios += [1.0, 2.0, 0.5]
                scales += [0.1, scale, scale]
            else:
                for ratio in options.aspect_ratios:
                    ratios.append(ratio)
                    scales.append(scale)
                if options.interpolated_scale_aspect_ratio > 0.0:
                    following = (
                        1.0 if last == options.num_layers - 1 else _layer_scale(options, last + 1)
                    )
                    scales.append(math.sqrt(scale * following))
                    ratios.append(options.interpolated_scale_aspect_ratio)
            last += 1
        root = np.sqrt(np.asarray(ratios))
        widths = np.asarray(scales) * root
        heights = np.asarray(scales) / root
        grid = math.ceil(options.input_size / options.strides[layer])
        rows, cols = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
        cx = (cols.reshape(-1, 1) + options.anchor_offset_x) / grid
        cy = (rows.reshape(-1, 1) + options.anchor_offset_y) / grid
        count = len(ratios)
        cx, cy = np.repeat(cx, count, axis=1), np.repeat(cy, count, axis=1)
        if options.fixed_anchor_size:
            w, h = np.ones_like(cx), np.ones_like(cy)
        else:
            w = np.broadcast_to(widths, cx.shape)
            h = np.broadcast_to(heights, cy.shape)
        out.append(np.stack([cx, cy, w, h], axis=-1).reshape(-1, 4))
        layer = last
    return np.concatenate(out).astype(np.float32)


@dataclass
class PalmDecodeOptions:
    """MediaPipe `TensorsToDetectionsCalculatorOptions` of the palm models.

    Attributes:
        num_keypoints: keypoints per box (7 palm keypoints).
        scale: x_scale = y_scale = w_scale = h_scale, the regressors' unit (the input side).
        score_clipping: logits are clipped to [-score_clipping, score_clipping] first.
        min_score: boxes scoring below this (after the sigmoid) are dropped.
        nms_threshold: IoU above which weighted NMS merges two boxes.
    """

    num_keypoints: int = 7
    scale: float = 192.0
    score_clipping: float = 100.0
    min_score: float = 0.5
    nms_threshold: float = 0.3

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PalmDecodeOptions:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class Palms(NamedTuple):
    """Decoded palms, best first.

    Attributes:
        boxes: float32 (M, 4) [x0, y0, x1, y1] normalized input coordinates.
        keypoints: float32 (M, K, 2) (x, y) normalized input coordinates.
        scores: float32 (M,) in [0, 1].
    """

    boxes: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray


def sigmoid(logits: np.ndarray, clip: float | None = None) -> np.ndarray:
    """1 / (1 + exp(-x)), after clipping x to [-clip, clip] when `clip` is given."""
    x = np.asarray(logits, np.float64)
    if clip is not None:
        x = np.clip(x, -clip, clip)
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


def decode_palms(
    raw_boxes: np.ndarray,
    raw_scores: np.ndarray,
    anchors: np.ndarray,
    options: PalmDecodeOptions | None = None,
    min_score: float | None = None,
) -> Palms:
    """Boxes, keypoints and scores of the anchors scoring >= min_score (not yet suppressed).

    Args:
        raw_boxes: (N, 4 + 2K) regressors [dx, dy, w, h, kx_0, ky_0, ...] (batch axis dropped).
        raw_scores: (N,) or (N, 1) logits.
        anchors: (N, 4) [cx, cy, w, h] from `ssd_anchors`.
        options: decode options (default: the palm models').
        min_score: overrides `options.min_score`.
    Returns:
        `Palms` in normalized input coordinates, by decreasing score; boxes of zero or negative
        size are dropped.
    """
    options = options or PalmDecodeOptions()
    raw = np.asarray(raw_boxes, np.float64)
    anchors = np.asarray(anchors, np.float64)
    count = options.num_keypoints
    if raw.ndim != 2 or raw.shape[1] < 4 + 2 * count or raw.shape[0] != anchors.shape[0]:
        raise ValueError(
            f"raw boxes {raw.shape} do not fit {anchors.shape[0]} anchors x (4 + 2 x {count})"
        )
    scores = sigmoid(np.asarray(raw_scores).reshape(-1), options.score_clipping)
    threshold = options.min_score if min_score is None else float(min_score)
    keep = np.flatnonzero(scores >= threshold)
    raw, a, scores = raw[keep], anchors[keep], scores[keep]
    unit = float(options.scale)
    cx = raw[:, 0] / unit * a[:, 2] + a[:, 0]
    cy = raw[:, 1] / unit * a[:, 3] + a[:, 1]
    w = raw[:, 2] / unit * a[:, 2]
    h = raw[:, 3] / unit * a[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    points = raw[:, 4 : 4 + 2 * count].reshape(-1, count, 2)
    points = points / unit * a[:, None, 2:4] + a[:, None, 0:2]
    valid = (w > 0) & (h > 0)
    boxes, points, scores = boxes[valid], points[valid], scores[valid]
    order = np.argsort(-scores, kind="stable")
    return Palms(
        boxes[order].astype(np.float32),
        points[order].astype(np.float32),
        scores[order].astype(np.float32),
    )


def weighted_nms(palms: Palms, iou_threshold: float, limit: int | None = None) -> Palms:
    """MediaPipe's weighted non-maximum suppression (see module docstring), best first.

    Args:
        palms: candidates (any order).
        iou_threshold: boxes overlapping the group's best by IoU > this are merged into it.
        limit: stop after this many output boxes.
    """
    boxes = np.asarray(palms.boxes, np.float64).reshape(-1, 4)
    points = np.asarray(palms.keypoints, np.float64)
    if points.ndim != 3 or points.shape[0] != len(boxes):
        raise ValueError(f"keypoints must be (M, K, 2) for {len(boxes)} boxes, got {points.shape}")
    scores = np.asarray(palms.scores, np.float64).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    out_boxes, out_points, out_scores = [], [], []
    while order.size and (limit is None or len(out_scores) < limit):
        best = int(order[0])
        iou = box_iou(boxes[best : best + 1], boxes[order])[0]
        group = order[iou > iou_threshold]
        if group.size == 0:  # a degenerate (empty) best box overlaps nothing, not even itself
            group = order[:1]
        weights = scores[group]
        total = float(weights.sum())
        if total > 0:
            out_boxes.append((boxes[group] * weights[:, None]).sum(axis=0) / total)
            out_points.append((points[group] * weights[:, None, None]).sum(axis=0) / total)
        else:
            out_boxes.append(boxes[best])
            out_points.append(points[best])
        out_scores.append(scores[best])
        order = order[~np.isin(order, group)]
    k = points.shape[1]
    return Palms(
        np.asarray(out_boxes, np.float32).reshape(-1, 4),
        np.asarray(out_points, np.float32).reshape(-1, k, 2),
        np.asarray(out_scores, np.float32).reshape(-1),
    )


def encode_palm(
    box: Sequence[float],
    keypoints: np.ndarray,
    anchor: Sequence[float],
    options: PalmDecodeOptions | None = None,
) -> np.ndarray:
    """The regressors (4 + 2K,) that `decode_palms` turns into `box` / `keypoints` at `anchor`.

    The inverse of the decoding formulas (for tests and for synthetic model outputs).
    """
    options = options or PalmDecodeOptions()
    unit = float(options.scale)
    x0, y0, x1, y1 = (float(v) for v in box)
    acx, acy, aw, ah = (float(v) for v in anchor)
    head = [
        ((x0 + x1) / 2 - acx) / aw * unit,
        ((y0 + y1) / 2 - acy) / ah * unit,
        (x1 - x0) / aw * unit,
        (y1 - y0) / ah * unit,
    ]
    kp = np.asarray(keypoints, np.float64).reshape(-1, 2)
    tail = np.stack([(kp[:, 0] - acx) / aw * unit, (kp[:, 1] - acy) / ah * unit], axis=1)
    return np.concatenate([head, tail.reshape(-1)]).astype(np.float32)
