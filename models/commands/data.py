"""`handpose data`: render synthetic datasets, preview any dataset spec, render video clips.

Actions (one sub-parser each, more can be added in `ACTIONS`):
- `render --out DIR --count N [--seed S] [--task detection|pose] [--size 224]`: writes the
  project dataset format (docs/CONVENTIONS.md) through `models.data.handpose_format`.
- `preview SPEC --out sheet.png [--count 32] [--seed S] [--columns 8] [--task pose]`: a contact
  sheet of samples with their boxes and skeletons.
- `clip --out FILE.mp4 [--frames 150] [--seed S] [--size 640x480] [--fps 15]`: a synthetic
  video (H.264 when PyAV's FFmpeg has libx264, else MPEG-4 part 2) and optionally its labels.
- `autolabel (--images DIR | --video FILE) --out DATASET [--min-score S] [--models DIR]`: a
  dataset in the project format labelled by a teacher model set (`models.data.autolabel`).
- `teacher SPEC --out DIR`: keypoints and sides from a teacher for the human boxes of real
  photo sets (`voc:`, `yolo:`, `folders:`), written as DIR/<split> (`models.data.teacher`).
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import shlex
from collections.abc import Callable
from pathlib import Path

import numpy as np

from handpose.argtypes import positive_int
from handpose.errors import HandposeError

log = logging.getLogger(__name__)


def _size_arg(text: str) -> tuple[int, int]:
    """'640x480' -> (height, width) = (480, 640)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 640x480, got {text!r}") from None
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(f"size {text!r} is too small (at least 16x16)")
    return h, w


def _gestures_arg(text: str) -> tuple[str, ...]:
    from models.data.synthetic import GESTURES

    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in GESTURES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown gestures {unknown}; choose from {', '.join(GESTURES)}"
        )
    return names


def _add_render(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=Path, help="output dataset folder (created)")
    p.add_argument(
        "--count", type=positive_int, default=1000, help="number of images (default 1000)"
    )
    p.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    p.add_argument("--task", choices=("detection", "pose"), default="detection",
                   help="detection scenes (0-2 hands) or one-hand pose crops")  # fmt: skip
    p.add_argument(
        "--size", type=positive_int, default=224, help="image side in pixels (default 224)"
    )
    p.add_argument("--gestures", type=_gestures_arg, default=None,
                   help="comma-separated gesture presets to restrict poses to")  # fmt: skip


def _add_preview(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="dataset spec, e.g. synthetic, dir:/data/mine, rhd:/data/RHD")
    p.add_argument("--out", required=True, type=Path, help="PNG file to write")
    p.add_argument(
        "--count", type=positive_int, default=32, help="samples on the sheet (default 32)"
    )
    p.add_argument("--columns", type=positive_int, default=8, help="tiles per row (default 8)")
    p.add_argument(
        "--tile", type=positive_int, default=224, help="tile side in pixels (default 224)"
    )
    p.add_argument("--split", default="train", help="dataset split (default train)")
    p.add_argument("--task", choices=("detection", "pose"), default="detection",
                   help="detection scenes or pose crops (default detection)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed for the spec and the pick")


def _add_clip(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=Path, help="MP4 file to write")
    p.add_argument(
        "--frames", type=positive_int, default=150, help="number of frames (default 150)"
    )
    p.add_argument("--seed", type=int, default=0, help="clip seed (default 0)")
    p.add_argument("--size", type=_size_arg, default=(480, 640),
                   help="WIDTHxHEIGHT (default 640x480)")  # fmt: skip
    p.add_argument("--fps", type=float, default=15.0, help="frames per second (default 15)")
    p.add_argument("--hands", type=int, choices=(1, 2), default=2, help="hands in view")
    p.add_argument("--gestures", type=_gestures_arg, default=None,
                   help="comma-separated gesture presets to cycle through")  # fmt: skip
    p.add_argument("--crossing", action="store_true", help="the two hands swap sides")
    p.add_argument("--crf", type=int, default=27, help="H.264 quality, lower = larger (27)")
    p.add_argument("--labels", type=Path, default=None,
                   help="also write per-frame labels as JSON lines")  # fmt: skip


def render_action(args: argparse.Namespace) -> int:
    """Render `count` synthetic samples into a project-format dataset folder."""
    from tqdm import tqdm

    from models.data.synthetic import SyntheticHands

    if args.count < 1:
        raise HandposeError(f"--count must be at least 1, got {args.count}")
    try:
        from models.data.handpose_format import DatasetWriter
    except ImportError as error:
        raise HandposeError(
            f"the dataset writer models.data.handpose_format is not available ({error})"
        ) from None
    dataset = SyntheticHands(args.count, args.seed, args.task, args.size, args.gestures)
    command = (
        f"handpose data render --out {shlex.quote(str(args.out))} --count {args.count} "
        f"--seed {args.seed} --task {args.task} --size {args.size}"
    )
    if args.gestures:
        command += f" --gestures {','.join(args.gestures)}"
    writer = DatasetWriter(args.out, args.task, "synthetic", command)
    hands = 0
    try:
        for i in tqdm(range(len(dataset)), desc="render", unit="img"):
            sample = dataset[i]
            hands += len(sample.hands)
            writer.add(sample)
    finally:
        writer.close()
    print(f"wrote {args.count} {args.task} images with {hands} hands to {args.out}")
    return 0


