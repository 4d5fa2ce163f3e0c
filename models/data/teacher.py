"""`handpose data teacher`: keypoints and sides for box / class-folder datasets from a teacher.

    handpose data teacher SPEC --out DIR [--splits train val test] [--models DIR]
                          [--iou 0.3] [--min-score 0.5] [--threads 2]

Real photo sets (`voc:`, `yolo:`, `folders:`) have human boxes or only a class, no keypoints
and no side. The teacher (MediaPipe Hands full, from `handpose convert mediapipe`) runs on every
image (letterboxed, up to 8 hands, as `handpose data autolabel`), and its hands are matched to
the human boxes one to one, greedily by IoU >= `--iou` (the human boxes include the wrist, the
teacher's are its keypoints' box, so the default is loose: 0.3). Per human box:

- matched, teacher confident (>= `--min-score`, `autolabel.label_confidence`) and its side
  agreeing with the box's class side where the class map gives one: the label is the HUMAN box
  with the teacher's 21 keypoints (visibility 1 inside the image), its side and its 3D joints
  (MediaPipe's world landmarks turned into the frame's axes, wrist-relative mm: training reads
  only their bone directions, which is what the pose network's `vect` output learns);
- otherwise (teacher missed it, was doubtful, or disagreed on the side): the human box alone,
  side as the class map says ("hand" = unknown), counted as missed / doubtful / side
  disagreement. The box still teaches the detector that a hand is there; the teacher's
  keypoints are dropped.
Teacher hands that match no human box are dropped and counted ("extra": a false positive or
a hand the annotator skipped). For class-folder sets (no boxes; one hand per image) an image is
kept only when the teacher finds exactly one confident hand (its box, keypoints and side);
images with none, several or a doubtful one are dropped and counted.

Every split in `--splits` is written as DIR/<split>, a dataset in the project format (task
"detection", whole images, `models.data.handpose_format`): `dir:DIR` then reads the split a
command asks for. DIR must be outside the project's source tree (labelled copies of third-party
photos do not belong in the repository). A summary line per split is printed.
"""

from __future__ import annotations

import argparse
import logging
import shlex
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from handpose.codec.boxes import box_iou
from handpose.errors import HandposeError
from handpose.hand import Hand
from models.data.autolabel import CANDIDATE_SCORE, MAX_HANDS, as_label, label_confidence
from models.data.sample import Sample

log = logging.getLogger(__name__)

#: the project's source tree (DIR may not lie inside it)
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class TeacherStats:
    """What happened to the images and boxes of one split."""

    images: int = 0
    written: int = 0
    boxes: int = 0  #: human boxes
    keypoints: int = 0  #: human boxes given the teacher's keypoints
    missed: int = 0  #: human boxes no teacher hand matched
    doubtful: int = 0  #: matched, teacher below --min-score
    side_disagree: int = 0  #: matched, teacher side differs from the class map's side
    extra: int = 0  #: confident teacher hands matching no human box (dropped)
    inconsistent: int = 0  #: matched and confident, but the flipped image or the check model
    #: (--flip / --check-models) put its keypoints or side elsewhere: keypoints dropped
    no_hand: int = 0  #: class-folder images where the teacher found no confident hand
    several: int = 0  #: class-folder images where the teacher found several hands
    unreadable: int = 0

    def summary(self) -> str:
        return ", ".join(f"{f.name} {getattr(self, f.name)}" for f in fields(self))


def match_teacher(boxes: list[Hand], teacher: list[Hand], iou: float) -> list[tuple[int, int]]:
    """(box index, teacher index) pairs: greedy one-to-one matching by IoU >= `iou`."""
    if not boxes or not teacher:
        return []
    m = box_iou(np.stack([b.box for b in boxes]), np.stack([t.box for t in teacher]))
    pairs = []
    while True:
        i, j = np.unravel_index(int(np.argmax(m)), m.shape)
        if m[i, j] < iou or m[i, j] <= 0:
            return pairs
        pairs.append((int(i), int(j)))
        m[i, :] = -1.0
        m[:, j] = -1.0


def label_boxes(
    boxes: list[Hand],
    teacher: list[Hand],
    width: int,
    height: int,
    iou: float,
    min_score: float,
    stats: TeacherStats,
) -> list[Hand]:
    """The labels of an image with human boxes (see the module docstring); updates `stats`."""
    pairs = dict(match_teacher(boxes, teacher, iou))
    labels = []
    for i, box in enumerate(boxes):
        stats.boxes += 1
        j = pairs.get(i)
        label = box
        if j is None:
            stats.missed += 1
        elif teacher[j].keypoints is None or label_confidence(teacher[j]) < min_score:
            stats.doubtful += 1
        elif teacher[j].extras.get("inconsistent"):
            stats.inconsistent += 1
        elif box.handedness in ("left", "right") and teacher[j].handedness != box.handedness:
            stats.side_disagree += 1
        else:
            taught = as_label(teacher[j], width, height, with_3d=True)
            label = taught.replace(box=box.box)
            stats.keypoints += 1
        labels.append(label)
    matched = set(pairs.values())
    stats.extra += sum(
        1 for j, t in enumerate(teacher) if j not in matched and label_confidence(t) >= min_score
    )
    return labels


