"""The project's own dataset format: write (`DatasetWriter`) and read (`HandposeDataset`).

Layout (docs/CONVENTIONS.md, "The project's dataset format"; loader spec `dir:PATH`):

    DATASET/
      dataset.json   {"format": "handpose-dataset/1", "task": "detection"|"pose",
                      "source": str, "count": N, "command": str}
      images/000000.jpg   RGB JPEG, quality 95
      labels.jsonl   one JSON object per line, in image order:
                     {"file": "images/000000.jpg", "width": W, "height": H,
                      "intrinsics": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] | null,
                      "hands": [Hand.to_json(), ...]}

Hands are `handpose.hand.Hand.to_json()` objects: "box" [x0, y0, x1, y1] px, "keypoints"
[[x, y, visibility] x 21] (absent without pose), "joints_3d" [[x, y, z] x 21] mm camera frame
(absent without 3D). Coordinates are stored rounded to 0.01 px / 0.01 mm. `dataset.json` is
written last (by `close`), so a folder without it is an unfinished or foreign dataset.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from PIL import Image

from handpose.errors import HandposeError
from handpose.hand import Hand
from models.data.loaders.common import IndexedDataset
from models.data.sample import Sample

FORMAT = "handpose-dataset/1"
TASKS = ("detection", "pose")
JPEG_QUALITY = 95


class DatasetWriter:
    """Writes samples into a new dataset folder in the project format.

    Args:
        out_dir: folder to create (may exist, but must not already hold a dataset).
        task: "detection" or "pose" (what the images are: scenes or one-hand crops).
        source: where the samples come from ("synthetic", "rhd", "autolabel", ...).
        command: the command line that made the dataset (recorded in dataset.json).

    Usage: `with DatasetWriter(out, "detection", "synthetic") as w: w.add(sample)`; without the
    `with`, call `close()` (it writes dataset.json with the final count).
    """

    def __init__(self, out_dir: str | Path, task: str, source: str, command: str = "") -> None:
        if task not in TASKS:
            raise HandposeError(f"dataset task must be one of {TASKS}, got {task!r}")
        self.out_dir = Path(out_dir)
        self.task, self.source, self.command = task, str(source), str(command)
        for name in ("dataset.json", "labels.jsonl"):
            if (self.out_dir / name).exists():
                raise HandposeError(
                    f"{self.out_dir / name} exists: {self.out_dir} already holds a dataset; "
                    "remove it or choose another output folder"
                )
        try:
            (self.out_dir / "images").mkdir(parents=True, exist_ok=True)
            self._labels = open(self.out_dir / "labels.jsonl", "w", encoding="utf-8")  # noqa: SIM115
        except OSError as error:
            raise HandposeError(f"cannot create dataset folder {self.out_dir}: {error}") from None
        self.count = 0
        self.closed = False

    def add(self, sample: Sample) -> str:
        """Append one sample (image as images/NNNNNN.jpg + one labels.jsonl line); its file."""
        if self.closed:
            raise ValueError(f"DatasetWriter for {self.out_dir} is closed")
        rel = f"images/{self.count:06d}.jpg"
        Image.fromarray(sample.image).save(self.out_dir / rel, quality=JPEG_QUALITY)
        K = sample.intrinsics
        record = {
            "file": rel,
            "width": sample.width,
            "height": sample.height,
            "intrinsics": None if K is None else [[float(v) for v in row] for row in K],
            "hands": [hand.to_json() for hand in sample.hands],
        }
        self._labels.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.count += 1
        return rel

    def close(self) -> None:
        """Flush labels.jsonl and write dataset.json (idempotent)."""
        if self.closed:
            return
        self._labels.close()
        info = {
            "format": FORMAT,
            "task": self.task,
            "source": self.source,
            "count": self.count,
            "command": self.command,
        }
        (self.out_dir / "dataset.json").write_text(json.dumps(info, indent=2) + "\n")
        self.closed = True

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _hand_from_record(data: dict[str, Any]) -> Hand:
    hand = Hand.from_json(data)
    return hand.replace(track_id=None) if hand.track_id is not None else hand


class HandposeDataset(IndexedDataset):
    """A project-format dataset folder as a sequence of `Sample` (images decoded on access).

    Args:
        path: the dataset folder (or its dataset.json).

    Attributes:
        name: "dir:<path>"; task, source, command, count: from dataset.json.
    Raises HandposeError naming the file when dataset.json or labels.jsonl is missing or
    malformed, or when an image is missing or has another size than its label says.
    """

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if path.name == "dataset.json":
            path = path.parent
        self.path = path
        self.name = f"dir:{path}"
        info_path = path / "dataset.json"
        if not info_path.is_file():
            raise HandposeError(
                f"{info_path} not found: {path} is not a handpose dataset folder (make one with "
                "`handpose data render --out DIR` or point the spec at the folder holding "
                "dataset.json)"
            )
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise HandposeError(f"{info_path} is not valid JSON: {error}") from None
        if not isinstance(info, dict) or info.get("format") != FORMAT:
            raise HandposeError(
                f"{info_path}: format must be {FORMAT!r}, got "
                f"{info.get('format') if isinstance(info, dict) else info!r}"
            )
        if info.get("task") not in TASKS:
            raise HandposeError(
                f"{info_path}: task must be one of {TASKS}, got {info.get('task')!r}"
            )
        self.task: str = info["task"]
        self.source: str = str(info.get("source", ""))
        self.command: str = str(info.get("command", ""))
        self.records = self._read_labels(path / "labels.jsonl")
        count = info.get("count")
        if count != len(self.records):
            raise HandposeError(
                f"{info_path} says count {count} but {path / 'labels.jsonl'} has "
                f"{len(self.records)} lines: the dataset is incomplete; write it again"
            )
        self.count = len(self.records)
        super().__init__(self.name, self.count, self._load_record)

    @staticmethod
    def _read_labels(labels_path: Path) -> list[dict[str, Any]]:
        if not labels_path.is_file():
            raise HandposeError(f"{labels_path} not found: the dataset has no labels")
        records = []
        with open(labels_path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    _check_record(record)
                    # parse the hands once here so a bad label fails at open, not mid-training
                    [_hand_from_record(h) for h in record["hands"]]
                except (ValueError, KeyError, TypeError) as error:
                    raise HandposeError(
                        f"{labels_path} line {line_no}: malformed label ({error}); each line must "
                        'be {"file", "width", "height", "intrinsics", "hands"}'
                    ) from None
                records.append(record)
        return records

    def _load_record(self, index: int) -> Sample:
        record = self.records[index]
        file = self.path / record["file"]
        image = load_rgb(file)
        if image.shape[:2] != (record["height"], record["width"]):
            raise HandposeError(
                f"{file} is {image.shape[1]}x{image.shape[0]} but labels.jsonl says "
                f"{record['width']}x{record['height']}"
            )
        return Sample(
            image=image,
            hands=[_hand_from_record(h) for h in record["hands"]],
            intrinsics=record.get("intrinsics"),
            source=self.source or "dir",
            name=str(record["file"]),
            meta={"dataset": str(self.path), "index": index},
        )


def _check_record(record: Any) -> None:
    if not isinstance(record, dict):
        raise TypeError("a label line must be a JSON object")
    for key in ("file", "width", "height", "hands"):
        if key not in record:
            raise KeyError(f"missing {key!r}")
    if not isinstance(record["hands"], list):
        raise TypeError('"hands" must be a list')
    K = record.get("intrinsics")
    if K is not None and np.asarray(K, np.float64).shape != (3, 3):
        raise ValueError('"intrinsics" must be a 3x3 matrix or null')


def load_rgb(path: str | Path) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3) (grey, palette and RGBA are converted).

    Raises HandposeError naming the file when it is missing or not an image.
    """
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), np.uint8).copy()
    except FileNotFoundError:
        raise HandposeError(f"image {path} not found") from None
    except OSError as error:
        raise HandposeError(f"cannot read image {path}: {error}") from None
