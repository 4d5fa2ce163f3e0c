"""Load the model pair the app runs: `DIR/{detector,pose}.{tflite,json}`.

A model folder holds the first stage's model as `detector.json` (+ its .tflite) and the second
stage's as `pose.json`, for either model family named in the metadata: ours ("handpose":
SSD hand detector + Pose Proposal Network) or MediaPipe Hands ("mediapipe": palm detector +
hand landmark model, written by `handpose convert mediapipe`). Both files must be of one family.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from handpose.errors import ModelFileError
from handpose.metadata import ModelMetadata
from handpose.paths import DEFAULT_MODELS_DIR
from handpose.runner import ModelRunner

#: family -> metadata file -> (task it must declare, logical outputs it must have)
FAMILY_EXPECTED = {
    "handpose": {
        "detector.json": ("detector", ("locations", "scores")),
        "pose.json": ("pose", ("pose", "vect")),
    },
    "mediapipe": {
        "detector.json": ("palm_detector", ("boxes", "scores")),
        "pose.json": ("landmark", ("landmarks", "presence", "handedness")),
    },
}
#: our own family's expectations (kept for callers that predate the families)
EXPECTED = FAMILY_EXPECTED["handpose"]


@dataclass
class ModelSet:
    """The two runners of the app, each owning its interpreter."""

    detector: ModelRunner
    pose: ModelRunner
    folder: Path

    @property
    def family(self) -> str:
        """The model family of the pair ("handpose" or "mediapipe")."""
        return self.detector.metadata.family


def load_metadata(folder: Path, name: str, family: str | None = None) -> ModelMetadata:
    """Read `folder/name` and check its family, task and outputs.

    Args:
        folder: the models folder.
        name: "detector.json" or "pose.json".
        family: the family the file must be of (None: whichever family it declares).
    Raises:
        ModelFileError: naming the file and the fix.
    """
    path = folder / name
    meta = ModelMetadata.load(path)
    family = family or meta.family
    task, outputs = FAMILY_EXPECTED.get(family, EXPECTED)[name]
    tool = "handpose convert mediapipe" if family == "mediapipe" else "handpose convert"
    fix = f"write the folder with `{tool}` (it needs a {family} {task} model as {name})"
    if meta.family != family or meta.task != task:
        raise ModelFileError(
            f"{path}: a {meta.family} {meta.task!r} model, the app needs a {family} {task!r} "
            f"model here; {fix}"
        )
    missing = [key for key in outputs if key not in meta.outputs]
    if missing:
        raise ModelFileError(f"{path}: metadata lacks outputs {missing}; {fix}")
    return meta


def load_model_set(models_dir: str | Path | None = None, num_threads: int = 2) -> ModelSet:
    """Runners for `models_dir` (None or "": the bundled models), of either family."""
    folder = Path(models_dir) if models_dir else DEFAULT_MODELS_DIR
    if not folder.is_dir():
        raise ModelFileError(
            f"{folder}: models folder not found; pass --models DIR (or the `models_dir` "
            "setting) naming a folder written by `handpose convert`"
        )
    if not (folder / "detector.json").is_file():
        inner = sorted(p.name for p in folder.iterdir() if (p / "detector.json").is_file())
        if inner:
            raise ModelFileError(
                f"{folder}: holds model sets in {', '.join(inner)}/, not one itself; point "
                f"--models (or the `models_dir` setting) at one of them, e.g. {folder / inner[0]}"
            )
    detector_meta = load_metadata(folder, "detector.json")
    pose_meta = load_metadata(folder, "pose.json", family=detector_meta.family)
    detector = ModelRunner(detector_meta, num_threads)
    pose = ModelRunner(pose_meta, num_threads)
    return ModelSet(detector=detector, pose=pose, folder=folder)
