"""Pose Proposal Network on MobileNetV2 (`build_pose`).

Input: float RGB 0..255, (B, S, S, 3); with `normalize=True` the first layer ("normalize")
computes x / 255 - 0.5 like the seed, so an int8 TFLite model takes camera pixels directly.
Backbone: MobileNetV2 conv0..conv17 (no 1280 conv): 320 * width channels at stride 32.
Heads (3x3 conv with bias, "same"):
    "pose": (B, G, G, 6K) sigmoid; per keypoint k channels 6k..6k+5 are
            (responsibility, confidence, x, y, w, h) — see handpose.codec.ppn
    "vect": (B, G, G, 3E) tanh; per bone e channels 3e..3e+2 are its (x, y, z) direction
with G = ceil(S / 32) (7 at 224), K = 21 keypoints, E = 20 bones.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import layers

from handpose.skeleton import NUM_BONES, NUM_KEYPOINTS
from models.networks.mobilenetv2 import conv_bn, mobilenetv2_features

#: initial bias of the responsibility channels: sigmoid(-4) ~ 0.02, the share of cells that hold
#: a keypoint, so the first steps do not spend themselves pushing 48 empty cells of 49 to 0
RESP_BIAS = -4.0
#: channels per grid cell of the "spatial" side head
SIDE_CHANNELS = 16
#: channels of the 1x1 fusion conv of the stride-16 grid
FUSE_CHANNELS = 128


GRID_STRIDES: tuple[int, ...] = (32, 16)


def pose_grid(input_size: int, stride: int = 32) -> int:
    """Grid side G of the pose heads: ceil(S / stride) (stride 32: 7 at 224; 16: 14)."""
    if stride not in GRID_STRIDES:
        raise ValueError(f"grid stride must be one of {GRID_STRIDES}, got {stride}")
    size = input_size
    for _ in range(5 if stride == 32 else 4):
        size = -(-size // 2)
    return size


def build_pose(
    width: float = 1.0,
    input_size: int = 224,
    padding: str = "keras",
    normalize: bool = True,
    backbone_weights: str | Path | None = None,
    channel_rule: str = "seed",
    side_head: bool | str = False,
    grid_stride: int = 32,
) -> keras.Model:
    """PPN pose network (see module docstring). Outputs {"pose": ..., "vect": ...} and, with
    `side_head`, "side": (B, 1) sigmoid p(the crop shows a right hand), from the globally
    averaged stride-32 features (for crops that are not mirrored by side: the network then
    tells the side itself, as MediaPipe's landmark model does).

    Args:
        width: backbone width multiplier.
        input_size: side S of the square crop (224 in the app).
        padding: "keras" or "symmetric" (Chainer-style, for imported weights).
        normalize: x / 255 - 0.5 inside the model (False: the caller normalises).
        backbone_weights: "imagenet" or a local file, layers matched by name
            (`models.networks.weights.load_weights_by_name`).
        channel_rule: backbone channels, "seed" or "keras" (ImageNet weights' layout).
        side_head: add the "side" output: True or "pool" (a dense layer on the globally
            averaged stride-32 features) or "spatial" (a 1x1 conv to `SIDE_CHANNELS`, flattened
            over the grid, then dense: the side is where the thumb lies relative to the palm,
            which global pooling cannot see).
        grid_stride: 32 (the seed's 7x7 grid at 224) or 16: a 14x14 grid whose heads see the
            stride-32 features upsampled x2 beside conv14's stride-16 expansion, fused by a
            1x1 conv (`FUSE_CHANNELS`, BN, ReLU6); same PPN targets and decoding.
    """
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = layers.Rescaling(1.0 / 255.0, -0.5, name="normalize")(inputs) if normalize else inputs
    feats = mobilenetv2_features(
        x, width, padding, include_top_conv=False, channel_rule=channel_rule
    )
    if grid_stride not in GRID_STRIDES:
        raise ValueError(f"grid_stride must be one of {GRID_STRIDES}, got {grid_stride}")
    head_in = feats.stride32
    if grid_stride == 16:
        up = layers.UpSampling2D(2, interpolation="nearest", name="fuse_up")(feats.stride32)
        both = layers.Concatenate(name="fuse_concat")([up, feats.expand14])
        head_in = conv_bn(both, FUSE_CHANNELS, 1, 1, "fuse", padding)
    pose_bias = np.zeros((NUM_KEYPOINTS, 6), np.float32)
    pose_bias[:, 0] = RESP_BIAS
    pose = layers.Conv2D(
        6 * NUM_KEYPOINTS,
        3,
        padding="same",
        activation="sigmoid",
        bias_initializer=keras.initializers.Constant(pose_bias.ravel()),
        name="pose",
    )(head_in)
    vect = layers.Conv2D(3 * NUM_BONES, 3, padding="same", activation="tanh", name="vect")(head_in)
    outputs = {"pose": pose, "vect": vect}
    if side_head in (True, "pool"):
        pooled = layers.GlobalAveragePooling2D(name="side_pool")(feats.stride32)
        outputs["side"] = layers.Dense(1, activation="sigmoid", name="side")(pooled)
    elif side_head == "spatial":
        x = layers.Conv2D(SIDE_CHANNELS, 1, activation="relu", name="side_conv")(feats.stride32)
        x = layers.Flatten(name="side_flat")(x)
        outputs["side"] = layers.Dense(1, activation="sigmoid", name="side")(x)
    elif side_head:
        raise ValueError(f"side_head must be False, True, 'pool' or 'spatial', got {side_head!r}")
    model = keras.Model(inputs, outputs, name=f"ppn_mobilenetv2_{width:g}")
    if backbone_weights is not None:
        from models.networks.weights import load_weights_by_name

        load_weights_by_name(model, backbone_weights)
    return model
