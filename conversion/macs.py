"""Multiply-accumulate count of a Keras model, from its layer shapes (batch 1).

    Conv2D           MACs = Ho * Wo * Co * kh * kw * Ci / groups
    DepthwiseConv2D  MACs = Ho * Wo * Ci * depth_multiplier * kh * kw
    Dense            MACs = (product of the leading output dims) * units * Ci

Biases, batch norm, activations, additions and resizes are not counted (they are folded into the
convolutions or cost O(elements), not O(elements * kernel)). Nested models are walked.
"""

from __future__ import annotations

import math
from typing import Any

import keras


def _shape(tensor: Any) -> tuple[int, ...]:
    return tuple(int(v) if v is not None else 1 for v in tensor.shape[1:])


def layer_macs(layer: keras.layers.Layer) -> int:
    """MACs of one layer for one input (0 for layers that are not counted)."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        ho, wo, _ = _shape(layer.output)
        ci = _shape(layer.input)[-1]
        kh, kw = layer.kernel_size
        return ho * wo * ci * int(layer.depth_multiplier) * kh * kw
    if isinstance(layer, keras.layers.Conv2D):  # not SeparableConv (not used by our networks)
        ho, wo, co = _shape(layer.output)
        ci = _shape(layer.input)[-1]
        kh, kw = layer.kernel_size
        return ho * wo * co * kh * kw * ci // int(layer.groups)
    if isinstance(layer, keras.layers.Dense):
        out = _shape(layer.output)
        ci = _shape(layer.input)[-1]
        return math.prod(out[:-1]) * int(layer.units) * ci
    return 0


def count_macs(model: keras.Model) -> int:
    """Total MACs of `model` for one image (see module docstring for what is counted)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_macs(layer)
        else:
            total += layer_macs(layer)
    return total
