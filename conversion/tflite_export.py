"""Keras network -> `.tflite` file (int8 / fp16 / fp32) with its tensors described.

Conversion path (Keras 3 on TF 2.18): the network is wrapped in a `tf.function`
``x -> model(x, training=False)`` with a fixed input signature (1, H, W, 3) float32, its variables
are frozen to constants (`convert_variables_to_constants_v2`) and the frozen concrete function goes
to `tf.lite.TFLiteConverter.from_concrete_functions`. This is 5x faster than exporting a
SavedModel first, and the SavedModel route with a trackable object keeps READ_VARIABLE ops that
the int8 calibrator cannot run.

Precisions:
    fp32  plain float model; input float32 0..255.
    fp16  float16 weights (dequantized at load), float32 input 0..255 and outputs.
    int8  full integer (TFLITE_BUILTINS_INT8 only): weights int8 per output channel, activations
          calibrated on `representative` images; input uint8 with scale 1 and zero point 0, so
          camera bytes go in as they are (the model's first layer normalises); outputs int8 with
          their (scale, zero_point) in the metadata (the runner dequantizes:
          real = scale * (q - zero_point)).

The input range is pinned to exactly 0..255 by adding one contrast-stretched copy of the first
representative image (min 0, max 255) to the calibration set; without it the input scale is
(max - min) / 255 of whatever the calibration images span, and raw camera bytes would be wrong.

TFLite output tensors get names like "Identity_1"; `export_tflite` maps the Keras output names
("locations", "scores", "pose", "vect") to them by shape, ties broken by the smallest difference
to the Keras outputs on a probe image, and checks the mapped outputs agree with Keras.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from handpose.errors import HandposeError
from handpose.metadata import PRECISIONS, TensorSpec

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

log = logging.getLogger(__name__)

#: calibration images used when `representative` is longer (the calibrator runs each in float)
MAX_CALIBRATION = 500


@dataclass
class ExportedModel:
    """A written `.tflite` and its tensors as the interpreter reports them.

    Attributes:
        path: the file written.
        precision: "int8", "fp16" or "fp32".
        input: the input tensor (name, [1, H, W, 3], dtype, quantization or None).
        outputs: logical name -> output tensor (TFLite name, shape, dtype, quantization).
        probe_error: logical name -> mean |tflite - keras| on the probe image (dequantized).
        output_range: logical name -> max |keras output| on the probe image.
    """

    path: Path
    precision: str
    input: TensorSpec
    outputs: dict[str, TensorSpec]
    probe_error: dict[str, float]
    output_range: dict[str, float]

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def _output_names(model: tf.keras.Model) -> list[str]:
    names = getattr(model, "output_names", None)
    return list(names) if names else [f"output_{i}" for i in range(len(model.outputs))]


def keras_outputs(model: tf.keras.Model, images: np.ndarray) -> dict[str, np.ndarray]:
    """Float outputs of `model` by name for a batch of uint8 or float images (B, H, W, 3)."""
    out = model(tf.convert_to_tensor(np.asarray(images, np.float32)), training=False)
    if isinstance(out, dict):
        return {k: np.asarray(v) for k, v in out.items()}
    if not isinstance(out, list | tuple):
        out = [out]
    return {name: np.asarray(v) for name, v in zip(_output_names(model), out, strict=True)}


def _input_shape(model: tf.keras.Model) -> tuple[int, int]:
    shape = model.inputs[0].shape
    if len(shape) != 4 or shape[3] != 3 or shape[1] is None or shape[2] is None:
        raise HandposeError(
            f"model {model.name}: input must be (B, H, W, 3) with fixed H, W, got {shape}"
        )
    return int(shape[1]), int(shape[2])


def frozen_function(model: tf.keras.Model) -> tf.types.experimental.ConcreteFunction:
    """`model(x, training=False)` as a concrete function of x: (1, H, W, 3) float32, constants."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    height, width = _input_shape(model)
    spec = tf.TensorSpec([1, height, width, 3], tf.float32, name="image")

    @tf.function(input_signature=[spec])
    def serve(x: tf.Tensor) -> dict[str, tf.Tensor]:
        out = model(x, training=False)
        if not isinstance(out, dict):
            values = out if isinstance(out, list | tuple) else [out]
            out = dict(zip(_output_names(model), values, strict=True))
        return out

    return convert_variables_to_constants_v2(serve.get_concrete_function())


