"""2D geometry shared by training, evaluation and the app: boxes, 2x3 affines, image warping.

Conventions (docs/CONVENTIONS.md): points are (x, y) pixels in continuous coordinates (pixel
(row i, col j) covers [j, j+1) x [i, i+1), its centre is (j + 0.5, i + 0.5)); boxes are
[x0, y0, x1, y1].

An affine is a float64 (2, 3) matrix M that maps a point p of the source image to
M @ [x, y, 1] in the destination image. `warp_image(image, M, size)` renders the destination
so that a feature at p in the source appears at M @ [p, 1] in the output, exactly (the warp and
`apply_affine` use the same matrix and the same continuous-coordinate convention).
Composition: `compose_affine(A, B)` is "B after A" (first A, then B), i.e. B @ A in 3x3 form.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import PIL
from PIL import Image

Box = np.ndarray  # (4,) [x0, y0, x1, y1]

# Pillow >= 9.1 has the Image.Resampling / Image.Transform enums; bullseye's Pillow 8.1 has only
# the module constants (Image.BILINEAR, Image.AFFINE), which newer Pillows keep as well.
_Resampling = getattr(Image, "Resampling", Image)
_Transform = getattr(Image, "Transform", Image)

#: Pillow >= 9.1 names it Image.Transpose.FLIP_LEFT_RIGHT, Pillow 8.1 Image.FLIP_LEFT_RIGHT
_FLIP_LEFT_RIGHT = getattr(Image, "Transpose", Image).FLIP_LEFT_RIGHT

_RESAMPLE = {
    "nearest": _Resampling.NEAREST,
    "bilinear": _Resampling.BILINEAR,
    "bicubic": _Resampling.BICUBIC,
}


# --------------------------------------------------------------------------------------- boxes


def box_size(box: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """(width, height) of a box [x0, y0, x1, y1]."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return x1 - x0, y1 - y0


