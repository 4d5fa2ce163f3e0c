"""`handpose`: the one command line. Each subcommand lives in its own module.

A subcommand module defines `add_arguments(parser)` and `main(args) -> int`. Modules are imported
only when their subcommand runs, so `handpose run` never imports TensorFlow. Subcommands whose
module or extra is not installed (for example `train` without the `train` extra) are not listed;
run anyway, they say in one line which extra to install (exit 2).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys
from collections.abc import Sequence

from handpose import __version__
from handpose.errors import HandposeError

#: subcommand -> (module, one-line help); the order is the order of `handpose --help`
COMMANDS: dict[str, tuple[str, str]] = {
    "run": (
        "handpose.commands.run",
        "run the app pipeline on a camera, a video, images or the sample clip",
    ),
    "predict": (
        "handpose.commands.predict",
        "detect hands and their pose in still images, write JSON",
    ),
    "evaluate": (
        "models.commands.evaluate",
        "score predictions or model sets against labels (AP, PCK)",
    ),
    "bench": ("handpose.commands.bench", "measure pipeline speed and memory per model set"),
    "data": (
        "models.commands.data",
        "render synthetic hands, preview datasets, label photos with a teacher",
    ),
    "train": ("models.commands.train", "train the detector or the pose network"),
    "convert": ("conversion.commands", "convert trained networks to TFLite, verify, benchmark"),
}


#: subcommand -> the extra it needs beyond the runtime
EXTRA_OF: dict[str, str] = {
    "evaluate": "train",
    "data": "train",
    "train": "train",
    "convert": "train",
}
#: extra -> top-level modules that show it is installed (looked up, never imported here)
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "train": ("tensorflow", "keras", "tqdm", "matplotlib", "skimage"),
}


def _found(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ModuleNotFoundError, ValueError):
        return False


def missing_extra(command: str) -> str | None:
    """The extra `command` needs when it is not installed, else None."""
    extra = EXTRA_OF.get(command)
    if extra is None or all(_found(m) for m in EXTRA_MODULES[extra]):
        return None
    return extra


def installed(command: str) -> bool:
    """`command`'s module and the extra it needs are installed (it is listed in --help)."""
    return missing_extra(command) is None and _found(COMMANDS[command][0])


def _extra_error(command: str, extra: str) -> int:
    print(
        f'handpose {command}: needs the `{extra}` extra: pip install "handpose[{extra}]"',
        file=sys.stderr,
    )
    return 2


def _extra_owning(error: ModuleNotFoundError) -> str | None:
    """The extra that provides the module `error` could not find (None: not an extra's)."""
    top = (error.name or "").split(".")[0]
    return next((extra for extra, mods in EXTRA_MODULES.items() if top in mods), None)


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(
        prog="handpose",
        description="Real-time 3D hand pose for Raspberry Pi cameras (Actcast app).",
    )
    parser.add_argument("--version", action="version", version=f"handpose {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers = {}
    for name, (_, help_text) in COMMANDS.items():
        if installed(name):
            subparsers[name] = sub.add_parser(name, help=help_text, description=help_text)
    return parser, subparsers


def main(argv: Sequence[str] | None = None) -> int:
    parser, subparsers = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # Only the chosen subcommand's module is imported (keeps `run` free of TensorFlow).
    chosen = next((a for a in argv if not a.startswith("-")), None)
    extra = missing_extra(chosen) if chosen in COMMANDS else None
    if extra is not None:
        return _extra_error(chosen, extra)
    if chosen in subparsers:
        try:
            module = importlib.import_module(COMMANDS[chosen][0])
        except ModuleNotFoundError as error:
            extra = _extra_owning(error)
            if extra is None:
                raise
            return _extra_error(chosen, extra)
        module.add_arguments(subparsers[chosen])
        subparsers[chosen].set_defaults(_module=module)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args._module.main(args) or 0)
    except ModuleNotFoundError as error:
        extra = _extra_owning(error)
        if extra is None:
            raise
        return _extra_error(args.command, extra)
    except HandposeError as error:
        print(f"handpose {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"handpose {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
