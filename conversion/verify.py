"""`handpose convert verify DIR --data SPEC`: TFLite files against the float Keras network.

For every model in DIR (`DIR/{int8,fp16,fp32}/{detector,pose}.json`, see `conversion.bench`)
the float network is rebuilt from the training run named in its metadata
(`training.run_dir`, `models.training.run.load_run`; a `handpose convert chainer` import is
imported again from its `training.source` checkpoint) and both run on the same held-out inputs,
built like training validation (`conversion.calibration`: detector = centre square resized to
S, pose = 1.25 x hand box crop, left hands mirrored) from the "test" split of `--data` (neither
trained on, nor used to pick the checkpoint, nor used for calibration). Per model and precision:

    raw error   mean |tflite - keras| of each output after dequantization, and the max
    AP@0.5      detector: `handpose.codec.boxes.decode` (score threshold 0.05) then
                `models.metrics.average_precision` against the labelled boxes
    PCK@0.2     pose: `handpose.codec.ppn.decode` then `models.metrics.pck` (threshold 0.2 of
                the hand box's longer side) against the labelled keypoints; beside it the mean
                3D bone direction error in degrees (`models.metrics.bone_angle_error_deg`) on
                inputs with 3D labels
    drop        float metric - tflite metric, in points (x 100)

The float metrics are computed once per run folder and shown on a "float" row. The int8 budget
is at most 1 AP point and 2 PCK points; rows over budget are flagged and the command returns 1.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from handpose.argtypes import positive_int
from handpose.errors import HandposeError
from handpose.metadata import ModelMetadata

#: largest allowed int8 drop in points (AP x 100, PCK x 100)
INT8_BUDGET = {"detector": 1.0, "pose": 2.0}
METRIC = {"detector": "AP@0.5", "pose": "PCK@0.2"}


def _float_model(meta: ModelMetadata, cache: dict[str, Any]) -> Any:
    """The float Keras network of `meta.training.run_dir` with the converted checkpoint.

    Networks imported by `handpose convert chainer` are imported again from the checkpoint
    named by `meta.training.source`.
    """
    from models.training.run import load_run

    source = meta.training.get("source") or {}
    if source.get("format") == "chainer-hand-pose":
        from conversion.chainer_import import import_network

        checkpoint = str(source.get("checkpoint", ""))
        if (checkpoint, meta.task) not in cache:
            cache[checkpoint, meta.task] = import_network(Path(checkpoint), meta.task)[0]
        return cache[checkpoint, meta.task]
    run_dir = meta.training.get("run_dir", "")
    if not run_dir:
        raise HandposeError(
            f"{meta.path}: metadata has no training.run_dir; verify needs the run folder the "
            "model was converted from (models written by `handpose convert keras` have it)"
        )
    which = meta.training.get("checkpoint", "best")
    if (run_dir, which) not in cache:
        cache[run_dir, which] = load_run(run_dir, which)[0]
    return cache[run_dir, which]


def _keras_batches(model: Any, images: list[np.ndarray], batch: int = 16) -> dict[str, np.ndarray]:
    from conversion.tflite_export import keras_outputs

    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(images), batch):
        out = keras_outputs(model, np.stack(images[start : start + batch]))
        for key, value in out.items():
            parts.setdefault(key, []).append(value)
    return {k: np.concatenate(v) for k, v in parts.items()}


def _tflite_outputs(meta: ModelMetadata, images: list[np.ndarray]) -> dict[str, np.ndarray]:
    from handpose.runner import ModelRunner

    runner = ModelRunner(meta, num_threads=2)
    parts: dict[str, list[np.ndarray]] = {}
    for image in images:
        for key, value in runner.run(image).items():
            parts.setdefault(key, []).append(value)
    return {k: np.concatenate(v) for k, v in parts.items()}


def detector_score(outputs: dict[str, np.ndarray], inputs: list[Any], meta: ModelMetadata) -> float:
    """AP@0.5 of decoded detector outputs (B, N, 4) / (B, N, C+1) against the inputs' boxes
    (mean over the classes; class-agnostic when some boxes have no side, as real photos)."""
    from handpose.codec import boxes as box_codec
    from handpose.hand import Hand
    from models.metrics import average_precision

    classes = tuple(meta.classes)
    priors = box_codec.default_boxes(box_codec.DefaultBoxConfig.from_dict(meta.default_boxes))
    # label C + 1 (C >= 2): a hand of unknown side (real photos' boxes)
    names = (*classes, "hand") if len(classes) > 1 else ("hand",)
    predictions, truths = [], []
    for j, x in enumerate(inputs):
        predictions.append(
            box_codec.decode(
                outputs["locations"][j],
                outputs["scores"][j],
                priors,
                classes=classes,
                score_threshold=0.05,
            )
        )
        truths.append(
            [
                Hand(handedness=names[int(lab) - 1], score=1.0, box=box)
                for box, lab in zip(x.boxes, x.labels, strict=True)
            ]
        )
    if any(h.handedness == "hand" for hands in truths for h in hands):  # sides unknown:
        predictions = [[h.replace(handedness="hand") for h in p] for p in predictions]
        truths = [[h.replace(handedness="hand") for h in t] for t in truths]  # class-agnostic
    return float(average_precision(predictions, truths, iou_threshold=0.5))


def pose_score(outputs: dict[str, np.ndarray], inputs: list[Any], meta: ModelMetadata) -> float:
    """PCK@0.2 of decoded pose outputs (B, G, G, 6K) / (B, G, G, 3E) against the crops' labels."""
    return pose_scores(outputs, inputs, meta)[0]