def _stretched(image: np.ndarray) -> np.ndarray:
    """`image` with its values mapped linearly onto exactly 0..255 (pins the input range)."""
    pixels = image.astype(np.float32)
    low, high = float(pixels.min()), float(pixels.max())
    if high - low < 1.0:
        pixels = np.zeros_like(pixels)
        pixels[..., : pixels.shape[1] // 2, :] = 255.0
        return pixels
    return (pixels - low) * (255.0 / (high - low))


def _representative_fn(
    images: list[np.ndarray], shape: tuple[int, int]
) -> Callable[[], Iterator[list[np.ndarray]]]:
    for i, image in enumerate(images):
        if image.dtype != np.uint8 or image.shape != (*shape, 3):
            raise HandposeError(
                f"calibration image {i} is {image.dtype} {image.shape}; the model needs uint8 "
                f"{(*shape, 3)} (build it with conversion.calibration)"
            )

    def generate() -> Iterator[list[np.ndarray]]:
        yield [_stretched(images[0])[None]]
        for image in images:
            yield [image.astype(np.float32)[None]]

    return generate


def convert_bytes(
    model: tf.keras.Model,
    precision: str,
    representative: Iterable[np.ndarray] | None = None,
) -> bytes:
    """The TFLite flatbuffer of `model` at `precision` (see module docstring).

    Args:
        model: Keras model, input (B, H, W, 3) float RGB 0..255.
        precision: "int8", "fp16" or "fp32".
        representative: int8 only (required): uint8 (H, W, 3) calibration images, pre-processed
            like training; the first MAX_CALIBRATION are used.
    """
    if precision not in PRECISIONS:
        raise HandposeError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision}")
    images = list(_take(representative or [], MAX_CALIBRATION))
    if precision == "int8" and not images:
        raise HandposeError(
            "int8 conversion needs calibration images: pass --calibration SPEC (a dataset "
            "spec such as `synthetic`) and --samples N"
        )
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen_function(model)])
    if precision == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _representative_fn(images, _input_shape(model))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.int8
    try:
        return bytes(converter.convert())
    except Exception as error:  # the converter raises many types; name the model and precision
        raise HandposeError(
            f"TFLite conversion of {model.name} to {precision} failed: "
            f"{str(error).strip().splitlines()[-1]}"
        ) from error


def _take(items: Iterable[np.ndarray], count: int) -> Iterator[np.ndarray]:
    for i, item in enumerate(items):
        if i >= count:
            return
        yield np.asarray(item)


def _tensor_spec(detail: dict) -> TensorSpec:
    scale, zero = detail.get("quantization", (0.0, 0))
    quant = {"scale": float(scale), "zero_point": int(zero)} if scale else None
    return TensorSpec(
        name=str(detail["name"]),
        shape=[int(v) for v in detail["shape"]],
        dtype=np.dtype(detail["dtype"]).name,
        quantization=quant,
    )


def _dequantize(raw: np.ndarray, spec: TensorSpec) -> np.ndarray:
    if spec.quantization is None:
        return raw.astype(np.float32)
    q = spec.quantization
    return (raw.astype(np.float32) - q["zero_point"]) * q["scale"]


