"""Spec source `voc:FOLDER`: hand boxes in Pascal VOC XML (labelImg, CVAT, Roboflow "VOC").

Layouts (found from FOLDER):
- Pascal VOC: FOLDER/Annotations/*.xml, images in FOLDER/JPEGImages/, split lists in
  FOLDER/ImageSets/Main/{train,val,test}.txt;
- labelImg: an .xml beside each image anywhere under FOLDER; split lists FOLDER/{split}.txt;
- Roboflow "Pascal VOC" export: FOLDER/{train,valid,test}/ holding xml files and images (the
  folders are the splits).
An image is the xml's <filename> looked up beside the xml, then in JPEGImages/ and images/,
then the xml's own name with an image suffix. Each <object> is one hand: <bndbox> xmin ymin
xmax ymax (pixels; VOC's 1-based corners are read as pixel edges), its <name> mapped to a side
by the option `classes=` (`models.data.loaders.classmap`; default: every class a hand of
unknown side). Objects marked <difficult>1 are kept (a hand is a hand). No keypoints.

Splits: a list file names images by file name or stem, one per line. A split with its own list
uses it. Of the images in no list, "val" and "test" without a list take the held-out tails of
`common.holdout_indices`, and "train" without a list the rest. "all" is every image.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from handpose.errors import HandposeError
from handpose.hand import Hand
from models.data.handpose_format import load_rgb
from models.data.loaders.classmap import DEFAULT, ClassMap
from models.data.loaders.common import IndexedDataset, Subset, holdout_indices
from models.data.sample import Sample

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
SPLIT_FILES = {"train": ("train",), "val": ("val", "valid"), "test": ("test",)}


def _list_stem(line: str) -> str:
    """The image stem a list line names: "a.jpg", "dir/a.jpg" or VOC's bare "a" (a stem may
    hold dots, e.g. Roboflow's "a_jpg.rf.123": only an image suffix is stripped)."""
    path = Path(line.strip())
    return path.stem if path.suffix.lower() in IMAGE_SUFFIXES else path.name


def read_split_lists(folders: list[Path]) -> dict[str, set[str]]:
    """split -> stems listed in its first list file found in `folders` (absent: no list)."""
    lists: dict[str, set[str]] = {}
    for split, names in SPLIT_FILES.items():
        for folder in folders:
            found = [folder / f"{n}.txt" for n in names if (folder / f"{n}.txt").is_file()]
            if found:
                lines = found[0].read_text(encoding="utf-8", errors="replace").splitlines()
                lists[split] = {_list_stem(x) for x in lines if x.strip()}
                break
    return lists


def split_indices(stems: list[str], lists: dict[str, set[str]], split: str) -> np.ndarray:
    """Indices of `split` among `stems` by the lists (see the module docstring)."""
    if split == "all":
        return np.arange(len(stems))
    if split in lists:
        return np.array([i for i, s in enumerate(stems) if s in lists[split]], np.int64)
    listed = set().union(*lists.values()) if lists else set()
    free = np.array([i for i, s in enumerate(stems) if s not in listed], np.int64)
    if len(free) < 3:  # as holdout_indices: too few to hold out, every split gets them all
        return free
    tails = {s: holdout_indices(len(free), s) for s in ("val", "test") if s not in lists}
    if split in tails:
        return free[tails[split]]
    taken = np.concatenate([np.zeros(0, np.int64), *tails.values()])
    return free[np.setdiff1d(np.arange(len(free)), taken)]


def split_folders(root: Path) -> dict[str, str]:
    """Top folder name -> split for a tree of train/ valid/ (val/) test/ folders holding .xml
    files ({} when root has no such folder)."""
    out = {}
    for split, names in SPLIT_FILES.items():
        for name in names:
            if (root / name).is_dir() and next((root / name).rglob("*.xml"), None) is not None:
                out[name] = split
    return out


