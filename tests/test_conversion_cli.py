"""`handpose convert keras | verify | bench` end to end on small run folders.

The run folders are written here the way `handpose train` writes them (config.json +
checkpoints/best.weights.h5) from small randomised networks; calibration and verification data
come from the synthetic renderer (`synthetic` spec).
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")
for _module in ("handpose.codec.boxes", "handpose.codec.ppn", "models.metrics", "models.data.spec"):
    if importlib.util.find_spec(_module.rsplit(".", 1)[0]) is None or (
        importlib.util.find_spec(_module) is None
    ):
        pytest.skip(f"{_module} not there yet", allow_module_level=True)

from test_conversion import SIZE, config_for, randomize  # noqa: E402

from handpose.cli import main  # noqa: E402
from handpose.metadata import ModelMetadata  # noqa: E402


def write_run(folder, task: str, seed: int):
    from models.networks.detector import build_detector
    from models.networks.pose import build_pose

    model = (
        build_detector(0.35, SIZE, ("left", "right"))
        if task == "detector"
        else build_pose(0.35, SIZE)
    )
    randomize(model, seed)
    (folder / "checkpoints").mkdir(parents=True)
    model.save_weights(folder / "checkpoints" / "best.weights.h5")
    (folder / "config.json").write_text(json.dumps(config_for(task)))
    return model


@pytest.fixture(scope="module")
def converted_cli(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    write_run(root / "det_run", "detector", 3)
    write_run(root / "pose_run", "pose", 4)
    code = main(
        [
            "convert",
            "keras",
            "--detector",
            str(root / "det_run"),
            "--pose",
            str(root / "pose_run"),
            "--out",
            str(root / "models"),
            "--precision",
            "int8",
            "fp32",
            "--calibration",
            "synthetic",
            "--samples",
            "8",
        ]
    )
    assert code == 0
    return root


@pytest.mark.slow
def test_convert_keras_writes_app_folders(converted_cli, capsys):
    out = converted_cli / "models"
    for precision in ("int8", "fp32"):
        for task in ("detector", "pose"):
            meta = ModelMetadata.load(out / precision / f"{task}.json")
            meta.verify_file()
            assert meta.task == task and meta.precision == precision
            assert meta.training["run_dir"].endswith(("det_run", "pose_run"))
            assert meta.extra["macs"] > 1e6
    calib = ModelMetadata.load(out / "int8" / "pose.json").extra["calibration"]
    assert calib["spec"] == "synthetic" and 1 <= calib["samples"] <= 8
    assert not (out / "fp16").exists()


@pytest.mark.slow
def test_verify_and_bench_print_tables(converted_cli, capsys):
    out = converted_cli / "models"
    report = converted_cli / "verify.json"
    code = main(
        [
            "convert",
            "verify",
            str(out),
            "--data",
            "synthetic",
            "--samples",
            "6",
            "--json",
            str(report),
            "--write-metrics",
        ]
    )
    printed = capsys.readouterr().out
    results = json.loads(report.read_text())
    assert {(r["model"], r["precision"]) for r in results} == {
        (m, p) for m in ("detector", "pose") for p in ("float", "int8", "fp32")
    }
    for r in results:
        assert 0.0 <= r["metric"] <= 1.0
        if r["model"] == "pose":
            assert 0.0 <= r["bone_angle_deg"] <= 180.0  # synthetic crops have 3D labels
        else:
            assert r["bone_angle_deg"] is None
        if r["precision"] == "fp32":
            assert abs(r["drop_points"]) < 1e-6
            for err in r["raw_error"].values():
                assert err["mean"] < 1e-4 * max(err["range"], 1.0)
    assert "AP@0.5" in printed and "PCK@0.2" in printed
    stored = ModelMetadata.load(out / "int8" / "detector.json")
    stored.verify_file()  # the .tflite is untouched
    assert stored.metrics["verify"]["metric"] == "AP@0.5"
    assert stored.metrics["verify"]["samples"] == 6
    assert code in (0, 1)  # random networks: the budget verdict is not the point here
    code = main(["convert", "bench", str(out), "--threads", "1", "2", "--runs", "2"])
    printed = capsys.readouterr().out
    assert code == 0 and "size_bytes" in printed and "1T median ms" in printed
    assert printed.count("| detector | int8 ") == 1 and printed.count("| pose     | fp32 ") == 1
    np.testing.assert_equal(code, 0)
