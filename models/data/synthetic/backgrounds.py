"""Backgrounds (real photographs shipped with scikit-image + procedural textures), distractors,
and camera effects (colour jitter, blur, noise, JPEG artefacts).

The photographs are read with Pillow from the installed scikit-image package
(`skimage/data/*.png|jpg`); nothing is downloaded. When scikit-image is missing, only the
procedural textures are used.
"""

from __future__ import annotations

import functools
import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

#: scikit-image sample images that are photographs or natural textures (others are tiny/synthetic)
_PHOTOS = (
    "astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "clock_motion.png",
    "coffee.png", "coins.png", "grass.png", "gravel.png", "hubble_deep_field.jpg",
    "ihc.png", "moon.png", "motorcycle_left.png", "motorcycle_right.png", "page.png",
    "retina.jpg", "rocket.jpg", "text.png",
)  # fmt: skip


@functools.lru_cache(maxsize=1)
def photo_backgrounds() -> tuple[Image.Image, ...]:
    """The scikit-image sample photographs as RGB PIL images (loaded once per process)."""
    try:
        import skimage
    except ImportError:
        return ()
    folder = Path(os.path.dirname(skimage.__file__)) / "data"
    images = []
    for name in _PHOTOS:
        path = folder / name
        if path.exists():
            with Image.open(path) as im:
                images.append(im.convert("RGB"))
    return tuple(images)


def _photo(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    photos = photo_backgrounds()
    im = photos[int(rng.integers(len(photos)))]
    w, h = im.size
    aspect = width / height
    side = rng.uniform(0.35, 1.0)
    cw = min(w, h * aspect) * side
    ch = cw / aspect
    x0 = rng.uniform(0, w - cw)
    y0 = rng.uniform(0, h - ch)
    out = im.resize((width, height), Image.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))
    arr = np.asarray(out, np.float32)
    if rng.random() < 0.5:
        arr = arr[:, ::-1]
    if np.ptp(arr.reshape(-1, 3).mean(0)) < 2 and rng.random() < 0.8:  # grey photo: tint it
        arr = arr * rng.uniform(0.6, 1.1, 3)
    return arr


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    small = rng.uniform(0, 255, (cells, cells, 3)).astype(np.uint8)
    big = Image.fromarray(small).resize((width, height), Image.BICUBIC)
    return np.asarray(big, np.float32)


def _colour(rng: np.random.Generator) -> np.ndarray:
    """A random RGB 0..255 colour, mostly muted like real rooms (grey mixed in)."""
    colour = rng.uniform(0, 255, 3)
    grey = rng.uniform(20, 235)
    return grey + (colour - grey) * rng.uniform(0.1, 0.7)


def _procedural(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    kind = rng.integers(4)
    base = _colour(rng)
    if kind == 0:  # smooth colour field (walls, out-of-focus rooms)
        field = _smooth_noise(rng, height, width, int(rng.integers(2, 6)))
        arr = 0.3 * field + 0.7 * base
    elif kind == 1:  # stripes / checks (fabric, tiles)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(6, 60) * width / 224
        u = xx * np.cos(angle) + yy * np.sin(angle)
        pattern = (np.sin(2 * np.pi * u / period) > 0).astype(np.float32)
        if rng.random() < 0.5:
            v = -xx * np.sin(angle) + yy * np.cos(angle)
            pattern = np.abs(pattern - (np.sin(2 * np.pi * v / period) > 0))
        other = _colour(rng)
        arr = base + pattern[..., None] * (other - base)
    elif kind == 2:  # rooms: a few large blocks with gradients
        arr = np.empty((height, width, 3), np.float32)
        arr[:] = base
        img = Image.fromarray(arr.astype(np.uint8))
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(2, 6))):
            x0, x1 = sorted(rng.uniform(-0.2, 1.2, 2) * width)
            y0, y1 = sorted(rng.uniform(-0.2, 1.2, 2) * height)
            draw.rectangle([x0, y0, x1, y1], fill=tuple(int(c) for c in _colour(rng)))
        arr = np.asarray(img, np.float32)
        grad = np.linspace(rng.uniform(0.6, 1.0), rng.uniform(0.8, 1.2), height, dtype=np.float32)
        arr = arr * grad[:, None, None]
    else:  # fine noise texture (carpet, wood, concrete)
        fine = _smooth_noise(rng, height, width, int(rng.integers(16, 64)))
        fine = fine.mean(axis=2, keepdims=True) * 0.7 + fine * 0.3
        arr = base + (fine - 128) * rng.uniform(0.2, 0.6)
    return arr


