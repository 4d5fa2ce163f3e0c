"""One TFLite runner for every model: interpreter chosen once at import, tensors from metadata.

The interpreter is `ai_edge_litert` where it is installed (x86_64 / aarch64 with Python >= 3.10:
XNNPACK runs int8 models 30x faster than tflite-runtime 2.14's built-in kernels on x86), else the
slim `tflite_runtime` (armv7l / Python 3.9), then TensorFlow's own (`tensorflow.lite`).
`ModelRunner` owns one interpreter, checks its tensors
against the metadata JSON at start-up, feeds uint8 RGB pixels (quantizing or normalising as the
metadata says) and returns float32 outputs keyed by their logical names.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from handpose.errors import ModelFileError
from handpose.metadata import ModelMetadata

log = logging.getLogger(__name__)


def _version(distribution: str) -> str:
    try:
        from importlib.metadata import version

        return version(distribution)
    except Exception:  # pragma: no cover - metadata missing in odd installs
        return "?"


#: preference order: ai-edge-litert (XNNPACK for int8; wheels for x86_64 / aarch64, Python >= 3.10),
#: tflite-runtime (the only wheels for armv7l and Python 3.9, e.g. Raspberry Pi OS bullseye),
#: TensorFlow's own interpreter last (training machines)
_CANDIDATES = (
    ("ai-edge-litert", "ai_edge_litert", "ai_edge_litert.interpreter"),
    ("tflite-runtime", "tflite_runtime", "tflite_runtime.interpreter"),
    ("tensorflow", "tensorflow", "tensorflow.lite.python.interpreter"),
)
#: interpreters that are installed but failed to load ("name: first line of the error"), e.g.
#: a tflite-runtime wheel built for a newer libstdc++ than the OS has; start-up logs them, and
#: the "no interpreter" error names them instead of pretending nothing is installed
BROKEN: list[str] = []


def _load_interpreter() -> tuple[Any, str]:
    import importlib

    for name, package, module in _CANDIDATES:
        try:
            return importlib.import_module(module).Interpreter, name
        except ImportError as error:
            if isinstance(error, ModuleNotFoundError) and error.name in (package, module):
                continue  # not installed
            BROKEN.append(
                f"{name}: {str(error).splitlines()[0] if str(error) else type(error).__name__}"
            )
    return None, "none"


Interpreter, RUNTIME = _load_interpreter()

#: "name version" of the interpreter in use (logged at start-up, printed by `handpose bench`)
RUNTIME_VERSION = f"{RUNTIME} {_version(RUNTIME if RUNTIME != 'tensorflow' else 'tensorflow-cpu')}"


def make_interpreter(model_path: str | Path, num_threads: int = 2) -> Any:
    """A TFLite interpreter with tensors allocated; `ModelFileError` if the file is no model."""
    if Interpreter is None:
        if BROKEN:
            raise ModelFileError(
                f"no TFLite interpreter loads: {'; '.join(BROKEN)}; install the version "
                "`.actdk/dependencies.json` (or setup.py) lists for this OS"
            )
        raise ModelFileError(
            "no TFLite interpreter installed: `pip install ai-edge-litert` (x86_64 / aarch64, "
            "Python >= 3.10) or `pip install tflite-runtime` (armv7l, Python 3.9)"
        )
    try:
        interpreter = Interpreter(model_path=str(model_path), num_threads=int(num_threads))
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as error:
        raise ModelFileError(
            f"{model_path}: not a valid TFLite model ({str(error).splitlines()[0]}); "
            "re-create it with `handpose convert`"
        ) from None
    return interpreter


def _quant(detail: dict[str, Any]) -> tuple[float, int] | None:
    scale, zero = detail.get("quantization", (0.0, 0))
    return (float(scale), int(zero)) if scale else None


class ModelRunner:
    """Runs one model described by its metadata.

    Args:
        metadata: the model's `ModelMetadata` (its `model_path` is loaded).
        num_threads: interpreter threads (1-4 on a Pi).

    Attributes:
        invokes: interpreter invocations so far.
        invoke_seconds: their wall time in seconds (`interpreter.invoke()` only: feeding the
            input and reading the outputs are not in it).
        invoke_cpu_seconds: the process CPU time during them (the interpreter's worker threads
            included; other threads of the process busy at the same time count too).
        Readers take differences of these totals over a run (`handpose bench`).
    """

    def __init__(self, metadata: ModelMetadata, num_threads: int = 2) -> None:
        self.metadata = metadata
        self.invokes = 0
        self.invoke_seconds = self.invoke_cpu_seconds = 0.0
        path = metadata.verify_file()
        self.interpreter = make_interpreter(path, num_threads)
        self._check_tensors(path)
        inp = self.interpreter.get_input_details()[0]
        self._input_index = inp["index"]
        self._input_dtype = np.dtype(inp["dtype"])
        self._input_quant = _quant(inp)
        self._input_buffer = np.zeros(inp["shape"], dtype=self._input_dtype)
        by_name = {d["name"]: d for d in self.interpreter.get_output_details()}
        self._outputs = {
            key: (by_name[spec.name]["index"], _quant(by_name[spec.name]))
            for key, spec in metadata.outputs.items()
        }
        norm = metadata.normalization
        self._mean = np.asarray(norm["mean"], np.float32) if norm else None
        self._std = np.asarray(norm["std"], np.float32) if norm else None
        self._table: np.ndarray | None = None
        self._raw_input = False
        self._choose_input_path()

    def _choose_input_path(self) -> None:
        """How `run` feeds pixels: as they are (`_raw_input`), through a table, or computed.

        A quantized input without normalisation is an elementwise function of the pixel value,
        so the table of its 256 results (`_quantize`, the arithmetic itself) converts a frame to
        the same values with one lookup per pixel. Camera pixels go in as they are when the
        input is uint8 without normalisation and with no quantization or one that maps every
        value to itself (scale 1, or 1 within float32 rounding as converters write it, zero
        point 0: our int8 models).
        """
        self._table = None
        if self._input_quant is not None and self._mean is None:
            self._table = self._quantize(np.arange(256, dtype=np.uint8))
        identity = self._input_quant is None or (
            self._table is not None and np.array_equal(self._table, np.arange(256))
        )
        self._raw_input = self._input_dtype == np.uint8 and identity and self._mean is None

    def _quantize(self, image: np.ndarray) -> np.ndarray:
        """RGB pixels -> the quantized input's values (input dtype): normalised when the
        metadata says so, then q = clip(round(x / scale + zero point))."""
        assert self._input_quant is not None
        scale, zero = self._input_quant
        pixels = image.astype(np.float32)
        if self._mean is not None:
            pixels = (pixels - self._mean) / self._std
        info = np.iinfo(self._input_dtype)
        return np.clip(np.round(pixels / scale + zero), info.min, info.max).astype(
            self._input_dtype
        )

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) the model expects."""
        return self.metadata.input_size

    def _check_tensors(self, path: Path) -> None:
        meta = self.metadata
        fix = f"the metadata {meta.path} does not describe {path}; re-run `handpose convert`"
        inputs = self.interpreter.get_input_details()
        if len(inputs) != 1:
            raise ModelFileError(f"{path}: expected 1 input tensor, found {len(inputs)}; {fix}")
        inp = inputs[0]
        if list(inp["shape"]) != list(meta.input.shape):
            raise ModelFileError(
                f"{path}: input shape {list(inp['shape'])} != metadata {meta.input.shape}; {fix}"
            )
        if np.dtype(inp["dtype"]).name != meta.input.dtype:
            raise ModelFileError(
                f"{path}: input dtype {np.dtype(inp['dtype']).name} != metadata "
                f"{meta.input.dtype}; {fix}"
            )
        by_name = {d["name"]: d for d in self.interpreter.get_output_details()}
        for key, spec in meta.outputs.items():
            detail = by_name.get(spec.name)
            if detail is None:
                raise ModelFileError(
                    f"{path}: no output tensor {spec.name!r} (metadata output {key!r}); {fix}"
                )
            if list(detail["shape"]) != list(spec.shape):
                raise ModelFileError(
                    f"{path}: output {key!r} shape {list(detail['shape'])} != metadata "
                    f"{spec.shape}; {fix}"
                )

    def run(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """Run on one RGB uint8 image of the input size; float32 outputs by logical name.

        Args:
            image: uint8 (H, W, 3), H x W = `input_size`.
        Returns:
            {name: float32 array of the output's shape (batch axis kept)}.
        """
        if image.shape[:2] != self.input_size:
            raise ValueError(f"image is {image.shape[:2]}, the model expects {self.input_size}")
        buffer = self._input_buffer
        if self._raw_input:  # no float copy of the frame on the hot path
            buffer[0] = image
        elif self._table is not None and image.dtype == np.uint8:  # 7x faster than arithmetic
            np.take(self._table, image, out=buffer[0], mode="clip")  # (uint8: never clipped)
        elif self._input_quant is not None:
            buffer[0] = self._quantize(image)
        else:
            pixels = image.astype(np.float32)
            if self._mean is not None:
                pixels = (pixels - self._mean) / self._std
            buffer[0] = pixels
        self.interpreter.set_tensor(self._input_index, buffer)
        cpu, wall = time.process_time(), time.perf_counter()
        self.interpreter.invoke()
        self.invoke_seconds += time.perf_counter() - wall
        self.invoke_cpu_seconds += time.process_time() - cpu
        self.invokes += 1
        outputs = {}
        for key, (index, quant) in self._outputs.items():
            raw = self.interpreter.get_tensor(index)
            if quant is not None:
                scale, zero = quant
                outputs[key] = (raw.astype(np.float32) - zero) * scale
            else:
                outputs[key] = raw.astype(np.float32, copy=False)
        return outputs
