"""`handpose convert ACTION ...`: one action per module (add_arguments / main).

    handpose convert keras  --detector RUN --pose RUN --out DIR [--precision ...]  (keras_convert)
    handpose convert verify DIR --data SPEC [--samples N]                          (verify)
    handpose convert bench  DIR [--threads 1 2 4] [--runs N]                       (bench)
    handpose convert chainer --detector DIR --pose DIR --out DIR [--precision ...] (chainer_import)

Importers of other model sources (`chainer`, `mediapipe`) register here by adding a line to
`ACTIONS`; an action whose module is not installed is not listed.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util

#: action -> (module with add_arguments/main, one-line help)
ACTIONS: dict[str, tuple[str, str]] = {
    "keras": ("conversion.keras_convert", "convert training runs to int8/fp16/fp32 TFLite"),
    "verify": ("conversion.verify", "compare TFLite models with the float network on data"),
    "bench": ("conversion.bench", "latency per model, precision and thread count"),
    "chainer": ("conversion.chainer_import", "import the seed's Chainer weights"),
    "mediapipe": ("conversion.mediapipe_import", "import MediaPipe hand models"),
}


def _available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, (module_name, help_text) in ACTIONS.items():
        if not _available(module_name):
            continue
        action = sub.add_parser(name, help=help_text, description=help_text)
        module = importlib.import_module(module_name)
        module.add_arguments(action)
        action.set_defaults(_action=module)


def main(args: argparse.Namespace) -> int:
    return int(args._action.main(args) or 0)
