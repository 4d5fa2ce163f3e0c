"""Spec source `coco:FILE.json[?images=FOLDER]`: hand keypoints in COCO annotation files.

Two flavours are recognised from the annotations:
- COCO-WholeBody (Jin et al., ECCV 2020): person annotations with "lefthand_kpts" /
  "righthand_kpts" (63 values: 21 x (x, y, v)), "lefthand_box" / "righthand_box" ([x, y, w, h])
  and "lefthand_valid" / "righthand_valid"; each valid hand becomes a "left" / "right" label.
- plain COCO keypoints with 21 points per annotation ("keypoints", "bbox"), e.g. OneHand10K,
  CMU panoptic or RHD as converted by MMPose; handedness "hand" unless the annotation has
  "hand_type" / "handedness" "left" | "right".
Both use the standard 21-point order (wrist, thumb 1-4, index 1-4, ...). v = 2 visible, 1
labelled but occluded, 0 not labelled: visibility = (v == 2); unlabelled points are placed at
the box centre. Only 2D (no 3D joints or intrinsics). Images: FOLDER/<file_name>; FOLDER
defaults to the json's folder's sibling "images", else the json's folder. Only images with at
least one hand are kept unless option `empty=true`.
Splits: a json file is one split already: val / test are its held-out tails
(`common.holdout_indices`); write `?split=all` to use the whole file.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from handpose.errors import HandposeError
from handpose.hand import Hand
from models.data.handpose_format import load_rgb
from models.data.loaders.common import IndexedDataset, Subset, holdout_indices
from models.data.sample import Sample


def _hand(kpts, box_xywh, handedness: str, w: int, h: int) -> Hand | None:
    pts = np.asarray(kpts, np.float64).reshape(21, 3)
    labelled = pts[:, 2] > 0
    x, y, bw, bh = (float(v) for v in box_xywh)
    if bw <= 0 or bh <= 0:
        if not labelled.any():
            return None
        lo, hi = pts[labelled, :2].min(axis=0), pts[labelled, :2].max(axis=0)
        x, y, bw, bh = lo[0], lo[1], max(hi[0] - lo[0], 1.0), max(hi[1] - lo[1], 1.0)
    box = np.clip([x, y, x + bw, y + bh], 0, [w, h, w, h]).astype(np.float32)
    if box[2] <= box[0] or box[3] <= box[1]:
        return None
    if not labelled.any():
        return Hand(handedness, 1.0, box)
    uv = pts[:, :2].copy()
    uv[~labelled] = (box[:2] + box[2:]) / 2
    return Hand(handedness, 1.0, box, uv, (pts[:, 2] >= 2).astype(np.float32))


def _hands_of(ann: dict) -> list[tuple[list, list, str]]:
    """(kpts, box, handedness) of the hands of one annotation."""
    out = []
    if "lefthand_kpts" in ann or "righthand_kpts" in ann:
        for side in ("left", "right"):
            if ann.get(f"{side}hand_valid") and f"{side}hand_kpts" in ann:
                out.append(
                    (ann[f"{side}hand_kpts"], ann.get(f"{side}hand_box", [0, 0, 0, 0]), side)
                )
    elif len(ann.get("keypoints", [])) == 63:
        side = str(ann.get("hand_type", ann.get("handedness", "hand"))).lower()
        out.append(
            (
                ann["keypoints"],
                ann.get("bbox", [0, 0, 0, 0]),
                side if side in ("left", "right") else "hand",
            )
        )
    return out


def load(root: Path, *, split: str, images: str = "", empty: bool = False) -> IndexedDataset:
    """COCO hand samples of `split` (see the module docstring)."""
    if not root.is_file():
        raise HandposeError(f"coco: {root} is not a file; point coco: at the annotation .json")
    try:
        data = json.loads(root.read_text())
        image_info = {int(im["id"]): im for im in data["images"]}
        annotations = data["annotations"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise HandposeError(f"coco: {root} is not a COCO annotation file ({error})") from None
    if images:
        folder = Path(images).expanduser()
    elif (root.parent.parent / "images").is_dir():
        folder = root.parent.parent / "images"
    else:
        folder = root.parent
    hands_by_image: dict[int, list] = defaultdict(list)
    for ann in annotations:
        hands_by_image[int(ann["image_id"])] += _hands_of(ann)
    ids = sorted(i for i in image_info if empty or hands_by_image.get(i))

    def get(i: int) -> Sample:
        info = image_info[ids[i]]
        image = load_rgb(folder / info["file_name"])
        h, w = image.shape[:2]
        hands = [_hand(k, b, s, w, h) for k, b, s in hands_by_image.get(ids[i], [])]
        return Sample(
            image,
            [x for x in hands if x is not None],
            None,
            "coco",
            str(info["file_name"]),
            {"image_id": ids[i]},
        )

    ds = IndexedDataset(f"coco:{root}", len(ids), get)
    return Subset(ds, holdout_indices(len(ds), split), f"coco:{root} ({split})")
