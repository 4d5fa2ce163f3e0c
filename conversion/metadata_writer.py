"""Fill the `handpose.metadata.ModelMetadata` of a converted network and save it, checked.

`build_metadata` takes the `ExportedModel` (real TFLite tensor names, shapes, dtypes and
quantization, as the interpreter reports them) and the training run's config, and writes every
field the app reads: family "handpose", task, architecture, version, sha256, precision, input
(uint8 scale 1 / zero 0 for int8, float32 0..255 otherwise; normalisation inside the model, so
`normalization` is null), outputs by logical name, classes, default boxes
(`handpose.codec.boxes.DefaultBoxConfig(S).to_dict()`), decode thresholds, the pose grid, keypoint
names and edges (`handpose.skeleton`), the training data/command/config/run folder, and metrics.

`save_checked` writes the JSON and re-opens the pair with `handpose.runner.ModelRunner`, which
compares the tensors with the metadata; a disagreement deletes both files and raises
`ModelFileError` (a model whose metadata lies is never left on disk).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from handpose import __version__
from handpose.errors import HandposeError, ModelFileError
from handpose.metadata import ModelMetadata, TensorSpec, sha256_of
from handpose.skeleton import EDGES, KEYPOINT_NAMES

#: detector decode defaults written into the metadata (the seed's thresholds)
DETECTOR_DECODE = {"score_threshold": 0.6, "nms_threshold": 0.45, "max_detections": 10}
#: pose decode defaults: stride of the PPN grid in input pixels
POSE_STRIDE = 32


def _architecture(task: str, config: dict[str, Any]) -> str:
    model = config.get("model", {})
    width = float(model.get("width", 1.0))
    base = "mobilenetv2-ssdlite" if task == "detector" else "mobilenetv2-ppn"
    return f"{base} width {width:g} padding {model.get('padding', 'keras')}"


def run_metrics(run_dir: str | Path | None) -> dict[str, Any]:
    """The float network's training validation metrics (`metrics.json` of the run), if any."""
    if run_dir is None:
        return {}
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    state = data.get("state", {})
    rows = data.get("validations", [])
    best = next((r for r in rows if r.get("step") == state.get("best_step")), None)
    keep = {
        k: v for k, v in (best or {}).items() if isinstance(v, int | float) and k != "val_time_s"
    }
    return {"metric": data.get("metric"), "best": keep, "step": state.get("step")}


