"""Packaging: each target's interpreter and numpy, and a wheel that ships every package.

setup.py's runtime requirements choose the TFLite interpreter by environment markers (ai-edge-litert
where it has wheels, tflite-runtime elsewhere); `.actdk/dependencies.json` lists what actdk
installs on each Actcast target, which must be one of those. The slow test builds the wheel, lists
it and imports every module from an install of it (not from the source tree).
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
#: import name -> folder (setup.py's package_dir)
PACKAGE_DIRS = {"handpose": ROOT / "app" / "handpose", "models": ROOT / "models"}
PACKAGE_DIRS["conversion"] = ROOT / "conversion"


def setup_constants() -> dict:
    """setup.py's module-level constants (RUNTIME, TRAIN ...), without calling setup()."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    tree.body = [node for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))]
    namespace: dict = {}
    exec(compile(tree, "setup.py", "exec"), namespace)
    return namespace


def environment(python: str, machine: str, system: str = "Linux") -> dict[str, str]:
    env = default_environment()
    env.update(
        python_version=python,
        python_full_version=f"{python}.0",
        platform_machine=machine,
        platform_system=system,
        sys_platform={"Linux": "linux", "Darwin": "darwin"}[system],
    )
    return env


def runtime_for(env: dict[str, str]) -> dict[str, str]:
    """package name -> its specifiers (joined over all lines that apply) for one environment."""
    out: dict[str, list[str]] = {}
    for line in setup_constants()["RUNTIME"]:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(env):
            out.setdefault(req.name.lower(), []).append(str(req.specifier))
    return {name: ",".join(s for s in specs if s) for name, specs in out.items()}


#: (what, python, machine, system) -> (interpreter package, its specifier, numpy below 2?)
TARGETS = {
    ("bullseye armhf", "3.9", "armv7l", "Linux"): ("tflite-runtime", "==2.11.0", True),
    ("bullseye arm64", "3.9", "aarch64", "Linux"): ("tflite-runtime", "==2.11.0", True),
    ("bookworm arm64", "3.11", "aarch64", "Linux"): ("ai-edge-litert", ">=2.1,<3", False),
    ("bookworm armhf", "3.11", "armv7l", "Linux"): ("tflite-runtime", "==2.14.0", True),
    ("dev x86_64 3.11", "3.11", "x86_64", "Linux"): ("ai-edge-litert", ">=2.1,<3", False),
    ("dev x86_64 3.9", "3.9", "x86_64", "Linux"): ("tflite-runtime", "==2.11.0", True),
    ("macOS arm64", "3.12", "arm64", "Darwin"): ("ai-edge-litert", ">=2.1,<3", False),
}


@pytest.mark.parametrize("target", TARGETS, ids=[t[0] for t in TARGETS])
def test_each_target_gets_one_interpreter_and_a_numpy_it_takes(target):
    interpreter, specifier, numpy_below_2 = TARGETS[target]
    runtime = runtime_for(environment(*target[1:]))
    interpreters = {"ai-edge-litert", "tflite-runtime"} & set(runtime)
    assert interpreters == {interpreter}
    assert set(runtime[interpreter].split(",")) == set(specifier.split(","))
    numpy = runtime["numpy"]
    assert ">=1.19.5" in numpy  # bullseye's apt numpy
    assert ("<2" in numpy) == numpy_below_2
    assert ">=8.1" in runtime["pillow"]  # bullseye's apt Pillow 8.1.2


def test_actdk_installs_the_interpreter_setup_py_chooses_for_each_target():
    """bullseye is armhf with Python 3.9, bookworm arm64 with Python 3.11 (ActcastOS 3 / 4)."""
    deps = json.loads((ROOT / ".actdk/dependencies.json").read_text())
    for target, env in {
        "raspberrypi-bullseye": environment("3.9", "armv7l"),
        "raspberrypi-bookworm": environment("3.11", "aarch64"),
    }.items():
        runtime = runtime_for(env)
        pinned = [Requirement(p) for p in deps["pip"] + deps[target]["pip"]]
        chosen = [r for r in pinned if r.name in ("ai-edge-litert", "tflite-runtime")]
        assert len(chosen) == 1, (target, pinned)
        (version,) = [s.version for s in chosen[0].specifier if s.operator == "=="]
        wanted = Requirement(f"{chosen[0].name}{runtime[chosen[0].name]}")
        assert wanted.specifier.contains(version), (target, version, wanted)
        actfw = next(r for r in pinned if r.name == "actfw-core")
        assert str(actfw.specifier) == runtime["actfw-core"]


def package_modules() -> dict[str, list[str]]:
    """Every package folder with .py files in the source tree -> its module names."""
    out: dict[str, list[str]] = {}
    for name, folder in PACKAGE_DIRS.items():
        for path in sorted(folder.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            package = ".".join([name, *path.parent.relative_to(folder).parts])
            out.setdefault(package, []).append(path.stem)
    return out


def test_every_package_folder_has_an_init():
    """A folder without __init__.py is left out of a (non-editable) wheel by find_packages."""
    for package in package_modules():
        assert "__init__" in package_modules()[package], f"{package} has no __init__.py"


IMPORT_ALL = """
import importlib, sys
target, names = sys.argv[1], sys.argv[2:]
for name in names:
    module = importlib.import_module(name)
    if not module.__file__.startswith(target):
        sys.exit(f"{name} imported from {module.__file__}, not from the wheel's install")
print(len(names), "modules")
"""


@pytest.mark.slow
def test_the_wheel_ships_every_package_and_imports_from_its_install(tmp_path):
    source = tmp_path / "source"  # a copy, so that the build leaves nothing in the work tree
    source.mkdir()
    for name in ("setup.py", "pyproject.toml"):
        shutil.copy(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for folder in ("app", "models", "conversion"):
        shutil.copytree(ROOT / folder, source / folder, ignore=ignore)
    wheels = tmp_path / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
    done = subprocess.run(
        [*build, "-w", str(wheels), str(source)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = wheels.glob("handpose-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = []
    for package, stems in package_modules().items():
        folder = package.replace(".", "/")
        for stem in stems:
            assert f"{folder}/{stem}.py" in names, f"{folder}/{stem}.py not in {wheel.name}"
            modules.append(package if stem == "__init__" else f"{package}.{stem}")
    for asset in ("sample_clip.mp4", "models/default/detector.tflite", "models/default/pose.json"):
        assert f"handpose/assets/{asset}" in names

    target = tmp_path / "installed"
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile"]
    done = subprocess.run(
        [*install, "--target", str(target), str(wheel)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    env = {**os.environ, "PYTHONPATH": str(target)}
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, str(target), *modules],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # not the repository: nothing is found there
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[0] == str(len(modules))
    console = target / "bin" / "handpose"
    assert console.is_file()  # the console script
