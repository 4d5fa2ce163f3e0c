"""The product's ground: command line, runtime without TensorFlow, Actcast files, README vs CI."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from handpose.cli import COMMANDS, installed, main

ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_every_installed_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: handpose" in out
    for name in COMMANDS:
        assert (re.search(rf"^\s+{name}\s", out, re.M) is not None) == installed(name), name


RUNTIME_ONLY = """
import sys
for name in sys.argv[1].split():
    sys.modules[name] = None  # as if not installed: find_spec None, import fails
from handpose.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _runtime_only(*argv: str, blocked: str = "tensorflow keras") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", RUNTIME_ONLY, blocked, *argv], capture_output=True, text=True
    )


@pytest.mark.parametrize("blocked", ["tensorflow keras", "skimage"])
def test_without_the_train_extra_help_lists_only_the_runtime_commands(blocked):
    done = _runtime_only("--help", blocked=blocked)
    assert done.returncode == 0, done.stderr
    listed = set(re.findall(r"^    (\w+)\s", done.stdout, re.M))
    assert listed == {"run", "predict", "bench"}


@pytest.mark.parametrize("command", ["evaluate", "data", "train", "convert"])
def test_a_command_without_its_extra_names_the_extra_in_one_line(command):
    for argv in ([command], [command, "--help"], ["-v", command, "x"]):
        done = _runtime_only(*argv)
        assert done.returncode == 2, (argv, done.stderr)
        assert done.stderr == (
            f'handpose {command}: needs the `train` extra: pip install "handpose[train]"\n'
        )
        assert done.stdout == ""


def test_unknown_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_console_script_runs():
    done = subprocess.run(
        [sys.executable, "-m", "handpose.cli", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0
    assert done.stdout.startswith("handpose ")


BLOCK_TF = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('tensorflow', 'keras', 'tf_keras', 'jax', 'torch'):
            raise ImportError('blocked in this test: ' + name)
sys.meta_path.insert(0, Block())
import pkgutil, importlib, handpose
names = [m.name for m in pkgutil.walk_packages(handpose.__path__, 'handpose.')]
for name in names:
    importlib.import_module(name)
print(len(names), 'modules')
"""


def test_runtime_imports_without_tensorflow():
    """Every module of the runtime package imports with TensorFlow and Keras made unimportable."""
    done = subprocess.run([sys.executable, "-c", BLOCK_TF], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[0]) >= 5


def test_actdk_files_are_consistent():
    """The actdk files in the form Idein's actcast-app-examples write them."""
    files = json.loads((ROOT / ".actdk/files.json").read_text())
    for key in ("main", "healthchecker"):  # relative to app/, which actdk deploys
        assert "/" not in files[key], files[key]
        path = ROOT / "app" / files[key]
        assert path.is_file() and os.access(path, os.X_OK), path
    assert (ROOT / files["act_setting"]).is_file()
    setting = json.loads((ROOT / ".actdk/setting.json").read_text())
    assert isinstance(setting["app_server_id"], int)  # the app's id on Actcast
    assert isinstance(setting["short_descriptions"], dict)
    targets = {"raspberrypi-bullseye", "raspberrypi-bookworm"}
    assert set(setting["target_types"]) == targets
    deps = json.loads((ROOT / ".actdk/dependencies.json").read_text())
    assert set(deps) == {"apt", "pip"} | targets  # every target's lists add to the top-level ones
    for section in [deps, *(deps[t] for t in targets)]:
        assert all(isinstance(section[k], list) for k in ("apt", "pip"))
    assert {"python3", "python3-numpy", "python3-pil"} <= set(deps["apt"])  # the OS's own
    for target in setting["target_types"]:
        manifest = json.loads((ROOT / "manifesto" / f"{target.split('-')[1]}.json").read_text())
        assert manifest["version"] == 2
        assert manifest["target_type"] == target
        assert {"type": "camera"} in manifest["devices"]
        assert {"type": "videocore"} in manifest["devices"]
        # the local_video_server MJPEG port, published as in the local-video-server example
        assert manifest["network_mode"] == "bridge"
        assert {"container_port": 5100, "host_port": 5100, "protocol": "tcp"} in manifest[
            "published_ports"
        ]
        assert ("RSPi5B" in manifest["boards"]) == (target == "raspberrypi-bookworm")
    for name in ("setting_schema.json", "act_settings.json", "data_schema.json"):
        json.loads((ROOT / name).read_text())


def _health(env_path: Path) -> int:
    env = {**os.environ, "HANDPOSE_HEARTBEAT": str(env_path)}
    return subprocess.run([str(ROOT / "app/healthchecker")], env=env).returncode


def test_healthchecker_follows_the_heartbeat(tmp_path):
    beat = tmp_path / "heartbeat"
    assert _health(beat) != 0  # never beaten
    beat.touch()
    assert _health(beat) == 0  # fresh
    old = time.time() - 120
    os.utime(beat, (old, old))
    assert _health(beat) != 0  # stale: more than a minute old


def test_ci_runs_the_readme_commands():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci/run").read_text()
    assert 'pip install --quiet -e ".[train,dev]"' in ci
    assert 'pip install -e ".[train,dev]"' in readme
    assert "python -m pytest" in readme and "python -m pytest" in ci
