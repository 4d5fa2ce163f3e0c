"""Pose Proposal Network (Sekii 2018) grid coding for the pose network, pure numpy.

The crop (input H x W, 224 x 224) is divided into a grid of Gh x Gw cells (7 x 7; stride
sx = W / Gw, sy = H / Gh = 32). Keypoint k at (x, y) crop px lies in cell (row i, col j) with
    j = min(floor(x / sx), Gw - 1),  i = min(floor(y / sy), Gh - 1),
    offset (ox, oy) = (x / sx - j, y / sy - i) in [0, 1]   (a point on the far border gets 1.0).

Network outputs (channels-last; the pose network outputs ACTIVATED values, which `decode` takes):
    pose (Gh, Gw, 6K), after sigmoid. Keypoint-major: channels 6k .. 6k+5 of keypoint k are
        6k + 0  resp   responsibility: 1 in the cell holding keypoint k
        6k + 1  conf   confidence: IoU of the predicted and the target part box
        6k + 2  x      offset ox inside the cell (0..1)
        6k + 3  y      offset oy inside the cell (0..1)
        6k + 4  w      part box width / W
        6k + 5  h      part box height / H
        i.e. pose.reshape(Gh, Gw, K, 6)[..., c] is channel c above.
    vect (Gh, Gw, 3E), after tanh. Bone-major: channels 3e .. 3e+2 are the (x, y, z) direction
        of bone e = EDGES[e] (parent -> child, camera frame), read at the cell of its PARENT joint;
        vect.reshape(Gh, Gw, E, 3).
The seed's Chainer heads (chainer-hand-pose `PoseProposalNet`) are field-major, pose channels
[resp x K, conf x K, x x K, y x K, w x K, h x K], and its bone vectors are (z, y, x); an importer
reorders the output channels of `lastconv` / `vectconv` with `pose_channels_from_seed` and
`vect_channels_from_seed`.

Targets (`encode_targets`), per keypoint k known (visible and inside the crop):
    resp = 1 at its cell; xy = (ox, oy); wh = size_factor * diag / (W, H), where diag is the
    diagonal of the tight box of the known keypoints (the same part size for every keypoint);
    vect = unit 3D bone direction at the parent's cell (vect_mask = 1) when the parent is known.
    The confidence target is computed from the predictions in the loss:
        conf_t = IoU(box_p, box_t),  box = ((j + ox) / Gw, (i + oy) / Gh, w, h)  as (cx, cy, w, h)
    in units of the input side (`confidence_target` is the numpy version of that formula).

Decoding (`decode`): score(cell, k) = resp * conf. The wrist and the finger bases (the root and
its children in EDGES) take the argmax over all cells; every other keypoint, walking each finger
from base to tip, takes the argmax within +-window cells (+-tip_window for tips) of its parent's
cell. Position = (cell + offset) * stride; the keypoint score is resp * conf at that cell.
Outputs outside their activation's range (a foreign model, a bad quantization) are clipped to it
first, pose to [0, 1] and vect to [-1, 1], NaN read as 0: keypoints always lie inside the crop,
scores in [0, 1] and directions are unit (or zero).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from handpose.errors import ModelFileError
from handpose.skeleton import EDGES, NUM_KEYPOINTS

#: channel names of one keypoint in the pose head, in order (pose.reshape(Gh, Gw, K, 6))
POSE_FIELDS: tuple[str, ...] = ("resp", "conf", "x", "y", "w", "h")


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    if np.isscalar(value):
        return int(value), int(value)  # type: ignore[arg-type]
    a, b = value  # type: ignore[misc]
    return int(a), int(b)


@dataclass
class PPNConfig:
    """Grid and skeleton of the Pose Proposal Network.

    Attributes:
        input_size: crop side S (or (height, width)) in pixels.
        grid: grid side G (or (Gh, Gw)); None = ceil(S / 32), the MobileNetV2 stride-32 map.
        K: number of keypoints.
        edges: (parent, child) bones, parents listed before their children.
        size_factor: part box side = size_factor * diagonal of the keypoint box.
        window: decode search half-width (cells) around the parent for inner joints (None: 64
            px of the crop, 2 cells of the 7x7 grid at 224, 4 of a 14x14).
        tip_window: the same for tips (keypoints without children; None: 32 px).
    """

    input_size: int | tuple[int, int] = 224
    grid: int | tuple[int, int] | None = None
    K: int = NUM_KEYPOINTS
    edges: tuple[tuple[int, int], ...] = field(default=EDGES)
    size_factor: float = 0.2
    window: int | None = None
    tip_window: int | None = None

    def __post_init__(self) -> None:
        if not np.isscalar(self.input_size):
            self.input_size = _pair(self.input_size)
            if self.input_size[0] == self.input_size[1]:
                self.input_size = self.input_size[0]  # one canonical form per config
        else:
            self.input_size = int(self.input_size)  # type: ignore[arg-type]
        if self.grid is None:
            h, w = self.input_hw
            self.grid = (math.ceil(h / 32), math.ceil(w / 32))
            if self.grid[0] == self.grid[1]:
                self.grid = self.grid[0]
        elif not np.isscalar(self.grid):
            self.grid = _pair(self.grid)
            if self.grid[0] == self.grid[1]:
                self.grid = self.grid[0]
        else:
            self.grid = int(self.grid)
        cell = min(self.stride_xy)
        if self.window is None:
            self.window = max(1, round(64 / cell))
        if self.tip_window is None:
            self.tip_window = max(1, round(32 / cell))
        self.window, self.tip_window = int(self.window), int(self.tip_window)
        self.edges = tuple((int(p), int(c)) for p, c in self.edges)
        seen = {c for _, c in self.edges}
        roots = [k for k in range(self.K) if k not in seen]
        if len(roots) != 1 or len(self.edges) != self.K - 1:
            raise ValueError(f"edges must form a tree over {self.K} keypoints, got {self.edges}")
        done = set(roots)
        for p, c in self.edges:
            if p not in done:
                raise ValueError(f"edge ({p}, {c}) comes before an edge into its parent {p}")
            done.add(c)

    @property
    def input_hw(self) -> tuple[int, int]:
        """(H, W) of the input crop."""
        return _pair(self.input_size)  # type: ignore[arg-type]

    @property
    def grid_hw(self) -> tuple[int, int]:
        """(Gh, Gw)."""
        return _pair(self.grid)  # type: ignore[arg-type]

    @property
    def stride_xy(self) -> tuple[float, float]:
        """(sx, sy) = (W / Gw, H / Gh) cell size in pixels."""
        (h, w), (gh, gw) = self.input_hw, self.grid_hw
        return w / gw, h / gh

    @property
    def num_bones(self) -> int:
        """Number of bones."""
        return len(self.edges)

    @property
    def parents(self) -> tuple[int, ...]:
        """Parent of each keypoint (-1 for the root)."""
        parents = [-1] * self.K
        for p, c in self.edges:
            parents[c] = p
        return tuple(parents)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "input_size": list(self.input_hw),
            "grid": list(self.grid_hw),
            "K": self.K,
            "edges": [list(e) for e in self.edges],
            "size_factor": self.size_factor,
            "window": self.window,
            "tip_window": self.tip_window,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> PPNConfig:
        """Config from a dict such as `to_dict()` or the metadata's grid/decode entries.

        Accepts "size" as an alias of "grid" (metadata "grid": {"size": [7, 7], "stride": 32});
        "stride" is checked against input_size / grid; other keys (thresholds) are ignored.
        """
        data = dict(data or {})
        if "size" in data and "grid" not in data:
            data["grid"] = data["size"]
        args = {
            k: data[k]
            for k in ("input_size", "grid", "K", "edges", "size_factor", "window", "tip_window")
            if k in data and data[k] is not None
        }
        config = cls(**args)
        stride = data.get("stride")
        if stride is not None:
            expected = _pair(stride) if not np.isscalar(stride) else (stride, stride)
            sx, sy = config.stride_xy
            if not np.allclose([sy, sx], expected, atol=1e-6):
                raise ValueError(
                    f"grid stride {stride} disagrees with input {config.input_hw} / grid "
                    f"{config.grid_hw} (= {sy:g}, {sx:g})"
                )
        return config

    @classmethod
    def from_metadata(cls, meta: Any) -> PPNConfig:
        """Config of a pose model from its `ModelMetadata` (input shape, grid, keypoint edges).

        Raises ModelFileError (naming the metadata file) when they do not fit together.
        """
        try:
            data: dict[str, Any] = {"input_size": list(meta.input_size)}
            grid = dict(meta.grid or {})
            if "size" in grid:
                data["grid"] = grid["size"]
            if "stride" in grid:
                data["stride"] = grid["stride"]
            keypoints = dict(meta.keypoints or {})
            if keypoints.get("edges"):
                data["edges"] = [tuple(e) for e in keypoints["edges"]]
                data["K"] = len(keypoints.get("names") or []) or len(data["edges"]) + 1
            for key in ("size_factor", "window", "tip_window"):
                if key in (meta.decode or {}):
                    data[key] = meta.decode[key]
            return cls.from_dict(data)
        except (TypeError, ValueError, KeyError) as error:
            where = getattr(meta, "path", None) or "pose model metadata"
            raise ModelFileError(
                f"{where}: input, grid and keypoints do not fit the PPN decoder ({error}); "
                "re-create the metadata with `handpose convert`"
            ) from error


def pose_channels_from_seed(num_keypoints: int = NUM_KEYPOINTS) -> np.ndarray:
    """Index array idx with ours[..., c] = seed[..., idx[c]] for the pose head (6K channels).

    Seed channel f * K + k (field f of POSE_FIELDS, keypoint k) -> our channel 6k + f.
    """
    k, f = np.meshgrid(np.arange(num_keypoints), np.arange(6), indexing="ij")
    return (f * num_keypoints + k).reshape(-1)


def vect_channels_from_seed(num_bones: int = len(EDGES)) -> np.ndarray:
    """Index array idx with ours[..., c] = seed[..., idx[c]] for the vect head (3E channels).

    The seed stores bone e as (z, y, x) in channels 3e..3e+2; we store (x, y, z).
    """
    return (3 * np.arange(num_bones)[:, None] + np.array([2, 1, 0])[None, :]).reshape(-1)


# ------------------------------------------------------------------------------------ targets


def keypoint_cells(
    keypoints: np.ndarray, config: PPNConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cell and in-cell offset of each point.

    Args:
        keypoints: (K, 2) (x, y) crop px.

    Returns:
        cells int64 (K, 2) as (col j, row i); offsets float64 (K, 2) (ox, oy) in [0, 1] for points
        inside; inside bool (K,): 0 <= x <= W and 0 <= y <= H (finite).
    """
    kp = np.asarray(keypoints, np.float64).reshape(-1, 2)
    (h, w), (gh, gw) = config.input_hw, config.grid_hw
    sx, sy = config.stride_xy
    finite = np.isfinite(kp).all(axis=1)
    safe = np.where(finite[:, None], kp, -1.0)
    inside = finite & (safe[:, 0] >= 0) & (safe[:, 0] <= w) & (safe[:, 1] >= 0) & (safe[:, 1] <= h)
    g = safe / np.array([sx, sy])
    cells = np.clip(np.floor(g), 0, np.array([gw - 1, gh - 1])).astype(np.int64)
    return cells, g - cells, inside


