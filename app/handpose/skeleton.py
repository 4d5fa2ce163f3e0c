"""The 21-keypoint hand skeleton in the standard order (FreiHAND / COCO-WholeBody / MediaPipe).

Index 0 is the wrist; then for each finger from base to tip: thumb 1-4 (cmc, mcp, ip, tip),
index 5-8, middle 9-12, ring 13-16, little 17-20 (mcp, pip, dip, tip).

`EDGES[e] = (parent, child)`: 20 bones, wrist -> each finger's first joint, then along the finger.
Bone `e` ends at keypoint `e + 1`, so `PARENTS[k]` is the parent of keypoint k (-1 for the wrist)
and the bone into keypoint k has index k - 1.
"""

from __future__ import annotations

import numpy as np

NUM_KEYPOINTS = 21
NUM_BONES = 20

FINGERS: tuple[str, ...] = ("thumb", "index", "middle", "ring", "little")
_JOINTS = {
    "thumb": ("cmc", "mcp", "ip", "tip"),
    "index": ("mcp", "pip", "dip", "tip"),
    "middle": ("mcp", "pip", "dip", "tip"),
    "ring": ("mcp", "pip", "dip", "tip"),
    "little": ("mcp", "pip", "dip", "tip"),
}
KEYPOINT_NAMES: tuple[str, ...] = ("wrist",) + tuple(
    f"{finger}_{joint}" for finger in FINGERS for joint in _JOINTS[finger]
)

#: parent keypoint of each keypoint (-1 for the wrist)
PARENTS: tuple[int, ...] = (-1,) + tuple(
    0 if j == 0 else 1 + 4 * f + j - 1 for f in range(5) for j in range(4)
)
#: the 20 bones as (parent, child); bone e ends at keypoint e + 1
EDGES: tuple[tuple[int, int], ...] = tuple((PARENTS[k], k) for k in range(1, NUM_KEYPOINTS))
#: first keypoint of each finger (the keypoints the PPN decoder finds by global argmax, with 0)
FINGER_BASES: tuple[int, ...] = (1, 5, 9, 13, 17)
#: finger index of each keypoint (-1 for the wrist)
FINGER_OF: tuple[int, ...] = (-1,) + tuple(f for f in range(5) for _ in range(4))

#: overlay colour per finger (RGB), the wrist and palm bones take their finger's colour
FINGER_COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 64, 64),  # thumb: red
    (255, 200, 0),  # index: yellow
    (64, 220, 64),  # middle: green
    (0, 160, 255),  # ring: blue
    (200, 64, 255),  # little: purple
)

#: bone lengths of an average adult right hand in mm (bone e ends at keypoint e + 1):
#: wrist->cmc/mcp (metacarpals), then proximal, middle and distal phalanges.
BONE_LENGTHS_MM = np.array(
    [
        [34.0, 38.0, 32.0, 28.0],  # thumb: wrist-cmc, cmc-mcp, mcp-ip, ip-tip
        [80.0, 40.0, 24.0, 21.0],  # index
        [78.0, 45.0, 28.0, 22.0],  # middle
        [73.0, 42.0, 27.0, 22.0],  # ring
        [68.0, 33.0, 20.0, 19.0],  # little
    ],
    dtype=np.float32,
).reshape(NUM_BONES)

#: horizontal mirror permutation: the skeleton is symmetric, so a mirrored hand keeps its order
MIRROR_PERMUTATION: tuple[int, ...] = tuple(range(NUM_KEYPOINTS))


def bone_colors() -> list[tuple[int, int, int]]:
    """Colour of each bone in `EDGES` order (its finger's colour)."""
    return [FINGER_COLORS[FINGER_OF[child]] for _, child in EDGES]
