"""`handpose convert chainer`: the seed's published Chainer models -> Keras -> TFLite folders.

    handpose convert chainer --detector DIR --pose DIR --out OUT \
        [--precision int8 fp16 fp32] [--calibration SPEC --samples N]

Each DIR is a chainer-hand-pose release folder (`result/release/detector`, `.../pose`) holding
`bestmodel.npz` (Chainer `save_npz` of the SSD, or of the PoseProposalNet) and its training
`config.ini`. Both are read with numpy and configparser: Chainer is not needed. Per network:

1. `config.ini` -> `SeedConfig` (`read_seed_config`): width multiplier, input size (the released
   detector used 256), classes (`hand_class`) and smin.
2. The Keras network that computes what the seed's Chainer network computed (`build_keras`):
   detector  build_detector(width, S, classes, padding="symmetric", normalize=False,
             head_bn=True, min_channels=1, top_channels=int(1280 * width)):
             Chainer pads 3x3 stride-2 convolutions by one on every side; the seed fed RGB
             0..255 (mean 0); heads are 3x3 depthwise + 1x1 conv with BN and no bias; its
             channel rule was int(d * width) everywhere, conv0 always 32, conv18 int(1280 w).
             Source maps conv6, conv14_0 (the 576 w expansion), conv18, conv19, conv20, conv22
             (conv22 is applied to conv20's output; conv21 is computed but feeds nothing).
   pose      build_pose(width, S, padding="symmetric", normalize=True): input x / 255 - 0.5
             like the seed, channel rule max(int(d * width), 8), heads 3x3 conv with bias.
3. Every array of the checkpoint goes into the Keras layer that `DETECTOR_TABLE` / `POSE_TABLE`
   name (the one place where the seed's link paths are mapped to our layer names), converted:
       Convolution2D W (out, in, kh, kw), b         -> Conv2D kernel (kh, kw, in, out), bias
       grouped Convolution2D W (C, 1, kh, kw)         -> DepthwiseConv2D kernel (kh, kw, C, 1)
         (the detector's depthwise convolutions)
       DepthwiseConvolution2D W (1, C, kh, kw)        -> DepthwiseConv2D kernel (kh, kw, C, 1)
         (the pose network's)
       BatchNormalization gamma, beta, avg_mean, avg_var
                                                      -> gamma, beta, moving_mean, moving_variance
         (eps 1e-3 in both)
   and output channels are reordered where our layout differs from the seed's (`REORDERS`):
       loc heads  the seed codes a box as (dy, dx, dh, dw), we as (dx, dy, dw, dh):
                  ours[4b + c] = seed[4b + SEED_LOC_ORDER[c]] (handpose.codec.boxes)
       lastconv   field-major [resp x K, conf x K, x x K, y x K, w x K, h x K] -> keypoint-major
                  (6k + field), `handpose.codec.ppn.pose_channels_from_seed`
       vectconv   bone e as (z, y, x) -> (x, y, z), `handpose.codec.ppn.vect_channels_from_seed`
   Not loaded, by design: conv21's arrays (the seed computes conv21 but no head reads it) and
   BatchNormalization's `N` (a count of training batches, not a weight). A key that no table
   row consumes, a key a row needs that is missing, a shape that differs from the network the
   config describes, or a Keras weight left unset is a `HandposeError` that names the key.
4. Conversion as in `handpose convert keras` (`conversion.keras_convert.convert_model`): the
   same `OUT/<precision>/<task>.{tflite,json}` folders and metadata JSON (family "handpose"),
   plus `training.source` naming the checkpoint (path, sha256, config.ini values). int8 is
   calibrated on `--calibration` (default `synthetic`, the renderer: no data needed).

Default boxes: the seed's sizes int(S 2^k smin) (k < 6) and S are ours with round_sizes=True;
its steps ceil(S / G_k) equal our S / G_k when every grid divides S (224, 256, ...); other
input sizes are refused rather than decoded with shifted boxes.
"""

from __future__ import annotations

import argparse
import configparser
import math
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from handpose.argtypes import positive_int
from handpose.codec.boxes import SEED_LOC_ORDER
from handpose.codec.ppn import pose_channels_from_seed, vect_channels_from_seed
from handpose.errors import HandposeError
from handpose.metadata import PRECISIONS, ModelMetadata, sha256_of
from handpose.skeleton import NUM_BONES, NUM_KEYPOINTS