def part_size(keypoints: np.ndarray, known: np.ndarray, config: PPNConfig) -> np.ndarray:
    """Target part box size (w, h) as fractions of the input (W, H).

    w = size_factor * diag / W, h = size_factor * diag / H, diag = diagonal of the tight box of
    the known keypoints (0 when fewer than one is known).
    """
    kp = np.asarray(keypoints, np.float64).reshape(-1, 2)[np.asarray(known, bool)]
    if len(kp) == 0:
        return np.zeros(2)
    diag = float(np.linalg.norm(kp.max(axis=0) - kp.min(axis=0)))
    h, w = config.input_hw
    return config.size_factor * diag / np.array([w, h], np.float64)


def encode_targets(
    keypoints: np.ndarray,
    visible: np.ndarray,
    directions_3d: np.ndarray | None = None,
    config: PPNConfig | None = None,
) -> dict[str, np.ndarray]:
    """All PPN loss targets of one crop (see module docstring).

    Args:
        keypoints: (K, 2) (x, y) in crop pixels.
        visible: (K,) bool, keypoints whose label counts (points outside the crop never count).
        directions_3d: (E, 3) bone directions (any length; zero or non-finite = unknown) or None.
        config: grid and skeleton (default PPNConfig()).

    Returns (float32 unless noted):
        resp (Gh, Gw, K): 1 at the cell of each known keypoint, else 0.
        xy (Gh, Gw, K, 2): (ox, oy) at that cell, else 0.
        wh (Gh, Gw, K, 2): (w, h) part size at that cell, else 0.
        vect (Gh, Gw, E, 3): unit direction of bone e at its parent's cell, else 0.
        vect_mask (Gh, Gw, E): 1 where vect is defined.
        cells int32 (K, 2): (col, row) of each keypoint's cell; known bool (K,).
    """
    config = config or PPNConfig()
    kp = np.asarray(keypoints, np.float64).reshape(-1, 2)
    if kp.shape[0] != config.K:
        raise ValueError(f"keypoints must have shape ({config.K}, 2), got {np.shape(keypoints)}")
    cells, offsets, inside = keypoint_cells(kp, config)
    known = np.asarray(visible, bool).reshape(-1) & inside
    gh, gw = config.grid_hw
    k_count, e_count = config.K, config.num_bones
    resp = np.zeros((gh, gw, k_count), np.float32)
    xy = np.zeros((gh, gw, k_count, 2), np.float32)
    wh = np.zeros((gh, gw, k_count, 2), np.float32)
    size = part_size(kp, known, config)
    for k in np.flatnonzero(known):
        j, i = cells[k]
        resp[i, j, k] = 1.0
        xy[i, j, k] = offsets[k]
        wh[i, j, k] = size
    vect = np.zeros((gh, gw, e_count, 3), np.float32)
    vect_mask = np.zeros((gh, gw, e_count), np.float32)
    if directions_3d is not None:
        d = np.asarray(directions_3d, np.float64).reshape(e_count, 3)
        finite = np.isfinite(d).all(axis=1)
        d = np.where(finite[:, None], d, 0.0)
        norm = np.linalg.norm(d, axis=1)
        for e, (parent, _) in enumerate(config.edges):
            if known[parent] and finite[e] and norm[e] > 1e-9:
                j, i = cells[parent]
                vect[i, j, e] = d[e] / norm[e]
                vect_mask[i, j, e] = 1.0
    return {
        "resp": resp,
        "xy": xy,
        "wh": wh,
        "vect": vect,
        "vect_mask": vect_mask,
        "cells": cells.astype(np.int32),
        "known": known,
    }