def _distractors(rng: np.random.Generator, arr: np.ndarray) -> np.ndarray:
    """Draw 0-6 random shapes (some skin-coloured, hard negatives) onto a background."""
    n = int(rng.integers(0, 7))
    if n == 0:
        return arr
    height, width = arr.shape[:2]
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(n):
        if rng.random() < 0.3:
            colour = tuple(int(c) for c in skin_tone(rng) * 255 * rng.uniform(0.6, 1.0))
        else:
            colour = tuple(int(c) for c in _colour(rng))
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        size = rng.uniform(0.03, 0.35) * width
        kind = rng.integers(4)
        if kind == 0:
            w2, h2 = size * rng.uniform(0.3, 1), size * rng.uniform(0.3, 1)
            draw.ellipse([cx - w2, cy - h2, cx + w2, cy + h2], fill=colour)
        elif kind == 1:
            w2, h2 = size * rng.uniform(0.2, 1), size * rng.uniform(0.2, 1)
            draw.rectangle([cx - w2, cy - h2, cx + w2, cy + h2], fill=colour)
        elif kind == 2:
            pts = [(cx + size * np.cos(a), cy + size * np.sin(a)) for a in
                   np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 7))))]  # fmt: skip
            draw.polygon(pts, fill=colour)
        else:
            ang = rng.uniform(0, np.pi)
            dx, dy = size * np.cos(ang), size * np.sin(ang)
            draw.line([cx - dx, cy - dy, cx + dx, cy + dy], fill=colour,
                      width=int(rng.integers(1, max(2, width // 30))))  # fmt: skip
    return np.asarray(img, np.float32)


def background(
    rng: np.random.Generator, height: int, width: int, photo_share: float = 0.6
) -> np.ndarray:
    """A float32 (H, W, 3) 0..255 background: `photo_share` photographs, the rest procedural,
    with distractors on top."""
    if photo_backgrounds() and rng.random() < photo_share:
        arr = _photo(rng, height, width)
    else:
        arr = _procedural(rng, height, width)
    return _distractors(rng, arr)


#: skin albedo anchors (linear-ish RGB 0..1) from very light (Fitzpatrick I) to very dark (VI)
_SKIN_ANCHORS = np.array(
    [
        [0.98, 0.84, 0.76],
        [0.94, 0.76, 0.64],
        [0.87, 0.66, 0.52],
        [0.76, 0.55, 0.40],
        [0.60, 0.41, 0.29],
        [0.43, 0.29, 0.21],
        [0.30, 0.20, 0.15],
    ]
)


def skin_tone(rng: np.random.Generator) -> np.ndarray:
    """A skin albedo (3,) RGB 0..1 anywhere between the light and dark anchors, slightly tinted."""
    pos = rng.uniform(0, len(_SKIN_ANCHORS) - 1)
    i = int(pos)
    w = pos - i
    colour = (1 - w) * _SKIN_ANCHORS[i] + w * _SKIN_ANCHORS[min(i + 1, len(_SKIN_ANCHORS) - 1)]
    colour = colour * rng.uniform(0.94, 1.06, 3)
    return np.clip(colour, 0, 1)


def palm_tone(skin: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Palm-side albedo: lighter and pinker than the back, more so for dark skin."""
    light = np.array([0.93, 0.72, 0.64])
    amount = rng.uniform(0.15, 0.3) + 0.35 * (1 - skin.mean())
    return np.clip((1 - amount) * skin + amount * light, 0, 1)


def camera_effects(rng: np.random.Generator, arr: np.ndarray) -> np.ndarray:
    """Colour jitter, blur (Gaussian or motion), sensor noise and JPEG artefacts on a float
    (H, W, 3) 0..255 image.

    Returns uint8 (H, W, 3).
    """
    # colour jitter: per-channel gain (white balance), brightness, contrast, saturation
    gain = rng.uniform(0.93, 1.07, 3) * rng.uniform(0.7, 1.25)
    arr = arr * gain.astype(np.float32)
    mean = arr.mean()
    arr = (arr - mean) * np.float32(rng.uniform(0.75, 1.25)) + mean
    grey = arr.mean(axis=2, keepdims=True)
    arr = grey + (arr - grey) * np.float32(rng.uniform(0.75, 1.3))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if rng.random() < 0.35:
        img = img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.3, 1.3))))
    elif rng.random() < 0.15:  # motion blur: a 5x5 line kernel in one of four directions
        kernel = np.zeros((5, 5), np.float32)
        direction = int(rng.integers(4))
        for k in range(5):
            r, c = [(2, k), (k, 2), (k, k), (k, 4 - k)][direction]
            kernel[r, c] = 1.0
        img = img.filter(ImageFilter.Kernel((5, 5), kernel.ravel().tolist(), scale=5))
    out = np.asarray(img)
    if rng.random() < 0.5:
        sigma = rng.uniform(1.0, 8.0)
        noise = rng.normal(0.0, sigma, out.shape[:2] + (1,)).astype(np.float32)
        noise = noise + rng.normal(0.0, sigma * 0.4, out.shape).astype(np.float32)
        out = np.clip(out + noise, 0, 255).astype(np.uint8)
    if rng.random() < 0.4:
        buf = io.BytesIO()
        Image.fromarray(out).save(buf, format="JPEG", quality=int(rng.integers(25, 90)))
        buf.seek(0)
        with Image.open(buf) as im:
            out = np.asarray(im.convert("RGB"))
    return np.ascontiguousarray(out)
