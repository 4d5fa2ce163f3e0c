"""MobileNetV2 backbone (Sandler et al. 2018) as a plain Keras 3 layer graph.

Layer names mirror the seed's Chainer checkpoint (see SEED_SYSTEM.md, "Checkpoint layout") so
that an importer can map parameters by name:

    conv0_conv, conv0_bn, conv0_relu                     3x3 stride-2 stem
    conv{i}_expand_conv / _expand_bn / _expand_relu      1x1 expansion (i >= 2; conv1 has none)
    conv{i}_depthwise_conv / _depthwise_bn / _depthwise_relu
    conv{i}_project_conv / _project_bn                    1x1 linear projection
    conv{i}_add                                           residual add when shapes match
    conv18_conv / conv18_bn / conv18_relu                 final 1x1 to 1280 (detector only)

Blocks conv1..conv17 follow the MobileNetV2 table (t = expansion, c = channels, s = stride):

    conv1 t1 c16 s1 | conv2-3 t6 c24 s2 | conv4-6 t6 c32 s2 | conv7-10 t6 c64 s2 |
    conv11-13 t6 c96 s1 | conv14-16 t6 c160 s2 | conv17 t6 c320 s1

Channel rule: `channels(d, width) = max(int(d * width), 8)` (the seed's pose network's rule;
its detector used plain `int(d * width)`, `min_channels=1`), the stem keeps 32 channels for
every width when `stem_channels=32` is passed (the seed's detector did so).
Activations are ReLU6, batch normalisation uses epsilon 1e-3, no convolution has a bias.

Padding: "keras" uses `padding="same"` everywhere (TensorFlow pads stride-2 convolutions on the
bottom/right only for even sizes); "symmetric" pads every 3x3 stride-2 convolution by one pixel
on each side (`ZeroPadding2D(1)` + "valid", like Chainer) so that imported Chainer weights give
the seed's numbers. Output sizes are the same in both modes: ceil(n / 2) per stride-2 layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99
PADDINGS: tuple[str, ...] = ("keras", "symmetric")

#: (expansion t, base channels c, stride s) of conv1..conv17
BLOCKS: tuple[tuple[int, int, int], ...] = (
    (1, 16, 1),
    (6, 24, 2),
    (6, 24, 1),
    (6, 32, 2),
    (6, 32, 1),
    (6, 32, 1),
    (6, 64, 2),
    (6, 64, 1),
    (6, 64, 1),
    (6, 64, 1),
    (6, 96, 1),
    (6, 96, 1),
    (6, 96, 1),
    (6, 160, 2),
    (6, 160, 1),
    (6, 160, 1),
    (6, 320, 1),
)


CHANNEL_RULES: tuple[str, ...] = ("seed", "keras")


def channels(base: int, width: float, min_channels: int = 8) -> int:
    """Channels of a layer with `base` channels at width 1: max(int(base * width), min_channels)."""
    return max(int(base * width), min_channels)


def make_divisible(value: float, divisor: int = 8) -> int:
    """keras.applications' MobileNetV2 channel rule: `value` rounded to a multiple of `divisor`,
    never below it nor more than 10 % below `value` (the rule of ImageNet-trained weights)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


def rule_channels(base: int, width: float, min_channels: int, rule: str) -> int:
    """Channels by `rule`: "seed" (`channels`) or "keras" (`make_divisible(base * width)`)."""
    if rule == "keras":
        return make_divisible(base * width)
    if rule != "seed":
        raise ValueError(f"channel_rule must be one of {CHANNEL_RULES}, got {rule!r}")
    return channels(base, width, min_channels)


def check_padding(padding: str) -> None:
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")


