"""`handpose evaluate --models A --models B --gt SPEC`: model sets side by side on labelled data.

Every model folder (`--models [NAME=]DIR`: ours int8 / float, the MediaPipe family) runs over
every ground-truth set as `handpose predict` does (whole image letterboxed, no tracking or
smoothing), with the detector threshold lowered to `AP_SCORE` so the whole precision/recall
curve counts; `models.commands.evaluate.evaluate` then scores it. Printed per (set, models):

- recall: fraction of the labelled hands matched (IoU >= --iou, any side) by a hand the app would
  report (score >= the app's `score_threshold`, 0.6 by default);
- AP@0.5: class-agnostic average precision over all scores (sides are not scored: real sets have
  no side labels; the teacher's sides are labels only where it agreed with a human box);
- false/100: reported boxes (score >= the app's threshold) that overlap no labelled hand (IoU <
  0.1) per 100 images: boxes on faces, arms and background, or on hands the labels skip;
- side: fraction of matched hands whose side equals the label's (labels with a side only);
  "det side" / "pose side" the same for the detector's / the pose network's side (pose
  networks with a side output report one of them, `decode.side_source`, and keep both);
- PCK@0.2 / PCK@0.1: keypoints of matched reported hands against the label's (the teacher's)
  keypoints, threshold 0.2 (0.1) x the label's keypoint-box size, over the labelled hands the
  models found ("found"), and over all labelled hands with a missed hand counting wrong ("all");
- NME found: mean keypoint distance over that size, of the found hands (`models.metrics.nme`);
- 3D deg: mean angle between predicted and true bone directions of found hands (sets with 3D
  labels: the renderer's).
Real test sets with teacher keypoints are written by `handpose data teacher`; reading them
as `dir:DIR` with `--split test` reads only their test split. `--sheet PNG` draws the first
model set's reported hands on the first images of every set (label boxes in yellow);
`--json FILE` writes every number.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from handpose.codec.boxes import box_iou
from handpose.errors import HandposeError
from handpose.hand import Hand
from models.data.sample import Sample

#: detector threshold of the AP run (hands down to this score are scored)
AP_SCORE = 0.05
#: most hands per image in the AP run
MAX_HANDS = 4


def parse_gt(text: str) -> tuple[str, str]:
    """`NAME=SPEC` -> (NAME, SPEC); a bare SPEC is named by its last path part."""
    name, sep, spec = text.partition("=")
    if sep and ":" not in name and "/" not in name:
        return name.strip(), spec.strip()
    tail = text.rstrip("/").split("?")[0].rsplit("/", 1)[-1]
    return tail or text, text


def parse_models(text: str) -> tuple[str, str]:
    """`NAME=DIR` -> (NAME, DIR); a bare DIR is named by its folder name."""
    name, sep, folder = text.partition("=")
    if sep and "/" not in name:
        return name.strip(), folder.strip()
    return Path(text).name or text, text


def side_accuracy(
    truths: list[list[Hand]], predictions: list[list[Hand]], iou: float, source: str = ""
) -> float:
    """Fraction of sided labels whose best-IoU prediction (>= iou) has the same side (nan: none).
    `source` "detector" / "pose": score `extras["detector_side"]` / `extras["pose_side"]` (pose
    networks with a side output keep both) instead of the side reported."""
    hits = total = 0
    for hands, preds in zip(truths, predictions, strict=True):
        boxes = np.array([p.box for p in preds], np.float64).reshape(-1, 4)
        for hand in hands:
            if hand.handedness not in ("left", "right") or not len(preds):
                continue
            ious = box_iou(np.asarray(hand.box, np.float64)[None], boxes)[0]
            best = int(np.argmax(ious))
            if ious[best] < iou:
                continue
            side = preds[best].handedness
            if source == "detector":
                side = preds[best].extras.get("detector_side", side)
            elif source == "pose":
                side = preds[best].extras.get("pose_side")
            if side is not None:
                total += 1
                hits += side == hand.handedness
    return hits / total if total else float("nan")


#: a reported box overlapping every label box less than this is a false detection
FALSE_IOU = 0.1


def false_boxes(truths: list[list[Hand]], reported: list[list[Hand]]) -> int:
    """Reported hands that overlap no labelled hand (IoU < FALSE_IOU with all): boxes on faces,
    arms, background (or on a hand the annotator skipped)."""
    count = 0
    for hands, preds in zip(truths, reported, strict=True):
        if not preds:
            continue
        if not hands:
            count += len(preds)
            continue
        boxes = np.array([h.box for h in hands], np.float64).reshape(-1, 4)
        for pred in preds:
            count += float(box_iou(np.asarray(pred.box, np.float64)[None], boxes).max()) < FALSE_IOU
    return count


def run_models(
    folder: str, samples: Sequence[Sample], threads: int
) -> tuple[list[list[Hand]], float]:
    """(hands per image at AP_SCORE, the app's score threshold) of one model set."""
    from handpose.pipeline.models import load_model_set
    from handpose.pipeline.process import HandPipeline
    from handpose.settings import AppSettings

    app = AppSettings()
    settings = app.replace(models_dir=str(folder), score_threshold=AP_SCORE, max_hands=MAX_HANDS,
                           num_threads=threads)  # fmt: skip
    models = load_model_set(settings.models_dir, settings.num_threads)
    pipeline = HandPipeline(models, settings, stream=False)
    out = [pipeline(sample.image, region="letterbox") for sample in samples]
    return out, float(app.score_threshold)


def score_set(
    truths: list[list[Hand]], predictions: list[list[Hand]], threshold: float, iou: float
) -> dict[str, Any]:
    """The numbers of one (set, models) row (see the module docstring)."""
    from models.commands.evaluate import evaluate

    full = evaluate(truths, predictions, iou)
    reported = [[h for h in p if h.score >= threshold] for p in predictions]
    app = evaluate(truths, reported, iou)
    row: dict[str, Any] = {
        "images": len(truths),
        "hands": full["detection"]["hands"],
        "recall": app["detection"]["recall"],
        "ap50": full["detection"]["ap_any_side"],
        "side": side_accuracy(truths, reported, iou),
        "det_side": side_accuracy(truths, reported, iou, source="detector"),
        "pose_side": side_accuracy(truths, reported, iou, source="pose"),
        "false_per_100": 100.0 * false_boxes(truths, reported) / max(len(truths), 1),
    }
    pose = app.get("pose")
    if pose is not None:
        row["kp_hands"] = pose["hands"]
        row["pck_found"] = pose.get("pck@0.2_detected", float("nan"))
        row["pck01_found"] = pose.get("pck@0.1_detected", float("nan"))
        row["nme_found"] = pose.get("nme_detected", float("nan"))
        row["bone_deg"] = pose.get("bone_angle_deg", float("nan"))
        row["pck_all"] = pose["pck@0.2"]
    return row


def draw_tile(sample: Sample, hands: list[Hand], truths: list[Hand], size: int) -> Image.Image:
    """`models.data.preview.draw_sample` of the predicted hands, label boxes in yellow."""
    from models.data.preview import draw_sample

    tile = draw_sample(Sample(sample.image, hands, None, sample.source, sample.name), size)
    scale = size / max(sample.width, sample.height)
    draw = ImageDraw.Draw(tile)
    for hand in truths:
        draw.rectangle([float(v) * scale for v in hand.box], outline=(255, 220, 0), width=1)
    for hand in hands:
        draw.text((float(hand.box[0]) * scale + 2, float(hand.box[3]) * scale - 11),
                  f"{hand.score:.2f}", fill=(255, 255, 255))  # fmt: skip
    return tile


def format_table(rows: list[dict[str, Any]]) -> str:
    """The comparison table, one line per (set, models)."""
    head = ("set", "models", "images", "hands", "recall", "AP@0.5", "false/100", "side",
            "det side", "pose side",
            "PCK@0.2 found", "PCK@0.1 found", "NME found", "PCK@0.2 all", "3D deg")  # fmt: skip

    def pct(v: Any) -> str:
        return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * v:.1f}"

    def ratio(v: Any) -> str:
        return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.3f}"

    body = [
        (
            r["set"],
            r["models"],
            str(r["images"]),
            str(r["hands"]),
            pct(r["recall"]),
            pct(r["ap50"]),
            "-" if r.get("false_per_100") is None else f"{r['false_per_100']:.1f}",
            pct(r["side"]),
            pct(r.get("det_side")),
            pct(r.get("pose_side")),
            pct(r.get("pck_found")),
            pct(r.get("pck01_found")),
            ratio(r.get("nme_found")),
            pct(r.get("pck_all")),
            "-" if np.isnan(r.get("bone_deg", float("nan"))) else f"{r['bone_deg']:.1f}",
        )  # fmt: skip
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in
                       enumerate(zip(line, widths, strict=True)))  # fmt: skip
             for line in [head, tuple("-" * w for w in widths), *body]]  # fmt: skip
    return "\n".join(lines)


