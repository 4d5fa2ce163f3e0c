"""Dataset specs: one string names the data a command trains, evaluates or calibrates on.

Grammar (whitespace around `+` is ignored):

    SPEC    := PART ( "+" PART )*
    PART    := NAME [ ":" ARG ] [ "*" WEIGHT ]
    ARG     := PATH [ "?" OPTIONS ]     for sources read from disk (every source but synthetic)
             | OPTIONS                  for synthetic (no path)
    OPTIONS := KEY "=" VALUE ( ("&" | ",") KEY "=" VALUE )*
    NAME    := synthetic | dir | rhd | freihand | stb | ganerated | synthhands | mhp | fhad
             | cmu | coco | voc | yolo | folders
    WEIGHT  := a positive number

`synthetic?seed=7` is accepted as a spelling of `synthetic:seed=7`. Examples:

    synthetic                               10000 rendered scenes (seed 0)
    synthetic:count=5000&seed=7&size=256
    dir:/data/mine                          a folder in the project format (dataset.json)
    rhd:/data/RHD_published_v2
    coco:/data/coco/annotations/coco_wholebody_train_v1.0.json?images=/data/coco/train2017
    synthetic*3+rhd:/data/RHD_published_v2  every synthetic item 3x per epoch, RHD once
    voc:/data/hands?classes=*:hand          labelImg boxes, every class a hand (sides unknown)
    yolo:/data/export?classes=lh:left;rh:right;*:drop

Options every source accepts: `limit=N` (the first N items of the split) and `split=NAME`
(override the split asked for: train | val | test | all). The other options belong to the
source (see `SOURCES` and each loader's `load`, whose keyword arguments are the options).
A path may not contain `+` or `?`, nor end in `*<number>`; option values may not contain `&`,
`,` or `+`.

Splits: `open_dataset(split=...)` with "train" | "val" | "test" maps to the dataset's own
official split where it has one (RHD training/evaluation, FreiHAND training/evaluation, ...;
where a dataset has a single held-out set, val and test both map to it: RHD, FreiHAND, STB
B1, CMU manual_test, and the seed system's held-out folders of GANerated, MHP, F-PHAB);
datasets without one hold out their last 5 % as test and the 5 % before as val
(`loaders.common.holdout_indices`). For synthetic, val and test are rendered from seeds
seed + 1000 and seed + 2000 with count // 10 items.

Mixing: several parts (or one part with a weight) give a `MixedDataset`: part k contributes
round(w_k * n_k) items (w_k >= 1 repeats the part, w_k < 1 takes a seeded subset), interleaved
evenly (item j of part k sits at "time" (j + 0.5) / m_k, merged by time), so every prefix of
the mix holds the parts in proportion.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from handpose.errors import HandposeError
from models.data.loaders.common import IndexedDataset, Subset, check_split
from models.data.sample import Sample

SPLITS = ("train", "val", "test")

#: source name -> (loader module under models.data.loaders, what the path is)
SOURCES: dict[str, tuple[str, str]] = {
    "synthetic": ("synthetic", ""),
    "dir": ("handpose_dir", "a folder in the project format (holding dataset.json)"),
    "rhd": ("rhd", "RHD_published_v2 (holding training/ and evaluation/)"),
    "freihand": ("freihand", "FreiHAND_pub_v2 (holding training_xyz.json and rgb/)"),
    "stb": ("stb", "the STB folder (holding images/ and labels/)"),
    "ganerated": ("ganerated", "GANeratedHands_Release (holding data/)"),
    "synthhands": ("synthhands", "SynthHands_Release (holding female_noobject/ ...)"),
    "mhp": ("mhp", "the multiview hand pose folder (holding annotated_frames/ and calibrations/)"),
    "fhad": ("fhad", "F-PHAB (holding Video_files/ and Hand_pose_annotation_v1/)"),
    "cmu": ("cmu", "hand_labels, hand_labels_synth or hand143_panopticdb"),
    "coco": ("coco", "a COCO keypoint annotation .json (option images=FOLDER)"),
    "voc": ("voc", "a folder of Pascal VOC .xml files (labelImg) or a VOC tree (Annotations/)"),
    "yolo": ("yolo", "a YOLO txt export (train/images + train/labels, ... or images/ + labels/)"),
    "folders": ("folders", "a folder of class folders of images (no boxes; for the teacher)"),
}

_WEIGHT = re.compile(r"\*\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*$")


@dataclass
class SpecPart:
    """One parsed part of a spec: `name[:path][?options][*weight]`."""

    text: str
    name: str
    path: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    weight: float | None = None


def _parse_options(text: str, part: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for item in filter(None, re.split(r"[&,]", text)):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise HandposeError(
                f"data spec part {part!r}: option {item!r} must be KEY=VALUE "
                "(options are joined by '&', e.g. synthetic:count=5000&seed=7)"
            )
        options[key.strip()] = value.strip()
    return options


def parse_spec(spec: str) -> list[SpecPart]:
    """Split a spec into its parts (syntax only; sources are checked by `open_dataset`)."""
    if not isinstance(spec, str) or not spec.strip():
        raise HandposeError("data spec is empty; give e.g. 'synthetic' or 'dir:/data/mine'")
    parts = []
    for raw in spec.split("+"):
        text = raw.strip()
        if not text:
            raise HandposeError(f"data spec {spec!r} has an empty part (two '+' in a row?)")
        weight = None
        m = _WEIGHT.search(text)
        if m:
            weight = float(m.group(1))
            text = text[: m.start()].rstrip()
            if weight <= 0:
                raise HandposeError(f"data spec part {raw.strip()!r}: weight must be positive")
        head, sep, arg = text.partition(":")
        name, qsep, query = head.partition("?")
        name = name.strip().lower()
        path: str | None = None
        options: dict[str, str] = {}
        if qsep:  # name?options (no path)
            options.update(_parse_options(query, text))
            if sep:
                raise HandposeError(
                    f"data spec part {text!r}: write the path before the options, "
                    "e.g. rhd:/data/RHD_published_v2?limit=100"
                )
        elif sep:
            if SOURCES.get(name, ("", "x"))[1] == "":  # a source without a path
                options.update(_parse_options(arg, text))
            else:
                p, _, q = arg.partition("?")
                path = p.strip() or None
                options.update(_parse_options(q, text))
        parts.append(SpecPart(raw.strip(), name, path, options, weight))
    return parts


def _open_part(part: SpecPart, split: str, seed: int, task: str) -> Sequence[Sample]:
    if part.name not in SOURCES:
        raise HandposeError(
            f"data spec part {part.text!r}: unknown source {part.name!r}; "
            f"use one of {', '.join(SOURCES)} (see models/data/spec.py)"
        )
    module_name, path_text = SOURCES[part.name]
    options = dict(part.options)
    limit = options.pop("limit", None)
    split = check_split(options.pop("split", split), part.text)
    kwargs: dict[str, Any] = {"split": split}
    if path_text:
        if part.path is None:
            raise HandposeError(
                f"data spec part {part.text!r}: {part.name} needs a path: "
                f"{part.name}:PATH with PATH = {path_text}"
            )
        root = Path(part.path).expanduser()
        if not root.exists():
            raise HandposeError(
                f"data spec part {part.text!r}: {root} does not exist; point {part.name}: at "
                f"{path_text}"
            )
        kwargs["root"] = root
    else:
        kwargs.update(seed=seed, task=task)
        if "seed" in options:  # synthetic:seed=7 overrides open_dataset's seed
            try:
                kwargs["seed"] = int(options.pop("seed"))
            except ValueError:
                raise HandposeError(
                    f"data spec part {part.text!r}: seed must be an integer"
                ) from None
    module = importlib.import_module(f"models.data.loaders.{module_name}")
    load: Callable[..., Sequence[Sample]] = module.load
    accepted = [
        p.name
        for p in inspect.signature(load).parameters.values()
        if p.kind == p.KEYWORD_ONLY and p.name not in kwargs
    ]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise HandposeError(
            f"data spec part {part.text!r}: unknown option(s) {unknown} for {part.name}; "
            f"it accepts {sorted(accepted) + ['limit', 'split']}"
        )
    dataset = load(**kwargs, **_typed_options(load, options, part.text))
    if limit is not None:
        try:
            n = int(limit)
        except ValueError:
            raise HandposeError(f"data spec part {part.text!r}: limit must be an integer") from None
        dataset = Subset(dataset, range(min(max(n, 0), len(dataset))), f"{dataset.name}[:{n}]")
    return dataset


def _typed_options(load: Callable[..., Any], options: dict[str, str], part: str) -> dict:
    """Convert option strings to the loader's annotated/default types (int, float, bool, str)."""
    params = inspect.signature(load).parameters
    out: dict[str, Any] = {}
    for key, value in options.items():
        default = params[key].default
        kind = type(default) if default is not None and default is not inspect._empty else str
        try:
            if kind is bool:
                if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError(value)
                out[key] = value.lower() in ("1", "true", "yes")
            elif kind in (int, float):
                out[key] = kind(value)
            else:
                out[key] = value
        except ValueError:
            raise HandposeError(
                f"data spec part {part!r}: option {key}={value!r} must be {kind.__name__}"
            ) from None
    return out