def describe_tflite(
    path: str | Path,
    model: tf.keras.Model,
    probe: np.ndarray,
) -> tuple[TensorSpec, dict[str, TensorSpec], dict[str, float], dict[str, float]]:
    """Input spec, logical output name -> TFLite output spec, probe error and output range.

    Each Keras output is matched to the TFLite output of the same shape; when several have that
    shape, to the one closest to the Keras output on `probe` (uint8 (H, W, 3)).
    """
    from handpose.runner import make_interpreter

    interpreter = make_interpreter(path, num_threads=1)
    inputs = interpreter.get_input_details()
    if len(inputs) != 1:
        raise HandposeError(f"{path}: expected one input tensor, found {len(inputs)}")
    input_spec = _tensor_spec(inputs[0])
    buffer = probe[None].astype(np.dtype(input_spec.dtype))
    interpreter.set_tensor(inputs[0]["index"], buffer)
    interpreter.invoke()
    details = interpreter.get_output_details()
    specs = [_tensor_spec(d) for d in details]
    values = [
        _dequantize(interpreter.get_tensor(d["index"]), s)
        for d, s in zip(details, specs, strict=True)
    ]
    expected = keras_outputs(model, probe[None])
    outputs: dict[str, TensorSpec] = {}
    errors: dict[str, float] = {}
    ranges: dict[str, float] = {}
    taken: set[int] = set()
    for key, want in expected.items():
        candidates = [
            i for i, s in enumerate(specs) if i not in taken and tuple(s.shape) == want.shape
        ]
        if not candidates:
            raise HandposeError(
                f"{path}: no TFLite output has the shape {list(want.shape)} of Keras output "
                f"{key!r} (outputs: {[s.shape for s in specs]})"
            )
        diffs = {i: float(np.mean(np.abs(values[i] - want))) for i in candidates}
        best = min(candidates, key=diffs.__getitem__)
        taken.add(best)
        outputs[key] = specs[best]
        errors[key] = diffs[best]
        ranges[key] = float(np.max(np.abs(want)))
    return input_spec, outputs, errors, ranges


#: accepted probe error: mean |tflite - keras| / max |keras| (int8: a few quantization steps)
PROBE_TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2, "int8": 0.05}


def export_tflite(
    model: tf.keras.Model,
    out_path: str | Path,
    precision: str,
    representative: Iterable[np.ndarray] | None = None,
    probe: np.ndarray | None = None,
    tolerance: float | None = None,
) -> ExportedModel:
    """Convert `model`, write `out_path`, describe its tensors and check them against Keras.

    Args:
        model: Keras model, input (B, H, W, 3) float RGB 0..255 (normalisation inside).
        out_path: the `.tflite` file to write (parent folders are created).
        precision: "int8", "fp16" or "fp32".
        representative: uint8 (H, W, 3) calibration images (int8: required).
        probe: uint8 (H, W, 3) image to match and check outputs on; default: the first
            calibration image, else a fixed random image.
        tolerance: mean |TFLite - Keras| / the output's range allowed on the probe (default
            `PROBE_TOLERANCE[precision]`); the accuracy that counts is `convert verify`'s.
    Raises:
        HandposeError: conversion failed, the int8 input is not scale 1 / zero 0, or an output
            differs from Keras by more than `PROBE_TOLERANCE` of its range (the file is deleted).
    """
    images = list(_take(representative or [], MAX_CALIBRATION))
    height, width = _input_shape(model)
    if probe is None:
        probe = (
            images[0]
            if images
            else np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
        )
    data = convert_bytes(model, precision, images)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(data)
    try:
        input_spec, outputs, errors, ranges = describe_tflite(out_path, model, probe)
        if precision == "int8":
            quant = input_spec.quantization or {"scale": 0.0, "zero_point": -1}
            if (
                input_spec.dtype != "uint8"
                or abs(quant["scale"] - 1.0) > 1e-3
                or quant["zero_point"] != 0
            ):
                raise HandposeError(
                    f"{out_path}: int8 input is {input_spec.dtype} scale {quant['scale']} zero "
                    f"{quant['zero_point']}, expected uint8 scale 1 zero 0 (camera bytes as-is)"
                )
        limit = PROBE_TOLERANCE[precision] if tolerance is None else float(tolerance)
        for key, error in errors.items():
            relative = error / max(ranges[key], 1e-6)
            if relative > limit:
                raise HandposeError(
                    f"{out_path}: output {key!r} differs from the Keras model by {error:.4g} "
                    f"(relative {relative:.3g} > {limit:g}) on the probe image; measure the "
                    "accuracy with `handpose convert verify` and, if it holds, convert with "
                    "--int8-tolerance"
                )
    except BaseException:
        out_path.unlink(missing_ok=True)
        raise
    log.info("%s: %s, %d bytes, probe error %s", out_path, precision, len(data), errors)
    return ExportedModel(out_path, precision, input_spec, outputs, errors, ranges)
