"""Helpers every dataset loader shares: the dataset base class, splits, joint reordering, labels.

Loaders turn a dataset's published layout into `models.data.sample.Sample`s following
docs/CONVENTIONS.md: keypoints (x, y) px in the standard 21-point order of `handpose.skeleton`,
3D joints (x, y, z) mm in the camera frame, intrinsics K (3, 3) px, handedness "left" | "right"
(or "hand" when the dataset does not say).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from handpose.errors import HandposeError
from handpose.hand import Hand, box_from_keypoints
from models.data.sample import Sample

SPLITS = ("train", "val", "test")
#: per-side margin of a box made from keypoints, as a fraction of the keypoints' extent
KEYPOINT_BOX_MARGIN = 0.1
#: fraction of a dataset without an official split held out for val and for test (each)
HOLDOUT_FRACTION = 0.05


class IndexedDataset(Sequence):
    """A sequence of `Sample`s: `load(i)` is called on access; `name` says what it is.

    Args:
        name: the spec-like name ("rhd:/data/RHD_published_v2 (train)").
        count: number of samples.
        load: i -> Sample for 0 <= i < count.
    """

    def __init__(self, name: str, count: int, load: Callable[[int], Sample]) -> None:
        self.name = name
        self._count = int(count)
        self._load = load

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = int(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"{self.name}: index {index} out of range 0..{len(self) - 1}")
        return self._load(index)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} ({len(self)} samples)>"


class Subset(IndexedDataset):
    """The items `indices` of `dataset`, in that order."""

    def __init__(self, dataset: Sequence[Sample], indices: Sequence[int], name: str) -> None:
        self.dataset = dataset
        self.indices = np.asarray(indices, np.int64)
        super().__init__(name, len(self.indices), lambda i: dataset[int(self.indices[i])])


def check_split(split: str, loader: str) -> str:
    """`split` if it is "train", "val", "test" or "all", else a HandposeError."""
    if split not in (*SPLITS, "all"):
        raise HandposeError(f"{loader}: split must be one of {(*SPLITS, 'all')}, got {split!r}")
    return split


def holdout_indices(count: int, split: str) -> np.ndarray:
    """Indices of `split` for a dataset without an official split.

    The last ceil(5 %) of the items is "test", the ceil(5 %) before them "val", the rest
    "train" (contiguous tails keep video-like sequences from leaking across splits). Datasets
    of fewer than 3 items give every split all items; "all" gives all items.
    """
    if split == "all" or count < 3:
        return np.arange(count)
    k = max(1, int(np.ceil(count * HOLDOUT_FRACTION)))
    if split == "train":
        return np.arange(0, count - 2 * k)
    if split == "val":
        return np.arange(count - 2 * k, count - k)
    return np.arange(count - k, count)


def require_dir(path: Path, what: str, fix: str) -> Path:
    """`path` if it is a folder, else HandposeError "`what` PATH not found; fix"."""
    if not path.is_dir():
        raise HandposeError(f"{what} {path} not found; {fix}")
    return path


def require_file(path: Path, what: str, fix: str) -> Path:
    """`path` if it is a file, else HandposeError "`what` PATH not found; fix"."""
    if not path.is_file():
        raise HandposeError(f"{what} {path} not found; {fix}")
    return path


def project(xyz: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pinhole projection of camera points (N, 3) mm by K (3, 3): (N, 2) px, u = fx x / z + cx."""
    xyz = np.asarray(xyz, np.float64)
    K = np.asarray(K, np.float64)
    p = xyz @ K.T
    return (p[:, :2] / p[:, 2:3]).astype(np.float32)


def to_camera(xyz_world: np.ndarray, extrinsics: np.ndarray) -> np.ndarray:
    """World points (N, 3) to camera points by a (3, 4) or (4, 4) [R | t]: X_c = R X_w + t."""
    E = np.asarray(extrinsics, np.float64)[:3]
    return (np.asarray(xyz_world, np.float64) @ E[:, :3].T + E[:, 3]).astype(np.float32)