def square_crop_box(box: Sequence[float] | np.ndarray, scale: float = 1.0) -> np.ndarray:
    """The square centred on `box` with side max(w, h) * scale, as float64 (4,) [x0, y0, x1, y1].

    Not clipped to the image (see `clip_box`): a crop that leaves the image is filled, so the
    hand keeps its aspect ratio.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    half = max(x1 - x0, y1 - y0) * float(scale) / 2.0
    return np.array([cx - half, cy - half, cx + half, cy + half], np.float64)


def clip_box(box: Sequence[float] | np.ndarray, width: float, height: float) -> np.ndarray:
    """`box` clipped to the image [0, width] x [0, height], float64 (4,)."""
    b = np.asarray(box, np.float64).copy()
    b[[0, 2]] = np.clip(b[[0, 2]], 0.0, float(width))
    b[[1, 3]] = np.clip(b[[1, 3]], 0.0, float(height))
    return b


def center_square(width: int, height: int) -> np.ndarray:
    """Box of the centred square of side min(width, height) in a width x height frame."""
    side = float(min(width, height))
    x0, y0 = (width - side) / 2.0, (height - side) / 2.0
    return np.array([x0, y0, x0 + side, y0 + side], np.float64)


def transform_boxes(boxes: np.ndarray, M: np.ndarray) -> np.ndarray:
    """Axis-aligned boxes (N, 4) mapped by affine M: the tight box around the 4 mapped corners.

    Exact for scale/translation/mirror affines; for rotations it is the enclosing box.
    """
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    corners = np.stack(
        [b[:, [0, 1]], b[:, [2, 1]], b[:, [0, 3]], b[:, [2, 3]]], axis=1
    )  # (N, 4, 2)
    mapped = apply_affine(corners.reshape(-1, 2), M).reshape(-1, 4, 2)
    return np.concatenate([mapped.min(axis=1), mapped.max(axis=1)], axis=1)


# ------------------------------------------------------------------------------------ affines


def as_affine(M: np.ndarray) -> np.ndarray:
    """`M` as float64 (2, 3); accepts (2, 3) or (3, 3) with last row [0, 0, 1]."""
    M = np.asarray(M, np.float64)
    if M.shape == (3, 3):
        M = M[:2]
    if M.shape != (2, 3):
        raise ValueError(f"an affine must have shape (2, 3), got {M.shape}")
    return M


def _to3(M: np.ndarray) -> np.ndarray:
    return np.vstack([as_affine(M), [0.0, 0.0, 1.0]])


def identity_affine() -> np.ndarray:
    """The (2, 3) identity."""
    return np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def invert_affine(M: np.ndarray) -> np.ndarray:
    """Inverse (2, 3) of an affine: if M maps p -> q, invert_affine(M) maps q -> p.

    Closed form, M = [A | t] -> [A^-1 | -A^-1 t] with A^-1 = [[d, -b], [-c, a]] / (ad - bc):
    no LAPACK call, which on the hot path wakes OpenBLAS's worker threads (milliseconds of CPU
    per frame on a busy machine). Raises `np.linalg.LinAlgError` for a singular M.
    """
    (a, b, tx), (c, d, ty) = as_affine(M).tolist()
    det = a * d - b * c
    if det == 0.0 or not np.isfinite(det):
        raise np.linalg.LinAlgError(f"singular affine {[[a, b, tx], [c, d, ty]]}")
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    return np.array([[ia, ib, -(ia * tx + ib * ty)], [ic, id_, -(ic * tx + id_ * ty)]])


def compose_affine(first: np.ndarray, then: np.ndarray) -> np.ndarray:
    """The affine that applies `first`, then `then` (3x3 product then @ first), (2, 3)."""
    return (_to3(then) @ _to3(first))[:2]


def apply_affine(points: np.ndarray, M: np.ndarray) -> np.ndarray:
    """Points (N, 2) (or (..., 2)) mapped by M: q = M[:, :2] @ p + M[:, 2]. Keeps float dtype."""
    p = np.asarray(points)
    M = as_affine(M)
    dtype = p.dtype if np.issubdtype(p.dtype, np.floating) else np.float64
    q = p.astype(np.float64) @ M[:, :2].T + M[:, 2]
    return q.astype(dtype)


def crop_affine(
    box_square: Sequence[float] | np.ndarray, out_size: int, mirror: bool = False
) -> np.ndarray:
    """Affine (2, 3) from source pixels to the pixels of an out_size x out_size crop of a box.

    With box [x0, y0, x1, y1], sx = out_size / (x1 - x0), sy = out_size / (y1 - y0):
        x' = (x - x0) * sx,  y' = (y - y0) * sy;  with mirror: x' = out_size - (x - x0) * sx.
    (A square box gives sx = sy; a non-square box is stretched to fill the crop.)
    """
    x0, y0, x1, y1 = (float(v) for v in box_square)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"crop box must have positive size, got {[x0, y0, x1, y1]}")
    sx, sy = out_size / (x1 - x0), out_size / (y1 - y0)
    if mirror:
        return np.array([[-sx, 0.0, out_size + sx * x0], [0.0, sy, -sy * y0]])
    return np.array([[sx, 0.0, -sx * x0], [0.0, sy, -sy * y0]])


def resize_affine(
    src_size: tuple[float, float] | float, dst_size: tuple[float, float] | float
) -> np.ndarray:
    """Affine of a resize from src_size (w, h) to dst_size (w, h): p -> (p.x * dw/sw, p.y * dh/sh).

    A scalar size means a square of that side.
    """
    sw, sh = (src_size, src_size) if np.isscalar(src_size) else src_size
    dw, dh = (dst_size, dst_size) if np.isscalar(dst_size) else dst_size
    return np.array([[dw / sw, 0.0, 0.0], [0.0, dh / sh, 0.0]])


def mirror_affine(width: float) -> np.ndarray:
    """Horizontal flip of an image of the given width: x' = width - x."""
    return np.array([[-1.0, 0.0, float(width)], [0.0, 1.0, 0.0]])