def pose_scores(
    outputs: dict[str, np.ndarray], inputs: list[Any], meta: ModelMetadata
) -> tuple[float, float]:
    """(PCK@0.2, mean 3D bone angle error in degrees over inputs with 3D labels, else NaN)."""
    from handpose.codec import ppn
    from handpose.skeleton import NUM_BONES, NUM_KEYPOINTS
    from models import metrics

    config = ppn.PPNConfig.from_metadata(meta)  # what the app decodes with
    pred, dirs = [], []
    for j in range(len(inputs)):
        result = ppn.decode(outputs["pose"][j], outputs["vect"][j], config)
        pred.append(np.asarray(result["keypoints"], np.float32).reshape(NUM_KEYPOINTS, 2))
        dirs.append(np.asarray(result["directions"], np.float32).reshape(NUM_BONES, 3))
    gt = np.stack([x.keypoints for x in inputs])
    vis = np.stack([x.visible for x in inputs]) > 0
    boxes = np.stack([x.box for x in inputs])
    size = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    pck = float(metrics.pck(np.stack(pred), gt, vis, size, threshold=0.2))
    with_3d = [j for j, x in enumerate(inputs) if x.has_3d]
    angle = float("nan")
    if with_3d:
        angle = metrics.bone_angle_error_deg(
            np.stack([dirs[j] for j in with_3d]), np.stack([inputs[j].directions for j in with_3d])
        )
    return pck, float(angle)


def _bone_angle(
    outputs: dict[str, np.ndarray], inputs: list[Any], meta: ModelMetadata
) -> float | None:
    """Pose: mean bone angle error in degrees (None for the detector or without 3D labels)."""
    if meta.task != "pose":
        return None
    angle = pose_scores(outputs, inputs, meta)[1]
    return None if np.isnan(angle) else angle


def _inputs(meta: ModelMetadata, spec: str, samples: int, split: str, seed: int) -> list[Any]:
    from conversion.calibration import detector_inputs, pose_inputs

    size = int(meta.input.shape[1])
    if meta.task == "detector":
        return list(detector_inputs(spec, size, meta.classes, samples, split, seed))
    return list(pose_inputs(spec, size, samples, split, seed))