class MixedDataset(IndexedDataset):
    """Several datasets interleaved by weights (see the module docstring for the formula).

    Args:
        datasets: the parts; weights: one positive weight per part; seed: picks the subsets and
            the order of items within each part.
    """

    def __init__(self, datasets: Sequence[Sequence[Sample]], weights: Sequence[float], seed: int):
        self.datasets = list(datasets)
        self.weights = [float(w) for w in weights]
        times, which, items = [], [], []
        for k, (ds, w) in enumerate(zip(self.datasets, self.weights, strict=True)):
            n = len(ds)
            m = int(round(w * n))
            if n == 0 or m == 0:
                continue
            perm = np.random.default_rng([seed, k]).permutation(n)
            j = np.arange(m)
            times.append((j + 0.5) / m)
            which.append(np.full(m, k))
            items.append(perm[j % n])
        if times:
            t = np.concatenate(times)
            order = np.argsort(t, kind="stable")
            self.part = np.concatenate(which)[order]
            self.item = np.concatenate(items)[order]
        else:
            self.part = self.item = np.zeros(0, np.int64)
        name = "+".join(
            f"{getattr(d, 'name', '?')}*{w:g}"
            for d, w in zip(self.datasets, self.weights, strict=True)
        )
        super().__init__(name, len(self.part), self._get)

    def _get(self, i: int) -> Sample:
        return self.datasets[int(self.part[i])][int(self.item[i])]


def open_dataset(
    spec: str, *, split: str = "train", seed: int = 0, task: str = "detection"
) -> Sequence[Sample]:
    """The samples a spec names, for one split.

    Args:
        spec: see the module docstring.
        split: "train", "val", "test" (the dataset's own split where it has one) or "all".
        seed: seed of the synthetic renderer and of mixing.
        task: "detection" or "pose" (the synthetic renderer draws scenes or one-hand crops;
            real datasets return full images either way).

    Returns:
        a sequence of `Sample` with a `.name`.
    """
    check_split(split, "open_dataset")
    if task not in ("detection", "pose"):
        raise HandposeError(f"open_dataset: task must be 'detection' or 'pose', got {task!r}")
    parts = parse_spec(spec)
    datasets = [_open_part(p, split, seed, task) for p in parts]
    if len(parts) == 1 and parts[0].weight is None:
        return datasets[0]
    weights = [1.0 if p.weight is None else p.weight for p in parts]
    return MixedDataset(datasets, weights, seed)