def build_metadata(
    exported: Any,
    task: str,
    config: dict[str, Any],
    run_dir: str | Path | None = None,
    macs: int | None = None,
    params: int | None = None,
    calibration: dict[str, Any] | None = None,
    model_file: str | None = None,
) -> ModelMetadata:
    """The metadata of one exported network.

    Args:
        exported: `conversion.tflite_export.ExportedModel` of the file.
        task: "detector" or "pose".
        config: the training run's resolved config (config.json: model, data, command, ...).
        run_dir: the run folder (stored so `convert verify` can rebuild the float network).
        macs, params: multiply-accumulates per image and parameter count (stored in `extra`).
        calibration: how the int8 calibration set was built (spec, split, samples).
        model_file: file name relative to the JSON (default: the exported file's name).
    """
    model_cfg = config.get("model", {})
    size = int(exported.input.shape[1])
    meta = ModelMetadata(
        family="handpose",
        task=task,
        model_file=model_file or exported.path.name,
        precision=exported.precision,
        input=exported.input,
        outputs=dict(exported.outputs),
        architecture=_architecture(task, config),
        version=__version__,
        sha256=sha256_of(exported.path),
        normalization=None,
        keypoints={"names": list(KEYPOINT_NAMES), "edges": [list(e) for e in EDGES]},
        training={
            "data": config.get("data", {}).get("train", ""),
            "val_data": config.get("data", {}).get("val", ""),
            "command": config.get("command", ""),
            "run_dir": str(Path(run_dir).resolve()) if run_dir is not None else "",
            "config": config,
        },
        metrics={"float": run_metrics(run_dir)} if run_dir is not None else {},
        extra={
            "macs": int(macs) if macs is not None else None,
            "params": int(params) if params is not None else None,
            "calibration": calibration,
            "probe_error": exported.probe_error,
        },
    )
    if task == "detector":
        from models.training.run import default_box_config

        # the very default boxes training encoded its targets with (smin, variance, grids)
        boxes = default_box_config({**config, "model": {**model_cfg, "input_size": size}})
        count = int(exported.outputs["locations"].shape[1])
        if boxes.num_boxes != count:
            raise ModelFileError(
                f"{exported.path}: the detector outputs {count} boxes but the default-box "
                f"layout of a {size} input has {boxes.num_boxes}; was it built by build_detector?"
            )
        meta.classes = list(model_cfg.get("classes", ["left", "right"]))
        meta.default_boxes = boxes.to_dict()
        meta.decode = dict(DETECTOR_DECODE)
    else:
        grid = [int(v) for v in exported.outputs["pose"].shape[1:3]]
        meta.classes = []
        meta.grid = {"size": grid, "stride": size // grid[0] if grid[0] else POSE_STRIDE}
        # crops of left hands mirrored (the network learnt right hands only), or every crop as
        # it is; a "side" output is p(right hand) for the crop as given
        meta.decode = {"mirror_left": bool(config.get("data", {}).get("mirror_left", True))}
        if "side" in exported.outputs:
            meta.decode["side_output"] = "side"
    return meta


def check_metadata(meta: ModelMetadata, json_path: Path) -> None:
    """Open the model with `handpose.runner.ModelRunner` (its tensor check) and run it once."""
    import numpy as np

    from handpose.runner import ModelRunner

    runner = ModelRunner(ModelMetadata.load(json_path), num_threads=1)
    height, width = runner.input_size
    outputs = runner.run(np.zeros((height, width, 3), np.uint8))
    for key, spec in meta.outputs.items():
        if list(outputs[key].shape) != list(spec.shape):
            raise ModelFileError(
                f"{meta.model_path}: output {key!r} has shape {list(outputs[key].shape)}, "
                f"metadata {json_path} says {spec.shape}"
            )
        detail = _output_detail(runner, spec)
        dtype = np.dtype(detail["dtype"]).name
        if dtype != spec.dtype:
            raise ModelFileError(
                f"{meta.model_path}: output {key!r} dtype {dtype} != metadata {spec.dtype} "
                f"in {json_path}"
            )
        scale, zero = detail.get("quantization", (0.0, 0))
        quant = {"scale": float(scale), "zero_point": int(zero)} if scale else None
        if (quant is None) != (spec.quantization is None) or (
            quant is not None
            and spec.quantization is not None
            and (
                abs(quant["scale"] - spec.quantization["scale"]) > 1e-9 * max(quant["scale"], 1)
                or quant["zero_point"] != spec.quantization["zero_point"]
            )
        ):
            raise ModelFileError(
                f"{meta.model_path}: output {key!r} quantization {quant} != metadata "
                f"{spec.quantization} in {json_path}"
            )


def _output_detail(runner: Any, spec: TensorSpec) -> dict[str, Any]:
    for detail in runner.interpreter.get_output_details():
        if detail["name"] == spec.name:
            return detail
    raise ModelFileError(f"no output tensor {spec.name!r}")  # the runner checked names already


def save_checked(meta: ModelMetadata, json_path: str | Path) -> ModelMetadata:
    """Write `meta` to `json_path` (beside its model file) and check it against the model.

    Raises:
        ModelFileError: the tensors disagree with the metadata; the .tflite and the JSON are
            deleted so no inconsistent pair is left behind.
    """
    json_path = Path(json_path)
    meta.save(json_path)
    try:
        check_metadata(meta, json_path)
    except HandposeError as error:
        meta.model_path.unlink(missing_ok=True)
        json_path.unlink(missing_ok=True)
        raise ModelFileError(
            f"refusing to write {meta.model_path.name}: its metadata and tensors disagree "
            f"({error}); files removed"
        ) from None
    return ModelMetadata.load(json_path)
