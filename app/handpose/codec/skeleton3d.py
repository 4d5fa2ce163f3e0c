"""3D hand skeleton from bone directions and back, and left/right mirroring (pure numpy).

Bones follow `handpose.skeleton.EDGES`: bone e goes from PARENTS[e + 1] to keypoint e + 1.
Directions are unit 3D vectors (x, y, z) in the camera frame (x right, y down, z forward).
"""

from __future__ import annotations

import numpy as np

from handpose.skeleton import BONE_LENGTHS_MM, EDGES, NUM_BONES, NUM_KEYPOINTS


def normalize(vectors: np.ndarray, eps: float = 1e-9) -> np.ndarray:
    """Vectors (..., 3) scaled to unit length; (near-)zero vectors and vectors with a non-finite
    component (an unknown direction) are zero.

    v / |v| is computed as u / |u| with u = v / max|v_i|, so huge vectors do not overflow.
    """
    v = np.asarray(vectors, np.float64)
    v = np.where(np.isfinite(v).all(axis=-1, keepdims=True), v, 0.0)
    scale = np.abs(v).max(axis=-1, keepdims=True)
    u = v / np.where(scale > 0, scale, 1.0)
    # |u|, np.linalg.norm's operations without its wrapper: in [1, sqrt(3)] unless zero
    unit_norm = np.sqrt(np.add.reduce(u * u, axis=-1, keepdims=True))
    with np.errstate(over="ignore"):
        norm = scale * unit_norm  # |v|, inf when it overflows (still > eps)
    return np.where(norm > eps, u / np.where(unit_norm > 0, unit_norm, 1.0), 0.0)


def joints_from_directions(
    directions: np.ndarray, bone_lengths: np.ndarray | None = None
) -> np.ndarray:
    """Wrist-relative 3D joints float32 (21, 3) in mm from 20 bone directions.

    joint[0] = 0; joint[child_e] = joint[parent_e] + length_e * d_e / |d_e| for e in EDGES order
    (parents come before children). A zero direction puts the child on its parent.

    Args:
        directions: (20, 3) bone directions (any length).
        bone_lengths: (20,) mm, default `handpose.skeleton.BONE_LENGTHS_MM`.
    """
    d = normalize(np.asarray(directions, np.float64).reshape(NUM_BONES, 3))
    lengths = np.asarray(BONE_LENGTHS_MM if bone_lengths is None else bone_lengths, np.float64)
    if lengths.shape != (NUM_BONES,):
        raise ValueError(f"bone_lengths must have shape ({NUM_BONES},), got {lengths.shape}")
    bones = lengths[:, None] * d
    joints = np.zeros((NUM_KEYPOINTS, 3))
    if _CHAINS is not None:  # every finger a chain from the wrist: one running sum along each
        chain_edges, chain_joints = _CHAINS
        steps = np.zeros((len(chain_edges), chain_edges.shape[1] + 1, 3))
        steps[:, 1:] = bones[chain_edges]
        # 0 + b_0, (0 + b_0) + b_1, ...: the parent-plus-bone sums below, in the same order
        joints[chain_joints] = np.add.accumulate(steps, axis=1)[:, 1:]
        return joints.astype(np.float32)
    for children, parents, edges in _DEPTH_LEVELS:  # one step per depth, every finger at once
        joints[children] = joints[parents] + bones[edges]
    return joints.astype(np.float32)


def _depth_levels() -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]:
    """EDGES grouped by the depth of their child: (children, parents, bone indices) per depth,
    so that every joint is computed after its parent (the same sums as bone by bone)."""
    depth = [0] * NUM_KEYPOINTS
    for parent, child in EDGES:
        depth[child] = depth[parent] + 1
    levels = []
    for level in range(1, max(depth) + 1):
        edges = [e for e, (_, child) in enumerate(EDGES) if depth[child] == level]
        levels.append(
            (
                np.array([EDGES[e][1] for e in edges]),
                np.array([EDGES[e][0] for e in edges]),
                np.array(edges),
            )
        )
    return tuple(levels)


_DEPTH_LEVELS = _depth_levels()


def _chains() -> tuple[np.ndarray, np.ndarray] | None:
    """The skeleton as chains from the root, when it is one (the hand: five fingers of four
    bones): (edges (F, L), joints (F, L)), edges[f, i] the i-th bone of chain f from the root and
    joints[f, i] its child; None for other trees."""
    children: dict[int, list[int]] = {}
    for e, (parent, _) in enumerate(EDGES):
        children.setdefault(parent, []).append(e)
    root = EDGES[0][0]
    chains = []
    for first in children.get(root, []):
        chain = [first]
        while len(children.get(EDGES[chain[-1]][1], [])) == 1:
            chain.append(children[EDGES[chain[-1]][1]][0])
        if children.get(EDGES[chain[-1]][1]):  # a branch inside a finger
            return None
        chains.append(chain)
    if len({len(c) for c in chains}) != 1 or sum(map(len, chains)) != NUM_BONES:
        return None
    edges = np.array(chains, np.intp)
    joints = np.array([[EDGES[e][1] for e in chain] for chain in chains], np.intp)
    return edges, joints


_CHAINS = _chains()


def bone_directions(joints_3d: np.ndarray) -> np.ndarray:
    """Unit bone directions float32 (20, 3) (or (..., 20, 3)) from joints (..., 21, 3).

    d_e = (joint[child] - joint[parent]) / |...|; zero-length bones give a zero vector.
    """
    j = np.asarray(joints_3d, np.float64)
    parents = np.array([p for p, _ in EDGES])
    children = np.array([c for _, c in EDGES])
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: an unknown direction (zero)
        bones = j[..., children, :] - j[..., parents, :]
    return normalize(bones).astype(np.float32)


def bone_lengths(joints_3d: np.ndarray) -> np.ndarray:
    """Bone lengths (..., 20) of joints (..., 21, 3)."""
    j = np.asarray(joints_3d, np.float64)
    parents = np.array([p for p, _ in EDGES])
    children = np.array([c for _, c in EDGES])
    return np.linalg.norm(j[..., children, :] - j[..., parents, :], axis=-1)


def mirror_x_3d(points: np.ndarray) -> np.ndarray:
    """3D points or directions (..., 3) mirrored left<->right: (x, y, z) -> (-x, y, z).

    Camera-frame mirror of a hand whose image was flipped horizontally (a left hand seen as a
    right hand and back). The keypoint order does not change (MIRROR_PERMUTATION is identity).
    """
    p = np.array(points, copy=True)
    p[..., 0] = -p[..., 0]
    return p


def mirror_x_2d(points: np.ndarray, width: float) -> np.ndarray:
    """2D points (..., 2) in an image of `width` px after a horizontal flip: x -> width - x."""
    p = np.array(points, copy=True)
    p[..., 0] = width - p[..., 0]
    return p