def compare(
    models: Sequence[str],
    gts: Sequence[str],
    split: str,
    iou: float = 0.5,
    threads: int = 2,
    sheet: Path | None = None,
    sheet_count: int = 8,
) -> tuple[list[dict[str, Any]], str]:
    """Rows and the printed table of every model set on every ground-truth set."""
    from tqdm import tqdm

    from models.data.spec import open_dataset

    sets = []
    for text in gts:
        name, spec = parse_gt(text)
        dataset = open_dataset(spec, split=split, task="detection")
        if len(dataset) == 0:
            raise HandposeError(f"--gt {text}: no images in its {split} split")
        samples = [dataset[i] for i in tqdm(range(len(dataset)), desc=f"read {name}",
                                            unit="img", disable=None)]  # fmt: skip
        sets.append((name, samples))
    labels = [name for name, _ in map(parse_models, models)]
    if len(set(labels)) < len(labels):  # same folder names: use the whole paths
        labels = [folder for _, folder in map(parse_models, models)]
    models = [folder for _, folder in map(parse_models, models)]
    rows, tiles = [], []
    for k, folder in enumerate(models):
        for name, samples in sets:
            predictions, threshold = run_models(folder, samples, threads)
            truths = [s.hands for s in samples]
            row = {"set": name, "models": labels[k],
                   **score_set(truths, predictions, threshold, iou)}  # fmt: skip
            rows.append(row)
            if k == 0 and sheet is not None:
                for s, p in list(zip(samples, predictions, strict=True))[:sheet_count]:
                    tiles.append(draw_tile(s, [h for h in p if h.score >= threshold], s.hands,
                                           224))  # fmt: skip
    if sheet is not None and tiles:
        columns = sheet_count
        rows_n = -(-len(tiles) // columns)
        image = Image.new("RGB", (columns * 224, rows_n * 224))
        for n, tile in enumerate(tiles):
            image.paste(tile, ((n % columns) * 224, (n // columns) * 224))
        sheet.parent.mkdir(parents=True, exist_ok=True)
        image.save(sheet)
    return rows, format_table(rows)


def main(args: Any) -> int:
    """`handpose evaluate --models ...`: print the table; --json and --sheet write files."""
    rows, table = compare(args.models, args.gt, args.split, args.iou, args.threads,
                          args.sheet, args.sheet_count)  # fmt: skip
    print(table)
    if args.sheet is not None:
        print(f"wrote {args.sheet}")
    if args.json is not None:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0
