"""Load backbone weights from a local file, matching layers by name (never downloads).

Accepted files:
- `.keras`: a saved Keras model (for example `keras.applications.MobileNetV2(...)` saved with
  `model.save("mobilenetv2.keras")` on a machine that has the ImageNet weights); its layers are
  matched to ours by name, keras.applications' MobileNetV2 names translated by `KERAS_APP_NAMES`.
- `.npz`: arrays keyed `"{layer_name}/{i}"` (the i-th weight of the layer, Keras order), as
  written by `save_weights_npz`.
Layers whose shapes differ (another width rule) are skipped and counted.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import keras
import numpy as np

from handpose.errors import HandposeError

log = logging.getLogger(__name__)


def keras_app_name(name: str) -> str | None:
    """Our layer name for a keras.applications MobileNetV2 layer name, or None."""
    fixed = {
        "Conv1": "conv0_conv",
        "bn_Conv1": "conv0_bn",
        "Conv_1": "conv18_conv",
        "Conv_1_bn": "conv18_bn",
        "expanded_conv_depthwise": "conv1_depthwise_conv",
        "expanded_conv_depthwise_BN": "conv1_depthwise_bn",
        "expanded_conv_project": "conv1_project_conv",
        "expanded_conv_project_BN": "conv1_project_bn",
    }
    if name in fixed:
        return fixed[name]
    match = re.fullmatch(r"block_(\d+)_(expand|depthwise|project)(_BN)?", name)
    if match:
        index = int(match.group(1)) + 1
        return f"conv{index}_{match.group(2)}_{'bn' if match.group(3) else 'conv'}"
    return None


def _read(path: Path) -> dict[str, list[np.ndarray]]:
    if path.suffix == ".npz":
        with np.load(path) as data:
            grouped: dict[str, dict[int, np.ndarray]] = {}
            for key in data.files:
                layer, _, index = key.rpartition("/")
                grouped.setdefault(layer, {})[int(index)] = data[key]
        return {k: [v[i] for i in sorted(v)] for k, v in grouped.items()}
    if path.suffix == ".keras":
        source = keras.saving.load_model(path, compile=False, safe_mode=True)
        out = {}
        for layer in source.layers:
            if layer.weights:
                out[layer.name] = [np.asarray(w) for w in layer.get_weights()]
                mapped = keras_app_name(layer.name)
                if mapped:
                    out.setdefault(mapped, out[layer.name])
        return out
    raise HandposeError(f"backbone weights {path}: expected a .keras or .npz file")


def load_weights_by_name(model: keras.Model, path: str | Path) -> tuple[int, int]:
    """Copy weights from `path` into the layers of `model` with the same name.

    Returns (layers loaded, layers skipped for a shape mismatch). Raises HandposeError when the
    file is missing or no layer matches.
    """
    path = Path(path)
    if not path.is_file():
        raise HandposeError(f"backbone weights file {path} does not exist (no download is done)")
    source = _read(path)
    loaded = skipped = 0
    for layer in model.layers:
        weights = source.get(layer.name)
        if not weights or not layer.weights:
            continue
        current = layer.get_weights()
        if len(current) != len(weights) or any(
            a.shape != b.shape for a, b in zip(current, weights, strict=True)
        ):
            skipped += 1
            continue
        layer.set_weights(weights)
        loaded += 1
    if loaded == 0:
        raise HandposeError(f"backbone weights {path}: no layer name matches the network")
    log.info("loaded %d layers from %s (%d skipped: shape mismatch)", loaded, path, skipped)
    return loaded, skipped


def save_weights_npz(model: keras.Model, path: str | Path) -> None:
    """Write every layer's weights as `"{layer_name}/{i}"` arrays (readable by name)."""
    arrays = {
        f"{layer.name}/{i}": np.asarray(w)
        for layer in model.layers
        for i, w in enumerate(layer.get_weights())
    }
    np.savez(path, **arrays)
