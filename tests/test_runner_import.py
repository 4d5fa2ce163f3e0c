"""An interpreter that is installed but does not load (a wheel built for a newer libstdc++, as
tflite-runtime 2.12.0 is on bullseye armhf) is named, not hidden behind "no interpreter"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"

GLIBCXX = "/lib/arm-linux-gnueabihf/libstdc++.so.6: version `GLIBCXX_3.4.29' not found"

PROBE = """
import sys
from handpose import runner
print(runner.RUNTIME)
print("|".join(runner.BROKEN))
try:
    runner.make_interpreter(sys.argv[1])
except runner.ModelFileError as error:
    print("ERROR", error)
"""


def _broken_package(root: Path, dotted: str) -> None:
    """A package whose interpreter module raises ImportError the way a bad wheel does."""
    parts = dotted.split(".")
    folder = root.joinpath(*parts[:-1])
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, len(parts)):
        (root.joinpath(*parts[:i]) / "__init__.py").touch()
    (folder / f"{parts[-1]}.py").write_text(f"raise ImportError({GLIBCXX!r})\n")


def _probe(tmp_path: Path, broken: list[str]) -> list[str]:
    shadow = tmp_path / "shadow"
    for dotted in broken:
        _broken_package(shadow, dotted)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shadow), str(APP)])}
    model = APP / "handpose" / "assets" / "models" / "default" / "pose.tflite"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(model)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines()


def test_a_broken_interpreter_is_skipped_and_named(tmp_path):
    runtime, broken, *rest = _probe(tmp_path, ["ai_edge_litert.interpreter"])
    assert runtime in ("tflite-runtime", "tensorflow")  # the next one that loads
    assert broken == f"ai-edge-litert: {GLIBCXX}"
    assert rest == []  # the model still loads with the fallback


def test_no_loading_interpreter_names_each_broken_one_and_the_fix(tmp_path):
    lines = _probe(
        tmp_path,
        [
            "ai_edge_litert.interpreter",
            "tflite_runtime.interpreter",
            "tensorflow.lite.python.interpreter",
        ],
    )
    assert lines[0] == "none"
    (error,) = [line for line in lines if line.startswith("ERROR")]
    assert "no TFLite interpreter loads: ai-edge-litert: " in error
    assert "tflite-runtime: " in error and "GLIBCXX_3.4.29" in error
    assert ".actdk/dependencies.json" in error
    assert "no TFLite interpreter installed" not in error