def _pick(dataset, count: int, seed: int) -> list:
    """Up to `count` samples of a dataset: a seeded random pick of a sequence, else the first."""
    if hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__"):
        n = len(dataset)
        if n == 0:
            return []
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(n, size=min(count, n), replace=False)) if n > count else range(n)
        return [dataset[int(i)] for i in idx]
    out = []
    for sample in dataset:
        out.append(sample)
        if len(out) >= count:
            break
    return out


def preview_action(args: argparse.Namespace) -> int:
    """Draw a contact sheet of a dataset spec's samples with their labels."""
    from models.data.preview import contact_sheet

    try:
        from models.data.spec import open_dataset
    except ImportError as error:
        raise HandposeError(
            f"dataset specs (models.data.spec) are not available ({error})"
        ) from None
    kwargs = {"split": args.split, "seed": args.seed}
    if "task" in inspect.signature(open_dataset).parameters:
        kwargs["task"] = args.task
    dataset = open_dataset(args.spec, **kwargs)
    samples = _pick(dataset, args.count, args.seed)
    if not samples:
        raise HandposeError(f"dataset spec {args.spec!r} has no samples to preview")
    sheet = contact_sheet(samples, args.columns, args.tile)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    hands = sum(len(s.hands) for s in samples)
    print(f"wrote {args.out} ({sheet.width}x{sheet.height}): {len(samples)} samples, {hands} hands")
    return 0


def pick_encoder() -> str:
    """'libx264' when PyAV's bundled FFmpeg has it, else 'mpeg4'."""
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def clip_action(args: argparse.Namespace) -> int:
    """Render a synthetic clip to an MP4 file (and its labels as JSON lines)."""
    try:
        import av
    except ImportError:
        raise HandposeError("writing clips needs PyAV: pip install -e '.[video]'") from None
    from tqdm import tqdm

    from models.data.synthetic import render_clip

    if args.frames < 1:
        raise HandposeError(f"--frames must be at least 1, got {args.frames}")
    height, width = args.size
    if height % 2 or width % 2:
        raise HandposeError(f"--size {width}x{height}: width and height must be even for video")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    codec = pick_encoder()
    frames = render_clip(args.frames, args.seed, (height, width), args.fps, args.hands,
                         args.gestures, crossing=args.crossing)  # fmt: skip
    labels = open(args.labels, "w") if args.labels else None  # noqa: SIM115
    from fractions import Fraction

    with av.open(str(args.out), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(args.fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": str(args.crf), "preset": "slow"}
        else:
            stream.bit_rate = 1_200_000
        for n, (image, hands) in enumerate(tqdm(frames, total=args.frames, desc="clip")):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
            if labels:
                record = {"frame": n, "time": n / args.fps, "hands": [h.to_json() for h in hands]}
                labels.write(json.dumps(record) + "\n")
        for packet in stream.encode():
            container.mux(packet)
    if labels:
        labels.close()
    size = args.out.stat().st_size
    print(f"wrote {args.out}: {args.frames} frames {width}x{height} at {args.fps:g} fps, "
          f"{codec}, {size / 1e6:.2f} MB")  # fmt: skip
    return 0


def _add_autolabel(p: argparse.ArgumentParser) -> None:
    from models.data.autolabel import add_arguments

    add_arguments(p)


def autolabel_action(args: argparse.Namespace) -> int:
    """Label footage with a teacher model set (`models.data.autolabel`)."""
    from models.data.autolabel import action

    return action(args)


def _add_teacher(p: argparse.ArgumentParser) -> None:
    from models.data.teacher import add_arguments

    add_arguments(p)


def teacher_action(args: argparse.Namespace) -> int:
    """Keypoints and sides for box / class-folder datasets (`models.data.teacher`)."""
    from models.data.teacher import action

    return action(args)


#: action name -> (argument adder, handler, help); other areas may add actions (e.g. autolabel)
ACTIONS: dict[str, tuple[Callable, Callable, str]] = {
    "render": (_add_render, render_action, "render a synthetic dataset in the project format"),
    "preview": (_add_preview, preview_action, "contact sheet of a dataset spec with labels"),
    "clip": (_add_clip, clip_action, "render a synthetic video clip (MP4) of moving hands"),
    "autolabel": (
        _add_autolabel,
        autolabel_action,
        "label images or a video with a teacher model set (MediaPipe) into a dataset",
    ),
    "teacher": (
        _add_teacher,
        teacher_action,
        "add a teacher's keypoints and sides to box / class-folder datasets (real photos)",
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, (adder, handler, help_text) in ACTIONS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        adder(p)
        p.set_defaults(_data_action=handler)


def main(args: argparse.Namespace) -> int:
    return int(args._data_action(args) or 0)