def verify(
    root: str | Path, spec: str, samples: int = 200, split: str = "test", seed: int | None = None
) -> list[dict[str, Any]]:
    """One result dict per float network and per TFLite model (see module docstring)."""
    from conversion.bench import find_models

    models, results = {}, []
    floats: dict[tuple[str, str], dict[str, Any]] = {}
    data: dict[tuple[str, str], tuple[list[Any], dict[str, np.ndarray]]] = {}
    for meta in find_models(root):
        if meta.family != "handpose" or meta.task not in METRIC:
            continue
        run_dir = meta.training.get("run_dir", "")
        key = (meta.task, run_dir)
        if key not in data:
            model = _float_model(meta, models)
            run_seed = (
                seed
                if seed is not None
                else int(meta.training.get("config", {}).get("train", {}).get("seed", 0))
            )
            inputs = _inputs(meta, spec, samples, split, run_seed)
            if not inputs:
                raise HandposeError(f"--data {spec!r} gives no {meta.task} inputs ({split} split)")
            reference = _keras_batches(model, [x.image for x in inputs])
            data[key] = (inputs, reference)
            score = (detector_score if meta.task == "detector" else pose_score)(
                reference, inputs, meta
            )
            floats[key] = {
                "model": meta.task,
                "precision": "float",
                "metric": score,
                "bone_angle_deg": _bone_angle(reference, inputs, meta),
            }
            results.append({**floats[key], "samples": len(inputs), "raw_error": {}})
        inputs, reference = data[key]
        outputs = _tflite_outputs(meta, [x.image for x in inputs])
        raw = {
            k: {
                "mean": float(np.mean(np.abs(outputs[k] - reference[k]))),
                "max": float(np.max(np.abs(outputs[k] - reference[k]))),
                "range": float(np.max(np.abs(reference[k]))),
            }
            for k in meta.outputs
        }
        score = (detector_score if meta.task == "detector" else pose_score)(outputs, inputs, meta)
        drop = 100.0 * (floats[key]["metric"] - score)
        budget = INT8_BUDGET[meta.task] if meta.precision == "int8" else None
        results.append(
            {
                "model": meta.task,
                "precision": meta.precision,
                "metric": score,
                "bone_angle_deg": _bone_angle(outputs, inputs, meta),
                "drop_points": drop,
                "within_budget": budget is None or drop <= budget,
                "raw_error": raw,
                "samples": len(inputs),
                "path": str(meta.path),
            }
        )
    order = {"float": 0, "int8": 1, "fp16": 2, "fp32": 3}
    return sorted(results, key=lambda r: (r["model"], order[r["precision"]]))


def write_metrics(results: Sequence[dict[str, Any]], spec: str, split: str) -> None:
    """Store each TFLite model's verify result in its metadata JSON under metrics.verify."""
    floats = {r["model"]: r["metric"] for r in results if r["precision"] == "float"}
    for r in results:
        if r["precision"] == "float":
            continue
        meta = ModelMetadata.load(r["path"])
        meta.metrics["verify"] = {
            "data": spec,
            "split": split,
            "samples": r["samples"],
            "metric": METRIC[r["model"]],
            "value": r["metric"],
            "float_value": floats[r["model"]],
            "drop_points": r["drop_points"],
            "raw_error": r["raw_error"],
        }
        meta.save(r["path"])


def format_results(results: Sequence[dict[str, Any]]) -> str:
    from conversion.bench import format_table

    rows = []
    for r in results:
        raw = "; ".join(
            f"{k} {v['mean']:.3g} (max {v['max']:.3g} of {v['range']:.3g})"
            for k, v in r["raw_error"].items()
        )
        drop = "" if r["precision"] == "float" else f"{r['drop_points']:+.2f}"
        flag = "" if r.get("within_budget", True) else " OVER BUDGET"
        rows.append(
            [
                r["model"],
                r["precision"],
                r["samples"],
                METRIC[r["model"]],
                f"{100 * r['metric']:.2f}",
                drop + flag,
                "-" if r["bone_angle_deg"] is None else f"{r['bone_angle_deg']:.1f}",
                raw or "-",
            ]
        )
    headers = [
        "model",
        "precision",
        "n",
        "metric",
        "value",
        "drop (points)",
        "3D bone angle (deg)",
        "raw |error| mean (max of range)",
    ]
    return format_table(headers, rows)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="folder written by `handpose convert keras`")
    parser.add_argument("--data", required=True, metavar="SPEC", help="held-out dataset spec")
    parser.add_argument(
        "--samples", type=positive_int, default=200, help="inputs per network (200)"
    )
    parser.add_argument("--split", default="test", help="split of --data (default test)")
    parser.add_argument("--seed", type=int, help="split seed (default: the run's train.seed)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument(
        "--write-metrics",
        action="store_true",
        help="store the measured metrics in each model's metadata JSON (metrics.verify)",
    )


def main(args: argparse.Namespace) -> int:
    results = verify(args.dir, args.data, args.samples, args.split, args.seed)
    print(format_results(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    if args.write_metrics:
        write_metrics(results, args.data, args.split)
    over = [r for r in results if not r.get("within_budget", True)]
    if over:
        print(
            "int8 over budget (AP drop <= 1 point, PCK drop <= 2 points): "
            + ", ".join(r["model"] for r in over)
        )
        return 1
    return 0