def _parse(xml_path: Path) -> tuple[str, list[tuple[str, list[float]]]]:
    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError) as error:
        raise HandposeError(f"voc: {xml_path} is not a Pascal VOC XML file ({error})") from None
    filename = (root.findtext("filename") or "").strip()
    objects = []
    for obj in root.iter("object"):
        box = obj.find("bndbox")
        try:
            xyxy = [float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]  # type: ignore[union-attr,arg-type]
        except (AttributeError, TypeError, ValueError):
            raise HandposeError(
                f"voc: {xml_path}: an <object> without a numeric <bndbox> xmin/ymin/xmax/ymax"
            ) from None
        objects.append(((obj.findtext("name") or "").strip(), xyxy))
    return filename, objects


def _image_for(xml_path: Path, filename: str, root: Path) -> Path | None:
    candidates = []
    if filename:
        candidates += [xml_path.parent / filename, root / "JPEGImages" / filename,
                       root / "images" / filename]  # fmt: skip
    candidates += [xml_path.with_suffix(s) for s in IMAGE_SUFFIXES]
    candidates += [root / "JPEGImages" / (xml_path.stem + s) for s in IMAGE_SUFFIXES]
    return next((c for c in candidates if c.is_file()), None)


def hands_from_boxes(
    objects: list[tuple[str, list[float]]], classes: ClassMap, width: int, height: int
) -> list[Hand]:
    """Label hands of (class name, [x0, y0, x1, y1] px) objects, clipped; empty boxes dropped."""
    hands = []
    for name, xyxy in objects:
        side = classes.side(name)
        if side is None:
            continue
        box = np.clip(np.asarray(xyxy, np.float32), 0, [width, height, width, height])
        if box[2] - box[0] < 1 or box[3] - box[1] < 1:
            continue
        hands.append(Hand(side, 1.0, box.astype(np.float32)))
    return hands


def load(root: Path, *, split: str, classes: str = DEFAULT) -> IndexedDataset:
    """The VOC-labelled images of `split` under `root` (see the module docstring)."""
    where = f"voc:{root}"
    classmap = ClassMap(classes, where)
    xml_dir = root / "Annotations" if (root / "Annotations").is_dir() else root
    xmls = sorted(xml_dir.rglob("*.xml"))
    items: list[tuple[Path, Path, list]] = []
    missing = 0
    for xml_path in xmls:
        filename, objects = _parse(xml_path)
        image = _image_for(xml_path, filename, root)
        if image is None:
            missing += 1
            continue
        for name, _ in objects:  # unmapped class: stop now, not mid-training
            classmap.side(name)
        items.append((xml_path, image, objects))
    if not items:
        raise HandposeError(
            f"{where}: no Pascal VOC .xml with its image found under {xml_dir}"
            + (f" ({missing} xml files whose image is missing)" if missing else "")
            + "; point voc: at the folder holding the .xml files (or Annotations/)"
        )
    folders = split_folders(root)
    if folders:  # Roboflow's VOC export: train/ valid/ test/ folders of xml + images
        wanted = set(SPLIT_FILES) if split == "all" else {split}
        index = np.array(
            [i for i, (x, _, _) in enumerate(items) if folders.get(x.relative_to(root).parts[0])
             in wanted], np.int64
        )  # fmt: skip
    else:
        lists = read_split_lists([root / "ImageSets" / "Main", root])
        index = split_indices([image.stem for _, image, _ in items], lists, split)

    def get(i: int) -> Sample:
        xml_path, image_path, objects = items[i]
        image = load_rgb(image_path)
        h, w = image.shape[:2]
        return Sample(
            image,
            hands_from_boxes(objects, classmap, w, h),
            None,
            "voc",
            image_path.relative_to(root).as_posix(),
            {"annotation": xml_path.relative_to(root).as_posix()},
        )

    ds = IndexedDataset(where, len(items), get)
    return Subset(ds, index, f"{where} ({split})")