def label_unboxed(
    side: str, teacher: list[Hand], width: int, height: int, min_score: float,
    stats: TeacherStats,
) -> list[Hand] | None:  # fmt: skip
    """The label of a one-hand class-folder image, or None to drop it; updates `stats`."""
    confident = [t for t in teacher if t.keypoints is not None]
    if len(confident) > 1:
        stats.several += 1
        return None
    if not confident or label_confidence(confident[0]) < min_score:
        stats.no_hand += 1
        return None
    if confident[0].extras.get("inconsistent"):
        stats.inconsistent += 1
        return None
    if side in ("left", "right") and confident[0].handedness != side:
        stats.side_disagree += 1
        return None
    stats.keypoints += 1
    return [as_label(confident[0], width, height, with_3d=True)]


def mirror_hands(hands: list[Hand], width: int) -> list[Hand]:
    """Hands found in the left-right mirrored image, put back into the original image: x -> W - x,
    left <-> right (the anatomical side seen in a mirror is the other one)."""
    swap = {"left": "right", "right": "left"}
    out = []
    for h in hands:
        x0, y0, x1, y1 = (float(v) for v in h.box)
        kp = None
        if h.keypoints is not None:
            kp = h.keypoints.copy()
            kp[:, 0] = width - kp[:, 0]
        joints = None
        if h.joints_3d is not None:  # camera axes: the mirror negates x
            joints = h.joints_3d * np.array([-1.0, 1.0, 1.0], np.float32)
        out.append(
            h.replace(
                handedness=swap.get(h.handedness, h.handedness),
                box=np.array([width - x1, y0, width - x0, y1], np.float32),
                keypoints=kp,
                joints_3d=joints,
            )
        )
    return out


def keypoint_nme(a: np.ndarray, b: np.ndarray) -> float:
    """Mean keypoint distance of two (21, 2) sets over the larger side of `a`'s keypoint box."""
    size = float(np.max(a.max(axis=0) - a.min(axis=0)))
    return float(np.linalg.norm(a - b, axis=1).mean() / max(size, 1.0))


def consensus(
    teacher: list[Hand], others: list[list[Hand]], iou: float, max_nme: float
) -> list[Hand]:
    """The teacher's hands, each checked against every list of `others` (the teacher on the
    mirrored image, a second teacher): where each has a hand of the same side at IoU >= `iou`
    whose keypoints lie within `max_nme` (`keypoint_nme`), the keypoints become the mean of
    all of them (and the 3D joints the mean of theirs, where every one has them); otherwise the
    hand is marked `extras["inconsistent"]` (its keypoints are then not used as labels)."""
    out = []
    for hand in teacher:
        if hand.keypoints is None or not others:
            out.append(hand)
            continue
        agreeing = [hand.keypoints]
        joints = [hand.joints_3d]
        for candidates in others:
            pairs = dict(match_teacher([hand], candidates, iou))
            other = candidates[pairs[0]] if 0 in pairs else None
            if (
                other is None
                or other.keypoints is None
                or other.handedness != hand.handedness
                or keypoint_nme(hand.keypoints, other.keypoints) > max_nme
            ):
                break
            agreeing.append(other.keypoints)
            joints.append(other.joints_3d)
        else:
            mean = np.mean(np.stack(agreeing), axis=0).astype(np.float32)
            mean_3d = hand.joints_3d
            if all(j is not None for j in joints):
                mean_3d = np.mean(np.stack(joints), axis=0).astype(np.float32)
            out.append(hand.replace(keypoints=mean, joints_3d=mean_3d))
            continue
        extras = dict(hand.extras, inconsistent=True)
        out.append(hand.replace(extras=extras))
    return out


def teach(
    dataset, pipeline, writer, iou: float, min_score: float, progress: bool,  # noqa: ANN001
    flip: bool = False, checks: tuple = (), max_nme: float = 0.1,
) -> TeacherStats:  # fmt: skip
    """Label every sample of `dataset` with `pipeline` (a `HandPipeline`) into `writer`.

    `flip`: also run the teacher on the mirrored image; `checks`: more teacher pipelines (e.g.
    MediaPipe lite); a teacher hand keeps its keypoints only where all agree (`consensus`)."""
    stats = TeacherStats()
    indices = range(len(dataset))
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc=f"teacher {getattr(dataset, 'name', '')}", unit="img")
    for k in indices:
        stats.images += 1
        try:
            sample: Sample = dataset[k]
        except HandposeError as error:
            log.warning("skipped: %s", error)
            stats.unreadable += 1
            continue
        teacher = pipeline(sample.image, region="letterbox")
        h, w = sample.height, sample.width
        others = [check(sample.image, region="letterbox") for check in checks]
        if flip:
            mirrored = np.ascontiguousarray(sample.image[:, ::-1])
            others.append(mirror_hands(pipeline(mirrored, region="letterbox"), w))
        teacher = consensus(teacher, others, 0.5, max_nme)
        if sample.meta.get("unlabelled"):
            labels = label_unboxed(sample.meta.get("side", "hand"), teacher, w, h, min_score, stats)
            if labels is None:
                continue
        else:
            labels = label_boxes(sample.hands, teacher, w, h, iou, min_score, stats)
        writer.add(Sample(sample.image, labels, None, sample.source, sample.name, {}))
        stats.written += 1
    return stats