TASKS = ("detector", "pose")
CHECKPOINT_FILE = "bestmodel.npz"
CONFIG_FILE = "config.ini"
SOURCE_FORMAT = "chainer-hand-pose"
DEFAULT_CALIBRATION = "synthetic"

#: arrays each kind of link stores (all required), and those consumed without being loaded
KIND_ARRAYS: dict[str, tuple[str, ...]] = {
    "conv": ("W",),  # Convolution2D without bias, W (out, in, kh, kw)
    "conv_bias": ("W", "b"),  # Convolution2D with bias
    "grouped_depthwise": ("W",),  # Convolution2D(groups=C), W (C, 1, kh, kw) (detector)
    "depthwise": ("W",),  # DepthwiseConvolution2D, W (1, C, kh, kw) (pose)
    "bn": ("gamma", "beta", "avg_mean", "avg_var"),
}
#: arrays a kind may also hold that are not weights: BatchNormalization's batch count
KIND_IGNORED: dict[str, tuple[str, ...]] = {"bn": ("N",)}

# ------------------------------------------------------------------------- the name mapping

_FE = "extractor/feature_extractor"
CONV, BIAS, GDW, DW, BN = "conv", "conv_bias", "grouped_depthwise", "depthwise", "bn"
#: detector backbone blocks stored as pointwise_exp / depthwise / pointwise (conv14 is split)
_BLOCKS = (*range(2, 14), 15, 16, 17)
_EXTRA = (19, 20, 22)
_HEADS = tuple(f"{head}/{k}" for head in ("loc", "conf") for k in range(6))

