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
from models.networks.mobilenetv2 import mobilenetv2_features

#: initial bias of the responsibility channels: sigmoid(-4) ~ 0.02, the share of cells that hold
#: a keypoint, so the first steps do not spend themselves pushing 48 empty cells of 49 to 0
RESP_BIAS = -4.0


def pose_grid(input_size: int) -> int:
    """Grid side G of the pose heads: ceil(S / 32)."""
    size = input_size
    for _ in range(5):
        size = -(-size // 2)
    return size


def build_pose(
    width: float = 1.0,
    input_size: int = 224,
    padding: str = "keras",
    normalize: bool = True,
    backbone_weights: str | Path | None = None,
    channel_rule: str = "seed",
    side_head: bool = False,
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
        side_head: add the "side" output.
    """
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = layers.Rescaling(1.0 / 255.0, -0.5, name="normalize")(inputs) if normalize else inputs
    feats = mobilenetv2_features(
        x, width, padding, include_top_conv=False, channel_rule=channel_rule
    )
    pose_bias = np.zeros((NUM_KEYPOINTS, 6), np.float32)
    pose_bias[:, 0] = RESP_BIAS
    pose = layers.Conv2D(
        6 * NUM_KEYPOINTS,
        3,
        padding="same",
        activation="sigmoid",
        bias_initializer=keras.initializers.Constant(pose_bias.ravel()),
        name="pose",
    )(feats.stride32)
    vect = layers.Conv2D(3 * NUM_BONES, 3, padding="same", activation="tanh", name="vect")(
        feats.stride32
    )
    outputs = {"pose": pose, "vect": vect}
    if side_head:
        pooled = layers.GlobalAveragePooling2D(name="side_pool")(feats.stride32)
        outputs["side"] = layers.Dense(1, activation="sigmoid", name="side")(pooled)
    model = keras.Model(inputs, outputs, name=f"ppn_mobilenetv2_{width:g}")
    if backbone_weights is not None:
        from models.networks.weights import load_weights_by_name

        load_weights_by_name(model, backbone_weights)
    return model
