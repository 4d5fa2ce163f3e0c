"""Spec source `folders:FOLDER`: class-folder image sets (FOLDER/CLASS/*.jpg), no boxes.

Sets such as Sign Language Digits (`images/0 ... images/9`) hold one hand per image, labelled
only by what it shows. FOLDER is the folder whose sub-folders are the classes (an `images/`
child holding them is looked into). The option `classes=` maps class names to sides
(`models.data.loaders.classmap`, default every class a hand of unknown side; a class mapped to
`drop` is skipped whole).

These images have no boxes: a sample's `hands` is empty and `meta["unlabelled"]` is True with
`meta["class"]` and `meta["side"]` (the mapped side). They are not detector training data
(an empty label list would teach "no hand here"): label them with a teacher first
(`handpose data teacher folders:FOLDER --out DIR`), whose output trains both networks.
Splits: the set has none: each class's images (sorted) give their held-out tails to val and
test (`common.holdout_indices`), so every split holds every class.
"""

from __future__ import annotations

from pathlib import Path

from handpose.errors import HandposeError
from models.data.handpose_format import load_rgb
from models.data.loaders.classmap import DEFAULT, ClassMap
from models.data.loaders.common import IndexedDataset, holdout_indices
from models.data.loaders.voc import IMAGE_SUFFIXES
from models.data.sample import Sample


def load(root: Path, *, split: str, classes: str = DEFAULT) -> IndexedDataset:
    """The images of `split` of a class-folder set (see the module docstring)."""
    where = f"folders:{root}"
    classmap = ClassMap(classes, where)
    base = root / "images" if (root / "images").is_dir() else root
    items: list[tuple[Path, str, str]] = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        side = classmap.side(folder.name)
        if side is None:
            continue
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        for k in holdout_indices(len(files), split):
            items.append((files[int(k)], folder.name, side))
    if not items and not any(p.is_dir() for p in base.iterdir()):
        raise HandposeError(
            f"{where}: no class folders in {base}; point folders: at the folder holding "
            "one sub-folder of images per class"
        )

    def get(i: int) -> Sample:
        path, name, side = items[i]
        return Sample(
            load_rgb(path),
            [],
            None,
            "folders",
            path.relative_to(root).as_posix(),
            {"unlabelled": True, "class": name, "side": side},
        )

    return IndexedDataset(f"{where} ({split})", len(items), get)
