"""Training configuration: TOML files (tomllib) merged over defaults, validated once.

A config file has four tables (every key optional, defaults below):

    task = "detector"                 # or "pose"
    [data]   train = "synthetic"      # any loader spec of models.data.spec (`+`, weights ...)
             val = "synthetic"        # validation spec (its "val" split)
             cache = 512              # keep up to this many decoded training samples in memory
             mirror_left = true       # pose: mirror left hands' crops (false: the network
                                      # sees every hand as it is; use with side_head)
             occluded = "train"       # pose: also train keypoints labelled occluded (their
                                      # positions are exact in rendered data); "ignore" for
                                      # sources whose occluded keypoints have no position
    [model]  width = 0.35; input_size = 224; classes = ["left", "right"]; padding = "keras"
             head_bn = false          # detector: the seed's head layout (for imported weights)
             smin = 0.025             # detector: smallest default box side / input side (seed)
             backbone_weights = ""    # "imagenet" or a local .h5 / .keras / .npz file
                                      # (layers by name, models.networks.weights)
             channel_rule = "seed"    # or "keras": the ImageNet weights' channel layout
             side_head = false        # pose: also predict p(right hand) ("side" output):
                                      # true / "pool" (global average) or "spatial"
             grid_stride = 32         # pose: 32 (7x7 grid at 224) or 16 (14x14)
             init = ""                # fine-tune: start from these weights (a .weights.h5
                                      # file, or a run folder: RUN/checkpoints/best.weights.h5)
                                      # of the same network; ignored by --resume
             init_by_name = false     # init from a run whose network differs (a new head):
                                      # layers copied by name where shapes agree
    [train]  batch = 16; steps = 4000; lr = 1e-3; schedule = "cosine" | "constant"
             warmup = 100; weight_decay = 0.0; val_every = 500; val_samples = 200; seed = 0
             log_every = 10
             side_weight = 1.0        # pose: weight of the side head's loss
             rendered_sides = true    # pose: rendered hands teach the side head too (false:
                                      # real photos only; MediaPipe itself gets 67 % of the
                                      # renderer's sides right, 100 % of real ones)
             match_iou = 0.5          # detector: IoU for a default box to be a positive
    [augment] flip = true; rotate_deg = 30; scale = [1.0, 1.5]; shift = 0.15
              color = 0.2              # brightness/contrast/saturation jitter amplitude
              crop_scale = [0.85, 1.3]  # pose: side = max(box w, h) * 1.2 (app) * U(crop_scale)
              zoom_out_prob = 0.0      # detector: probability of shrinking the image by
              zoom_out = [0.4, 0.9]    #   U(zoom_out) onto a hand-free background
              paste_prob = 0.0         # detector: probability of pasting 1-2 hands of other
              paste_scale = [0.08, 0.3]  #   samples, longer side U(paste_scale) x input size
              negative_prob = 0.0      # detector: probability of a hard negative instead: a
                                       #   hand-free square of a labelled photo (faces, arms)
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

from handpose.errors import HandposeError

TASKS: tuple[str, ...] = ("detector", "pose")

DEFAULTS: dict[str, Any] = {
    "task": "detector",
    "data": {
        "train": "synthetic",
        "val": "synthetic",
        "cache": 512,
        "occluded": "train",
        "mirror_left": True,
    },
    "model": {
        "width": 0.35,
        "input_size": 224,
        "classes": ["left", "right"],
        "padding": "keras",
        "head_bn": False,
        "smin": 0.025,
        "backbone_weights": "",
        "channel_rule": "seed",
        "side_head": False,
        "grid_stride": 32,
        "init": "",
        "init_by_name": False,
    },
    "train": {
        "batch": 16,
        "steps": 4000,
        "lr": 1e-3,
        "schedule": "cosine",
        "warmup": 100,
        "weight_decay": 0.0,
        "val_every": 500,
        "val_samples": 200,
        "seed": 0,
        "log_every": 10,
        "side_weight": 1.0,
        "rendered_sides": True,
        "match_iou": 0.5,
    },
    "augment": {
        "flip": True,
        "rotate_deg": 30.0,
        "scale": [1.0, 1.5],
        "shift": 0.15,
        "color": 0.2,
        "crop_scale": [0.85, 1.3],
        "zoom_out_prob": 0.0,
        "zoom_out": [0.4, 0.9],
        "paste_prob": 0.0,
        "paste_scale": [0.08, 0.3],
        "negative_prob": 0.0,
    },
}


def _merge(base: dict[str, Any], override: dict[str, Any], where: str) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key not in base:
            raise HandposeError(f"{where}: unknown key {key!r} (known: {', '.join(base)})")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise HandposeError(f"{where}: [{key}] must be a table")
            out[key] = _merge(base[key], value, f"{where} [{key}]")
        else:
            out[key] = value
    return out


def resolve_config(raw: dict[str, Any], where: str = "config") -> dict[str, Any]:
    """Defaults merged with `raw`, checked; raises HandposeError naming the bad key."""
    task = raw.get("task", DEFAULTS["task"])
    defaults = copy.deepcopy(DEFAULTS)
    if task == "pose":
        defaults["model"]["classes"] = ["right"]
        defaults["augment"]["rotate_deg"] = 90.0
    config = _merge(defaults, raw, where)
    if config["task"] not in TASKS:
        raise HandposeError(f"{where}: task must be one of {TASKS}, got {config['task']!r}")
    model, train = config["model"], config["train"]
    if model["padding"] not in ("keras", "symmetric"):
        raise HandposeError(f"{where}: model.padding must be 'keras' or 'symmetric'")
    if not 0.1 <= float(model["width"]) <= 2.0:
        raise HandposeError(f"{where}: model.width {model['width']} is outside 0.1..2.0")
    if int(model["input_size"]) < 64 or int(model["input_size"]) % 32:
        raise HandposeError(f"{where}: model.input_size must be a multiple of 32, at least 64")
    for key in ("batch", "steps", "val_every", "val_samples", "log_every"):
        if int(train[key]) < 1:
            raise HandposeError(f"{where}: train.{key} must be >= 1, got {train[key]}")
    if config["data"]["occluded"] not in ("train", "ignore"):
        raise HandposeError(f"{where}: data.occluded must be 'train' or 'ignore'")
    if train["schedule"] not in ("cosine", "constant"):
        raise HandposeError(f"{where}: train.schedule must be 'cosine' or 'constant'")
    if model["channel_rule"] not in ("seed", "keras"):
        raise HandposeError(f"{where}: model.channel_rule must be 'seed' or 'keras'")
    if model["grid_stride"] not in (32, 16):
        raise HandposeError(f"{where}: model.grid_stride must be 32 or 16")
    if model["side_head"] not in (False, True, "pool", "spatial"):
        raise HandposeError(f"{where}: model.side_head must be false, true, 'pool' or 'spatial'")
    if model["side_head"] and config["task"] != "pose":
        raise HandposeError(f"{where}: model.side_head is a pose option (the detector has sides)")
    if not isinstance(model["init"], str):
        raise HandposeError(f'{where}: model.init must be a path string (or "" for none)')
    augment = config["augment"]
    for key in ("zoom_out_prob", "paste_prob", "negative_prob"):
        if not isinstance(augment[key], int | float) or not 0.0 <= float(augment[key]) <= 1.0:
            raise HandposeError(f"{where}: augment.{key} must be a probability 0..1")
    for key, hint in (("zoom_out", "[0.4, 0.9]"), ("paste_scale", "[0.08, 0.3]")):
        value = augment[key]
        if (
            not isinstance(value, list | tuple)
            or len(value) != 2
            or not all(isinstance(v, int | float) for v in value)
            or not 0.0 < float(value[0]) <= float(value[1]) <= 1.0
        ):
            raise HandposeError(
                f"{where}: augment.{key} must be [lo, hi] with 0 < lo <= hi <= 1 "
                f"(e.g. {hint}), got {value!r}"
            )
    return config


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read a TOML config file, apply `overrides` ({"train": {"steps": 10}}), resolve."""
    path = Path(path)
    if not path.is_file():
        raise HandposeError(
            f"config file {path} does not exist (examples: models/configs/detector.toml)"
        )
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise HandposeError(f"config file {path} is not valid TOML: {error}") from error
    for table, values in (overrides or {}).items():
        raw.setdefault(table, {}).update(values)
    return resolve_config(raw, str(path))
