"""SSDLite hand detector on MobileNetV2 (`build_detector`).

Input: float RGB 0..255, (B, S, S, 3). With `normalize=True` the model maps it to [-1, 1]
(x / 127.5 - 1) in its first layer ("normalize"), so an int8 TFLite model takes camera pixels
directly; with `normalize=False` the network sees raw 0..255 (the seed's "mean 0" input, for
imported Chainer weights).

Six source maps (strides 8, 16, 32, 64, 128, 256; grids 28, 14, 7, 4, 2, 1 at S = 224):
    0: output of conv6 (end of the 32-channel stage)
    1: conv14's 576-channel expansion (ReLU6 output, inside the first 160-channel block)
    2: conv18, the final 1x1 conv to 1280 channels
    3, 4, 5: extra blocks conv19, conv20, conv22 (1x1 conv to c/2 -> 3x3 depthwise stride 2 ->
       1x1 conv to c, ReLU6 each; c = max(int(base * width), 2 * min_channels) for base 512,
       256, 128, c/2 = max(c // 2, min_channels)). The names follow the seed, where conv22 is
       applied to conv20 (its conv21 fed nothing).
Channels: the backbone rule max(int(d * width), min_channels) (`mobilenetv2.channels`), conv18
has `top_channels`; `min_channels=1` and `top_channels=int(1280 * width)` give the seed's
detector exactly (its rule was int(d * width) everywhere, see conversion.chainer_import).
Heads per source map i: `loc{i}` and `conf{i}`, each a 3x3 depthwise conv + BN + ReLU6 then a 1x1
conv with bias (`head_bn=True`: without bias + BN, the seed's layout; an importer can also fold
the seed's BN into the bias): 4 values per default box for locations, C + 1 class logits per box
(background = index 0). Outputs, flattened cell-major (row, column) then the 2 default boxes of
the cell, maps in order:
    "locations": (B, N, 4) SSD offsets (see handpose.codec.boxes.encode)
    "scores":    (B, N, C + 1) logits (decode applies the softmax)
N = 2 * sum(grid_i ** 2) = len(default_boxes(DefaultBoxConfig(S))).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
from keras import layers

from models.networks.mobilenetv2 import BN_EPSILON, BN_MOMENTUM, conv_bn, mobilenetv2_features

BOXES_PER_CELL = 2
EXTRA_CHANNELS: tuple[tuple[str, int], ...] = (("conv19", 512), ("conv20", 256), ("conv22", 128))


def source_grids(input_size: int) -> list[int]:
    """Grid side of each of the six source maps: ceil(S / 8), then halved with ceil."""
    grids = [-(-input_size // 8)]
    for _ in range(5):
        grids.append(-(-grids[-1] // 2))
    return grids


def num_boxes(input_size: int) -> int:
    """N = 2 * sum of grid cells over the six maps (8732-like count; 2 * 1030 = 2060 at 224)."""
    return BOXES_PER_CELL * sum(g * g for g in source_grids(input_size))


def extra_channels(base: int, width: float, min_channels: int = 8) -> tuple[int, int]:
    """(c/2, c) of an extra block with `base` output channels at width 1.

    c = max(int(base * width), 2 * min_channels), c/2 = max(c // 2, min_channels); with
    min_channels=1 this is the seed's (int(base / 2 * width), int(base * width)).
    """
    out = max(int(base * width), 2 * min_channels)
    return max(out // 2, min_channels), out


def _extra_block(
    x: keras.KerasTensor, name: str, mid: int, out: int, padding: str
) -> keras.KerasTensor:
    x = conv_bn(x, mid, 1, 1, f"{name}_conv1", padding)
    x = conv_bn(x, 0, 3, 2, f"{name}_depthwise", padding, depthwise=True)
    return conv_bn(x, out, 1, 1, f"{name}_pointwise", padding)


#: initial background logit of the score heads: p(background) ~ 0.98 at the start, so the
#: first steps do not drown in the thousands of easy negatives (prior-probability init)
BACKGROUND_BIAS = 4.6


def _head(
    x: keras.KerasTensor,
    name: str,
    per_box: int,
    padding: str,
    head_bn: bool,
    background_bias: float = 0.0,
) -> keras.KerasTensor:
    x = conv_bn(x, 0, 3, 1, f"{name}_depthwise", padding, depthwise=True)
    if head_bn:  # the seed's layout: 1x1 conv without bias, then BN
        x = layers.Conv2D(
            BOXES_PER_CELL * per_box, 1, use_bias=False, name=f"{name}_pointwise_conv"
        )(x)
        x = layers.BatchNormalization(
            epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_pointwise_bn"
        )(x)
    else:
        bias = np.zeros((BOXES_PER_CELL, per_box), np.float32)
        bias[:, 0] = background_bias
        x = layers.Conv2D(
            BOXES_PER_CELL * per_box,
            1,
            use_bias=True,
            bias_initializer=keras.initializers.Constant(bias.ravel()),
            name=f"{name}_pointwise_conv",
        )(x)
    return layers.Reshape((-1, per_box), name=f"{name}_flat")(x)


def build_detector(
    width: float = 1.0,
    input_size: int = 224,
    classes: Sequence[str] = ("left", "right"),
    padding: str = "keras",
    normalize: bool = True,
    backbone_weights: str | Path | None = None,
    head_bn: bool = False,
    min_channels: int = 8,
    top_channels: int = 1280,
    channel_rule: str = "seed",
) -> keras.Model:
    """SSDLite MobileNetV2 detector (see module docstring for inputs and outputs).

    Args:
        width: backbone width multiplier (0.35, 0.5, 0.75, 1.0 ...).
        input_size: side S of the square input (a multiple of 32 keeps the grids exact).
        classes: foreground class names; the score head has len(classes) + 1 logits per box.
        padding: "keras" (same) or "symmetric" (Chainer-style, for imported weights).
        normalize: map 0..255 to [-1, 1] inside the model; False keeps 0..255 (seed).
        backbone_weights: optional local .weights.h5 / .keras file; layers are matched by name
            (ours or keras.applications' MobileNetV2 names), shapes must agree.
        head_bn: the seed's head layout (1x1 conv without bias + BN) for importing its weights;
            the default is a 1x1 conv with bias (the score bias starts at p(background) ~ 0.98),
            which trains much faster (a BN on the logits re-normalises them every batch).
        min_channels: floor of the channel rule (8; 1 reproduces the seed's int(d * width)).
        top_channels: channels of conv18, the third source map (the seed: int(1280 * width)).
        channel_rule: backbone channels, "seed" or "keras" (ImageNet weights' layout; see
            `mobilenetv2_features`).
    """
    classes = tuple(classes)
    if not classes:
        raise ValueError("classes must name at least one foreground class")
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = layers.Rescaling(1.0 / 127.5, -1.0, name="normalize")(inputs) if normalize else inputs
    feats = mobilenetv2_features(
        x,
        width,
        padding,
        include_top_conv=True,
        stem_channels=32,
        top_channels=top_channels,
        min_channels=min_channels,
        channel_rule=channel_rule,
    )
    assert feats.top is not None
    sources = [feats.stride8, feats.expand14, feats.top]
    x = feats.top
    for name, base in EXTRA_CHANNELS:
        x = _extra_block(x, name, *extra_channels(base, width, min_channels), padding)
        sources.append(x)
    locs = [_head(s, f"loc{i}", 4, padding, head_bn) for i, s in enumerate(sources)]
    confs = [
        _head(s, f"conf{i}", len(classes) + 1, padding, head_bn, BACKGROUND_BIAS)
        for i, s in enumerate(sources)
    ]
    locations = layers.Concatenate(axis=1, name="locations")(locs)
    scores = layers.Concatenate(axis=1, name="scores")(confs)
    model = keras.Model(
        inputs, {"locations": locations, "scores": scores}, name=f"ssdlite_mobilenetv2_{width:g}"
    )
    if backbone_weights is not None:
        from models.networks.weights import load_weights_by_name

        load_weights_by_name(model, backbone_weights)
    return model
