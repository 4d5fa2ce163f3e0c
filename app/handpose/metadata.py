"""The metadata JSON written beside every `.tflite`: the app's single source of truth.

`conversion` writes it, the app reads it and refuses a model whose metadata is missing, foreign,
or disagrees with the model's tensors. Layout (``format: "handpose-model/1"``)::

    {
      "format": "handpose-model/1",
      "family": "handpose" | "mediapipe",       # model family (chainer imports are "handpose")
      "task": "detector" | "pose" | "palm_detector" | "landmark",
      "architecture": "mobilenetv2-ssdlite",    # free text
      "version": "0.1.0",
      "model_file": "detector.tflite",          # relative to the JSON file
      "sha256": "<hex of the .tflite>",
      "precision": "int8" | "fp16" | "fp32",
      "input": {"name": str, "shape": [1, H, W, 3], "dtype": "uint8" | "float32",
                "color": "RGB", "value_range": [0, 255],
                "normalization": {"mean": [...], "std": [...]} | null,   # null: inside the model
                "quantization": {"scale": float, "zero_point": int} | null},
      "outputs": {"<logical name>": {"name": str, "shape": [...], "dtype": str,
                                     "quantization": {...} | null}, ...},
      "classes": ["left", "right"],             # detector classes without background
      "default_boxes": {...},                    # detector: handpose.codec.boxes config
      "decode": {...},                           # thresholds used by default
      "grid": {"size": [7, 7], "stride": 32},   # pose
      "keypoints": {"names": [...21], "edges": [[p, c] x 20]},
      "training": {"data": str, "command": str, "config": {...}},
      "metrics": {...}
    }

Output logical names: detector `locations` (1, N, 4) and `scores` (1, N, C+1); pose `pose`
(1, Gh, Gw, 6K) and `vect` (1, Gh, Gw, 3E). MediaPipe (`conversion.mediapipe_import`):
palm_detector `boxes` (1, 2016, 18) and `scores` (1, 2016, 1), SSD anchor options in
`default_boxes`, decode / NMS / hand-region options in `decode`; landmark `landmarks` (1, 63),
`presence` (1, 1), `handedness` (1, 1) and `world_landmarks` (1, 63).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from handpose.errors import ModelFileError

FORMAT = "handpose-model/1"
FAMILIES = ("handpose", "mediapipe")
TASKS = ("detector", "pose", "palm_detector", "landmark")
PRECISIONS = ("int8", "fp16", "fp32")
INPUT_DTYPES = ("uint8", "int8", "float32", "float16")
_DICT_FIELDS = ("default_boxes", "decode", "grid", "keypoints", "training", "metrics", "extra")


@dataclass
class TensorSpec:
    """One input or output tensor: its TFLite name, shape, dtype and int8/uint8 quantization."""

    name: str
    shape: list[int]
    dtype: str
    quantization: dict[str, float] | None = None  # {"scale": s, "zero_point": z}


@dataclass
class ModelMetadata:
    family: str
    task: str
    model_file: str
    precision: str
    input: TensorSpec
    outputs: dict[str, TensorSpec]
    architecture: str = ""
    version: str = "0.1.0"
    sha256: str = ""
    color: str = "RGB"
    value_range: list[float] = field(default_factory=lambda: [0.0, 255.0])
    normalization: dict[str, list[float]] | None = None
    classes: list[str] = field(default_factory=list)
    default_boxes: dict[str, Any] = field(default_factory=dict)
    decode: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, Any] = field(default_factory=dict)
    keypoints: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = field(default=None, compare=False)

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the model input."""
        return int(self.input.shape[1]), int(self.input.shape[2])

    @property
    def model_path(self) -> Path:
        base = self.path.parent if self.path is not None else Path(".")
        return base / self.model_file

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("path")
        inp = data.pop("input")
        data["input"] = {
            **inp,
            "color": data.pop("color"),
            "value_range": data.pop("value_range"),
            "normalization": data.pop("normalization"),
        }
        return {"format": FORMAT, **data}

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        self.path = path

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path | None = None) -> ModelMetadata:
        where = str(path) if path is not None else "metadata"
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ModelFileError(
                f'{where}: not a handpose model metadata file (expected "format": "{FORMAT}"); '
                "write it with `handpose convert`"
            )
        try:
            data = dict(data)
            data.pop("format")
            inp = dict(data.pop("input"))
            meta = cls(
                input=TensorSpec(
                    name=inp["name"],
                    shape=list(inp["shape"]),
                    dtype=inp["dtype"],
                    quantization=inp.get("quantization"),
                ),
                color=inp.get("color", "RGB"),
                value_range=list(inp.get("value_range", [0.0, 255.0])),
                normalization=inp.get("normalization"),
                outputs={k: TensorSpec(**v) for k, v in data.pop("outputs").items()},
                path=path,
                **data,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ModelFileError(
                f"{where}: metadata is incomplete or has an unknown field ({error}); "
                "re-create it with `handpose convert`"
            ) from None
        meta.validate()
        return meta

    @classmethod
    def load(cls, path: str | Path) -> ModelMetadata:
        """Read and validate a metadata JSON; `ModelFileError` names the file and the fix."""
        path = Path(path)
        if not path.is_file():
            raise ModelFileError(
                f"{path}: model metadata file not found; point --models (or the `models_dir` "
                "setting) at a folder written by `handpose convert`"
            )
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError, RecursionError) as error:  # ValueError: JSON, UTF-8
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ModelFileError(
                f"{path}: cannot read model metadata ({reason}); re-create it with "
                "`handpose convert`"
            ) from None
        return cls.from_dict(data, path)

    def validate(self) -> None:
        """`ModelFileError` naming the file and the field unless every field the app reads has
        the right type and a possible value."""
        where = str(self.path) if self.path is not None else "metadata"

        def bad(what: str) -> ModelFileError:
            return ModelFileError(f"{where}: {what}; re-create it with `handpose convert`")

        if not isinstance(self.family, str) or self.family not in FAMILIES:
            raise ModelFileError(f"{where}: unknown model family {self.family!r} ({FAMILIES})")
        if not isinstance(self.task, str) or self.task not in TASKS:
            raise ModelFileError(f"{where}: unknown model task {self.task!r} ({TASKS})")
        if not isinstance(self.precision, str) or self.precision not in PRECISIONS:
            raise ModelFileError(f"{where}: unknown precision {self.precision!r} ({PRECISIONS})")
        if not isinstance(self.model_file, str) or not self.model_file.strip("./"):
            raise bad(f"model_file must name the .tflite file, got {self.model_file!r}")
        if not isinstance(self.sha256, str):
            raise bad(f"sha256 must be a hex string, got {self.sha256!r}")
        shape = self.input.shape
        if (
            not (_is_shape(shape) and len(shape) == 4 and shape[0] == 1 and shape[3] == 3)
            or min(shape) < 1
        ):
            raise ModelFileError(
                f"{where}: input shape must be [1, H, W, 3], got {self.input.shape}"
            )
        if self.input.dtype not in INPUT_DTYPES:
            raise bad(f"input dtype must be one of {INPUT_DTYPES}, got {self.input.dtype!r}")
        if not isinstance(self.outputs, dict):
            raise bad(f"outputs must be an object, got {self.outputs!r}")
        for key, spec in [("input", self.input), *self.outputs.items()]:
            if not isinstance(spec.name, str) or not isinstance(spec.dtype, str):
                raise bad(f"tensor {key!r} needs a string name and dtype")
            if not _is_shape(spec.shape):
                raise bad(f"tensor {key!r} shape must be a list of sizes, got {spec.shape!r}")
            if spec.quantization is not None and not _is_quantization(spec.quantization):
                raise bad(f"tensor {key!r} quantization must be {{scale, zero_point}} or null")
        if self.normalization is not None and not _is_normalization(self.normalization):
            raise bad("input normalization must be {mean: [...], std: [non-zero ...]} or null")
        if not isinstance(self.classes, list) or not all(isinstance(c, str) for c in self.classes):
            raise bad(f"classes must be a list of names, got {self.classes!r}")
        for name in _DICT_FIELDS:
            if not isinstance(getattr(self, name), dict):
                raise bad(f"{name} must be an object, got {getattr(self, name)!r}")

    def verify_file(self) -> Path:
        """Check the model file exists and matches `sha256`; returns its path.

        The digest is required: the TFLite interpreter does not verify a model file, and a
        truncated or damaged one can crash the process (segmentation fault) instead of raising.
        """
        model = self.model_path
        if not model.is_file():
            raise ModelFileError(
                f"{model}: model file named by {self.path} not found; copy the whole folder "
                "written by `handpose convert`"
            )
        if not self.sha256:
            raise ModelFileError(
                f"{self.path}: metadata has no sha256 of {model.name}, so a truncated or "
                "replaced model cannot be told from the right one; re-create it with "
                "`handpose convert`"
            )
        digest = sha256_of(model)
        if digest != self.sha256:
            raise ModelFileError(
                f"{model}: file does not match its metadata {self.path} (sha256 differs: "
                "truncated or replaced); copy both files again from `handpose convert`"
            )
        from handpose.tflite_file import check_tflite_file

        check_tflite_file(model)  # a file whose digest was recomputed can still be truncated
        return model


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_shape(shape: Any) -> bool:
    """A list of non-negative integer sizes."""
    return isinstance(shape, list) and all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    )


def _is_quantization(quant: Any) -> bool:
    return (
        isinstance(quant, dict)
        and _is_number(quant.get("scale"))
        and isinstance(quant.get("zero_point"), int)
    )


def _is_normalization(norm: Any) -> bool:
    if not isinstance(norm, dict):
        return False
    mean, std = norm.get("mean"), norm.get("std")
    return (
        isinstance(mean, list)
        and isinstance(std, list)
        and len(mean) in (1, 3)
        and len(std) in (1, 3)
        and all(_is_number(v) for v in mean)
        and all(_is_number(v) and v != 0 for v in std)
    )


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
