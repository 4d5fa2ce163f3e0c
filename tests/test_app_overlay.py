"""Overlay: canvas size and reuse, finger colours, the 3D panel; a PNG to look at."""

import numpy as np
from PIL import Image

from handpose.hand import Hand
from handpose.overlay import BONE_COLORS, OverlayRenderer, overlay_size
from handpose.skeleton import BONE_LENGTHS_MM, EDGES, FINGER_COLORS


def open_hand(x0=200.0, y0=120.0, side="right"):
    """A flat open hand: keypoints (21, 2) px and joints (21, 3) mm, fingers pointing up."""
    joints = np.zeros((21, 3), np.float32)
    spread = np.radians([-50, -20, 0, 15, 30])  # thumb .. little
    for (parent, child), length in zip(EDGES, BONE_LENGTHS_MM, strict=True):
        finger = (child - 1) // 4
        angle = spread[finger] * (1 if side == "right" else -1)
        joints[child] = joints[parent] + length * np.array([np.sin(angle), -np.cos(angle), 0.1])
    keypoints = np.array([x0, y0 + 150.0]) + joints[:, :2] * 0.8
    box = np.concatenate([keypoints.min(0) - 10, keypoints.max(0) + 10])
    return Hand(side, 0.87, box, keypoints, np.ones(21), joints)


def test_overlay_size_reuse_and_colours(tmp_path):
    frame = np.full((240, 320, 3), 90, np.uint8)
    hand = open_hand(120, 20)
    renderer = OverlayRenderer()
    canvas = renderer.render(frame, [hand], fps=12.5, timings={"detect": 20.0, "pose": 30.0})
    assert canvas.size == overlay_size(320, 240) == (320 + 160, 240)
    pixels = np.asarray(canvas)
    # the middle of the index proximal bone has the index colour
    bone = 6  # (5 -> 6) is index, colour FINGER_COLORS[1]
    parent, child = EDGES[bone]
    mid = ((hand.keypoints[parent] + hand.keypoints[child]) / 2).astype(int)
    assert tuple(pixels[mid[1], mid[0]]) == FINGER_COLORS[1] == BONE_COLORS[bone]
    # the right column of the 3D panel has drawing in it, the left one only its frame and label
    right_col = pixels[10:80, 320 + 80 + 5 : 320 + 160 - 5]
    left_col = pixels[20:75, 320 + 5 : 320 + 80 - 5]
    assert (np.abs(right_col.astype(int) - [24, 24, 28]).sum(-1) > 60).sum() > 20
    assert (np.abs(left_col.astype(int) - [24, 24, 28]).sum(-1) > 60).sum() == 0
    again = renderer.render(frame, [], fps=None)
    assert again is canvas  # one canvas per frame size, redrawn in place
    Image.fromarray(pixels).save(tmp_path / "overlay.png")


def test_overlay_handles_hands_without_pose():
    frame = np.zeros((120, 160, 3), np.uint8)
    hand = Hand("left", 0.5, [10, 10, 60, 70])
    canvas = OverlayRenderer().render(frame, [hand])
    assert canvas.size == overlay_size(160, 120)


def test_overlay_shows_track_id_and_gesture(tmp_path):
    frame = np.full((240, 320, 3), 90, np.uint8)
    plain = open_hand(120, 20)
    tagged = plain.replace(track_id=3, gesture="thumbs_up", gesture_score=0.91)
    canvas = OverlayRenderer().render(frame, [plain])
    before = np.asarray(canvas).copy()
    after = np.asarray(OverlayRenderer().render(frame, [tagged]))
    x0, y0, x1, y1 = (int(v) for v in tagged.box)
    label = (slice(max(y0 - 20, 0), y0), slice(x0, x0 + 90))  # "#3 right 0.87" is longer
    assert (before[label] != after[label]).any()
    under = (slice(y1 + 2, y1 + 18), slice(x0 + 2, x0 + 60))  # the gesture's dark tag
    assert (before[under] == 90).all()
    assert (after[under].sum(-1) == 0).mean() > 0.3
    Image.fromarray(after).save(tmp_path / "overlay_gesture.png")
    near_bottom = tagged.replace(box=np.array([100, 150, 200, 238], np.float32))
    OverlayRenderer().render(frame, [near_bottom])  # the tag goes inside the box