#: The seed's detector (chainer-hand-pose `SSD` with `MobileNetV2LiteExtractor300`), one row per
#: Chainer link: (link path, our Keras layer, kind, output reorder, values). The row stands for
#: one link per value: "{i}" takes the value; in the head rows "{h}" is the value "loc/k" or
#: "conf/k" in the Chainer path and "lock" / "confk" in the Keras name, "{head}" is loc / conf.
#: Keras layer "": consumed, not loaded (conv21 is computed by the seed but feeds nothing).
DETECTOR_TABLE: tuple[tuple[str, str, str, str, tuple[Any, ...]], ...] = (
    (f"{_FE}/conv0/conv", "conv0_conv", CONV, "", ()),
    (f"{_FE}/conv0/bn", "conv0_bn", BN, "", ()),
    (f"{_FE}/conv1/depthwise/depthwise_conv", "conv1_depthwise_conv", GDW, "", ()),
    (f"{_FE}/conv1/depthwise/depthwise_bn", "conv1_depthwise_bn", BN, "", ()),
    (f"{_FE}/conv1/pointwise/pointwise_conv", "conv1_project_conv", CONV, "", ()),
    (f"{_FE}/conv1/pointwise/pointwise_bn", "conv1_project_bn", BN, "", ()),
    (f"{_FE}/conv{{i}}/pointwise_exp/pointwise_exp_conv", "conv{i}_expand_conv", CONV, "", _BLOCKS),
    (f"{_FE}/conv{{i}}/pointwise_exp/pointwise_exp_bn", "conv{i}_expand_bn", BN, "", _BLOCKS),
    (f"{_FE}/conv{{i}}/depthwise/depthwise_conv", "conv{i}_depthwise_conv", GDW, "", _BLOCKS),
    (f"{_FE}/conv{{i}}/depthwise/depthwise_bn", "conv{i}_depthwise_bn", BN, "", _BLOCKS),
    (f"{_FE}/conv{{i}}/pointwise/pointwise_conv", "conv{i}_project_conv", CONV, "", _BLOCKS),
    (f"{_FE}/conv{{i}}/pointwise/pointwise_bn", "conv{i}_project_bn", BN, "", _BLOCKS),
    # conv14 split in three links: conv14_0 = expansion (source map 1), conv14_1 = depthwise
    # stride 2, conv14_2 = projection
    (f"{_FE}/conv14_0/pointwise_exp_conv", "conv14_expand_conv", CONV, "", ()),
    (f"{_FE}/conv14_0/pointwise_exp_bn", "conv14_expand_bn", BN, "", ()),
    (f"{_FE}/conv14_1/depthwise_conv", "conv14_depthwise_conv", GDW, "", ()),
    (f"{_FE}/conv14_1/depthwise_bn", "conv14_depthwise_bn", BN, "", ()),
    (f"{_FE}/conv14_2/pointwise_conv", "conv14_project_conv", CONV, "", ()),
    (f"{_FE}/conv14_2/pointwise_bn", "conv14_project_bn", BN, "", ()),
    (f"{_FE}/conv18/conv", "conv18_conv", CONV, "", ()),
    (f"{_FE}/conv18/bn", "conv18_bn", BN, "", ()),
    # extra blocks (source maps 3, 4, 5): 1x1 conv -> 3x3 depthwise stride 2 -> 1x1 conv
    ("extractor/conv{i}/conv1/conv", "conv{i}_conv1_conv", CONV, "", _EXTRA),
    ("extractor/conv{i}/conv1/bn", "conv{i}_conv1_bn", BN, "", _EXTRA),
    ("extractor/conv{i}/depthwise/depthwise_conv", "conv{i}_depthwise_conv", GDW, "", _EXTRA),
    ("extractor/conv{i}/depthwise/depthwise_bn", "conv{i}_depthwise_bn", BN, "", _EXTRA),
    ("extractor/conv{i}/pointwise/pointwise_conv", "conv{i}_pointwise_conv", CONV, "", _EXTRA),
    ("extractor/conv{i}/pointwise/pointwise_bn", "conv{i}_pointwise_bn", BN, "", _EXTRA),
    ("extractor/conv21/conv1/conv", "", CONV, "", ()),
    ("extractor/conv21/conv1/bn", "", BN, "", ()),
    ("extractor/conv21/depthwise/depthwise_conv", "", GDW, "", ()),
    ("extractor/conv21/depthwise/depthwise_bn", "", BN, "", ()),
    ("extractor/conv21/pointwise/pointwise_conv", "", CONV, "", ()),
    ("extractor/conv21/pointwise/pointwise_bn", "", BN, "", ()),
    # heads per source map k: 3x3 depthwise (BN, ReLU6), then 1x1 conv (BN, no activation)
    ("multibox/{h}/depthwise/depthwise_conv", "{h}_depthwise_conv", GDW, "", _HEADS),
    ("multibox/{h}/depthwise/depthwise_bn", "{h}_depthwise_bn", BN, "", _HEADS),
    ("multibox/{h}/pointwise/pointwise_conv", "{h}_pointwise_conv", CONV, "{head}", _HEADS),
    ("multibox/{h}/pointwise/pointwise_bn", "{h}_pointwise_bn", BN, "{head}", _HEADS),
)

_P1, _P2 = tuple(range(1, 18)), tuple(range(2, 18))
#: The seed's PoseProposalNet on its MobileNetV2 feature layer; columns as in DETECTOR_TABLE
#: (conv1 has no expansion).
POSE_TABLE: tuple[tuple[str, str, str, str, tuple[Any, ...]], ...] = (
    ("feature_layer/conv0/conv", "conv0_conv", CONV, "", ()),
    ("feature_layer/conv0/bn", "conv0_bn", BN, "", ()),
    ("feature_layer/conv{i}/expand_conv", "conv{i}_expand_conv", CONV, "", _P2),
    ("feature_layer/conv{i}/expand_bn", "conv{i}_expand_bn", BN, "", _P2),
    ("feature_layer/conv{i}/depthwise_conv", "conv{i}_depthwise_conv", DW, "", _P1),
    ("feature_layer/conv{i}/depthwise_bn", "conv{i}_depthwise_bn", BN, "", _P1),
    ("feature_layer/conv{i}/project_conv", "conv{i}_project_conv", CONV, "", _P1),
    ("feature_layer/conv{i}/project_bn", "conv{i}_project_bn", BN, "", _P1),
    ("lastconv", "pose", BIAS, "pose", ()),
    ("vectconv", "vect", BIAS, "vect", ()),
)


def _loc_order(channels: int) -> np.ndarray:
    """ours[4b + c] = seed[4b + SEED_LOC_ORDER[c]] for each default box b of a cell."""
    boxes = channels // 4
    return (4 * np.arange(boxes)[:, None] + np.asarray(SEED_LOC_ORDER)[None, :]).reshape(-1)


