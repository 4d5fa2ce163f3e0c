"""`handpose data autolabel`: label unlabeled footage with a teacher model set (MediaPipe Hands).

    handpose data autolabel (--images DIR | --video FILE) --out DATASET [--min-score S]
                            [--models DIR] [--every N] [--keep-empty]

Every frame (every N-th of a video) goes through `HandPipeline` with the teacher's models,
letterboxed as `handpose predict` does so hands at the edges are found, with up to 8 hands per
frame, down to a detector score (and MediaPipe hand presence) of `CANDIDATE_SCORE` = 0.3. A
hand's label confidence is min(hand score, palm score, presence, handedness confidence) (the
last three where the teacher gives them: the MediaPipe family). A frame is written only when it
has at least one hand and every hand the teacher found is at least `--min-score` confident: a
frame with one doubtful hand is dropped whole, since writing it without that hand would teach
the detector that a real hand is background (and writing it with the hand, a doubtful label).
Frames without hands are dropped too (a missed hand looks the same), unless `--keep-empty` keeps
them as negatives. A hand the teacher misses altogether cannot be told from background: use a
teacher that finds the hands of your footage (check a few frames with `handpose data preview
dir:DATASET`).

The dataset is the project format (docs/CONVENTIONS.md), task "detection" (whole frames):
per hand the handedness (anatomical side), score 1, box (keypoints' box grown a little, the
renderer's silhouette convention), 21 keypoints with visibility 1 inside the frame and 0
outside. No 3D joints: the teacher's are wrist-relative, and dataset labels are absolute
camera coordinates. `handpose train detector|pose` reads it as `dir:DATASET`.
"""

from __future__ import annotations

import argparse
import logging
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from handpose.errors import HandposeError
from handpose.hand import Hand
from models.data.sample import Sample

log = logging.getLogger(__name__)

#: hands per frame the teacher looks for (the settings' maximum): all of them must be labelled
MAX_HANDS = 8
#: the teacher reports hands down to this detector score (and MediaPipe presence), so that a
#: frame with a hand it is unsure of is dropped instead of written without that hand
CANDIDATE_SCORE = 0.3


@dataclass
class AutolabelStats:
    """What happened to the frames."""

    frames: int = 0
    kept: int = 0
    hands: int = 0
    doubtful: int = 0  #: frames dropped for a hand below --min-score
    empty: int = 0  #: frames without hands (dropped unless --keep-empty)
    unreadable: int = 0


def label_confidence(hand: Hand) -> float:
    """min(score, palm score, presence, handedness confidence) of a teacher's hand (the last
    three from `extras` when the teacher gives them)."""
    extras = [hand.extras.get(k, 1.0) for k in ("palm_score", "presence", "handedness_score")]
    return min(float(hand.score), *(float(v) for v in extras))


def as_label(hand: Hand, width: int, height: int, with_3d: bool = False) -> Hand:
    """The dataset label of a teacher's hand: score 1, visibility 1 inside the frame, 0 outside,
    box clipped to the frame; no 3D (see module docstring) unless `with_3d`: then the teacher's
    wrist-relative joints, whose bone directions are what training reads (`handpose data
    teacher`)."""
    assert hand.keypoints is not None
    x, y = hand.keypoints[:, 0], hand.keypoints[:, 1]
    visible = (x >= 0) & (x < width) & (y >= 0) & (y < height)
    box = np.clip(hand.box, 0.0, np.array([width, height, width, height], np.float32))
    return Hand(
        hand.handedness,
        1.0,
        box,
        keypoints=hand.keypoints,
        keypoint_scores=visible.astype(np.float32),
        joints_3d=hand.joints_3d if with_3d else None,
    )


def label_frame(
    hands: list[Hand], width: int, height: int, min_score: float
) -> tuple[list[Hand] | None, str]:
    """(labels, "ok") for a frame to keep, or (None, reason) with reason "empty" / "doubtful"."""
    if not hands:
        return None, "empty"
    if any(h.keypoints is None or label_confidence(h) < min_score for h in hands):
        return None, "doubtful"
    return [as_label(h, width, height) for h in hands], "ok"


def image_frames(folder: Path) -> Iterator[tuple[str, np.ndarray | None]]:
    """(relative name, RGB image or None when unreadable) of every jpg/png under `folder`."""
    from handpose.capture import list_images, load_image

    files = list_images(folder)
    if not files:
        raise HandposeError(f"--images {folder}: no .jpg/.png images found")
    for path in files:
        yield path.relative_to(folder).as_posix(), load_image(path)


def video_frames(path: Path, every: int = 1) -> Iterator[tuple[str, np.ndarray | None]]:
    """(f"frame {n}", RGB image) of every `every`-th decodable frame of a video file."""
    from handpose.capture import VideoFileSource

    source = VideoFileSource(path)
    try:
        n = 0
        while (item := source.read()) is not None:
            if n % every == 0:
                yield f"frame {n}", item[0]
            n += 1
    finally:
        source.close()


