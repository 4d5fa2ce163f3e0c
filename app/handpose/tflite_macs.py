"""Multiply-accumulate count of a TFLite model, from its graph (batch 1, no TensorFlow).

Counted per op, from the shapes the interpreter reports (the same rules as the Keras count in
`conversion.macs`, so both agree on our own networks):

    CONV_2D            MACs = Ho * Wo * Co * kh * kw * Ci       (filter [Co, kh, kw, Ci])
    DEPTHWISE_CONV_2D  MACs = Ho * Wo * Co * kh * kw             (filter [1, kh, kw, Co])
    TRANSPOSE_CONV     MACs = Hi * Wi * Ci * kh * kw * Co        (filter [Co, kh, kw, Ci])
    FULLY_CONNECTED    MACs = (output elements) * Ci             (weights [units, Ci])

Element-wise ops (ADD, PRELU, LOGISTIC, DEQUANTIZE of fp16 weights, ...), pooling and resizes
are not counted: they cost O(elements), not O(elements x kernel).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from handpose.runner import make_interpreter


def _shape(tensors: dict[int, dict[str, Any]], index: int) -> tuple[int, ...]:
    return tuple(int(v) for v in tensors[index]["shape"])


def op_macs(op: dict[str, Any], tensors: dict[int, dict[str, Any]]) -> int:
    """MACs of one op from `Interpreter._get_ops_details()` (0 for ops that are not counted)."""
    name = op["op_name"]
    inputs = [int(i) for i in op["inputs"]]
    outputs = [int(i) for i in op["outputs"]]
    if not outputs:
        return 0
    out = _shape(tensors, outputs[0])
    if name == "CONV_2D" and len(inputs) >= 2:
        _, kh, kw, ci = _shape(tensors, inputs[1])
        return math.prod(out[:-1]) * out[-1] * kh * kw * ci
    if name == "DEPTHWISE_CONV_2D" and len(inputs) >= 2:
        _, kh, kw, _ = _shape(tensors, inputs[1])
        return math.prod(out[:-1]) * out[-1] * kh * kw
    if name == "TRANSPOSE_CONV" and len(inputs) >= 3:
        _, kh, kw, ci = _shape(tensors, inputs[1])
        source = _shape(tensors, inputs[2])
        return math.prod(source[:-1]) * ci * kh * kw * out[-1]
    if name == "FULLY_CONNECTED" and len(inputs) >= 2:
        _, ci = _shape(tensors, inputs[1])[-2:]
        return math.prod(out) * ci
    return 0


def count_tflite_macs(model_path: str | Path) -> int | None:
    """Total MACs of one inference of the model (None when the interpreter cannot list ops)."""
    interpreter = make_interpreter(model_path, num_threads=1)
    ops_details = getattr(interpreter, "_get_ops_details", None)
    if ops_details is None:  # pragma: no cover - every supported runtime has it
        return None
    tensors = {int(t["index"]): t for t in interpreter.get_tensor_details()}
    return int(sum(op_macs(op, tensors) for op in ops_details()))