def inside_image(uv: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N,) bool: the point lies in [0, width) x [0, height)."""
    uv = np.asarray(uv)
    return (uv[:, 0] >= 0) & (uv[:, 0] < width) & (uv[:, 1] >= 0) & (uv[:, 1] < height)


def keypoint_box(
    uv: np.ndarray, width: int, height: int, mask: np.ndarray | None = None
) -> np.ndarray:
    """Box around keypoints (rows where `mask`), grown by KEYPOINT_BOX_MARGIN per side, clipped."""
    pts = np.asarray(uv, np.float32)
    if mask is not None and np.any(mask):
        pts = pts[np.asarray(mask, bool)]
    box = box_from_keypoints(pts, KEYPOINT_BOX_MARGIN)
    return np.clip(box, 0, [width, height, width, height]).astype(np.float32)


def make_hand(
    handedness: str,
    uv: np.ndarray,
    width: int,
    height: int,
    visible: np.ndarray | None = None,
    xyz: np.ndarray | None = None,
    box: np.ndarray | None = None,
) -> Hand | None:
    """A label `Hand` from standard-order keypoints; None when no keypoint lies in the image.

    Args:
        uv: (21, 2) px. visible: (21,) visibility (default: 1 where the point is in the image;
            points outside the image are always 0). xyz: (21, 3) mm camera frame or None.
        box: the label box; default `keypoint_box` of the in-image keypoints.
    """
    uv = np.asarray(uv, np.float32).reshape(21, 2)
    inside = inside_image(uv, width, height) & np.all(np.isfinite(uv), axis=1)
    if not inside.any():
        return None
    vis = inside.copy() if visible is None else (np.asarray(visible, bool).reshape(21) & inside)
    if box is None:
        box = keypoint_box(uv, width, height, inside)
    box = np.asarray(box, np.float32)
    if box[2] <= box[0] or box[3] <= box[1]:
        return None
    return Hand(
        handedness=handedness,
        score=1.0,
        box=box,
        keypoints=uv,
        keypoint_scores=vis.astype(np.float32),
        joints_3d=None if xyz is None else np.asarray(xyz, np.float32).reshape(21, 3),
    )


# -------------------------------------------------------------------------- joint orders

#: "tip first" order used by RHD, STB, GANerated, SynthHands, MHP(?): wrist, then per finger
#: tip, dip, pip, mcp (thumb: tip, ip, mcp, cmc). Standard index k <- source index.
TIP_FIRST_TO_STANDARD: tuple[int, ...] = (0,) + tuple(
    1 + 4 * f + (3 - j) for f in range(5) for j in range(4)
)


def reorder(joints: np.ndarray, order: Sequence[int]) -> np.ndarray:
    """joints[order]: standard keypoint k takes source row order[k]. (21, D) out."""
    return np.asarray(joints)[list(order)]


def palm_to_wrist(joints: np.ndarray, palm: int = 0, middle_mcp: int = 9) -> np.ndarray:
    """Replace a palm-centre root by an estimated wrist: wrist = 2 palm - middle_mcp.

    For datasets (STB, MHP) whose root joint is the palm centre, taken as the midpoint of the
    wrist and the middle-finger MCP. Works on (21, 2) or (21, 3); returns a copy.
    """
    out = np.array(joints, np.float64)
    out[palm] = 2.0 * out[palm] - out[middle_mcp]
    return out


def to_millimetres(xyz: np.ndarray) -> np.ndarray:
    """3D joints in mm: values given in metres (median |z| < 10) are multiplied by 1000."""
    xyz = np.asarray(xyz, np.float64)
    if np.median(np.abs(xyz[..., 2])) < 10.0:
        xyz = xyz * 1000.0
    return xyz.astype(np.float32)


class ConcatDataset(IndexedDataset):
    """Several datasets one after the other."""

    def __init__(self, datasets: Sequence[Sequence[Sample]], name: str) -> None:
        self.datasets = list(datasets)
        self.offsets = np.cumsum([0] + [len(d) for d in self.datasets])
        super().__init__(name, int(self.offsets[-1]), self._get)

    def _get(self, i: int) -> Sample:
        k = int(np.searchsorted(self.offsets, i, side="right") - 1)
        return self.datasets[k][i - int(self.offsets[k])]


def intrinsics(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """K (3, 3) float32 [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], np.float32)


def rodrigues(rvec: np.ndarray) -> np.ndarray:
    """Rotation matrix (3, 3) of an axis-angle vector (Rodrigues' formula, like cv2.Rodrigues)."""
    r = np.asarray(rvec, np.float64).reshape(3)
    theta = float(np.linalg.norm(r))
    if theta < 1e-12:
        return np.eye(3)
    k = r / theta
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(theta) * kx + (1 - np.cos(theta)) * kx @ kx