def autolabel(
    frames: Iterator[tuple[str, np.ndarray | None]],
    pipeline: object,
    writer: object,
    min_score: float,
    keep_empty: bool = False,
    progress: bool = False,
) -> AutolabelStats:
    """Label `frames` with `pipeline` (a `HandPipeline`) into `writer` (a `DatasetWriter`)."""
    stats = AutolabelStats()
    if progress:
        from tqdm import tqdm

        frames = tqdm(frames, desc="autolabel", unit="frame")
    for name, image in frames:
        stats.frames += 1
        if image is None:
            stats.unreadable += 1
            continue
        height, width = image.shape[:2]
        hands = pipeline(image, region="letterbox")  # type: ignore[operator]
        labels, reason = label_frame(hands, width, height, min_score)
        if reason == "empty":
            stats.empty += 1
            labels = [] if keep_empty else None
        elif reason == "doubtful":
            stats.doubtful += 1
        if labels is None:
            log.debug("%s: dropped (%s)", name, reason)
            continue
        writer.add(Sample(image=image, hands=labels, source="autolabel", name=name))  # type: ignore[attr-defined]
        stats.kept += 1
        stats.hands += len(labels)
    return stats


def default_teacher() -> Path:
    """MediaPipe's full models where `handpose convert mediapipe` puts them by default
    (`handpose.paths.MEDIAPIPE_DIR`, $HANDPOSE_MEDIAPIPE_DIR), else a HandposeError."""
    from handpose.paths import MEDIAPIPE_DIR

    folder = MEDIAPIPE_DIR / "full"
    if not (folder / "detector.json").is_file():
        raise HandposeError(
            f"no teacher models in {folder}: run `handpose convert mediapipe` (writes "
            f"{MEDIAPIPE_DIR}) or pass --models DIR, a model folder such as ROOT/full written by "
            "`handpose convert mediapipe --out ROOT`"
        )
    return folder


def add_arguments(p: argparse.ArgumentParser) -> None:
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", type=Path, metavar="DIR", help="folder of jpg/png images")
    source.add_argument("--video", type=Path, metavar="FILE", help="video file (needs PyAV)")
    p.add_argument("--out", required=True, type=Path, metavar="DATASET",
                   help="dataset folder to write (created)")  # fmt: skip
    p.add_argument("--min-score", type=float, default=0.7, metavar="S",
                   help="least confidence of every hand in a kept frame (default 0.7)")  # fmt: skip
    p.add_argument("--models", type=Path, metavar="DIR",
                   help="teacher model folder (default: MediaPipe full from "
                        "`handpose convert mediapipe`)")  # fmt: skip
    p.add_argument("--every", type=int, default=1, metavar="N",
                   help="video: label every N-th frame (1)")  # fmt: skip
    p.add_argument("--keep-empty", action="store_true",
                   help="keep frames without hands as negatives")  # fmt: skip
    p.add_argument("--threads", type=int, default=2, metavar="N",
                   help="TFLite threads per model (2)")  # fmt: skip


def action(args: argparse.Namespace) -> int:
    """The `autolabel` action: label the frames, write the dataset, print a summary."""
    from handpose.pipeline.models import load_model_set
    from handpose.pipeline.process import HandPipeline
    from handpose.settings import AppSettings
    from models.data.handpose_format import DatasetWriter

    if not 0.0 <= args.min_score <= 1.0:
        raise HandposeError(f"--min-score must be in 0..1, got {args.min_score}")
    if args.every < 1:
        raise HandposeError(f"--every must be at least 1, got {args.every}")
    if args.images is not None and not args.images.is_dir():
        raise HandposeError(f"--images {args.images}: not a folder")
    if args.video is not None and not args.video.is_file():
        raise HandposeError(f"--video {args.video}: file not found")
    folder = args.models or default_teacher()
    models = load_model_set(folder, args.threads)
    settings = AppSettings(max_hands=MAX_HANDS, score_threshold=CANDIDATE_SCORE)
    pipeline = HandPipeline(models, settings, stream=False)  # every frame on its own
    if hasattr(pipeline.pose, "presence_threshold"):  # MediaPipe: see doubtful hands too
        pipeline.pose.presence_threshold = CANDIDATE_SCORE
    if args.images is not None:
        frames = image_frames(args.images)
        what = f"--images {shlex.quote(str(args.images))}"
    else:
        frames = video_frames(args.video, args.every)
        what = f"--video {shlex.quote(str(args.video))} --every {args.every}"
    command = (
        f"handpose data autolabel {what} --out {shlex.quote(str(args.out))} "
        f"--min-score {args.min_score:g} --models {shlex.quote(str(folder))}"
        + (" --keep-empty" if args.keep_empty else "")
    )
    variant = models.detector.metadata.extra.get("variant", "")
    source = f"autolabel:{models.family}{'-' + variant if variant else ''}"
    writer = DatasetWriter(args.out, "detection", source, command)
    try:
        stats = autolabel(frames, pipeline, writer, args.min_score, args.keep_empty, True)
    finally:
        writer.close()
    print(
        f"wrote {stats.kept} of {stats.frames} frames with {stats.hands} hands to {args.out} "
        f"(dropped: {stats.doubtful} with a hand below --min-score {args.min_score:g}, "
        f"{stats.empty} without hands{' (kept)' if args.keep_empty else ''}, "
        f"{stats.unreadable} unreadable)"
    )
    if stats.kept == 0:
        log.warning("no frame was kept: lower --min-score or check the teacher (--models)")
    return 0
