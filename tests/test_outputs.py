"""Outputs that cannot be written are errors, found before any work; bad counts and truncated
models stop at start-up with one line (issue: hand events one can trust)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from handpose.actcast import build_application
from handpose.capture import open_source
from handpose.errors import ModelFileError, OutputError
from handpose.metadata import ModelMetadata
from handpose.outputs import check_output_dir, check_output_file
from handpose.paths import DEFAULT_MODELS_DIR
from handpose.pipeline import load_model_set
from handpose.present import PngFolderSink
from handpose.settings import AppSettings

#: a folder nobody can create files in, not even root
UNWRITABLE = Path("/proc/1")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "handpose.cli", *args], capture_output=True, text=True, timeout=300
    )


def one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    last = result.stderr.strip().splitlines()[-1]
    for word in words:
        assert word in last, last


def test_output_checks_name_the_path_and_the_problem(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputError, match="is a folder"):
        check_output_file(tmp_path, "--out")
    with pytest.raises(OutputError, match="a file is in the way"):
        check_output_dir(tmp_path / "afile", "--save")
    with pytest.raises(OutputError, match="a file is in the way|cannot create"):
        check_output_file(tmp_path / "afile" / "x.json", "--out")
    with pytest.raises(OutputError, match="not writable|cannot create"):
        check_output_file(UNWRITABLE / "out.mp4", "--save")
    assert check_output_file(tmp_path / "new" / "x.json", "--out").parent.is_dir()
    assert not list((tmp_path / "new").iterdir())  # the probe file is gone
    assert check_output_dir(tmp_path / "pngs", "--save").is_dir()


@pytest.mark.slow
@pytest.mark.parametrize(
    "args,words",
    [
        (["run", "--save", str(UNWRITABLE / "overlay.mp4")], ["--save", "/proc/1"]),
        (["run", "--save", str(UNWRITABLE / "pngs")], ["--save", "/proc/1"]),
        (["run", "--max-frames", "-5"], ["--max-frames", ">= 1"]),
        (["bench", "--repeat", "0"], ["--repeat", ">= 1"]),
    ],
)
def test_bad_destinations_and_counts_stop_before_any_work(args, words):
    one_line_error(cli(*args), *words)


@pytest.mark.slow
def test_predict_checks_out_before_inference(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (64, 48)).save(images / "a.png")
    one_line_error(cli("predict", "--images", str(images), "--out", str(tmp_path)), "is a folder")
    result = cli("predict", "--images", str(images), "--out", str(UNWRITABLE / "p.json"))
    one_line_error(result, "--out")
    assert "images," not in result.stderr  # stopped before running the models


@pytest.mark.slow
def test_a_write_failing_mid_run_stops_the_run_and_keeps_what_was_written(tmp_path, monkeypatch):
    """Disk full after 3 overlay frames: the app stops with an OutputError naming the file,
    the frames written before stay, and no frame after the failure is presented."""
    settings = AppSettings(num_threads=1)
    sink = PngFolderSink(tmp_path / "pngs")
    saved = []
    real_save = Image.Image.save

    def save(image, path, *args, **kwargs):
        if len(saved) == 3:
            raise OSError(28, "No space left on device")
        saved.append(path)
        return real_save(image, path, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save)
    beats = []
    app = build_application(
        settings, open_source("sample", settings), [sink], load_model_set(DEFAULT_MODELS_DIR, 1),
        max_frames=20, notify=lambda records: None, heartbeat=lambda: beats.append(1),
    )  # fmt: skip
    app.run()
    assert isinstance(app.error, OutputError)
    assert "No space left" in str(app.error) and "000003.png" in str(app.error)
    assert sorted(p.name for p in (tmp_path / "pngs").iterdir()) == [
        "000000.png", "000001.png", "000002.png"
    ]  # fmt: skip
    assert len(beats) == 3  # a heartbeat per presented frame, none after the failure


def test_a_truncated_model_with_a_recomputed_digest_is_a_model_error(tmp_path):
    folder = tmp_path / "models"
    shutil.copytree(DEFAULT_MODELS_DIR, folder)
    model = folder / "pose.tflite"
    data = model.read_bytes()
    model.write_bytes(data[: len(data) - 1000])
    meta_path = folder / "pose.json"
    meta = json.loads(meta_path.read_text())
    meta["sha256"] = hashlib.sha256(model.read_bytes()).hexdigest()
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="not a complete TFLite model"):
        ModelMetadata.load(meta_path).verify_file()
    from handpose.tflite_file import check_tflite_file

    for cut in (7, 100, len(data) // 2):
        model.write_bytes(data[:cut])
        with pytest.raises(ModelFileError, match="not a complete TFLite model"):
            check_tflite_file(model)
    model.write_bytes(b"\0" * 64 + data[64:])
    with pytest.raises(ModelFileError, match="identifier"):
        check_tflite_file(model)


def test_the_bundled_models_pass_the_file_check():
    from handpose.tflite_file import check_tflite_file

    for model in sorted(Path(DEFAULT_MODELS_DIR).glob("*.tflite")):
        check_tflite_file(model)