def check_out_dir(out: Path) -> Path:
    """`out` unless it lies inside the project's source tree (HandposeError)."""
    resolved = out.expanduser().resolve()
    if resolved == PROJECT_ROOT or PROJECT_ROOT in resolved.parents:
        raise HandposeError(
            f"--out {out} is inside the project ({PROJECT_ROOT}): labelled copies of the photos "
            "must not go into the repository; choose a folder outside it (e.g. ~/handpose-data)"
        )
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="dataset spec of real photos, e.g. voc:PATH, yolo:PATH, "
                                "folders:PATH")  # fmt: skip
    p.add_argument("--out", required=True, type=Path, metavar="DIR",
                   help="folder for the DIR/<split> datasets (outside the project)")  # fmt: skip
    p.add_argument("--splits", nargs="+", default=["train", "val", "test"],
                   choices=["train", "val", "test"], help="splits (all three)")  # fmt: skip
    p.add_argument("--models", type=Path, metavar="DIR",
                   help="teacher model folder (default: MediaPipe full from "
                        "`handpose convert mediapipe`)")  # fmt: skip
    p.add_argument("--iou", type=float, default=0.3,
                   help="least IoU of a human box and a teacher hand to match (0.3)")  # fmt: skip
    p.add_argument("--min-score", type=float, default=0.5, metavar="S",
                   help="least teacher confidence for its keypoints to be kept (0.5)")  # fmt: skip
    p.add_argument(
        "--flip",
        action="store_true",
        help="also label the mirrored image; keep keypoints only where both agree",
    )
    p.add_argument("--check-models", type=Path, nargs="*", default=[], metavar="DIR",
                   help="more teacher model folders (e.g. MediaPipe lite); keep keypoints only "
                        "where every one agrees")  # fmt: skip
    p.add_argument(
        "--max-nme",
        type=float,
        default=0.1,
        metavar="E",
        help="agreement: mean keypoint distance over hand size at most E (0.1)",
    )
    p.add_argument("--threads", type=int, default=2, metavar="N",
                   help="TFLite threads per model (2)")  # fmt: skip


def teacher_pipeline(folder: Path, threads: int):  # noqa: ANN201
    """A `HandPipeline` of the teacher models reporting every candidate hand (see autolabel)."""
    from handpose.pipeline.models import load_model_set
    from handpose.pipeline.process import HandPipeline
    from handpose.settings import AppSettings

    models = load_model_set(folder, threads)
    settings = AppSettings(max_hands=MAX_HANDS, score_threshold=CANDIDATE_SCORE)
    pipeline = HandPipeline(models, settings, stream=False)
    if hasattr(pipeline.pose, "presence_threshold"):  # MediaPipe: see doubtful hands too
        pipeline.pose.presence_threshold = CANDIDATE_SCORE
    return pipeline, models


def action(args: argparse.Namespace) -> int:
    """The `teacher` action: label every split of SPEC into --out, print a summary per split."""
    from models.data.autolabel import default_teacher
    from models.data.handpose_format import DatasetWriter
    from models.data.spec import open_dataset

    if not 0.0 < args.iou <= 1.0:
        raise HandposeError(f"--iou must be in (0, 1], got {args.iou}")
    if not 0.0 <= args.min_score <= 1.0:
        raise HandposeError(f"--min-score must be in 0..1, got {args.min_score}")
    out = check_out_dir(args.out)
    datasets = {split: open_dataset(args.spec, split=split) for split in args.splits}
    folder = args.models or default_teacher()
    pipeline, models = teacher_pipeline(folder, args.threads)
    checks = tuple(teacher_pipeline(f, args.threads)[0] for f in args.check_models)
    if not 0.0 < args.max_nme <= 1.0:
        raise HandposeError(f"--max-nme must be in (0, 1], got {args.max_nme}")
    variant = models.detector.metadata.extra.get("variant", "")
    source = f"teacher:{models.family}{'-' + variant if variant else ''}"
    for split, dataset in datasets.items():
        command = (
            f"handpose data teacher {shlex.quote(args.spec)} --out {shlex.quote(str(out))} "
            f"--splits {split} --models {shlex.quote(str(folder))} --iou {args.iou:g} "
            f"--min-score {args.min_score:g}"
            + (" --flip" if args.flip else "")
            + "".join(f" --check-models {shlex.quote(str(f))}" for f in args.check_models)
            + (f" --max-nme {args.max_nme:g}" if args.flip or args.check_models else "")
        )
        with DatasetWriter(out / split, "detection", source, command) as writer:
            stats = teach(
                dataset, pipeline, writer, args.iou, args.min_score, True,
                flip=args.flip, checks=checks, max_nme=args.max_nme,
            )  # fmt: skip
        print(f"{out / split}: {stats.summary()}")
    return 0