def conv_bn(
    x: keras.KerasTensor,
    filters: int,
    kernel: int,
    stride: int,
    name: str,
    padding: str,
    activation: bool = True,
    depthwise: bool = False,
) -> keras.KerasTensor:
    """Conv (or depthwise conv) without bias -> BN(eps 1e-3) -> optional ReLU6.

    Layer names: `{name}_conv`, `{name}_bn`, `{name}_relu` (and `{name}_pad` for symmetric
    stride-2 3x3 convolutions).
    """
    mode = "same"
    if padding == "symmetric" and stride == 2 and kernel == 3:
        x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
        mode = "valid"
    if depthwise:
        x = layers.DepthwiseConv2D(
            kernel, strides=stride, padding=mode, use_bias=False, name=f"{name}_conv"
        )(x)
    else:
        x = layers.Conv2D(
            filters, kernel, strides=stride, padding=mode, use_bias=False, name=f"{name}_conv"
        )(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    if activation:
        x = layers.ReLU(6.0, name=f"{name}_relu")(x)
    return x


@dataclass
class BackboneOutputs:
    """Named feature maps of the backbone (all channels-last).

    stride8: output of conv6 (32 * width channels, stride 8).
    expand14: ReLU6 output of conv14's 1x1 expansion (6 * 96 * width = 576 at width 1, stride 16).
    stride32: output of conv17 (320 * width channels, stride 32).
    top: output of conv18 (1280 channels, stride 32), or None when `include_top_conv=False`.
    """

    stride8: keras.KerasTensor
    expand14: keras.KerasTensor
    stride32: keras.KerasTensor
    top: keras.KerasTensor | None


def inverted_residual(
    x: keras.KerasTensor,
    index: int,
    expansion: int,
    out_channels: int,
    stride: int,
    padding: str,
) -> tuple[keras.KerasTensor, keras.KerasTensor | None]:
    """One MobileNetV2 block `conv{index}`; returns (output, expansion output or None)."""
    in_channels = int(x.shape[-1])
    name = f"conv{index}"
    inputs = x
    expanded = None
    if expansion != 1:
        x = conv_bn(x, in_channels * expansion, 1, 1, f"{name}_expand", padding)
        expanded = x
    x = conv_bn(x, 0, 3, stride, f"{name}_depthwise", padding, depthwise=True)
    x = conv_bn(x, out_channels, 1, 1, f"{name}_project", padding, activation=False)
    if stride == 1 and in_channels == out_channels:
        x = layers.Add(name=f"{name}_add")([inputs, x])
    return x, expanded


def mobilenetv2_features(
    inputs: keras.KerasTensor,
    width: float = 1.0,
    padding: str = "keras",
    include_top_conv: bool = True,
    stem_channels: int | None = None,
    top_channels: int = 1280,
    min_channels: int = 8,
    channel_rule: str = "seed",
) -> BackboneOutputs:
    """Build the backbone on `inputs` (B, H, W, 3), already normalised.

    Args:
        width: width multiplier (0.25 .. 1.4), channels per `channels()`.
        padding: "keras" or "symmetric" (see module docstring).
        include_top_conv: add conv18, the 1x1 conv to `top_channels` (the detector's third
            source map); the pose network stops at conv17 (320 * width channels).
        stem_channels: channels of conv0 (default `channels(32, width, min_channels)`).
        top_channels: channels of conv18 (1280 like keras.applications for width <= 1).
        min_channels: floor of the channel rule (8; the seed's detector: 1, i.e. int(d * width)).
        channel_rule: "seed" (above) or "keras": keras.applications' `make_divisible(d * width,
            8)` for every block and the stem (`stem_channels` is then ignored), the layout of
            the ImageNet weights (`models.networks.weights`; equal to "seed" at width 1.0).
    """
    check_padding(padding)
    if width <= 0:
        raise ValueError(f"width must be > 0, got {width}")
    if channel_rule == "keras":
        stem_channels = None
    stem = stem_channels or rule_channels(32, width, min_channels, channel_rule)
    x = conv_bn(inputs, stem, 3, 2, "conv0", padding)
    stride8 = expand14 = None
    for index, (t, c, s) in enumerate(BLOCKS, start=1):
        out = rule_channels(c, width, min_channels, channel_rule)
        x, expanded = inverted_residual(x, index, t, out, s, padding)
        if index == 6:
            stride8 = x
        if index == 14:
            expand14 = expanded
    stride32 = x
    top = None
    if include_top_conv:
        top = conv_bn(x, top_channels, 1, 1, "conv18", padding)
    assert stride8 is not None and expand14 is not None
    return BackboneOutputs(stride8=stride8, expand14=expand14, stride32=stride32, top=top)


def build_mobilenetv2(
    input_size: int = 224, width: float = 1.0, padding: str = "keras"
) -> keras.Model:
    """The bare backbone as a model: (B, S, S, 3) normalised -> (B, S/32, S/32, 1280)."""
    inputs = keras.Input((input_size, input_size, 3), name="image")
    feats = mobilenetv2_features(inputs, width, padding)
    return keras.Model(inputs, feats.top, name=f"mobilenetv2_{width:g}")
