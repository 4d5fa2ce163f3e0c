"""`handpose evaluate`: score `handpose predict` output against ground truth.

    handpose evaluate --pred preds.json --gt GT [--split all] [--plots DIR] [--json OUT]
    handpose evaluate --models DIR [--models DIR ...] --gt [NAME=]SPEC [--gt ...] [--split test]
                      [--sheet PNG] [--json OUT]      (model sets side by side: compare.py)

GT is a COCO keypoints json (COCO-WholeBody hands or 21-point COCO files such as OneHand10K)
or any dataset spec (`dir:PATH`, `freihand:PATH`, ...). Predictions are matched to ground-truth
images by file name (the prediction's path relative to `--images`, the label's path relative to
its dataset; one may be a suffix of the other, e.g. "images/000001.jpg" and "000001.jpg").

Printed: detection AP@IoU per class, class-agnostic AP ("any side") and recall; for every
ground-truth hand with keypoints, the prediction of highest IoU >= the threshold gives its
keypoints: PCK@0.2 and AUC over thresholds 0..0.5 of the hand's keypoint-box size (over all
labelled hands, a missed hand counting as wrong, and over the detected ones), mean end-point
error in pixels (detected hands); bone-direction angle error in degrees where the ground
truth has 3D joints. `--plots DIR` writes pck.png and pr.png; `--json OUT` the numbers.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from handpose.argtypes import positive_int
from handpose.codec.boxes import box_iou
from handpose.codec.skeleton3d import bone_directions
from handpose.errors import HandposeError
from handpose.hand import Hand
from handpose.skeleton import NUM_KEYPOINTS
from models import metrics

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--pred", type=Path, help="predictions (handpose predict)")
    source.add_argument(
        "--models",
        action="append",
        metavar="DIR",
        help="run these model folders instead (repeat to compare; models.commands.compare)",
    )
    parser.add_argument(
        "--gt",
        required=True,
        action="append",
        help="COCO keypoints json, or a dataset spec (dir:PATH, ...); with --models: repeat, "
        "optionally NAME=SPEC",
    )
    parser.add_argument("--split", default="all", help="split of a dataset spec (default all)")
    parser.add_argument("--iou", type=float, default=0.5, help="IoU of a match (default 0.5)")
    parser.add_argument("--plots", type=Path, help="folder for pck.png and pr.png (--pred)")
    parser.add_argument("--json", type=Path, help="write the metrics to this JSON file")
    parser.add_argument(
        "--threads", type=positive_int, default=2, help="TFLite threads (--models; 2)"
    )
    parser.add_argument("--sheet", type=Path, help="--models: contact sheet PNG of the first set")
    parser.add_argument(
        "--sheet-count", type=positive_int, default=8, help="images per set on --sheet"
    )


def read_predictions(path: Path) -> dict[str, list[Hand]]:
    """file -> predicted hands from a `handpose predict` JSON file."""
    try:
        data = json.loads(Path(path).read_text())
        return {
            str(entry["file"]): [Hand.from_json(h) for h in entry["hands"]]
            for entry in data["images"]
        }
    except FileNotFoundError:
        raise HandposeError(
            f"--pred {path}: no such file; write it with `handpose predict`"
        ) from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise HandposeError(
            f"--pred {path}: not a `handpose predict` file ({error.__class__.__name__}: {error})"
        ) from None


def gt_spec(gt: str) -> str:
    """A COCO json path becomes the spec `coco:PATH`; anything else is a spec already."""
    path = Path(gt)
    if gt.endswith(".json") and ":" not in gt.split("/")[0]:
        if not path.is_file():
            raise HandposeError(f"--gt {gt}: no such file")
        return f"coco:{path}"
    return gt


def match_names(gt_names: Sequence[str], pred_names: Sequence[str]) -> dict[str, str]:
    """gt name -> prediction file, equal or one a path suffix of the other (unique)."""
    exact = set(pred_names)
    by_base: dict[str, list[str]] = {}
    for name in pred_names:
        by_base.setdefault(Path(name).name, []).append(name)
    found = {}
    for name in gt_names:
        if name in exact:
            found[name] = name
            continue
        candidates = [
            p
            for p in by_base.get(Path(name).name, [])
            if name.endswith("/" + p) or p.endswith("/" + name)
        ]
        if len(candidates) == 1:
            found[name] = candidates[0]
    return found


def _keypoint_hands(hands: list[Hand]) -> list[Hand]:
    return [h for h in hands if h.keypoints is not None]


def evaluate(
    truths: list[list[Hand]], predictions: list[list[Hand]], iou_threshold: float = 0.5
) -> dict[str, Any]:
    """All metrics of the module docstring for aligned per-image lists of hands."""
    result: dict[str, Any] = {"images": len(truths)}
    det = metrics.average_precision(predictions, truths, iou_threshold)
    anon = metrics.average_precision(
        [[h.replace(handedness="hand") for h in p] for p in predictions],
        [[h.replace(handedness="hand") for h in t] for t in truths],
        iou_threshold,
    )
    result["detection"] = {
        "hands": int(sum(len(t) for t in truths)),
        "ap": {str(k): float(v) for k, v in det.ap.items()},
        "map": float(det.map),
        "ap_any_side": float(anon.map),
        "recall": float(anon.recall),
    }
    gt_kp, pred_kp, visible, found = [], [], [], []
    gt_dirs, pred_dirs = [], []
    for hands, preds in zip(truths, predictions, strict=True):
        boxes = np.array([p.box for p in preds], np.float64).reshape(-1, 4)
        for hand in _keypoint_hands(hands):
            assert hand.keypoints is not None
            ious = box_iou(np.asarray(hand.box, np.float64)[None], boxes)[0] if len(preds) else []
            best = int(np.argmax(ious)) if len(preds) else -1
            match = preds[best] if best >= 0 and ious[best] >= iou_threshold else None
            gt_kp.append(hand.keypoints)
            visible.append(
                hand.keypoint_scores > 0
                if hand.keypoint_scores is not None
                else np.ones(NUM_KEYPOINTS, bool)
            )
            if match is None or match.keypoints is None:
                pred_kp.append(np.full((NUM_KEYPOINTS, 2), np.inf))
                found.append(False)
                continue
            pred_kp.append(match.keypoints)
            found.append(True)
            if hand.joints_3d is not None and match.joints_3d is not None:
                gt_dirs.append(bone_directions(hand.joints_3d))
                pred_dirs.append(bone_directions(match.joints_3d))
    if gt_kp:
        gt = np.stack(gt_kp).astype(np.float64)
        pred = np.stack(pred_kp).astype(np.float64)
        vis = np.stack(visible)
        hit = np.asarray(found)
        curve = metrics.pck(pred, gt, vis)
        pose: dict[str, Any] = {
            "hands": len(gt),
            "detected": int(hit.sum()),
            "pck@0.2": float(metrics.pck(pred, gt, vis, threshold=0.2)),
            "auc": float(metrics.auc(curve)),
            "pck_curve": [[float(t), float(v)] for t, v in zip(*curve, strict=True)],
        }
        if hit.any():
            pose["pck@0.2_detected"] = float(
                metrics.pck(pred[hit], gt[hit], vis[hit], threshold=0.2)
            )
            pose["pck@0.1_detected"] = float(
                metrics.pck(pred[hit], gt[hit], vis[hit], threshold=0.1)
            )
            pose["nme_detected"] = metrics.nme(pred[hit], gt[hit], vis[hit])
            pose["auc_detected"] = float(metrics.auc(metrics.pck(pred[hit], gt[hit], vis[hit])))
            pose["epe_px"] = float(metrics.end_point_error(pred[hit], gt[hit], vis[hit]))
        if gt_dirs:
            pose["bone_angle_deg"] = float(
                metrics.bone_angle_error_deg(np.stack(pred_dirs), np.stack(gt_dirs))
            )
        result["pose"] = pose
    result["_pr"] = _pr_curve(truths, predictions, iou_threshold)
    return result


def _pr_curve(
    truths: list[list[Hand]], predictions: list[list[Hand]], iou_threshold: float
) -> list[list[float]]:
    """Class-agnostic precision/recall points (recall, precision), by descending score."""
    total = sum(len(t) for t in truths)
    scored = []
    for index, preds in enumerate(predictions):
        scored += [(p.score, index, p.box) for p in preds]
    scored.sort(key=lambda item: -item[0])
    used = [np.zeros(len(t), bool) for t in truths]
    tp = 0
    points = []
    for rank, (_, index, box) in enumerate(scored, 1):
        gts = np.array([h.box for h in truths[index]], np.float64).reshape(-1, 4)
        if len(gts):
            ious = box_iou(np.asarray(box, np.float64)[None], gts)[0]
            ious[used[index]] = -1
            best = int(np.argmax(ious))
            if ious[best] >= iou_threshold:
                used[index][best] = True
                tp += 1
        points.append([tp / max(total, 1), tp / rank])
    return points


def write_plots(result: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written = []
    if "pose" in result:
        fig, ax = plt.subplots(figsize=(5, 4))
        thresholds, values = zip(*result["pose"]["pck_curve"], strict=True)
        ax.plot(thresholds, values, label=f"AUC {result['pose']['auc']:.3f}")
        ax.set_xlabel("threshold (fraction of the hand's keypoint-box size)")
        ax.set_ylabel("PCK")
        ax.set_ylim(0, 1)
        ax.legend()
        ax.set_title("PCK curve (all labelled hands)")
        fig.tight_layout()
        fig.savefig(out / "pck.png", dpi=80)
        plt.close(fig)
        written.append(out / "pck.png")
    fig, ax = plt.subplots(figsize=(5, 4))
    if result["_pr"]:
        recall, precision = zip(*result["_pr"], strict=True)
        ax.plot(recall, precision)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(f"detection, any side: AP {result['detection']['ap_any_side']:.3f}")
    fig.tight_layout()
    fig.savefig(out / "pr.png", dpi=80)
    plt.close(fig)
    written.append(out / "pr.png")
    return written


def format_report(result: dict[str, Any], iou: float) -> str:
    det = result["detection"]
    lines = [f"images {result['images']}, labelled hands {det['hands']}"]
    per_class = "  ".join(f"{k} {v:.3f}" for k, v in det["ap"].items())
    lines.append(
        f"detection  AP@{iou:g}: mean {det['map']:.3f} ({per_class})  any side "
        f"{det['ap_any_side']:.3f}  recall {det['recall']:.3f}"
    )
    pose = result.get("pose")
    if pose is None:
        lines.append("pose       no ground-truth keypoints")
    else:
        line = (
            f"pose       hands {pose['hands']} (detected {pose['detected']})  PCK@0.2 "
            f"{pose['pck@0.2']:.3f}  AUC {pose['auc']:.3f}"
        )
        if "epe_px" in pose:
            line += (
                f"  | detected: PCK@0.2 {pose['pck@0.2_detected']:.3f}  PCK@0.1 "
                f"{pose['pck@0.1_detected']:.3f}  NME {pose['nme_detected']:.3f}  AUC "
                f"{pose['auc_detected']:.3f}  EPE {pose['epe_px']:.1f} px"
            )
        lines.append(line)
        if "bone_angle_deg" in pose:
            lines.append(f"3D         bone direction error {pose['bone_angle_deg']:.1f} deg")
        curve = dict((round(t, 2), v) for t, v in pose["pck_curve"])
        marks = "  ".join(f"{t:.2f}:{curve[t]:.2f}" for t in (0.05, 0.1, 0.2, 0.3, 0.4, 0.5))
        lines.append(f"PCK curve  {marks}")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from models.data.spec import open_dataset

    if args.models:
        from models.commands import compare

        return compare.main(args)
    if len(args.gt) != 1:
        raise HandposeError("--pred takes one --gt (several --gt go with --models)")
    args.gt = args.gt[0]
    predicted = read_predictions(args.pred)
    dataset = open_dataset(gt_spec(args.gt), split=args.split, task="detection")
    if len(dataset) == 0:
        raise HandposeError(f"--gt {args.gt}: no labelled images")
    truths, predictions, missing = [], [], []
    gt_names, gt_hands = [], []
    for i in tqdm(range(len(dataset)), desc="ground truth", unit="img", disable=None):
        sample = dataset[i]  # labels only are kept, not the decoded image
        gt_names.append(str(sample.name))
        gt_hands.append(sample.hands)
    matched = match_names(gt_names, list(predicted))
    for hands, name in zip(gt_hands, gt_names, strict=True):
        if name not in matched:
            missing.append(name)
            continue
        truths.append(hands)
        predictions.append(predicted[matched[name]])
    if not truths:
        raise HandposeError(
            f"no prediction matches a ground-truth image (e.g. {gt_names[0]!r} vs "
            f"{next(iter(predicted), '<none>')!r}); run `handpose predict --images` on the "
            "ground truth's image folder"
        )
    if missing:
        log.warning(
            "%d ground-truth images have no prediction and are left out (first: %s)",
            len(missing),
            missing[0],
        )
    result = evaluate(truths, predictions, args.iou)
    print(format_report(result, args.iou))
    if args.plots:
        for path in write_plots(result, args.plots):
            print(f"wrote {path}")
    if args.json:
        clean = {k: v for k, v in result.items() if not k.startswith("_")}
        args.json.write_text(json.dumps(clean, indent=1))
        print(f"wrote {args.json}")
    return 0
