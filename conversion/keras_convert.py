"""`handpose convert keras`: training run folders -> app model folders, one per precision.

    handpose convert keras --detector RUN_DIR --pose RUN_DIR --out DIR \
        --precision int8 fp16 fp32 [--calibration SPEC --samples N]

writes

    DIR/int8/detector.tflite  DIR/int8/detector.json  DIR/int8/pose.tflite  DIR/int8/pose.json
    DIR/fp16/...              DIR/fp32/...

so each precision folder is what the app loads (`--models DIR/int8`). The int8 calibration set
is `--samples` images of the "train" split of `--calibration` (default: the run's data.train
spec), pre-processed like training validation (`conversion.calibration`), so the held-out "val"
split that `handpose convert verify` scores stays unseen by the calibration too.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from handpose.argtypes import positive_int
from handpose.errors import HandposeError
from handpose.metadata import PRECISIONS, ModelMetadata

log = logging.getLogger(__name__)

TASKS = ("detector", "pose")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--detector", metavar="RUN_DIR", help="detector training run folder")
    parser.add_argument("--pose", metavar="RUN_DIR", help="pose training run folder")
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
        help="dataset spec of the int8 calibration images (default: the run's data.train)",
    )
    parser.add_argument(
        "--split",
        default="train",
        help="split of --calibration to calibrate on (default train; verify uses val)",
    )
    parser.add_argument(
        "--samples", type=positive_int, default=200, help="calibration images (default 200)"
    )
    parser.add_argument(
        "--checkpoint", choices=("best", "last"), default="best", help="which weights (best)"
    )
    parser.add_argument(
        "--int8-tolerance",
        type=float,
        metavar="R",
        help="allowed mean int8-vs-Keras output error on the probe image, as a share of the "
        "output's range (default 0.05); what counts is `convert verify`'s accuracy",
    )
    parser.add_argument(
        "--side-source",
        choices=("pose", "detector", "fused"),
        default="pose",
        help="pose networks with a side output: which side the app reports, the pose "
        "network's, the detector's or the mean of their p(right) (default pose; choose by "
        "`handpose evaluate --models`' 'side' / 'pose side' / 'det side' columns)",
    )


def convert_model(
    model: Any,
    task: str,
    config: dict[str, Any],
    out_dir: str | Path,
    precisions: list[str],
    calibration: str | None = None,
    samples: int = 200,
    split: str = "train",
    run_dir: str | Path | None = None,
    adjust: Callable[[ModelMetadata], None] | None = None,
    int8_tolerance: float | None = None,
) -> list[ModelMetadata]:
    """Write a Keras network as `out_dir/<precision>/<task>.{tflite,json}` for each precision.

    Args:
        model: the float network, input (B, S, S, 3) float RGB 0..255.
        task: "detector" or "pose".
        config: resolved-config-like dict stored in the metadata (`task`; `model` with width,
            input_size, padding and the detector's classes; `data`, `command`, `train.seed`).
        calibration: dataset spec of the int8 calibration images (required for int8).
        samples, split: how many calibration images, from which split of `calibration`.
        run_dir: the training run folder, stored for `convert verify` (None: not from a run).
        adjust: called on each metadata before it is saved and checked (extra fields).
        int8_tolerance: the int8 probe check's limit (`export_tflite`'s tolerance).
    Returns: the saved metadata per precision.
    """
    from conversion.calibration import representative_images
    from conversion.macs import count_macs
    from conversion.metadata_writer import build_metadata, save_checked
    from conversion.tflite_export import export_tflite

    size = int(config["model"]["input_size"])
    images: list[Any] = []
    calib: dict[str, Any] | None = None
    if "int8" in precisions:
        if not calibration:
            raise HandposeError(
                f"{task}: int8 needs calibration images: pass --calibration SPEC (a dataset "
                "spec such as `synthetic`)"
            )
        seed = int(config.get("train", {}).get("seed", 0))
        images = representative_images(
            calibration, task, size, samples, config["model"].get("classes", ()), split, seed
        )
        calib = {
            "spec": calibration,
            "split": split,
            "seed": seed,
            "samples": len(images),
            "preprocessing": "models.training.pipeline validation examples (augment off)",
        }
        log.info(
            "%s: %d calibration images from %s (%s split)", task, len(images), calibration, split
        )
    macs, params = count_macs(model), int(model.count_params())
    saved = []
    for precision in precisions:
        folder = Path(out_dir) / precision
        exported = export_tflite(
            model,
            folder / f"{task}.tflite",
            precision,
            images or None,
            tolerance=int8_tolerance if precision == "int8" else None,
        )
        meta = build_metadata(
            exported,
            task,
            config,
            run_dir=run_dir,
            macs=macs,
            params=params,
            calibration=calib if precision == "int8" else None,
        )
        if adjust is not None:
            adjust(meta)
        saved.append(save_checked(meta, folder / f"{task}.json"))
        print(
            f"{folder / (task + '.tflite')}: {precision}, {exported.size} bytes, "
            f"{macs / 1e6:.1f} M MACs, probe error "
            + ", ".join(f"{k} {v:.2g}" for k, v in exported.probe_error.items())
        )
    return saved


def convert_run(
    run_dir: str | Path,
    task: str,
    out_dir: str | Path,
    precisions: list[str],
    calibration: str | None = None,
    samples: int = 200,
    split: str = "train",
    which: str = "best",
    side_source: str = "pose",
    int8_tolerance: float | None = None,
) -> list[ModelMetadata]:
    """Convert one training run to every precision; returns the saved metadata per precision.
    `side_source`: written as `decode.side_source` of pose networks with a side output.

    The int8 calibration spec defaults to the run's data.train.
    """
    from models.training.run import load_run

    model, config = load_run(run_dir, which)
    if config.get("task") != task:
        raise HandposeError(
            f"--{task} {run_dir}: the run trained a {config.get('task')!r} network, not a {task}"
        )

    def mark_checkpoint(meta: ModelMetadata) -> None:
        meta.training["checkpoint"] = which
        if meta.decode.get("side_output"):
            meta.decode["side_source"] = side_source

    return convert_model(
        model,
        task,
        config,
        out_dir,
        precisions,
        calibration or config.get("data", {}).get("train"),
        samples,
        split,
        run_dir=run_dir,
        adjust=mark_checkpoint,
        int8_tolerance=int8_tolerance,
    )


def main(args: argparse.Namespace) -> int:
    runs = {task: getattr(args, task) for task in TASKS if getattr(args, task)}
    if not runs:
        raise HandposeError("convert keras: pass --detector RUN_DIR and/or --pose RUN_DIR")
    for task, run_dir in runs.items():
        convert_run(
            run_dir,
            task,
            args.out,
            list(dict.fromkeys(args.precision)),
            args.calibration,
            args.samples,
            args.split,
            args.checkpoint,
            args.side_source,
            args.int8_tolerance,
        )
    return 0