def _cxcywh_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a0, a1 = a[..., :2] - a[..., 2:] / 2, a[..., :2] + a[..., 2:] / 2
    b0, b1 = b[..., :2] - b[..., 2:] / 2, b[..., :2] + b[..., 2:] / 2
    wh = np.clip(np.minimum(a1, b1) - np.maximum(a0, b0), 0.0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    return inter / np.maximum(union, 1e-9)


def confidence_target(
    pose: np.ndarray, xy_t: np.ndarray, wh_t: np.ndarray, config: PPNConfig | None = None
) -> np.ndarray:
    """conf target (Gh, Gw, K): IoU of the predicted and the target part boxes per cell.

    box = ((j + ox) / Gw, (i + oy) / Gh, w, h) as (cx, cy, w, h) in units of the input side,
    predicted from pose[..., 6k+2 .. 6k+5], target from xy_t, wh_t (Gh, Gw, K, 2). Only
    meaningful where resp_t = 1 (the loss multiplies by it). Mirrors models.losses.ppn_loss.
    """
    config = config or PPNConfig()
    gh, gw = config.grid_hw
    p = np.asarray(pose, np.float64).reshape(gh, gw, config.K, 6)
    jj, ii = np.meshgrid(np.arange(gw), np.arange(gh))
    cell = np.stack([jj, ii], axis=-1)[:, :, None, :].astype(np.float64)
    grid = np.array([gw, gh], np.float64)
    box_p = np.concatenate([(cell + p[..., 2:4]) / grid, p[..., 4:6]], axis=-1)
    box_t = np.concatenate([(cell + np.asarray(xy_t)) / grid, np.asarray(wh_t)], axis=-1)
    return _cxcywh_iou(box_p, box_t).astype(np.float32)


def perfect_outputs(
    targets: dict[str, np.ndarray], config: PPNConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The pose (Gh, Gw, 6K) and vect (Gh, Gw, 3E) a perfect network would output for targets.

    resp = resp_t, conf = resp_t (IoU 1), x, y, w, h = targets, vect = vect_t. For tests and
    for checking a decoder against labels.
    """
    config = config or PPNConfig()
    gh, gw = config.grid_hw
    pose = np.zeros((gh, gw, config.K, 6), np.float32)
    pose[..., 0] = targets["resp"]
    pose[..., 1] = targets["resp"]
    pose[..., 2:4] = targets["xy"]
    pose[..., 4:6] = targets["wh"]
    vect = np.asarray(targets["vect"], np.float32)
    return pose.reshape(gh, gw, 6 * config.K), vect.reshape(gh, gw, 3 * config.num_bones)


# ------------------------------------------------------------------------------------ decoding


class PoseDecoding(NamedTuple):
    """`decode`'s result: unpacks as (keypoints, scores, directions); fields also by name
    (result.keypoints or result["keypoints"])."""

    keypoints: np.ndarray  # float32 (K, 2) (x, y) crop px
    scores: np.ndarray  # float32 (K,) resp * conf at the chosen cell
    directions: np.ndarray  # float32 (E, 3) unit bone directions (zero if the output was zero)

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            return getattr(self, key)
        return tuple.__getitem__(self, key)


class _DecodePlan(NamedTuple):
    """What `decode` needs of a skeleton and grid, worked out once (`_decode_plan`)."""

    global_keypoints: np.ndarray  # the root and its children: argmax over every cell
    levels: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]  # (keypoints, parents, window)
    windows: np.ndarray  # (W, Gh Gw, Gh Gw) bool: [w, parent cell, cell] cell in window w
    keypoint_index: np.ndarray  # arange(K)
    bone_index: np.ndarray  # arange(E)
    edge_parents: np.ndarray  # (E,) parent keypoint of each bone


@functools.lru_cache(maxsize=16)
def _decode_plan(
    K: int,
    edges: tuple[tuple[int, int], ...],
    window: int,
    tip_window: int,
    gh: int,
    gw: int,
) -> _DecodePlan:
    """Keypoints grouped by depth in the tree (all of one depth depend only on the depth above),
    each with its parent and search radius: decode runs one vectorised argmax per depth."""
    parents = [-1] * K
    for p_, c in edges:
        parents[c] = p_
    has_child = {p_ for p_, _ in edges}
    root = parents.index(-1)
    depth = [0] * K
    for p_, c in edges:  # parents come first
        depth[c] = depth[p_] + 1
    first = [root] + [c for p_, c in edges if p_ == root]
    levels = []
    for level in range(2, max(depth) + 1):
        ks = [c for _, c in edges if depth[c] == level]
        levels.append(
            (
                np.array(ks, np.intp),
                np.array([parents[k] for k in ks], np.intp),
                np.array([0 if k in has_child else 1 for k in ks], np.intp),
            )
        )
    rows, cols = np.divmod(np.arange(gh * gw), gw)
    apart = np.maximum(np.abs(rows[:, None] - rows), np.abs(cols[:, None] - cols))
    windows = np.stack([apart <= window, apart <= tip_window])
    return _DecodePlan(
        np.array(first, np.intp),
        tuple(levels),
        windows,
        np.arange(K),
        np.arange(len(edges)),
        np.array([p_ for p_, _ in edges], np.intp),
    )


def decode(pose: np.ndarray, vect: np.ndarray, config: PPNConfig | None = None) -> PoseDecoding:
    """Keypoints, their scores and bone directions of one crop (see module docstring).

    Args:
        pose: (Gh, Gw, 6K) after sigmoid (a leading batch axis of 1 is accepted).
        vect: (Gh, Gw, 3E) after tanh (idem).
        config: grid and skeleton (default PPNConfig()).

    Returns:
        PoseDecoding(keypoints float32 (K, 2) crop px, scores float32 (K,),
        directions float32 (E, 3) unit).
    """
    config = config or PPNConfig()
    gh, gw = config.grid_hw
    pose = np.asarray(pose, np.float32)
    vect = np.asarray(vect, np.float32)
    if pose.ndim == 4 and pose.shape[0] == 1:
        pose = pose[0]
    if vect.ndim == 4 and vect.shape[0] == 1:
        vect = vect[0]
    want_pose, want_vect = (gh, gw, 6 * config.K), (gh, gw, 3 * config.num_bones)
    if pose.shape != want_pose or vect.shape != want_vect:
        raise ValueError(
            f"pose/vect must have shapes {want_pose} / {want_vect} "
            f"for input {config.input_hw} and grid {config.grid_hw}, got {pose.shape} / "
            f"{vect.shape}"
        )
    # clip to the activations' ranges (NaN -> 0): keypoints inside the crop, scores in [0, 1];
    # fmax / fmin give nan_to_num + clip's values in two passes (fmax(NaN, 0) = 0)
    p = np.fmin(np.fmax(pose, 0.0), 1.0).reshape(gh, gw, config.K, 6)
    score = p[..., 0] * p[..., 1]  # (Gh, Gw, K)
    flat = score.reshape(gh * gw, config.K)
    plan = _decode_plan(config.K, config.edges, config.window, config.tip_window, gh, gw)
    cells = np.empty(config.K, np.intp)  # flat cell index i * Gw + j of each keypoint
    cells[plan.global_keypoints] = flat[:, plan.global_keypoints].argmax(axis=0)
    for keypoints_, parents_, window in plan.levels:  # one argmax per depth, all fingers at once
        near = plan.windows[window, cells[parents_]]  # (n, Gh Gw): in the window of the parent
        # scores are >= 0, so -1 never wins; ties go to the first cell in row-major order,
        # as the argmax over the window itself would
        cells[keypoints_] = np.where(near, flat[:, keypoints_].T, -1.0).argmax(axis=1)

    ii, jj = np.divmod(cells, gw)
    kidx = plan.keypoint_index
    sx, sy = config.stride_xy
    x = (jj + p[ii, jj, kidx, 2]) * sx
    y = (ii + p[ii, jj, kidx, 3]) * sy
    keypoints = np.stack([x, y], axis=1).astype(np.float32)
    scores = score[ii, jj, kidx].astype(np.float32)

    v = vect.reshape(gh, gw, config.num_bones, 3)
    parent_cells = cells[plan.edge_parents]
    d = v[parent_cells // gw, parent_cells % gw, plan.bone_index].astype(np.float64)
    d = np.where(np.isnan(d), 0.0, np.clip(d, -1.0, 1.0))  # (E, 3) only: +-inf -> +-1, NaN -> 0
    norm = np.sqrt((d * d).sum(axis=1, keepdims=True))
    directions = np.where(norm > 1e-9, d / np.maximum(norm, 1e-9), 0.0).astype(np.float32)
    return PoseDecoding(keypoints, scores, directions)
