"""`handpose bench`: rows with and without tracking in one run, ratios, JSON, extension points."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest_app import app_models_dir

from handpose.commands import bench
from handpose.pipeline import load_model_set
from handpose.runner import RUNTIME_VERSION
from handpose.settings import AppSettings


def run_bench(*args):
    return subprocess.run(
        [sys.executable, "-m", "handpose.cli", "bench", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_bench_prints_both_modes_of_a_model_set(tmp_path):
    out = tmp_path / "bench.json"
    # untrained test models: every box passes 0.3, every keypoint scores ~0.01
    result = run_bench(
        "--models", str(app_models_dir()), "--frames", "6", "--warmup", "1", "--threads", "1",
        "--set", "score_threshold=0.3", "--set", "track_threshold=0", "--set", "max_hands=1",
        "--set", "detect_interval=3", "--json", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "sample_clip.mp4: 6 frames 640x480; 1 thread(s); detect_interval 3" in lines[0]
    assert lines[0].endswith(f"; interpreter {RUNTIME_VERSION}")
    header, rule, off, on = lines[1:5]
    assert header.split()[:4] == ["models", "tracking", "frames/s", "ratio"]
    assert set(rule) <= {"-", " "}
    assert off.split()[1] == "off" and off.split()[3] == "1.00x"
    assert on.split()[1] == "on"
    rows = json.loads(out.read_text())["rows"]
    assert [r["tracking"] for r in rows] == [False, True]
    assert rows[0]["detect_share"] == 1.0 and rows[1]["detect_share"] == pytest.approx(2 / 6)
    assert rows[1]["ratio"] == pytest.approx(rows[1]["fps"] / rows[0]["fps"])
    for row in rows:
        stages = sum(row[f"ms_{s}"] for s in bench.STAGES)
        assert 0 < stages <= row["ms_frame"] * 1.001
        assert row["hands"] == 1.0
        # the time split: each stage's model invokes and the rest add up to the stage
        for stage in ("detect", "pose"):
            model, other = row[f"ms_{stage}_model"], row[f"ms_{stage}_other"]
            assert model > 0 and other > 0
            assert model + other == pytest.approx(row[f"ms_{stage}"])
        assert row["ms_model"] == pytest.approx(row["ms_detect_model"] + row["ms_pose_model"])
        assert row["ms_other"] == pytest.approx(row["ms_frame"] - row["ms_model"])
        assert row["other_share"] == pytest.approx(row["ms_other"] / row["ms_frame"])
        assert 0 < row["other_share"] < 1 and 0 < row["other_cpu_share"] < 1
    split = lines.index("time split, ms per frame (model = the interpreters' invokes):")
    assert lines[split + 1].split()[2:4] == ["detect", "model"]
    assert lines[split + 1].endswith("non-model %  non-model CPU %")


def test_bench_names_a_missing_model_folder(tmp_path):
    result = run_bench("--models", str(tmp_path / "nothing"), "--frames", "2")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("handpose bench: error:")
    assert "nothing" in result.stderr and "Traceback" not in result.stderr


class FrameCounter:
    """A probe as another measurement would add one (CPU time, memory, ...)."""

    def begin(self, variant):
        self.started = variant.name

    def end(self, variant, frames):
        return {"probe_frames": float(frames)}


@pytest.mark.slow
def test_probes_and_columns_extend_the_table(monkeypatch):
    models = load_model_set(app_models_dir(), num_threads=1)
    frames = [(np.zeros((120, 160, 3), np.uint8), n / 15) for n in range(3)]
    settings = AppSettings(num_threads=1)
    variants = [bench.Variant("tiny", models, settings.replace(tracking=t)) for t in (False, True)]
    monkeypatch.setattr(bench, "PROBES", [FrameCounter()])
    results = bench.benchmark(variants, frames, repeat=2, warmup=1)
    assert [r.metrics["probe_frames"] for r in results] == [3.0, 3.0]
    assert results[0].metrics["ratio"] == 1.0
    table = bench.format_table(results, [*bench.COLUMNS, bench.Column("probe", "probe_frames")])
    assert table.splitlines()[0].endswith("probe")
    assert table.splitlines()[2].split()[-1] == "3.0"
