"""Load backbone weights from a local file, matching layers by name (never downloads).

Accepted sources:
- `"imagenet"`: keras.applications' ImageNet MobileNetV2 file for the network's width (1.0 or
  0.35), `mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_224_no_top.h5`, looked up in
  Keras' cache (`~/.keras/models`, where `weights="imagenet"` would put it) and then in
  `../shared/pretrained/` beside the project; never downloaded.
- `.h5`: such a keras.applications weights file (any alpha); read by Keras itself into
  `keras.applications.MobileNetV2(alpha, include_top=False, weights=FILE)`.
- `.keras`: a saved Keras model (for example `keras.applications.MobileNetV2(...)` saved with
  `model.save("mobilenetv2.keras")` on a machine that has the ImageNet weights); its layers are
  matched to ours by name, keras.applications' MobileNetV2 names translated by `KERAS_APP_NAMES`.
- `.npz`: arrays keyed `"{layer_name}/{i}"` (the i-th weight of the layer, Keras order), as
  written by `save_weights_npz`.
Layers whose shapes differ (another width rule) are skipped and counted; build the network with
`channel_rule="keras"` so that widths other than 1.0 take the ImageNet layout.

keras.applications' weights expect inputs in [-1, 1] (x / 127.5 - 1). A network whose
"normalize" layer maps pixels elsewhere (the pose network: x / 255 - 0.5) gets the stem kernel
scaled so that its conv0 computes exactly what keras.applications' Conv1 computes on the same
pixels (conv is linear: W * (x / 255 - 0.5) * 2 = W * (x / 127.5 - 1)).
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


#: keras.applications' file name of the ImageNet MobileNetV2 backbone without the classifier
IMAGENET_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_224_no_top.h5"
IMAGENET_ALPHAS = ("1.0", "0.35")
#: input normalisation the ImageNet weights were trained with: x * scale + offset
KERAS_APP_SCALE = 1.0 / 127.5


def imagenet_weights_path(width: float) -> Path:
    """The local ImageNet file for `width` (see module docstring); HandposeError naming the fix
    when there is none."""
    alpha = next((a for a in IMAGENET_ALPHAS if abs(float(a) - width) < 1e-6), None)
    if alpha is None:
        raise HandposeError(
            f'backbone_weights = "imagenet" has no weights for width {width:g}: ImageNet '
            f"MobileNetV2 backbones exist here for widths {', '.join(IMAGENET_ALPHAS)} only"
        )
    name = IMAGENET_FILE.format(alpha=alpha)
    project = Path(__file__).resolve().parents[2]
    places = [Path("~/.keras/models").expanduser() / name, project.parent / "shared" /
              "pretrained" / name]  # fmt: skip
    for place in places:
        if place.is_file():
            return place
    raise HandposeError(
        f"ImageNet weights {name} not found in {' or '.join(str(p.parent) for p in places)}: "
        "copy them there (mkdir -p ~/.keras/models && cp ../shared/pretrained/*.h5 "
        "~/.keras/models/); nothing is downloaded"
    )


def _keras_app_alpha(path: Path) -> float:
    match = re.search(r"_(\d+(?:\.\d+)?)_\d+_no_top\.h5$", path.name)
    if not match:
        raise HandposeError(
            f"backbone weights {path}: an .h5 file must be keras.applications' MobileNetV2 "
            "weights named like " + IMAGENET_FILE.format(alpha="1.0")
        )
    return float(match.group(1))


def _from_model(source: keras.Model) -> dict[str, list[np.ndarray]]:
    out: dict[str, list[np.ndarray]] = {}
    for layer in source.layers:
        if layer.weights:
            out[layer.name] = [np.asarray(w) for w in layer.get_weights()]
            mapped = keras_app_name(layer.name)
            if mapped:
                out.setdefault(mapped, out[layer.name])
    return out


def _read(path: Path) -> dict[str, list[np.ndarray]]:
    if path.suffix == ".npz":
        with np.load(path) as data:
            grouped: dict[str, dict[int, np.ndarray]] = {}
            for key in data.files:
                layer, _, index = key.rpartition("/")
                grouped.setdefault(layer, {})[int(index)] = data[key]
        return {k: [v[i] for i in sorted(v)] for k, v in grouped.items()}
    if path.suffix == ".keras":
        return _from_model(keras.saving.load_model(path, compile=False, safe_mode=True))
    if path.suffix == ".h5":
        alpha = _keras_app_alpha(path)
        try:
            app = keras.applications.MobileNetV2(
                input_shape=(224, 224, 3), alpha=alpha, include_top=False, weights=str(path)
            )
        except (ValueError, OSError) as error:
            raise HandposeError(
                f"backbone weights {path}: not a keras.applications MobileNetV2 file for alpha "
                f"{alpha:g} ({str(error).splitlines()[0][:160]})"
            ) from error
        return _from_model(app)
    raise HandposeError(f'backbone weights {path}: expected "imagenet", .h5, .keras or .npz')


def _stem_factor(model: keras.Model) -> float:
    """How much to scale a keras.applications stem kernel for `model`'s "normalize" layer."""
    try:
        layer = model.get_layer("normalize")
    except ValueError:
        return KERAS_APP_SCALE  # no normalisation inside: the caller feeds 0..255 pixels
    scale = getattr(layer, "scale", None)
    return KERAS_APP_SCALE / float(scale) if scale else 1.0


def load_weights_by_name(model: keras.Model, path: str | Path) -> tuple[int, int]:
    """Copy weights from `path` into the layers of `model` with the same name.

    Returns (layers loaded, layers skipped for a shape mismatch). Raises HandposeError when the
    file is missing or no layer matches.
    """
    if str(path) == "imagenet":
        path = imagenet_weights_path(_width_of(model))
    path = Path(path).expanduser()
    if not path.is_file():
        raise HandposeError(f"backbone weights file {path} does not exist (no download is done)")
    source = _read(path)
    if "Conv1" in source and "conv0_conv" in source:  # keras.applications: inputs in [-1, 1]
        source["conv0_conv"] = [w * _stem_factor(model) for w in source["conv0_conv"]]
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


def _width_of(model: keras.Model) -> float:
    """The width multiplier in a network's name (`..._mobilenetv2_{width:g}`)."""
    match = re.search(r"mobilenetv2_([\d.]+)$", model.name)
    if not match:
        raise HandposeError(f'backbone_weights = "imagenet": cannot tell the width of {model.name}')
    return float(match.group(1))


def save_weights_npz(model: keras.Model, path: str | Path) -> None:
    """Write every layer's weights as `"{layer_name}/{i}"` arrays (readable by name)."""
    arrays = {
        f"{layer.name}/{i}": np.asarray(w)
        for layer in model.layers
        for i, w in enumerate(layer.get_weights())
    }
    np.savez(path, **arrays)