def rotation_affine(
    center: Sequence[float],
    angle_deg: float,
    scale: float = 1.0,
    shift: Sequence[float] = (0.0, 0.0),
) -> np.ndarray:
    """Rotation by angle_deg about `center`, scaled by `scale`, then translated by `shift` px.

    Positive angles turn the image counter-clockwise as it appears on screen (y down), like
    OpenCV's getRotationMatrix2D:
        q = R (p - c) * scale + c + shift,  R = [[cos a, sin a], [-sin a, cos a]].
    """
    a = np.deg2rad(float(angle_deg))
    c, s = np.cos(a) * scale, np.sin(a) * scale
    cx, cy = (float(v) for v in center)
    dx, dy = (float(v) for v in shift)
    return np.array(
        [
            [c, s, cx - c * cx - s * cy + dx],
            [-s, c, cy + s * cx - c * cy + dy],
        ]
    )


def affine_scale(M: np.ndarray) -> float:
    """Geometric-mean scale factor of an affine (sqrt |det| of its linear part)."""
    (a, b, _), (c, d, _) = as_affine(M).tolist()
    return float(np.sqrt(abs(a * d - b * c)))


def largest_scale(M: np.ndarray) -> float:
    """Largest factor by which M stretches a length (the larger singular value of its linear
    part A), closed form: s^2 = (|A|_F^2 + sqrt(|A|_F^4 - 4 det(A)^2)) / 2; exact max(|a|, |d|)
    for an axis-aligned A."""
    (a, b, _), (c, d, _) = as_affine(M).tolist()
    if b == 0.0 and c == 0.0:
        return max(abs(a), abs(d))
    frob = a * a + b * b + c * c + d * d
    det = a * d - b * c
    return float(np.sqrt((frob + np.sqrt(max(frob * frob - 4.0 * det * det, 0.0))) / 2.0))


# ------------------------------------------------------------------------------------ warping


def warp_image(
    image: np.ndarray,
    M: np.ndarray,
    out_size: int | tuple[int, int],
    fill: int | tuple[int, int, int] = 0,
    resample: str = "bilinear",
    out: np.ndarray | None = None,
    antialias: bool = True,
) -> np.ndarray:
    """Warp an RGB uint8 (H, W, 3) image by the affine M (source px -> output px).

    Args:
        image: uint8 (H, W, 3) (or (H, W) grey).
        M: (2, 3) affine mapping source pixel coordinates to output pixel coordinates.
        out_size: S for an S x S output, or (height, width).
        fill: value of output pixels whose source lies outside the image.
        resample: "nearest", "bilinear" or "bicubic".
        out: optional uint8 (h, w, 3) array written in place and returned.
        antialias: when M shrinks by 2x or more, first box-average the source by an integer
            factor f = floor(1 / largest scale) (Pillow `reduce`, which maps p -> p / f exactly)
            so the bilinear sampling does not alias. The point mapping is unchanged.

    Returns:
        uint8 (h, w, 3): out[q] = image[M^-1 q], sampled with Pillow's continuous-coordinate
        convention (output pixel centre (j + 0.5, i + 0.5) samples the source at
        M^-1 (j + 0.5, i + 0.5)), so a feature at p appears at M p.
    """
    if resample not in _RESAMPLE:
        raise ValueError(f"resample must be one of {tuple(_RESAMPLE)}, got {resample!r}")
    h, w = (out_size, out_size) if np.isscalar(out_size) else (int(v) for v in out_size)
    h, w = int(h), int(w)
    M = as_affine(M)
    if image.dtype != np.uint8:
        raise ValueError(f"warp_image needs a uint8 image, got {image.dtype}")
    # only the source region the output sees is handed to Pillow (no full-frame copy per crop)
    largest = largest_scale(M)
    factor = int(np.floor(1.0 / largest)) if largest > 0 and antialias else 1
    factor = 1 if resample == "nearest" else max(1, factor)
    corners = np.array([[0.0, 0.0], [w, 0.0], [0.0, h], [w, h]])
    pre = apply_affine(corners, invert_affine(M))
    margin = 3 + 2 * factor
    x0, y0 = np.maximum(np.floor(pre.min(axis=0)) - margin, 0).astype(int)
    x1 = int(min(np.ceil(pre[:, 0].max()) + margin, image.shape[1]))
    y1 = int(min(np.ceil(pre[:, 1].max()) + margin, image.shape[0]))
    if x1 <= x0 or y1 <= y0:  # the output lies entirely outside the image
        x0, y0, x1, y1 = 0, 0, 1, 1
        outside = True
    else:
        outside = False
    src = np.ascontiguousarray(image[y0:y1, x0:x1])
    M = compose_affine(np.array([[1.0, 0.0, x0], [0.0, 1.0, y0]]), M)  # region px -> output
    pil = Image.fromarray(src)
    factor = min(factor, src.shape[0], src.shape[1])
    if factor >= 2:
        pil = pil.reduce(factor)
        M = compose_affine(resize_affine(1.0, factor), M)  # reduced px -> region px -> out
    inverse = invert_affine(M)
    if isinstance(fill, (int, np.integer)) and pil.mode == "RGB":
        fillcolor: int | tuple[int, ...] = (int(fill),) * 3
    elif isinstance(fill, (int, np.integer)):
        fillcolor = int(fill)
    else:
        fillcolor = tuple(int(v) for v in fill)
    warped = pil.transform(
        (w, h),
        _Transform.AFFINE,
        tuple(inverse.reshape(6)),
        resample=_RESAMPLE[resample],
        fillcolor=fillcolor,
    )
    result = np.asarray(warped)
    if outside:
        result = np.empty_like(result)
        result[...] = np.asarray(fillcolor, np.uint8)
    if out is not None:
        if out.shape != result.shape or out.dtype != np.uint8:
            raise ValueError(
                f"out must be uint8 {result.shape}, got {out.dtype} {tuple(out.shape)}"
            )
        np.copyto(out, result)
        return out
    return np.array(result)  # writable copy


