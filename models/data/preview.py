"""Contact sheets of dataset samples with their labels (boxes, skeletons, handedness)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from handpose.skeleton import EDGES, FINGER_COLORS, FINGER_OF
from models.data.sample import Sample

#: box colour per handedness
_SIDE_COLORS = {"left": (0, 255, 255), "right": (255, 0, 255), "hand": (255, 255, 255)}


def draw_sample(sample: Sample, size: int) -> Image.Image:
    """One tile (size x size): the image resized to fit, boxes coloured by side, skeletons per
    finger (visible keypoints filled dots, invisible ones hollow)."""
    image = Image.fromarray(sample.image)
    scale = size / max(sample.width, sample.height)
    tile = Image.new("RGB", (size, size), (32, 32, 32))
    resized = image.resize(
        (max(1, round(sample.width * scale)), max(1, round(sample.height * scale))),
        Image.BILINEAR,
    )
    tile.paste(resized, (0, 0))
    draw = ImageDraw.Draw(tile)
    for hand in sample.hands:
        colour = _SIDE_COLORS.get(hand.handedness, (255, 255, 255))
        draw.rectangle([float(v) * scale for v in hand.box], outline=colour, width=1)
        draw.text((float(hand.box[0]) * scale + 2, float(hand.box[1]) * scale), hand.handedness[0],
                  fill=colour)  # fmt: skip
        if hand.keypoints is None:
            continue
        kp = np.asarray(hand.keypoints, float) * scale
        vis = hand.keypoint_scores if hand.keypoint_scores is not None else np.ones(len(kp))
        for parent, child in EDGES:
            draw.line([tuple(kp[parent]), tuple(kp[child])], fill=FINGER_COLORS[FINGER_OF[child]],
                      width=1)  # fmt: skip
        for k, (x, y) in enumerate(kp):
            c = FINGER_COLORS[FINGER_OF[k]] if k else (255, 255, 255)
            r = 1.5
            if vis[k] > 0.5:
                draw.ellipse([x - r, y - r, x + r, y + r], fill=c)
            else:
                draw.ellipse([x - r, y - r, x + r, y + r], outline=c)
    return tile


def contact_sheet(samples: Sequence[Sample], columns: int = 8, tile: int = 224) -> Image.Image:
    """A grid of `draw_sample` tiles, `columns` wide: an RGB image of
    (columns * tile) x (ceil(len / columns) * tile) pixels."""
    columns = max(1, min(columns, len(samples))) if samples else 1
    rows = max(1, -(-len(samples) // columns))
    sheet = Image.new("RGB", (columns * tile, rows * tile), (0, 0, 0))
    for n, sample in enumerate(samples):
        sheet.paste(draw_sample(sample, tile), ((n % columns) * tile, (n // columns) * tile))
    return sheet
