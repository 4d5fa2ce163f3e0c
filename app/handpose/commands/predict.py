"""`handpose predict`: hands and their pose in still images, written as JSON.

Unlike the camera app, which detects on the centre square of the frame (as the seed's demo), a
still image is detected whole: it is letterboxed to the square of side max(W, H) (black padding)
so hands at the edges are found. Each image stands alone: no tracking, no smoothing, and a
hand's gesture (`handpose.gestures`, absent when none is recognised) comes from that image only.
Boxes and keypoints are in original image pixels::

    {"images": [{"file": "sub/a.jpg", "width": W, "height": H,
                 "hands": [Hand.to_json(), ...]}, ...],
     "models": "DIR", "region": "letterbox"}
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from handpose.capture import list_images, load_image
from handpose.errors import OutputError, SourceError
from handpose.outputs import check_output_file
from handpose.pipeline.models import load_model_set
from handpose.pipeline.process import HandPipeline
from handpose.settings import AppSettings

log = logging.getLogger("handpose.predict")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", required=True, metavar="DIR", help="folder of jpg/png images")
    parser.add_argument("--out", required=True, metavar="FILE", help="predictions JSON to write")
    parser.add_argument("--models", metavar="DIR", help="model folder (default: bundled)")
    parser.add_argument("--settings", metavar="FILE", help="act settings JSON for thresholds")
    parser.add_argument(
        "--region",
        choices=("letterbox", "center"),
        default="letterbox",
        help="what the detector sees: the whole image padded square (default) or its centre "
        "square like the camera app",
    )


def main(args: argparse.Namespace) -> int:
    settings = AppSettings.load(args.settings) if args.settings else AppSettings()
    # still images are taken as they are: camera orientation settings do not apply
    settings = settings.replace(hflip=False, vflip=False, rotation=0, mirrored_camera=False)
    if args.models:
        settings = settings.replace(models_dir=str(args.models))
    out = check_output_file(args.out, "--out")  # before any inference
    folder = Path(args.images)
    if not folder.is_dir():
        raise SourceError(f"--images {folder}: not a folder")
    files = list_images(folder)
    if not files:
        raise SourceError(f"--images {folder}: no .jpg/.png images found")
    models = load_model_set(settings.models_dir, settings.num_threads)
    pipeline = HandPipeline(models, settings, stream=False)  # no tracking or smoothing
    results, skipped, hands = [], 0, 0
    for path in files:
        image = load_image(path)
        if image is None:
            skipped += 1
            continue
        found = pipeline(image, region=args.region)
        hands += len(found)
        results.append(
            {
                "file": path.relative_to(folder).as_posix(),
                "width": int(image.shape[1]),
                "height": int(image.shape[0]),
                "hands": [hand.to_json() for hand in found],
            }
        )
    data = {"images": results, "models": str(models.folder), "region": args.region}
    try:
        out.write_text(json.dumps(data) + "\n")
    except OSError as error:
        raise OutputError(f"--out {out}: writing failed ({error.strerror or error})") from None
    log.info("%d images, %d hands, %d unreadable skipped -> %s", len(results), hands, skipped, out)
    return 0