def _inside(start: float, step: float, limit: int, count: int) -> tuple[int, int]:
    """Output pixels [a, b) of a resize whose footprints [start + j step, start + (j+1) step]
    lie inside the source [0, limit] (a small tolerance for rounding)."""
    a = int(np.ceil(-start / step - 1e-6))
    b = int(np.floor((limit - start) / step + 1e-6))
    return min(max(a, 0), count), min(max(b, 0), count)


def resize_box(
    image: np.ndarray,
    box: Sequence[float] | np.ndarray,
    out_size: int | tuple[int, int],
    mirror: bool = False,
    out: np.ndarray | None = None,
    antialias: bool = True,
    fill: int = 0,
) -> np.ndarray:
    """The box [x0, y0, x1, y1] (real px, may leave the image) of an RGB uint8 image resized to
    out_size and, with `mirror`, flipped left-right: `warp_image(image, crop_affine(box, size,
    mirror), size)` for the crops and the detector input, in one Pillow resize (2-4x faster
    than the affine transform).

    Same point mapping as `crop_affine`: output pixel (row i, col j) samples the source around
    (x0 + (j + 0.5) sx, y0 + (i + 0.5) sy), sx = (x1 - x0) / w, sy = (y1 - y0) / h; mirrored,
    it lands in column w - 1 - j. Pixels: Pillow's separable resize instead of its affine
    transform. Enlarging, both are bilinear interpolation (equal up to rounding, +-1). Shrinking
    by f = floor(min(sx, sy)) >= 2 (with `antialias`), both first box-average by f (`reduce`);
    then the resize's triangle filter spans the remaining scale (1 to 2 source px) where the
    transform samples one point, a little smoother. Output pixels not wholly inside the image
    are `fill` (the transform blends the one edge pixel that is partly inside with it).

    Args:
        image: uint8 (H, W, 3).
        box: [x0, y0, x1, y1] with x1 > x0, y1 > y0.
        out_size: S for S x S, or (h, w).
        mirror: flip the output left-right.
        out: optional uint8 (h, w, 3) written in place and returned.
        antialias: box-average first when shrinking by 2x or more (see above).
        fill: value of the pixels outside the image.
    Returns:
        uint8 (h, w, 3), `out` when given.
    """
    h, w = (out_size, out_size) if np.isscalar(out_size) else out_size
    h, w = int(h), int(w)
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"resize_box needs uint8 (H, W, 3), got {image.dtype} {image.shape}")
    if out is None:
        out = np.empty((h, w, image.shape[2]), np.uint8)
    elif out.shape != (h, w, image.shape[2]) or out.dtype != np.uint8:
        raise ValueError(
            f"out must be uint8 {(h, w, image.shape[2])}, got {out.dtype} {tuple(out.shape)}"
        )
    height, width = image.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    if not x1 > x0 or not y1 > y0:
        raise ValueError(f"box must have positive size, got {[x0, y0, x1, y1]}")
    sx, sy = (x1 - x0) / w, (y1 - y0) / h
    ja, jb = _inside(x0, sx, width, w)
    ia, ib = _inside(y0, sy, height, h)
    if (ia, ib, ja, jb) != (0, h, 0, w):
        out[...] = fill
        if ja >= jb or ia >= ib:
            return out
    # the source box of the pixels inside, and the region of the image the filter reads
    bx0, bx1 = max(x0 + ja * sx, 0.0), min(x0 + jb * sx, float(width))
    by0, by1 = max(y0 + ia * sy, 0.0), min(y0 + ib * sy, float(height))
    factor = max(int(min(sx, sy)), 1) if antialias else 1
    margin = 3 + 2 * factor  # as warp_image: the same reduce grid where the region is not clipped
    rx0, rx1 = max(int(bx0) - margin, 0), min(int(np.ceil(bx1)) + margin, width)
    ry0, ry1 = max(int(by0) - margin, 0), min(int(np.ceil(by1)) + margin, height)
    pil = _region_image(image, rx0, ry0, rx1, ry1)
    if factor >= 2:
        pil = pil.reduce(factor)  # reduced px p' covers region px [p' f, (p' + 1) f)
    scaled = (
        (bx0 - rx0) / factor,
        (by0 - ry0) / factor,
        min((bx1 - rx0) / factor, pil.size[0]),
        min((by1 - ry0) / factor, pil.size[1]),
    )
    resized = pil.resize((jb - ja, ib - ia), _RESAMPLE["bilinear"], box=scaled)
    if mirror:  # Pillow's flip: 4x faster than copying a reversed numpy view into `out`
        resized = resized.transpose(_FLIP_LEFT_RIGHT)
        ja, jb = w - jb, w - ja
    out[ia:ib, ja:jb] = np.asarray(resized)
    return out


#: Pillow >= 10 decodes from a memoryview of the frame; older ones want read-only bytes
_FROMBUFFER_VIEWS = int(PIL.__version__.split(".")[0]) >= 10


def _region_image(image: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> Image.Image:
    """The Pillow RGB image of image[y0:y1, x0:x1] (uint8 (H, W, 3)), decoded straight from
    the frame's rows (Pillow's raw decoder with the frame's row stride): no numpy copy of the
    region first, which `Image.fromarray` of the strided view would make (10x slower still).
    Pillow before 10 (bullseye's 8.1.2, bookworm's 9.4.0) takes only read-only bytes there, so
    it gets the copy."""
    if not _FROMBUFFER_VIEWS or not image.flags.c_contiguous or image.shape[2] != 3:
        return Image.fromarray(np.ascontiguousarray(image[y0:y1, x0:x1]))
    stride = image.strides[0]
    start = y0 * stride + x0 * image.strides[1]
    data = memoryview(image.reshape(-1))[start:]
    return Image.frombuffer("RGB", (x1 - x0, y1 - y0), data, "raw", "RGB", stride, 1)