#: output-channel reorder name -> index array idx (ours[c] = seed[idx[c]]) for n channels
REORDERS = {
    "loc": _loc_order,
    "conf": lambda n: np.arange(n),  # background first, then config.ini's hand_class order
    "pose": lambda n: pose_channels_from_seed(n // 6),
    "vect": lambda n: vect_channels_from_seed(n // 3),
}


@dataclass(frozen=True)
class Rule:
    """One Chainer link -> one Keras layer (an expanded table row).

    chainer: link path; its arrays are keyed f"{chainer}/{name}" for name in KIND_ARRAYS[kind].
    keras: Keras layer name, "" for links consumed but not loaded (see module docstring).
    kind: array layout, a key of KIND_ARRAYS.
    reorder: "" or a key of REORDERS (output channels).
    """

    chainer: str
    keras: str
    kind: str
    reorder: str = ""


def expand_table(table: tuple[tuple[str, str, str, str, tuple[Any, ...]], ...]) -> list[Rule]:
    """The rows of DETECTOR_TABLE / POSE_TABLE with "{i}" / "{h}" / "{head}" filled in."""
    rules = []
    for chainer, keras_name, kind, reorder, values in table:
        for value in values or (None,):
            if value is None:
                rules.append(Rule(chainer, keras_name, kind, reorder))
                continue
            head, _, k = str(value).partition("/")
            fill = {"i": value, "h": str(value), "head": head}
            keras_fill = dict(fill, h=f"{head}{k}")
            rules.append(
                Rule(
                    chainer.format(**fill),
                    keras_name.format(**keras_fill),
                    kind,
                    reorder.format(**fill),
                )
            )
    return rules


def to_keras(kind: str, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Chainer arrays of one link (KIND_ARRAYS order) -> Keras weights of the layer, float32.

    conv W (O, I, kh, kw) -> (kh, kw, I, O); grouped_depthwise W (C, 1, kh, kw) and depthwise
    W (1, C, kh, kw) -> (kh, kw, C, 1); BN and biases unchanged.
    """
    out = [np.asarray(a, np.float32) for a in arrays]
    if kind in ("conv", "conv_bias", "depthwise"):
        out[0] = out[0].transpose(2, 3, 1, 0)
    elif kind == "grouped_depthwise":
        out[0] = out[0].transpose(2, 3, 0, 1)
    return [np.ascontiguousarray(a) for a in out]


def chainer_shapes(kind: str, keras_shapes: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
    """The Chainer array shapes that `to_keras` turns into `keras_shapes` (for messages)."""
    shapes = [tuple(s) for s in keras_shapes]
    if kind in ("conv", "conv_bias", "depthwise"):
        kh, kw, a, b = shapes[0]
        shapes[0] = (b, a, kh, kw)
    elif kind == "grouped_depthwise":
        kh, kw, a, b = shapes[0]
        shapes[0] = (a, b, kh, kw)
    return shapes


def _reordered(arrays: list[np.ndarray], reorder: str) -> list[np.ndarray]:
    """Apply an output-channel reorder to Chainer arrays (axis 0 of W, b and BN vectors)."""
    if not reorder:
        return arrays
    idx = REORDERS[reorder](int(arrays[0].shape[0]))
    return [a[idx] for a in arrays]


# --------------------------------------------------------------------------------- loading


@dataclass
class ImportReport:
    """What `load_checkpoint` did with a checkpoint.

    Attributes:
        source: the checkpoint path (for messages).
        arrays: arrays in the checkpoint.
        loaded: arrays loaded into Keras weights.
        unused: key -> why it was consumed but not loaded (conv21, BN batch counts).
        layers: Keras layers whose weights were set.
        weights: number of Keras weight values set (= model.count_params()).
    """

    source: str
    arrays: int = 0
    loaded: int = 0
    unused: dict[str, str] = field(default_factory=dict)
    layers: int = 0
    weights: int = 0

    def summary(self) -> str:
        """One line: arrays, loaded, Keras layers and weights, unused by reason."""
        reasons: dict[str, int] = {}
        for why in self.unused.values():
            reasons[why] = reasons.get(why, 0) + 1
        unused = ", ".join(f"{n} {why}" for why, n in reasons.items()) or "none"
        return (
            f"{self.arrays} arrays, {self.loaded} loaded into {self.layers} Keras layers "
            f"({self.weights:,} weights); not loaded: {unused}"
        )


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """All arrays of a Chainer `save_npz` file by key (no pickles)."""
    path = Path(path)
    if not path.is_file():
        raise HandposeError(f"{path}: checkpoint not found (expected the seed's {CHECKPOINT_FILE})")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: np.asarray(data[key]) for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise HandposeError(f"{path}: not a readable .npz checkpoint ({error})") from None


def load_checkpoint(
    model: Any, arrays: Mapping[str, np.ndarray], rules: list[Rule], source: str
) -> ImportReport:
    """Set every weight of `model` from `arrays` (Chainer keys) following `rules`.

    Raises:
        HandposeError: naming the key, when a rule's array is missing, a shape differs from
            the Keras layer's, a key is consumed by no rule, or a Keras weight stays unset.
    """
    remaining = dict(arrays)
    report = ImportReport(source=source, arrays=len(arrays))
    layers_set: set[str] = set()
    for rule in rules:
        keys = [f"{rule.chainer}/{name}" for name in KIND_ARRAYS[rule.kind]]
        missing = [key for key in keys if key not in remaining]
        if missing:
            target = f"Keras layer {rule.keras}" if rule.keras else "the seed's layout"
            raise HandposeError(
                f"{source}: missing array {missing[0]!r} (needed for {target}); is this the "
                "seed's bestmodel.npz of that network, with the config.ini beside it?"
            )
        values = [remaining.pop(key) for key in keys]
        for name in KIND_IGNORED.get(rule.kind, ()):
            key = f"{rule.chainer}/{name}"
            if key in remaining:
                remaining.pop(key)
                report.unused[key] = "BatchNormalization N (batch counts)"
        if not rule.keras:
            for key in keys:
                report.unused[key] = f"{rule.chainer.split('/')[1]} (feeds nothing in the seed)"
            continue
        try:
            layer = model.get_layer(rule.keras)
        except ValueError:
            raise HandposeError(
                f"{source}: {rule.chainer} maps to Keras layer {rule.keras!r}, which the "
                f"network {model.name} does not have"
            ) from None
        current = [tuple(w.shape) for w in layer.get_weights()]
        expected = chainer_shapes(rule.kind, current)
        for key, value, want in zip(keys, values, expected, strict=True):
            if tuple(value.shape) != want:
                raise HandposeError(
                    f"{source}: {key!r} has shape {tuple(value.shape)}, the network built from "
                    f"config.ini needs {want} (Keras layer {rule.keras}); do the checkpoint and "
                    "its config.ini (width, input size, classes) belong together?"
                )
            if not np.isfinite(value).all():
                raise HandposeError(f"{source}: {key!r} holds NaN or infinite values")
        layer.set_weights(to_keras(rule.kind, _reordered(values, rule.reorder)))
        layers_set.add(layer.name)
        report.loaded += len(keys)
        report.weights += sum(int(np.prod(s)) for s in current)
    if remaining:
        keys = sorted(remaining)
        shown = ", ".join(repr(k) for k in keys[:4]) + (
            f" and {len(keys) - 4} more" if len(keys) > 4 else ""
        )
        raise HandposeError(
            f"{source}: {len(keys)} arrays are not part of the seed's layout this importer "
            f"knows: {shown}"
        )
    unset = [layer.name for layer in model.layers if layer.weights and layer.name not in layers_set]
    if unset:
        raise HandposeError(
            f"{source}: Keras layers {unset[:4]} got no array from the checkpoint "
            "(conversion.chainer_import tables are incomplete)"
        )
    report.layers = len(layers_set)
    return report


# ---------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class SeedConfig:
    """The facts of a seed network that its config.ini gives.

    Attributes:
        task: "detector" or "pose".
        width: width multiplier of MobileNetV2.
        input_size: side S of the square input (detector: input_size x resolution_multiplier;
            pose: imsize "WxH", which must be square).
        classes: detector classes without background (config.ini `hand_class`).
        smin: detector smallest default box side / S.
        path: the config.ini read.
        values: its sections as {section: {key: value}} (stored in the metadata).
    """

    task: str
    width: float
    input_size: int
    classes: tuple[str, ...] = ()
    smin: float = 0.025
    path: Path = Path(CONFIG_FILE)
    values: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def top_channels(self) -> int:
        """Channels of the detector's conv18: int(1280 * width) in the seed."""
        return int(1280 * self.width)


def _get(parser: configparser.ConfigParser, path: Path, section: str, key: str) -> str:
    if not parser.has_option(section, key):
        raise HandposeError(f"{path}: no [{section}] {key} (is it the seed's config.ini?)")
    return parser.get(section, key).strip()


def _number(text: str, kind: type, path: Path, what: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise HandposeError(f"{path}: {what} = {text!r} is not a number") from None


def read_seed_config(path: str | Path, task: str) -> SeedConfig:
    """Parse the seed's config.ini of a `task` network and check the importer supports it.

    Detector keys ([model_param]): width_multiplier, input_size, resolution_multiplier (1.0),
    hand_class ("left, right" or "hand"), smin (0.025), num_layers (6), feature_extractor
    (MobileNetV2), ssd_extractor (MobileNetV2LiteExtractor300).
    Pose keys: [training_param] imsize "WxH" (square), [mv2] width_multiplier,
    [model] name (ppn), [ppn] feature_extractor (mv2), [dataset] use_depth (no).
    """
    path = Path(path)
    if not path.is_file():
        raise HandposeError(f"{path}: not found (the seed's {CONFIG_FILE} beside the checkpoint)")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as error:
        raise HandposeError(f"{path}: not an ini file ({error.message})") from None
    values = {s: dict(parser.items(s)) for s in parser.sections()}
    if task == "detector":
        return _detector_config(parser, path, values)
    if task == "pose":
        return _pose_config(parser, path, values)
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def _expect(parser: configparser.ConfigParser, path: Path, section: str, key: str, want: str):
    if parser.has_option(section, key) and parser.get(section, key).strip() != want:
        raise HandposeError(
            f"{path}: [{section}] {key} = {parser.get(section, key).strip()}; only the seed's "
            f"{want} can be imported"
        )


def _detector_config(
    parser: configparser.ConfigParser, path: Path, values: dict[str, dict[str, str]]
) -> SeedConfig:
    section = "model_param"
    _expect(parser, path, section, "feature_extractor", "MobileNetV2")
    _expect(parser, path, section, "ssd_extractor", "MobileNetV2LiteExtractor300")
    _expect(parser, path, section, "num_layers", "6")
    width = _number(_get(parser, path, section, "width_multiplier"), float, path, "width")
    size = _number(_get(parser, path, section, "input_size"), int, path, "input_size")
    resolution = 1.0
    if parser.has_option(section, "resolution_multiplier"):
        text = parser.get(section, "resolution_multiplier")
        resolution = _number(text, float, path, "resolution_multiplier")
    size = int(size * resolution)
    classes = tuple(c.strip() for c in _get(parser, path, section, "hand_class").split(","))
    if not classes or not all(classes):
        raise HandposeError(f"{path}: hand_class must name classes, e.g. `left, right` or `hand`")
    smin = 0.025
    if parser.has_option(section, "smin"):
        smin = _number(parser.get(section, "smin"), float, path, "smin")
    if width <= 0 or min(int(d * width) for d in (16, 64)) < 1:
        raise HandposeError(f"{path}: width_multiplier {width} gives layers without channels")
    if 6 * int(96 * width) != int(576 * width):
        raise HandposeError(
            f"{path}: width_multiplier {width:g}: the seed's conv14 expands to "
            f"{6 * int(96 * width)} channels but its depthwise has {int(576 * width)}; "
            "the seed cannot build this network, so no checkpoint of it exists"
        )
    from models.networks.detector import source_grids

    grids = source_grids(size)
    uneven = [g for g in grids if size % g]
    if size <= 0 or uneven:
        raise HandposeError(
            f"{path}: input size {size}: the seed's default boxes step by ceil(S / G) = "
            f"{[math.ceil(size / g) for g in grids]} for grids {grids}, which "
            "handpose.codec.boxes (step S / G) cannot represent; sizes such as 224 and 256 can"
        )
    return SeedConfig("detector", width, size, classes, smin, path, values)


def _pose_config(
    parser: configparser.ConfigParser, path: Path, values: dict[str, dict[str, str]]
) -> SeedConfig:
    _expect(parser, path, "model", "name", "ppn")
    _expect(parser, path, "ppn", "feature_extractor", "mv2")
    if parser.has_option("dataset", "use_depth") and parser.getboolean("dataset", "use_depth"):
        raise HandposeError(f"{path}: a depth-image pose network; only RGB ones can be imported")
    width = _number(_get(parser, path, "mv2", "width_multiplier"), float, path, "width")
    imsize = _get(parser, path, "training_param", "imsize").replace(" ", "")
    parts = imsize.lower().split("x")
    sizes = [_number(p, int, path, "imsize") for p in parts] if len(parts) == 2 else []
    if len(sizes) != 2 or sizes[0] != sizes[1] or sizes[0] <= 0:
        raise HandposeError(f"{path}: imsize = {imsize}; only square WxW inputs are supported")
    if width <= 0:
        raise HandposeError(f"{path}: width_multiplier must be > 0, got {width}")
    return SeedConfig("pose", width, sizes[0], (), 0.025, path, values)


# --------------------------------------------------------------------------------- network


def build_keras(config: SeedConfig) -> Any:
    """The Keras network computing what the seed's network of `config` computed (no weights)."""
    if config.task == "detector":
        from models.networks.detector import build_detector

        return build_detector(
            width=config.width,
            input_size=config.input_size,
            classes=config.classes,
            padding="symmetric",
            normalize=False,
            head_bn=True,
            min_channels=1,
            top_channels=config.top_channels,
        )
    from models.networks.pose import build_pose

    return build_pose(
        width=config.width, input_size=config.input_size, padding="symmetric", normalize=True
    )


def table_rules(task: str) -> list[Rule]:
    """The expanded name mapping of `task` ("detector" | "pose")."""
    return expand_table(DETECTOR_TABLE if task == "detector" else POSE_TABLE)


def _wrong_task_hint(arrays: Mapping[str, np.ndarray], task: str) -> str | None:
    keys = list(arrays)
    if task == "pose" and any(k.startswith("extractor/") for k in keys):
        return "it holds a detector (extractor/...): pass it as --detector"
    if task == "detector" and any(k.startswith("feature_layer/") for k in keys):
        return "it holds a pose network (feature_layer/...): pass it as --pose"
    return None


def import_network(folder: str | Path, task: str) -> tuple[Any, SeedConfig, ImportReport]:
    """Read `folder/{bestmodel.npz, config.ini}` and return the loaded Keras network.

    Returns: (keras.Model with every weight set, the parsed config, what was loaded).
    """
    folder = Path(folder)
    if folder.is_file() and folder.suffix == ".npz":
        folder = folder.parent
    if not folder.is_dir():
        raise HandposeError(
            f"--{task} {folder}: not a folder (pass the seed's release folder holding "
            f"{CHECKPOINT_FILE} and {CONFIG_FILE})"
        )
    npz = folder / CHECKPOINT_FILE
    arrays = read_npz(npz)
    hint = _wrong_task_hint(arrays, task)
    if hint:
        raise HandposeError(f"--{task} {npz}: {hint}")
    config = read_seed_config(folder / CONFIG_FILE, task)
    if task == "pose":
        pose_w, vect_w = arrays.get("lastconv/W"), arrays.get("vectconv/W")
        if pose_w is not None and pose_w.shape[0] != 6 * NUM_KEYPOINTS:
            raise HandposeError(
                f"{npz}: 'lastconv/W' has {pose_w.shape[0]} outputs, a {NUM_KEYPOINTS}-keypoint "
                f"hand needs {6 * NUM_KEYPOINTS}"
            )
        if vect_w is not None and vect_w.shape[0] != 3 * NUM_BONES:
            raise HandposeError(
                f"{npz}: 'vectconv/W' has {vect_w.shape[0]} outputs, {NUM_BONES} bones need "
                f"{3 * NUM_BONES}"
            )
    model = build_keras(config)
    report = load_checkpoint(model, arrays, table_rules(task), str(npz))
    return model, config, report


# ------------------------------------------------------------------------------ conversion


def keras_config(config: SeedConfig, command: str) -> dict[str, Any]:
    """The resolved-config-like dict the metadata stores for an imported network."""
    model: dict[str, Any] = {
        "width": config.width,
        "input_size": config.input_size,
        "padding": "symmetric",
        "normalize": config.task == "pose",
    }
    if config.task == "detector":
        model.update(
            classes=list(config.classes),
            smin=config.smin,
            head_bn=True,
            min_channels=1,
            top_channels=config.top_channels,
        )
    return {"task": config.task, "model": model, "data": {}, "command": command}


def source_record(folder: Path, config: SeedConfig) -> dict[str, Any]:
    """metadata training.source: what the network was imported from."""
    npz = (folder / CHECKPOINT_FILE).resolve()
    return {
        "format": SOURCE_FORMAT,
        "checkpoint": str(npz),
        "sha256": sha256_of(npz),
        "config_ini": str(config.path.resolve()),
        "config": config.values,
    }


def convert_import(
    folder: str | Path,
    task: str,
    out_dir: str | Path,
    precisions: list[str],
    calibration: str = DEFAULT_CALIBRATION,
    samples: int = 200,
    split: str = "train",
    command: str = "",
) -> list[ModelMetadata]:
    """Import one seed network and write it at every precision (see module docstring)."""
    from conversion.keras_convert import convert_model
    from handpose.codec.boxes import DefaultBoxConfig
    from models.networks.detector import source_grids

    folder = Path(folder)
    if folder.is_file():
        folder = folder.parent
    model, config, report = import_network(folder, task)
    shape = f"width {config.width:g}, input {config.input_size}"
    if config.classes:
        shape += f", classes {', '.join(config.classes)}"
    print(f"{task}: imported {report.source} ({shape}): {report.summary()}")
    source = source_record(folder, config)

    def describe(meta: ModelMetadata) -> None:
        meta.architecture += " (imported from chainer-hand-pose)"
        meta.training["source"] = source
        datasets = config.values.get("dataset", {}).get("train_set", "")
        meta.training["data"] = f"chainer-hand-pose release ({datasets or 'datasets unknown'})"
        if task == "detector":
            size = config.input_size
            boxes = DefaultBoxConfig(size, tuple(source_grids(size)), smin=config.smin)
            meta.default_boxes = boxes.to_dict()
        else:
            grid = int(meta.outputs["pose"].shape[1])
            stride = config.input_size / grid
            meta.grid = {
                "size": [grid, grid],
                "stride": int(stride) if stride.is_integer() else stride,
            }

    return convert_model(
        model,
        task,
        keras_config(config, command),
        out_dir,
        precisions,
        calibration,
        samples,
        split,
        adjust=describe,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--detector", metavar="DIR", help=f"seed detector folder ({CHECKPOINT_FILE}, {CONFIG_FILE})"
    )
    parser.add_argument(
        "--pose", metavar="DIR", help=f"seed pose folder ({CHECKPOINT_FILE}, {CONFIG_FILE})"
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument(
        "--precision",
        nargs="+",
        choices=PRECISIONS,
        default=list(PRECISIONS),
        help="precisions to write, one folder each (default: all three)",
    )
    parser.add_argument(
        "--calibration",
        metavar="SPEC",
        default=DEFAULT_CALIBRATION,
        help=f"dataset spec of the int8 calibration images (default {DEFAULT_CALIBRATION})",
    )
    parser.add_argument(
        "--split", default="train", help="split of --calibration to calibrate on (default train)"
    )
    parser.add_argument(
        "--samples", type=positive_int, default=200, help="calibration images (default 200)"
    )


def main(args: argparse.Namespace) -> int:
    folders = {task: getattr(args, task) for task in TASKS if getattr(args, task)}
    if not folders:
        raise HandposeError("convert chainer: pass --detector DIR and/or --pose DIR")
    parts = ["handpose convert chainer"]
    parts += [f"--{task} {folder}" for task, folder in folders.items()]
    parts += [f"--out {args.out}", "--precision " + " ".join(args.precision)]
    if "int8" in args.precision:
        parts.append(f"--calibration {args.calibration} --samples {args.samples}")
    command = " ".join(parts)
    for task, folder in folders.items():
        convert_import(
            folder,
            task,
            args.out,
            list(dict.fromkeys(args.precision)),
            args.calibration,
            args.samples,
            args.split,
            command,
        )
    return 0
