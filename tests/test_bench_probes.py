"""`handpose bench` extensions: CPU use, model runs, MACs, Pi estimates and peak memory."""

import subprocess
import sys

import pytest

pytest.importorskip("tensorflow")

from conftest_mediapipe import LANDMARK_MACS, palm_frame, tiny_mediapipe_dir  # noqa: E402
from PIL import Image  # noqa: E402

from handpose.commands import bench  # noqa: E402
from handpose.commands.bench_probes import (  # noqa: E402
    PI_MAC_RATES,
    CpuProbe,
    ModelCostProbe,
    peak_memory,
)
from handpose.pipeline.models import load_model_set  # noqa: E402
from handpose.settings import AppSettings  # noqa: E402


def test_probes_count_model_runs_and_estimate_pi_time(monkeypatch):
    models = load_model_set(tiny_mediapipe_dir() / "lite", num_threads=1)
    frames = [(palm_frame((150 + 5 * n, 120), 30, (240, 320)), n / 15) for n in range(3)]
    settings = AppSettings(num_threads=1, tracking=False)
    monkeypatch.setattr(bench, "PROBES", [CpuProbe(), ModelCostProbe()])
    (result,) = bench.benchmark([bench.Variant("tiny", models, settings)], frames, warmup=1)
    metrics = result.metrics
    assert metrics["runs_detector"] == 1.0 and metrics["runs_pose"] == 1.0  # one palm a frame
    assert metrics["mmacs_pose"] == pytest.approx(LANDMARK_MACS / 1e6)
    assert metrics["mmacs_detector"] == 0.0  # pooling and reshapes only
    assert metrics["mmacs_frame"] == pytest.approx(LANDMARK_MACS / 1e6)
    # fp32 models use the float rates: ms = MACs / rate
    assert metrics["est_ms_pi4"] == pytest.approx(
        LANDMARK_MACS / PI_MAC_RATES["Pi 4"]["float"] * 1e3
    )
    assert metrics["est_ms_pi5"] == pytest.approx(
        LANDMARK_MACS / PI_MAC_RATES["Pi 5"]["float"] * 1e3
    )
    assert 0 < metrics["cpu_pct"] < 100 * 64 and metrics["cpu_ms_frame"] > 0
    assert "run" not in vars(models.detector) and "run" not in vars(models.pose)  # unwrapped


def test_peak_memory_of_a_fresh_process(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for n in range(2):
        Image.fromarray(palm_frame((150, 120), 30, (240, 320))).save(images / f"{n}.png")
    settings = AppSettings(num_threads=1)
    memory = peak_memory(tiny_mediapipe_dir() / "lite", str(images), 2, settings)
    assert 20 < memory["peak_mb"] < 4000
    assert 0 < memory["models_mb"] < memory["peak_mb"]
    with pytest.raises(RuntimeError, match="memory measurement"):
        peak_memory(tmp_path / "nothing", str(images), 2, settings)


@pytest.mark.slow
def test_bench_command_prints_the_cost_table(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for n in range(3):
        Image.fromarray(palm_frame((150 + 5 * n, 120), 30, (240, 320))).save(images / f"{n}.png")
    result = subprocess.run(
        [sys.executable, "-m", "handpose.cli", "bench", "--models",
         str(tiny_mediapipe_dir() / "lite"), "--source", str(images), "--frames", "3",
         "--warmup", "1", "--memory-frames", "2", "--tracking", "off", "--threads", "1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = lines[1]
    assert header.split()[-6:] == ["CPU", "%", "peak", "MB", "models", "MB"]
    row = lines[3].split()
    assert float(row[-2]) > 20 and float(row[-3]) > 0 and float(row[-1]) > 0  # peak, CPU, models
    cost = lines[lines.index("") + 1]
    assert "Pi 4 est ms" in cost and "MMAC/frame" in cost
    assert any(line.startswith("Pi estimates: model compute only") for line in lines)
    assert any(
        "hand_landmark_lite.tflite (mediapipe landmark, fp32, 0.9 MMACs)" in line for line in lines
    )
