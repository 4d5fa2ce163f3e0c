"""handpose.geometry: boxes, affines and image warping agree with the point mapping."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handpose import geometry as g


def gaussian_dot(width: int, height: int, center: tuple[float, float], sigma: float) -> np.ndarray:
    """RGB uint8 image with a Gaussian blob at continuous point `center` (only in channel 0)."""
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    blob = np.exp(-((xs - center[0]) ** 2 + (ys - center[1]) ** 2) / (2 * sigma**2))
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = np.round(255 * blob).astype(np.uint8)
    image[..., 1] = 7  # a constant channel to check fill vs content
    return image


def centroid(channel: np.ndarray) -> np.ndarray:
    """Intensity centroid (x, y) in continuous pixel coordinates."""
    w = channel.astype(np.float64)
    ys, xs = np.mgrid[0 : w.shape[0], 0 : w.shape[1]] + 0.5
    return np.array([(w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()])


def test_square_crop_box_centred_and_not_clipped():
    box = g.square_crop_box([10, 20, 50, 40], scale=1.5)
    np.testing.assert_allclose(box, [0, 0, 60, 60])
    # a box at the image corner gives a square that leaves the image
    box = g.square_crop_box([-5, 0, 5, 30], 1.0)
    np.testing.assert_allclose(box, [-15, 0, 15, 30])
    np.testing.assert_allclose(g.clip_box(box, 20, 20), [0, 0, 15, 20])


def test_center_square():
    np.testing.assert_allclose(g.center_square(640, 480), [80, 0, 560, 480])
    np.testing.assert_allclose(g.center_square(300, 500), [0, 100, 300, 400])


def test_crop_affine_maps_box_corners():
    box = [100.0, 50.0, 300.0, 250.0]
    M = g.crop_affine(box, 224)
    np.testing.assert_allclose(
        g.apply_affine(np.array([[100, 50], [300, 250]]), M), [[0, 0], [224, 224]]
    )
    Mm = g.crop_affine(box, 224, mirror=True)
    np.testing.assert_allclose(
        g.apply_affine(np.array([[100, 50], [300, 250], [150, 100]]), Mm),
        [[224, 0], [0, 224], [224 - 56, 56]],
        atol=1e-9,
    )


def test_resize_and_rotation_affines():
    R = g.resize_affine((640, 480), (320, 120))
    np.testing.assert_allclose(g.apply_affine(np.array([[640.0, 480.0]]), R), [[320, 120]])
    # +90 degrees about (10, 10): a point to the right of the centre goes up on screen
    M = g.rotation_affine((10, 10), 90.0, scale=2.0, shift=(1, 0))
    np.testing.assert_allclose(g.apply_affine(np.array([[11.0, 10.0]]), M), [[11, 8]], atol=1e-9)
    assert g.affine_scale(M) == pytest.approx(2.0)


def test_transform_boxes():
    M = g.crop_affine([0, 0, 100, 100], 50, mirror=True)
    np.testing.assert_allclose(
        g.transform_boxes(np.array([[10, 20, 30, 40]]), M), [[35, 10, 45, 20]]
    )


affines = st.tuples(
    st.floats(-180, 180), st.floats(0.3, 3.0), st.floats(-50, 50), st.floats(-50, 50), st.booleans()
)


@settings(max_examples=50, deadline=None)
@given(affines, st.lists(st.floats(-500, 500), min_size=10, max_size=10))
def test_affine_round_trip(params, coords):
    angle, scale, dx, dy, mirror = params
    M = g.rotation_affine((40, 30), angle, scale, (dx, dy))
    if mirror:
        M = g.compose_affine(M, g.mirror_affine(100))
    points = np.asarray(coords, np.float64).reshape(5, 2)
    back = g.apply_affine(g.apply_affine(points, M), g.invert_affine(M))
    np.testing.assert_allclose(back, points, atol=1e-7)


def test_compose_order():
    A = g.resize_affine(1, 2)  # scale by 2
    B = np.array([[1.0, 0.0, 5.0], [0.0, 1.0, 0.0]])  # shift x by 5
    p = np.array([[1.0, 1.0]])
    np.testing.assert_allclose(g.apply_affine(p, g.compose_affine(A, B)), [[7, 2]])
    np.testing.assert_allclose(g.apply_affine(p, g.compose_affine(B, A)), [[12, 2]])


def test_apply_affine_keeps_float32():
    out = g.apply_affine(np.zeros((3, 2), np.float32), g.identity_affine())
    assert out.dtype == np.float32 and out.shape == (3, 2)


@pytest.mark.parametrize("mirror", [False, True])
@pytest.mark.parametrize(
    "box,out_size",
    [
        ([50.0, 40.0, 90.0, 80.0], 160),  # 4x up
        ([55.5, 47.25, 85.5, 77.25], 224),  # ~7.5x up, sub-pixel box
        ([0.0, 0.0, 160.0, 160.0], 80),  # 2x down (antialias reduce path)
        ([-40.0, -20.0, 200.0, 220.0], 56),  # ~4.3x down, leaves the image
    ],
)
def test_warped_dot_lands_where_the_affine_maps_it(box, out_size, mirror):
    dot = (70.3, 61.8)
    image = gaussian_dot(160, 120, dot, sigma=4.0)
    M = g.crop_affine(box, out_size, mirror)
    warped = g.warp_image(image, M, out_size)
    expected = g.apply_affine(np.array([dot]), M)[0]
    got = centroid(warped[..., 0])
    assert np.abs(got - expected).max() < 0.5, (got, expected)


@pytest.mark.parametrize("resample", ["nearest", "bilinear", "bicubic"])
def test_warp_rotation_and_resample_modes(resample):
    dot = (30.0, 20.0)
    image = gaussian_dot(64, 48, dot, sigma=2.5)
    M = g.rotation_affine((32, 24), 37.0, scale=1.7, shift=(3, -2))
    warped = g.warp_image(image, M, (60, 70), resample=resample)
    assert warped.shape == (60, 70, 3)
    expected = g.apply_affine(np.array([dot]), M)[0]
    assert np.abs(centroid(warped[..., 0]) - expected).max() < 0.5


def test_warp_fill_and_out_buffer():
    image = np.full((20, 10, 3), 200, np.uint8)
    M = g.crop_affine([-10, 0, 10, 20], 20)  # left half of the output lies outside the image
    out = np.zeros((20, 20, 3), np.uint8)
    result = g.warp_image(image, M, 20, fill=(1, 2, 3), out=out)
    assert result is out
    assert (out[:, :9] == [1, 2, 3]).all()
    assert (out[:, 11:] == 200).all()
    with pytest.raises(ValueError):
        g.warp_image(image, M, 20, out=np.zeros((19, 20, 3), np.uint8))


def test_warp_identity_is_exact():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    for resample in ("nearest", "bilinear"):
        out = g.warp_image(image, g.identity_affine(), (17, 23), resample=resample)
        np.testing.assert_array_equal(out, image)


def test_mirror_warp_is_fliplr():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    out = g.warp_image(image, g.mirror_affine(16), (12, 16))
    np.testing.assert_array_equal(out, image[:, ::-1])


@pytest.mark.parametrize("resample", ["nearest", "bilinear", "bicubic"])
def test_warp_of_a_region_equals_pillow_on_the_full_image(resample):
    """warp_image hands Pillow only the region the output sees: same pixels as the full frame."""
    from PIL import Image

    rng = np.random.default_rng(2)
    frame = rng.integers(0, 256, (120, 200, 3), dtype=np.uint8)
    for M in (
        g.crop_affine(g.square_crop_box([150, 80, 190, 130], 1.3), 64, mirror=True),  # at a corner
        g.rotation_affine((60, 50), 25.0, 1.4, (-20, 5)),
    ):
        got = g.warp_image(frame, M, (48, 64), resample=resample, antialias=False)
        full = Image.fromarray(frame).transform(
            (64, 48),
            Image.Transform.AFFINE,
            tuple(g.invert_affine(M).reshape(6)),
            resample={"nearest": 0, "bilinear": 2, "bicubic": 3}[resample],
        )
        np.testing.assert_array_equal(got, np.asarray(full))


def test_warp_entirely_outside_is_fill():
    image = np.full((10, 10, 3), 200, np.uint8)
    M = g.crop_affine([100, 100, 120, 120], 16)
    np.testing.assert_array_equal(g.warp_image(image, M, 16, fill=9), np.full((16, 16, 3), 9))


def test_closed_form_inverse_and_scales_equal_lapack():
    rng = np.random.default_rng(3)
    for _ in range(200):
        M = rng.normal(size=(2, 3)) * rng.uniform(0.01, 100)
        np.testing.assert_allclose(
            g.invert_affine(M), np.linalg.inv(np.vstack([M, [0, 0, 1]]))[:2], rtol=1e-9, atol=1e-9
        )
        assert g.largest_scale(M) == pytest.approx(np.linalg.svd(M[:, :2], compute_uv=False)[0])
        assert g.affine_scale(M) == pytest.approx(np.sqrt(abs(np.linalg.det(M[:, :2]))))
    assert g.largest_scale(g.crop_affine([0, 0, 448, 224], 224, mirror=True)) == 1.0  # exact
    with pytest.raises(np.linalg.LinAlgError):
        g.invert_affine(np.zeros((2, 3)))


@pytest.mark.parametrize("mirror", [False, True])
@pytest.mark.parametrize(
    "box",
    [
        [300.3, 200.7, 420.1, 330.2],  # enlarged about 1.8x, sub-pixel box
        [55.5, 47.25, 85.5, 77.25],  # about 7.5x
        [-20.3, 300.7, 100.1, 470.2],  # leaves the frame on the left
    ],
)
def test_resize_box_enlarging_is_the_warp_up_to_rounding(box, mirror):
    from PIL import Image

    noise = np.random.default_rng(4).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    frame = np.asarray(Image.fromarray(noise).resize((640, 480)))  # smooth, as camera frames
    out = np.full((224, 224, 3), 99, np.uint8)
    got = g.resize_box(frame, box, 224, mirror, out=out)
    assert got is out
    want = g.warp_image(frame, g.crop_affine(box, 224, mirror), 224).astype(int)
    diff = np.abs(got.astype(int) - want)
    if box[0] < 0:  # the column where the frame edge falls: black here, blended by the warp
        edge = int(np.ceil(-box[0] * 224 / (box[2] - box[0])))
        column = 223 - edge if mirror else edge
        diff[:, max(column - 1, 0) : column + 1] = 0
        outside = got[:, 224 - edge + 1 :] if mirror else got[:, : edge - 1]
        assert (outside == 0).all()
    assert diff.max() <= 1


@pytest.mark.parametrize("mirror", [False, True])
@pytest.mark.parametrize(
    "box,out_size",
    [
        ([50.0, 40.0, 90.0, 80.0], 160),  # 4x up
        ([0.0, 0.0, 160.0, 160.0], 80),  # 2x down (reduce path)
        ([-40.0, -20.0, 200.0, 220.0], 56),  # ~4.3x down, leaves the image
        ([10.0, 5.0, 130.0, 125.0], 80),  # 1.5x down, no reduce
    ],
)
def test_resized_dot_lands_where_the_affine_maps_it(box, out_size, mirror):
    dot = (70.3, 61.8)
    image = gaussian_dot(160, 120, dot, sigma=4.0)
    got = centroid(g.resize_box(image, box, out_size, mirror)[..., 0])
    expected = g.apply_affine(np.array([dot]), g.crop_affine(box, out_size, mirror))[0]
    assert np.abs(got - expected).max() < 0.5, (got, expected)


def test_resize_box_outside_and_errors():
    image = np.full((10, 10, 3), 200, np.uint8)
    np.testing.assert_array_equal(
        g.resize_box(image, [100, 100, 120, 120], 16, fill=9), np.full((16, 16, 3), 9)
    )
    np.testing.assert_array_equal(g.resize_box(image, [0, 0, 10, 10], (5, 20)), 200)
    with pytest.raises(ValueError):
        g.resize_box(image, [5, 5, 5, 9], 16)
    with pytest.raises(ValueError):
        g.resize_box(image, [0, 0, 10, 10], 16, out=np.zeros((15, 16, 3), np.uint8))


@pytest.mark.parametrize(
    "box", [[300.3, 200.7, 420.1, 330.2], [-20.3, 10.7, 500.1, 470.2], [80.0, 0.0, 560.0, 480.0]]
)
def test_resize_box_reads_frame_rows_in_place_with_the_pixels_of_a_copied_region(box):
    """The region is decoded from the frame's rows (no copy first): the same pixels as a
    C-contiguous copy, and as a frame that is itself a strided view."""
    frame = np.random.default_rng(5).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    wide = np.zeros((480, 700, 3), np.uint8)
    wide[:, 30:670] = frame
    view = wide[:, 30:670]  # rows 700 px apart: not C-contiguous
    region = g._region_image(frame, 7, 11, 301, 203)
    np.testing.assert_array_equal(np.asarray(region), frame[11:203, 7:301])
    want = g.resize_box(frame.copy(), box, 224, True)
    np.testing.assert_array_equal(g.resize_box(frame, box, 224, True), want)
    np.testing.assert_array_equal(g.resize_box(view, box, 224, True), want)
