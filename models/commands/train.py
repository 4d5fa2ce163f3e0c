"""`handpose train detector|pose --config FILE [--out RUN_DIR] [--resume] [--steps N]`.

Trains one network from a TOML config (models/configs/*.toml, format in
models.training.config), shows a progress bar with the loss terms, validates every
`train.val_every` steps (step 0 = the untrained network) and writes the run folder described in
models.training.run. Prints the first and the last validation side by side at the end.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from handpose.argtypes import positive_int
from handpose.errors import HandposeError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("network", choices=("detector", "pose"), help="which network to train")
    parser.add_argument("--config", required=True, help="TOML config (see models/configs/)")
    parser.add_argument("--out", help="run folder (default runs/<config name>)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--steps", type=positive_int, help="override train.steps")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from models.training.config import load_config

    overrides = {"train": {"steps": args.steps}} if args.steps else {}
    config = load_config(args.config, overrides)
    if config["task"] != args.network:
        raise HandposeError(
            f"{args.config} configures task {config['task']!r}, not {args.network!r}: "
            f"use `handpose train {config['task']} --config {args.config}`"
        )
    out = Path(args.out or Path("runs") / Path(args.config).stem)
    from models.training.loop import train

    parts = ["handpose", "train", args.network, "--config", args.config, "--out", str(out)]
    parts += ["--resume"] if args.resume else []
    parts += ["--steps", str(args.steps)] if args.steps else []
    command = " ".join(shlex.quote(a) for a in parts)
    state = train(config, out, resume=args.resume, command=command, progress=not args.no_progress)
    first, last = state.get("first"), state.get("last")
    metric = state["metric"]
    print(f"run folder: {out}")
    if first and last:
        skip = ("step", "val_time_s")
        keys = [k for k in last if k not in skip and not isinstance(last[k], list)]
        trained = f"trained (step {int(last['step'])})"
        print(f"{'metric':<16}{'untrained (step 0)':>20}{trained:>22}")
        for k in keys:
            print(f"{k:<16}{first.get(k, float('nan')):>20.4f}{last[k]:>22.4f}")
    print(f"best {metric} = {state['best_metric']:.4f} at step {state['best_step']}")
    return 0
