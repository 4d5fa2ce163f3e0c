"""`handpose convert mediapipe --out DIR`: MediaPipe Hands' TFLite models as a model family.

MediaPipe (Apache-2.0) stopped shipping the legacy solution models in its wheels after 0.10.14,
so this command fetches exactly that release's wheel with pip when it runs (never at app run
time) and reads four files out of the zip:

    mediapipe/modules/palm_detection/palm_detection_{lite,full}.tflite   palm detector, 192x192
    mediapipe/modules/hand_landmark/hand_landmark_{lite,full}.tflite     landmarks, 224x224

Each file's sha256 must equal the release's (`PINNED_SHA256`), so what lands on a device is
what was tested. The wheel is always the cp311 manylinux x86_64 one (`WHEEL_PLATFORM`; the
model files are the same bytes in every platform's wheel, and pip downloads it from any
machine), or a copy given with `--wheel FILE` on a machine without the package index.

Written, per variant V in `--variants` (lite, full): `DIR/V/detector.json` beside
`palm_detection_V.tflite` and `DIR/V/pose.json` beside `hand_landmark_V.tflite`, metadata
"handpose-model/1" with family "mediapipe" (tasks "palm_detector" and "landmark"): input
float32 RGB normalised to [0, 1] (mean 0, std 255), outputs by logical name in MediaPipe's
tensor order (palm: boxes (1, 2016, 18), scores (1, 2016, 1); landmarks: landmarks (1, 63),
presence (1, 1), handedness (1, 1), world_landmarks (1, 63)), the SSD anchor options, decode,
NMS and hand-region options of MediaPipe's graphs, the MAC count, and where the file came from.
Each pair is re-opened with the app's `ModelRunner` before the command reports success.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from handpose import __version__
from handpose.codec.hand_landmarks import RegionOptions
from handpose.codec.palm import PALM_ANCHORS, PALM_KEYPOINTS, PalmDecodeOptions
from handpose.errors import HandposeError, ModelFileError
from handpose.metadata import ModelMetadata, TensorSpec, sha256_of
from handpose.paths import MEDIAPIPE_DIR
from handpose.skeleton import EDGES, KEYPOINT_NAMES

log = logging.getLogger(__name__)

MEDIAPIPE_VERSION = "0.10.14"
#: the wheel fetched (any platform's wheel holds the same model files)
WHEEL_PLATFORM = {"platform": "manylinux_2_17_x86_64", "python": "311", "abi": "cp311"}
VARIANTS = ("lite", "full")
#: (variant, role) -> path inside the wheel
WHEEL_FILES: dict[tuple[str, str], str] = {
    (v, "detector"): f"mediapipe/modules/palm_detection/palm_detection_{v}.tflite" for v in VARIANTS
} | {(v, "pose"): f"mediapipe/modules/hand_landmark/hand_landmark_{v}.tflite" for v in VARIANTS}
#: sha256 of each model file in mediapipe 0.10.14
PINNED_SHA256: dict[str, str] = {
    "palm_detection_lite.tflite": (
        "e9a4aaddf90dda56a87235303cf00e4c2d3fb28725f68fd88772997dac905c18"
    ),
    "palm_detection_full.tflite": (
        "1b14e9422c6ad006cde6581a46c8b90dd573c07ab7f3934b5589e7cea3f89a54"
    ),
    "hand_landmark_lite.tflite": "048edd3645c9bf7397d19a9f6e3a42957d6e414c9bea6598030a2e9b624156e6",
    "hand_landmark_full.tflite": "11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3",
}
#: MediaPipe's input range [0, 1]: (pixel - 0) / 255
UNIT_RANGE = {"mean": [0.0, 0.0, 0.0], "std": [255.0, 255.0, 255.0]}
LANDMARK_DECODE = {
    "presence_threshold": 0.5,  # hand_landmark_cpu.pbtxt ThresholdingCalculator
    "normalize_z": 0.4,  # TensorsToLandmarksCalculator
    "handedness_first_label": "left",  # handedness.txt: Left, Right (binary classification)
    "handedness_assumes_mirrored": True,  # "assuming the input image is mirrored"
    "world_landmarks_unit": "m",
}
#: logical output names in the models' output order (MediaPipe splits the tensors by index)
OUTPUT_ORDER = {
    "palm_detector": ("boxes", "scores"),
    "landmark": ("landmarks", "presence", "handedness", "world_landmarks"),
}


def fetch_wheel(dest: Path) -> Path:
    """Download mediapipe's pinned wheel into `dest` with pip; its path.

    Raises:
        HandposeError: pip failed (no network, no index): the message says how to go offline.
    """
    command = [
        sys.executable, "-m", "pip", "download", f"mediapipe=={MEDIAPIPE_VERSION}",
        "--no-deps", "--only-binary=:all:", "--dest", str(dest),
        "--platform", WHEEL_PLATFORM["platform"], "--python-version", WHEEL_PLATFORM["python"],
        "--implementation", "cp", "--abi", WHEEL_PLATFORM["abi"],
    ]  # fmt: skip
    log.info("fetching mediapipe %s with pip (about 36 MB)", MEDIAPIPE_VERSION)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(dest.glob(f"mediapipe-{MEDIAPIPE_VERSION}-*.whl"))
    if result.returncode != 0 or not wheels:
        reason = (result.stderr or result.stdout).strip().splitlines()
        raise HandposeError(
            f"pip could not download mediapipe=={MEDIAPIPE_VERSION} "
            f"({reason[-1] if reason else 'no wheel'}); on a machine with the package index run "
            f"`pip download mediapipe=={MEDIAPIPE_VERSION} --no-deps` and pass the file with "
            "--wheel"
        )
    return wheels[0]


def read_models(
    wheel: Path, variants: Sequence[str], check: bool = True
) -> dict[tuple[str, str], bytes]:
    """The model files of `variants` from the wheel, checked against `PINNED_SHA256`.

    Args:
        wheel: a mediapipe wheel (zip).
        variants: "lite" and/or "full".
        check: compare each file's sha256 with the release's (False: test models).
    Returns:
        (variant, "detector" | "pose") -> file bytes.
    """
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as error:
        raise HandposeError(f"{wheel}: not a wheel (zip) file ({error})") from None
    expected = PINNED_SHA256 if check else None
    out = {}
    with archive:
        names = set(archive.namelist())
        for variant in variants:
            for role in ("detector", "pose"):
                member = WHEEL_FILES[(variant, role)]
                if member not in names:
                    raise HandposeError(
                        f"{wheel}: has no {member}; use the mediapipe {MEDIAPIPE_VERSION} wheel "
                        "(later releases no longer ship these models)"
                    )
                data = archive.read(member)
                name = Path(member).name
                digest = hashlib.sha256(data).hexdigest()
                if expected is not None and expected.get(name) != digest:
                    raise HandposeError(
                        f"{wheel}: {name} has sha256 {digest[:16]}..., not the mediapipe "
                        f"{MEDIAPIPE_VERSION} release's {expected.get(name, '?')[:16]}...; "
                        "refusing an unknown model file"
                    )
                out[(variant, role)] = data
    return out


def _precision(interpreter: Any) -> str:
    dtypes = {t["dtype"].__name__ for t in interpreter.get_tensor_details()}
    if "float16" in dtypes:
        return "fp16"
    inp = interpreter.get_input_details()[0]
    return "int8" if inp["dtype"].__name__ in ("int8", "uint8") else "fp32"


def _spec(detail: dict[str, Any]) -> TensorSpec:
    scale, zero = detail.get("quantization", (0.0, 0))
    return TensorSpec(
        name=str(detail["name"]),
        shape=[int(v) for v in detail["shape"]],
        dtype=detail["dtype"].__name__,
        quantization={"scale": float(scale), "zero_point": int(zero)} if scale else None,
    )


def mediapipe_metadata(
    model_path: Path, task: str, variant: str, source: dict[str, Any]
) -> ModelMetadata:
    """The metadata of one MediaPipe model file (see module docstring).

    Args:
        model_path: the .tflite (its JSON goes beside it).
        task: "palm_detector" or "landmark".
        variant: "lite" or "full".
        source: where it came from (wheel, member, version, license), stored in `extra`.
    Raises:
        ModelFileError: the tensors are not MediaPipe's layout.
    """
    from handpose.runner import make_interpreter
    from handpose.tflite_macs import count_tflite_macs

    interpreter = make_interpreter(model_path, num_threads=1)
    inputs = interpreter.get_input_details()
    outputs = interpreter.get_output_details()
    names = OUTPUT_ORDER[task]
    if len(inputs) != 1 or len(outputs) != len(names):
        raise ModelFileError(
            f"{model_path}: {len(inputs)} inputs and {len(outputs)} outputs, a MediaPipe {task} "
            f"has 1 and {len(names)} ({', '.join(names)})"
        )
    specs = {name: _spec(detail) for name, detail in zip(names, outputs, strict=True)}
    _check_layout(model_path, task, _spec(inputs[0]), specs)
    meta = ModelMetadata(
        family="mediapipe",
        task=task,
        model_file=model_path.name,
        precision=_precision(interpreter),
        input=_spec(inputs[0]),
        outputs=specs,
        architecture=f"mediapipe {Path(source['member']).stem}",
        version=__version__,
        sha256=sha256_of(model_path),
        normalization=dict(UNIT_RANGE),
        training={"data": "MediaPipe Hands (Google)", "command": source.get("command", "")},
        extra={"macs": count_tflite_macs(model_path), "variant": variant, "source": source},
    )
    if task == "palm_detector":
        meta.classes = ["hand"]
        meta.default_boxes = PALM_ANCHORS.to_dict()
        meta.decode = {
            **PalmDecodeOptions().to_dict(),
            "nms": "weighted",
            "region": RegionOptions().to_dict(),
        }
        meta.keypoints = {"names": list(PALM_KEYPOINTS)}
    else:
        meta.classes = ["left", "right"]
        meta.decode = dict(LANDMARK_DECODE)
        meta.keypoints = {"names": list(KEYPOINT_NAMES), "edges": [list(e) for e in EDGES]}
    return meta


def _check_layout(path: Path, task: str, inp: TensorSpec, outputs: dict[str, TensorSpec]) -> None:
    side = 192 if task == "palm_detector" else 224
    wanted = {
        "palm_detector": {"boxes": [1, 2016, 18], "scores": [1, 2016, 1]},
        "landmark": {
            "landmarks": [1, 63],
            "presence": [1, 1],
            "handedness": [1, 1],
            "world_landmarks": [1, 63],
        },
    }[task]
    problems = [] if inp.shape == [1, side, side, 3] else [f"input {inp.shape}"]
    problems += [f"{k} {outputs[k].shape}" for k, w in wanted.items() if outputs[k].shape != w]
    if problems:
        raise ModelFileError(
            f"{path}: not MediaPipe's {task} layout ({', '.join(problems)}; expected input "
            f"[1, {side}, {side}, 3] and {wanted})"
        )


def import_models(
    wheel: Path,
    out: Path,
    variants: Sequence[str] = VARIANTS,
    check: bool = True,
    command: str = "",
) -> list[Path]:
    """Write `out/<variant>/{detector,pose}.json` + the .tflite files; the folders written.

    Each pair is checked by re-opening it with the app's runner (`save_checked`); `check`
    compares the files with the release's sha256 first (`read_models`).
    """
    from conversion.metadata_writer import save_checked

    files = read_models(wheel, variants, check)
    folders = []
    for variant in variants:
        folder = out / variant
        folder.mkdir(parents=True, exist_ok=True)
        for role, task in (("detector", "palm_detector"), ("pose", "landmark")):
            member = WHEEL_FILES[(variant, role)]
            model_path = folder / Path(member).name
            model_path.write_bytes(files[(variant, role)])
            source = {
                "package": f"mediapipe=={MEDIAPIPE_VERSION}",
                "wheel": wheel.name,
                "member": member,
                "license": "Apache-2.0",
                "url": "https://github.com/google-ai-edge/mediapipe",
                "command": command,
            }
            meta = mediapipe_metadata(model_path, task, variant, source)
            save_checked(meta, folder / f"{role}.json")
        folders.append(folder)
    return folders


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, default=MEDIAPIPE_DIR, metavar="DIR",
        help=f"folder to write lite/ full/ into (default {MEDIAPIPE_DIR}, $HANDPOSE_MEDIAPIPE_DIR)",
    )  # fmt: skip
    parser.add_argument(
        "--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS),
        help="which model sizes (default: lite full)",
    )  # fmt: skip
    parser.add_argument(
        "--wheel", type=Path, metavar="FILE",
        help=f"a downloaded mediapipe-{MEDIAPIPE_VERSION} wheel (default: fetch it with pip)",
    )  # fmt: skip


def main(args: argparse.Namespace) -> int:
    command = f"handpose convert mediapipe --out {args.out} --variants {' '.join(args.variants)}"
    if args.wheel is not None:
        if not args.wheel.is_file():
            raise HandposeError(f"--wheel {args.wheel}: file not found")
        folders = import_models(args.wheel, args.out, args.variants, command=command)
    else:
        with tempfile.TemporaryDirectory(prefix="handpose-mediapipe-") as tmp:
            wheel = fetch_wheel(Path(tmp))
            folders = import_models(wheel, args.out, args.variants, command=command)
    for folder in folders:
        for role in ("detector", "pose"):
            meta = ModelMetadata.load(folder / f"{role}.json")
            macs = meta.extra.get("macs")
            size = f"{meta.input.shape[1]}x{meta.input.shape[2]}"
            cost = f", {macs / 1e6:.0f} MMACs" if macs is not None else ""
            print(
                f"wrote {folder / role}.json: {meta.model_file} ({meta.task}, "
                f"{meta.precision}, input {size}{cost})"
            )
    print(f"run the app with it: handpose run --models {folders[-1]}")
    return 0
