"""Overlay drawing (Pillow ImageDraw): what HDMI, Take Photo, the browser view and videos show.

Layout of the canvas for a W x H frame, with c = H // 3::

    +-------------------------+---------+---------+
    | frame                   | left XY | right XY|   one column per hand side,
    |  boxes, "#3 left 0.93", | left ZY | right ZY|   three orthogonal views of the 3D joints
    |  gesture tags,          | left XZ | right XZ|   (X-Y front, Z-Y side, X-Z top), c x c each
    |  2D skeletons,          |         |         |
    |  FPS + stage ms         |         |         |
    +-------------------------+---------+---------+
       W                         c         c          canvas: (W + 2c) x H

Bones are coloured per finger (`handpose.skeleton.FINGER_COLORS`). One canvas is kept per frame
size and redrawn in place every frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from handpose.compat import zip_strict
from handpose.hand import Hand
from handpose.skeleton import EDGES, FINGER_COLORS, FINGER_OF

HAND_COLORS = {"left": (0, 220, 255), "right": (255, 140, 0), "hand": (255, 255, 255)}
PANEL_BG = (24, 24, 28)
GRID = (70, 70, 80)
#: the three views: (name, horizontal axis, vertical axis) over (x, y, z)
VIEWS: tuple[tuple[str, int, int], ...] = (("X-Y", 0, 1), ("Z-Y", 2, 1), ("X-Z", 0, 2))
#: half-width of a 3D view in mm (a hand spans about 190 mm from the wrist)
VIEW_RANGE_MM = 130.0
BONE_COLORS = [FINGER_COLORS[FINGER_OF[child]] for _, child in EDGES]


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType
        return ImageFont.load_default()


def _text_box(
    draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, font: ImageFont.ImageFont
) -> tuple[float, float, float, float]:
    """`draw.textbbox(xy, text, font=font)`; Pillow < 9.2's bitmap default font (bullseye has
    8.1) has no bounding box, only a size, so the box is (x, y, x + width, y + height) there."""
    if hasattr(font, "getbbox"):
        return draw.textbbox(xy, text, font=font)
    width, height = font.getsize(text)
    return xy[0], xy[1], xy[0] + width, xy[1] + height


def overlay_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) of the canvas for a W x H frame."""
    return width + 2 * (height // 3), height


class OverlayRenderer:
    """Draws frames with their hands on a reused canvas.

    Args:
        detect_region: optional box [x0, y0, x1, y1] drawn as a thin frame (the detector's view).
    """

    def __init__(self) -> None:
        self._canvas: Image.Image | None = None
        self._draw: ImageDraw.ImageDraw | None = None
        self._font = _font(max(12, 14))
        self._small = _font(11)
        self._canvas_height = 0

    def canvas_for(self, width: int, height: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
        size = overlay_size(width, height)
        if self._canvas is None or self._canvas.size != size:
            self._canvas = Image.new("RGB", size, PANEL_BG)
            self._draw = ImageDraw.Draw(self._canvas)
        assert self._draw is not None
        return self._canvas, self._draw

    def render(
        self,
        frame: np.ndarray,
        hands: Sequence[Hand],
        fps: float | None = None,
        timings: dict[str, float] | None = None,
        detect_region: np.ndarray | None = None,
    ) -> Image.Image:
        """The canvas with `frame` and `hands` drawn (valid until the next call).

        Args:
            frame: RGB uint8 (H, W, 3).
            hands: hands in frame pixels.
            fps: frames per second to print, or None.
            timings: milliseconds per stage to print.
            detect_region: box of the detector's square, drawn thin grey.
        """
        height, width = frame.shape[:2]
        canvas, draw = self.canvas_for(width, height)
        self._canvas_height = height
        canvas.paste(Image.fromarray(np.ascontiguousarray(frame)), (0, 0))
        if detect_region is not None:
            draw.rectangle([float(v) for v in detect_region], outline=(128, 128, 128), width=1)
        for hand in hands:
            self._draw_hand_2d(draw, hand)
        self._draw_panel(draw, width, height, hands)
        self._draw_status(draw, fps, timings)
        return canvas

    def _draw_hand_2d(self, draw: ImageDraw.ImageDraw, hand: Hand) -> None:
        color = HAND_COLORS.get(hand.handedness, (255, 255, 255))
        x0, y0, x1, y1 = (float(v) for v in hand.box)
        draw.rectangle([x0, y0, x1, y1], outline=color, width=2)
        track = f"#{hand.track_id} " if hand.track_id is not None else ""
        label = f"{track}{hand.handedness} {hand.score:.2f}"
        left, top, right, bottom = _text_box(draw, (x0, y0), label, self._font)
        ty = y0 - (bottom - top) - 4 if y0 > (bottom - top) + 4 else y0
        draw.rectangle([x0, ty, x0 + (right - left) + 4, ty + (bottom - top) + 4], fill=color)
        draw.text((x0 + 2, ty + 1 - (top - y0)), label, fill=(0, 0, 0), font=self._font)
        if hand.gesture is not None:  # the gesture in a dark tag at the bottom of the box
            text = f"{hand.gesture.replace('_', ' ')} {hand.gesture_score:.2f}"
            left, top, right, bottom = _text_box(draw, (x0, y1), text, self._font)
            height = bottom - top + 4
            gy = y1 + 2 if y1 + height + 2 <= self._canvas_height else y1 - height - 2
            draw.rectangle([x0, gy, x0 + (right - left) + 4, gy + height], fill=(0, 0, 0))
            draw.text((x0 + 2, gy + 1 - (top - y1)), text, fill=color, font=self._font)
        if hand.keypoints is None:
            return
        points = hand.keypoints
        for (parent, child), bone_color in zip_strict(EDGES, BONE_COLORS):
            draw.line(
                [tuple(points[parent].tolist()), tuple(points[child].tolist())],
                fill=bone_color,
                width=3,
            )
        for k, (x, y) in enumerate(points.tolist()):
            fill = (255, 255, 255) if k == 0 else FINGER_COLORS[FINGER_OF[k]]
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=fill, outline=(0, 0, 0))

    def _draw_panel(
        self, draw: ImageDraw.ImageDraw, width: int, height: int, hands: Sequence[Hand]
    ) -> None:
        cell = height // 3
        draw.rectangle([width, 0, width + 2 * cell, height], fill=PANEL_BG)
        columns: dict[int, Hand] = {}
        for i, hand in enumerate(hands):
            column = {"left": 0, "right": 1}.get(hand.handedness, i)
            if hand.joints_3d is not None and column < 2 and column not in columns:
                columns[column] = hand
        for column in range(2):
            for row, (name, h_axis, v_axis) in enumerate(VIEWS):
                x0, y0 = width + column * cell, row * cell
                draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], outline=GRID)
                side = ("left", "right")[column]
                draw.text(
                    (x0 + 4, y0 + 2), f"{side} {name}", fill=(160, 160, 170), font=self._small
                )
                hand = columns.get(column)
                if hand is not None:
                    self._draw_view(draw, hand.joints_3d, h_axis, v_axis, x0, y0, cell)

    def _draw_view(
        self,
        draw: ImageDraw.ImageDraw,
        joints: np.ndarray,
        h_axis: int,
        v_axis: int,
        x0: int,
        y0: int,
        cell: int,
    ) -> None:
        """Project joints (21, 3) mm onto two axes, centred on their bounding box."""
        plane = joints[:, [h_axis, v_axis]].astype(np.float64)
        centre = (plane.min(axis=0) + plane.max(axis=0)) / 2.0
        scale = (cell / 2.0 - 6.0) / VIEW_RANGE_MM
        points = (plane - centre) * scale + np.array([x0 + cell / 2.0, y0 + cell / 2.0])
        lo, hi = np.array([x0 + 1, y0 + 1]), np.array([x0 + cell - 2, y0 + cell - 2])
        points = np.clip(points, lo, hi)
        for (parent, child), bone_color in zip_strict(EDGES, BONE_COLORS):
            draw.line(
                [tuple(points[parent].tolist()), tuple(points[child].tolist())],
                fill=bone_color,
                width=2,
            )
        wx, wy = points[0]
        draw.ellipse([wx - 2, wy - 2, wx + 2, wy + 2], fill=(255, 255, 255))

    def _draw_status(
        self, draw: ImageDraw.ImageDraw, fps: float | None, timings: dict[str, float] | None
    ) -> None:
        parts = []
        if fps is not None:
            parts.append(f"{fps:.1f} FPS")
        for name, ms in (timings or {}).items():
            parts.append(f"{name} {ms:.0f} ms")
        if not parts:
            return
        text = "  ".join(parts)
        left, top, right, bottom = _text_box(draw, (4, 4), text, self._font)
        draw.rectangle([0, 0, right + 4, bottom + 4], fill=(0, 0, 0))
        draw.text((4, 4), text, fill=(255, 255, 255), font=self._font)
