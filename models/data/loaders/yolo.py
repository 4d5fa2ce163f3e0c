"""Spec source `yolo:FOLDER`: hand boxes in YOLO txt files (Roboflow / Ultralytics exports).

Each image `.../images/NAME.jpg` has `.../labels/NAME.txt` with one line per object:
`class cx cy w h`, all but the class normalised to 0..1 by the image's width and height (a line
with more values, a YOLO segment, is read by its first four). Layouts:
- Roboflow: FOLDER/{train,valid,test}/images + labels;
- Ultralytics: FOLDER/images/{train,val,test} + FOLDER/labels/{train,val,test};
- flat: FOLDER/images + FOLDER/labels (one set: val / test are its held-out tails,
  `common.holdout_indices`).
"val" reads `valid/` where there is no `val/`. An image without a label file has no hands (a
negative, as in YOLO). Class names come from FOLDER/data.yaml's `names` (a `[...]` list, a
`- name` block or an `0: name` block) when it exists, else the class index is its name; the
option `classes=` maps them to sides (`models.data.loaders.classmap`; default every class a
hand of unknown side). No keypoints.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np

from handpose.errors import HandposeError
from models.data.handpose_format import load_rgb
from models.data.loaders.classmap import DEFAULT, ClassMap
from models.data.loaders.common import IndexedDataset, Subset, holdout_indices
from models.data.loaders.voc import IMAGE_SUFFIXES, hands_from_boxes
from models.data.sample import Sample

SPLIT_FOLDERS = {"train": ("train",), "val": ("val", "valid"), "test": ("test",)}


def read_class_names(root: Path) -> list[str]:
    """Class names from root/data.yaml's `names` ([] when there is no data.yaml or no names)."""
    path = root / "data.yaml"
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8", errors="replace")
    m = re.search(r"^names:\s*(\[.*?\])", text, re.M | re.S)
    if m:
        try:
            return [str(x) for x in ast.literal_eval(m.group(1))]
        except (ValueError, SyntaxError):
            raise HandposeError(f"yolo: {path}: cannot read the names {m.group(1)!r}") from None
    m = re.search(r"^names:\s*\n((?:[ \t]+.*\n?)+)", text, re.M)
    if not m:
        return []
    names: dict[int, str] = {}
    for k, line in enumerate(m.group(1).splitlines()):
        item = line.strip()
        if item.startswith("- "):
            names[k] = item[2:].strip().strip("'\"")
        elif ":" in item:
            key, _, value = item.partition(":")
            names[int(key)] = value.strip().strip("'\"")
    return [names[k] for k in sorted(names)]


def _set_folders(root: Path, split: str) -> list[tuple[Path, Path]]:
    """(images folder, labels folder) pairs holding `split` ([] when it has none)."""
    pairs = []
    wanted = (
        [n for s in SPLIT_FOLDERS for n in SPLIT_FOLDERS[s]]
        if split == "all"
        else list(SPLIT_FOLDERS[split])
    )
    for name in wanted:
        if (root / name / "images").is_dir():
            pairs.append((root / name / "images", root / name / "labels"))
            if split != "all":
                break
        elif (root / "images" / name).is_dir():
            pairs.append((root / "images" / name, root / "labels" / name))
            if split != "all":
                break
    return pairs


def _has_splits(root: Path) -> bool:
    return any(
        (root / n / "images").is_dir() or (root / "images" / n).is_dir()
        for names in SPLIT_FOLDERS.values()
        for n in names
    )


def read_label_file(path: Path, names: list[str]) -> list[tuple[str, np.ndarray]]:
    """(class name, [cx, cy, w, h] normalised) per line of a YOLO txt; [] when there is none."""
    if not path.is_file():
        return []
    objects = []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            cls = int(float(fields[0]))
            values = np.asarray([float(v) for v in fields[1:5]], np.float64)
        except ValueError:
            raise HandposeError(f"yolo: {path} line {n}: expected 'class cx cy w h'") from None
        if len(values) < 4:
            raise HandposeError(f"yolo: {path} line {n}: expected 'class cx cy w h'")
        name = names[cls] if 0 <= cls < len(names) else str(cls)
        objects.append((name, values))
    return objects


def load(root: Path, *, split: str, classes: str = DEFAULT) -> IndexedDataset:
    """The YOLO-labelled images of `split` under `root` (see the module docstring)."""
    where = f"yolo:{root}"
    classmap = ClassMap(classes, where)
    names = read_class_names(root)
    if _has_splits(root):
        pairs = _set_folders(root, split)
        holdout = None
    elif (root / "images").is_dir():
        pairs, holdout = [(root / "images", root / "labels")], split
    else:
        raise HandposeError(
            f"{where}: no images/ folder (nor train/images, valid/images, images/train ...); "
            "point yolo: at the export's top folder"
        )
    files: list[tuple[Path, Path]] = []
    for images, labels in pairs:
        for image in sorted(p for p in images.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
            rel = image.relative_to(images).with_suffix(".txt")
            files.append((image, labels / rel))
    for _, label in files:  # unmapped class or malformed line: stop now, not mid-training
        for name, _ in read_label_file(label, names):
            classmap.side(name)
    if not pairs:
        folders = "/".join(SPLIT_FOLDERS.get(split, ("train", "val", "test")))
        raise HandposeError(f"{where}: no {split} split (no {folders} folder with images/)")

    def get(i: int) -> Sample:
        image_path, label_path = files[i]
        image = load_rgb(image_path)
        h, w = image.shape[:2]
        objects = []
        for name, (cx, cy, bw, bh) in read_label_file(label_path, names):
            objects.append(
                (name, [(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h])
            )
        return Sample(
            image,
            hands_from_boxes(objects, classmap, w, h),
            None,
            "yolo",
            image_path.relative_to(root).as_posix(),
            {},
        )

    ds = IndexedDataset(where, len(files), get)
    index = np.arange(len(files)) if holdout is None else holdout_indices(len(files), holdout)
    return Subset(ds, index, f"{where} ({split})")
