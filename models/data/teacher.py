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
  with the teacher's 21 keypoints (visibility 1 inside the image) and the teacher's side;
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
        elif box.handedness in ("left", "right") and teacher[j].handedness != box.handedness:
            stats.side_disagree += 1
        else:
            taught = as_label(teacher[j], width, height)
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
    if side in ("left", "right") and confident[0].handedness != side:
        stats.side_disagree += 1
        return None
    stats.keypoints += 1
    return [as_label(confident[0], width, height)]


def teach(dataset, pipeline, writer, iou: float, min_score: float, progress: bool) -> TeacherStats:  # noqa: ANN001
    """Label every sample of `dataset` with `pipeline` (a `HandPipeline`) into `writer`."""
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
    variant = models.detector.metadata.extra.get("variant", "")
    source = f"teacher:{models.family}{'-' + variant if variant else ''}"
    for split, dataset in datasets.items():
        command = (
            f"handpose data teacher {shlex.quote(args.spec)} --out {shlex.quote(str(out))} "
            f"--splits {split} --models {shlex.quote(str(folder))} --iou {args.iou:g} "
            f"--min-score {args.min_score:g}"
        )
        with DatasetWriter(out / split, "detection", source, command) as writer:
            stats = teach(dataset, pipeline, writer, args.iou, args.min_score, True)
        print(f"{out / split}: {stats.summary()}")
    return 0
