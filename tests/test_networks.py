"""Networks: output names and shapes, box count, padding modes, weights by name."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from models.networks.detector import (  # noqa: E402
    build_detector,
    extra_channels,
    num_boxes,
    source_grids,
)
from models.networks.mobilenetv2 import channels  # noqa: E402
from models.networks.pose import build_pose, pose_grid  # noqa: E402
from models.networks.weights import load_weights_by_name, save_weights_npz  # noqa: E402


def test_channel_rule_and_grids():
    assert channels(16, 0.35) == 8 and channels(32, 0.5) == 16 and channels(320, 1.0) == 320
    assert extra_channels(128, 0.35) == (22, 44) and extra_channels(128, 0.1) == (8, 16)
    # the seed's detector: plain int(d * width) (min_channels=1)
    assert channels(16, 0.25, 1) == 4 and extra_channels(128, 0.1, 1) == (6, 12)
    assert source_grids(224) == [28, 14, 7, 4, 2, 1]
    assert source_grids(256) == [32, 16, 8, 4, 2, 1]
    assert num_boxes(224) == 2 * (784 + 196 + 49 + 16 + 4 + 1)
    assert pose_grid(224) == 7 and pose_grid(96) == 3


@pytest.mark.parametrize("width,size", [(0.35, 224), (0.5, 128), (0.75, 96), (1.0, 160)])
def test_detector_shapes(width, size):
    model = build_detector(width=width, input_size=size, classes=("left", "right"))
    out = model(np.zeros((2, size, size, 3), np.float32))
    n = num_boxes(size)
    assert out["locations"].shape == (2, n, 4)
    assert out["scores"].shape == (2, n, 3)
    names = {layer.name for layer in model.layers}
    for name in (
        "conv0_conv",
        "conv3_expand_conv",
        "conv3_depthwise_bn",
        "conv18_conv",
        "conv22_pointwise_conv",
        "loc5_pointwise_conv",
        "conf0_depthwise_conv",
    ):
        assert name in names
    assert model.get_layer("conv14_expand_relu").output.shape[-1] == 6 * channels(96, width)


def test_detector_box_count_matches_codec():
    boxes = pytest.importorskip("handpose.codec.boxes")
    assert len(boxes.default_boxes(boxes.DefaultBoxConfig(input_size=224))) == num_boxes(224)
    for size in (256, 128, 96):
        config = boxes.DefaultBoxConfig(input_size=size, grids=tuple(source_grids(size)))
        assert len(boxes.default_boxes(config)) == num_boxes(size)


def test_detector_single_class():
    model = build_detector(width=0.35, input_size=96, classes=("hand",))
    assert model.output["scores"].shape[-1] == 2


@pytest.mark.parametrize("width,size", [(0.35, 224), (0.5, 96), (0.75, 128), (1.0, 224)])
def test_pose_shapes_and_ranges(width, size):
    model = build_pose(width=width, input_size=size)
    x = np.random.default_rng(0).uniform(0, 255, (1, size, size, 3)).astype(np.float32)
    out = model(x)
    g = pose_grid(size)
    assert out["pose"].shape == (1, g, g, 126)
    assert out["vect"].shape == (1, g, g, 60)
    pose, vect = np.asarray(out["pose"]), np.asarray(out["vect"])
    assert pose.min() >= 0 and pose.max() <= 1 and vect.min() >= -1 and vect.max() <= 1
    assert "conv18_conv" not in {layer.name for layer in model.layers}


def test_normalisation_inside_models():
    x = np.full((1, 96, 96, 3), 255.0, np.float32)
    det = build_detector(width=0.35, input_size=96)
    pose = build_pose(width=0.35, input_size=96)
    assert np.allclose(det.get_layer("normalize")(x), 1.0)
    assert np.allclose(pose.get_layer("normalize")(x), 0.5)
    assert "normalize" not in {la.name for la in build_pose(0.35, 96, normalize=False).layers}


def test_symmetric_padding_matches_keras_away_from_borders():
    """Same weights, both paddings: stride-2 convs differ by where the zero row/column falls.

    With a 1x1 stem-only check: the first conv's output agrees in the interior shifted by the
    padding offset, and the padding layers exist only in symmetric mode.
    """
    sym = build_pose(width=0.35, input_size=64, padding="symmetric")
    ker = build_pose(width=0.35, input_size=64, padding="keras")
    sym_names = {la.name for la in sym.layers}
    assert {"conv0_pad", "conv2_depthwise_pad", "conv14_depthwise_pad"} <= sym_names
    assert not any(name.endswith("_pad") for name in {la.name for la in ker.layers})
    ker.set_weights(sym.get_weights())
    x = np.random.default_rng(1).uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)
    a = keras.Model(sym.input, sym.get_layer("conv0_conv").output)(x)
    b = keras.Model(ker.input, ker.get_layer("conv0_conv").output)(x)
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape == (1, 32, 32, 11)
    # keras "same" pads only bottom/right for even sizes: its output pixel i reads input rows
    # 2i .. 2i+2; symmetric reads 2i-1 .. 2i+1, so the two never coincide ...
    assert not np.allclose(a, b)
    # ... but with the input shifted by one pixel they agree everywhere away from the border
    shifted = np.zeros_like(x)
    shifted[:, 1:, 1:] = x[:, :-1, :-1]
    c = np.asarray(keras.Model(ker.input, ker.get_layer("conv0_conv").output)(shifted))
    np.testing.assert_allclose(a[:, 1:-1, 1:-1], c[:, 1:-1, 1:-1], rtol=1e-4, atol=1e-3)


def test_weights_by_name_roundtrip(tmp_path):
    source = build_pose(width=0.35, input_size=96)
    path = tmp_path / "backbone.npz"
    save_weights_npz(source, path)
    target = build_detector(width=0.35, input_size=96, classes=("hand",), backbone_weights=path)
    np.testing.assert_array_equal(
        target.get_layer("conv5_project_conv").get_weights()[0],
        source.get_layer("conv5_project_conv").get_weights()[0],
    )
    # the detector's stem has 32 channels, the pose stem 11 at width 0.35: skipped, not loaded
    loaded, skipped = load_weights_by_name(build_detector(0.35, 96, ("hand",)), path)
    assert loaded > 50 and skipped >= 1
