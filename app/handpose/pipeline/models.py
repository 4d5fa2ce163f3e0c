"""Load the model pair the app runs: `DIR/{detector,pose}.{tflite,json}`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from handpose.errors import ModelFileError
from handpose.metadata import ModelMetadata
from handpose.paths import DEFAULT_MODELS_DIR
from handpose.runner import ModelRunner

#: metadata file -> (task it must declare, logical outputs it must have)
EXPECTED = {
    "detector.json": ("detector", ("locations", "scores")),
    "pose.json": ("pose", ("pose", "vect")),
}


@dataclass
class ModelSet:
    """The two runners of the app, each owning its interpreter."""

    detector: ModelRunner
    pose: ModelRunner
    folder: Path


def load_metadata(folder: Path, name: str) -> ModelMetadata:
    """Read `folder/name` and check its task and outputs; `ModelFileError` names file and fix."""
    path = folder / name
    meta = ModelMetadata.load(path)
    task, outputs = EXPECTED[name]
    fix = f"write the folder with `handpose convert` (it needs a {task} model as {name})"
    if meta.family != "handpose" or meta.task != task:
        raise ModelFileError(
            f"{path}: a {meta.family} {meta.task!r} model, the app needs a handpose {task!r} "
            f"model here; {fix}"
        )
    missing = [key for key in outputs if key not in meta.outputs]
    if missing:
        raise ModelFileError(f"{path}: metadata lacks outputs {missing}; {fix}")
    return meta


def load_model_set(models_dir: str | Path | None = None, num_threads: int = 2) -> ModelSet:
    """Runners for `models_dir` (None or "": the bundled models)."""
    folder = Path(models_dir) if models_dir else DEFAULT_MODELS_DIR
    if not folder.is_dir():
        raise ModelFileError(
            f"{folder}: models folder not found; pass --models DIR (or the `models_dir` "
            "setting) naming a folder written by `handpose convert`"
        )
    detector = ModelRunner(load_metadata(folder, "detector.json"), num_threads)
    pose = ModelRunner(load_metadata(folder, "pose.json"), num_threads)
    return ModelSet(detector=detector, pose=pose, folder=folder)
