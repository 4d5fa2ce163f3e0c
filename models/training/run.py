"""The run folder a training run writes, and `load_run` to rebuild its network.

RUN_DIR/
  config.json                  the full resolved config + "command" (the command line)
  checkpoints/last.weights.h5  weights after the latest completed step
  checkpoints/last.optimizer.npz  optimizer variables (Adam moments, iteration count)
  checkpoints/best.weights.h5  weights at the best validation metric
  state.json                   {"step", "best_metric", "best_step", "metric", "time_s"}
  metrics.csv / metrics.json   one row per validation (step 0 = untrained network)
  losses.csv                   training loss terms every `log_every` steps
  loss.png                     loss curves + validation metric; pck.png (pose)
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import keras

from handpose.errors import HandposeError

CONFIG_FILE = "config.json"
STATE_FILE = "state.json"
BEST_WEIGHTS = "checkpoints/best.weights.h5"
LAST_WEIGHTS = "checkpoints/last.weights.h5"
LAST_OPTIMIZER = "checkpoints/last.optimizer.npz"


def build_model(config: dict[str, Any]) -> keras.Model:
    """The network a resolved config describes (no weights loaded from the run)."""
    from models.networks.detector import build_detector
    from models.networks.pose import build_pose

    model = config["model"]
    weights = model.get("backbone_weights") or None
    if config["task"] == "detector":
        return build_detector(
            width=float(model["width"]),
            input_size=int(model["input_size"]),
            classes=tuple(model["classes"]),
            padding=model["padding"],
            backbone_weights=weights,
            head_bn=bool(model.get("head_bn", False)),
            channel_rule=model.get("channel_rule", "seed"),
        )
    return build_pose(
        width=float(model["width"]),
        input_size=int(model["input_size"]),
        padding=model["padding"],
        backbone_weights=weights,
        channel_rule=model.get("channel_rule", "seed"),
        side_head=model.get("side_head", False),
        grid_stride=int(model.get("grid_stride", 32)),
    )


def init_weights_path(init: str | Path) -> Path:
    """The weights file `[model] init` names: a `.weights.h5` file, or a run folder (its
    checkpoints/best.weights.h5, else checkpoints/last.weights.h5)."""
    path = Path(init).expanduser()
    if path.is_dir():
        for name in (BEST_WEIGHTS, LAST_WEIGHTS):
            if (path / name).is_file():
                return path / name
        raise HandposeError(
            f"model.init: {path} is a folder without {BEST_WEIGHTS}: name a training run "
            "folder that has a checkpoint, or a .weights.h5 file"
        )
    if not path.is_file():
        raise HandposeError(
            f"model.init: {path} does not exist: name a .weights.h5 file or a training run "
            "folder (`handpose train ... --out RUN_DIR`), or remove the key to start afresh"
        )
    if not path.name.endswith(".weights.h5"):
        raise HandposeError(
            f"model.init: {path} is not a .weights.h5 file (use RUN/checkpoints/"
            "best.weights.h5 or the run folder itself)"
        )
    return path


def load_init_weights(model: keras.Model, init: str | Path) -> Path:
    """Load the `[model] init` weights into a freshly built `model` (fine-tuning).

    Raises HandposeError naming the file when it is missing or belongs to another network
    (a different width, input size, class count or head layout). Returns the file loaded.
    """
    path = init_weights_path(init)
    try:
        model.load_weights(path)
    except (ValueError, KeyError, OSError) as error:
        text = str(error)
        shapes = re.search(r"variable\.shape=\S+ Received: value\.shape=\S+", text)
        layer = re.search(r"object <\w+ name=([\w/.-]+)", text)
        detail = (
            f"layer {layer.group(1) if layer else '?'}: {shapes.group(0).rstrip('.')}"
            if shapes
            else (text.strip().splitlines() or [type(error).__name__])[0][:200]
        )
        raise HandposeError(
            f"model.init: {path} does not fit this network ({detail}): its [model] width, "
            "classes, padding and head_bn must be those of the run it comes from"
        ) from error
    return path


def load_init_by_name(model: keras.Model, init: str | Path) -> tuple[Path, int, list[str]]:
    """Fine-tune a network that differs from the run it starts from (a new head): the init
    run's network is rebuilt from its config.json and its weights loaded, then every layer of
    `model` with a layer of the same name and shapes takes its weights. Returns (weights file,
    layers copied, names of `model`'s weighted layers left as initialised)."""
    path = init_weights_path(init)
    run_dir = path.parent.parent
    if not (run_dir / CONFIG_FILE).is_file():
        raise HandposeError(
            f"model.init_by_name: {path} is not inside a training run folder (no "
            f"{run_dir / CONFIG_FILE}): name the run folder"
        )
    config = read_config(run_dir)
    source = build_model(dict(config, model=dict(config["model"], backbone_weights="")))
    source.load_weights(path)
    by_name = {layer.name: layer for layer in source.layers if layer.weights}
    copied, fresh = 0, []
    for layer in model.layers:
        if not layer.weights:
            continue
        other = by_name.get(layer.name)
        theirs = other.get_weights() if other is not None else []
        mine = layer.get_weights()
        if len(theirs) == len(mine) and all(
            a.shape == b.shape for a, b in zip(theirs, mine, strict=True)
        ):
            layer.set_weights(theirs)
            copied += 1
        else:
            fresh.append(layer.name)
    if copied == 0:
        raise HandposeError(f"model.init_by_name: no layer of {path} fits this network")
    return path, copied, fresh


def default_box_config(config: dict[str, Any]) -> Any:
    """The detector's `handpose.codec.boxes.DefaultBoxConfig` for a resolved config.

    input_size and smin from config["model"], grids from the network (`source_grids`); the
    conversion writes `.to_dict()` of it into the model metadata.
    """
    from handpose.codec.boxes import DefaultBoxConfig
    from models.networks.detector import source_grids

    size = int(config["model"]["input_size"])
    return DefaultBoxConfig(
        input_size=size,
        grids=tuple(source_grids(size)),
        smin=float(config["model"].get("smin", 0.025)),
    )


def read_config(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise HandposeError(
            f"{run_dir} is not a training run folder (no {CONFIG_FILE}); "
            "train one with `handpose train detector|pose --config FILE --out RUN_DIR`"
        )
    return json.loads(path.read_text())


def load_run(run_dir: str | Path, which: str = "best") -> tuple[keras.Model, dict[str, Any]]:
    """Rebuild the network of a run folder and load its weights.

    Args:
        run_dir: folder written by `handpose train`.
        which: "best" (falls back to "last" when there is no best) or "last".
    Returns: (keras.Model with weights, resolved config dict; config["task"] is
    "detector" or "pose", config["model"] has width, input_size, classes, padding).
    """
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    candidates = [BEST_WEIGHTS, LAST_WEIGHTS] if which == "best" else [LAST_WEIGHTS]
    for name in candidates:
        path = run_dir / name
        if path.is_file():
            config = dict(config)
            config["model"] = dict(config["model"], backbone_weights="")
            model = build_model(config)
            model.load_weights(path)
            return model, config
    raise HandposeError(
        f"{run_dir} has no checkpoint ({' or '.join(candidates)}); "
        f"train with `handpose train {config.get('task', 'detector')} "
        f"--config FILE --out {run_dir}`"
    )
