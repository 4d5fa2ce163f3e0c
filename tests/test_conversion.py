"""Conversion: real TF converter -> real tflite-runtime interpreter through handpose.runner.

Small networks (width 0.35, input 96) of both kinds are converted once per module to int8,
fp16 and fp32 (each converter call takes 1-2 s). Their weights are re-drawn (0.7 x He-normal)
so the outputs span a real range: Keras' default init shrinks a deep ReLU6 stack to ~1e-4, where
any comparison would pass, and full He gain makes the random network chaotic (one grey level of
input noise already moves its float outputs by 0.06), which no trained network is.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from conversion.bench import benchmark, find_models, format_table  # noqa: E402
from conversion.macs import count_macs  # noqa: E402
from conversion.metadata_writer import build_metadata, save_checked  # noqa: E402
from conversion.tflite_export import export_tflite, keras_outputs  # noqa: E402
from handpose.errors import HandposeError, ModelFileError  # noqa: E402
from handpose.metadata import ModelMetadata  # noqa: E402
from handpose.runner import RUNTIME, ModelRunner  # noqa: E402
from handpose.skeleton import EDGES, KEYPOINT_NAMES  # noqa: E402

SIZE = 96
PRECISIONS = ("fp32", "fp16", "int8")
TASKS = ("detector", "pose")


def randomize(model: keras.Model, seed: int) -> keras.Model:
    """0.7 x He-normal kernels, BN gamma ~U(0.5, 1.5), beta ~N(0, 0.1): outputs of order 1."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = weights
            new = [
                rng.uniform(0.5, 1.5, gamma.shape),
                rng.normal(0, 0.1, beta.shape),
                mean,
                var,
            ]
        else:
            kernel = weights[0]
            fan_in = int(np.prod(kernel.shape[:-1]))
            if isinstance(layer, keras.layers.DepthwiseConv2D):
                fan_in = int(np.prod(kernel.shape[:2]))
            new = [rng.normal(0, 0.7 * np.sqrt(2.0 / fan_in), kernel.shape)] + [
                rng.normal(0, 0.05, w.shape) for w in weights[1:]
            ]
        layer.set_weights([np.asarray(w, np.float32) for w in new])
    return model


def smooth_images(count: int, seed: int) -> list[np.ndarray]:
    """Natural-ish uint8 (S, S, 3) images: upsampled coarse noise plus a gradient."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        coarse = rng.uniform(0, 255, (6, 6, 3))
        image = np.kron(coarse, np.ones((SIZE // 6, SIZE // 6, 1)))
        image += np.linspace(-40, 40, SIZE)[None, :, None]
        images.append(np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8))
    return images


def config_for(task: str) -> dict:
    from models.training.config import resolve_config

    model = {"width": 0.35, "input_size": SIZE}
    if task == "detector":
        model["smin"] = 0.06  # not the default: the metadata must carry the trained priors
    config = resolve_config({"task": task, "model": model})
    return dict(config, command=f"handpose train {task} --config test.toml --out RUN")


@pytest.fixture(scope="module")
def networks():
    from models.networks.detector import build_detector
    from models.networks.pose import build_pose

    nets = {
        "detector": randomize(build_detector(0.35, SIZE, ("left", "right")), 1),
        "pose": randomize(build_pose(0.35, SIZE), 2),
    }
    return {k: v for k, v in nets.items() if k in TASKS}


@pytest.fixture(scope="module")
def converted(networks, tmp_path_factory):
    """{(task, precision): ModelMetadata} saved and checked under one folder per precision."""
    root = tmp_path_factory.mktemp("converted")
    calibration = smooth_images(16, 0)
    saved = {}
    for task, model in networks.items():
        for precision in PRECISIONS:
            folder = root / precision
            exported = export_tflite(model, folder / f"{task}.tflite", precision, calibration)
            meta = build_metadata(
                exported, task, config_for(task), macs=count_macs(model), params=7
            )
            saved[task, precision] = save_checked(meta, folder / f"{task}.json")
    return root, saved


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("precision", PRECISIONS)
def test_tflite_matches_keras(converted, networks, task, precision):
    _, saved = converted
    meta = saved[task, precision]
    runner = ModelRunner(meta, num_threads=1)
    assert RUNTIME == "ai-edge-litert"  # the app's interpreter on x86_64 (setup.py markers)
    for image in smooth_images(3, 99):  # not calibration images
        got = runner.run(image)
        want = keras_outputs(networks[task], image[None])
        assert set(got) == set(want) == set(meta.outputs)
        for key in want:
            span = float(np.ptp(want[key]))
            assert span > 0.05, f"{task}.{key} output is degenerate"
            error = np.abs(got[key] - want[key])
            if precision == "fp32":
                assert error.max() <= 1e-4 * max(span, 1.0)
            elif precision == "fp16":
                assert error.max() <= 1e-2 * max(span, 1.0)
            else:
                step = meta.outputs[key].quantization["scale"]
                assert error.mean() <= 3 * step, (key, error.mean(), step)
                assert np.corrcoef(got[key].ravel(), want[key].ravel())[0, 1] > 0.97


@pytest.mark.slow
def test_int8_takes_camera_bytes_and_declares_output_quantization(converted):
    _, saved = converted
    for task in TASKS:
        meta = saved[task, "int8"]
        assert meta.input.dtype == "uint8"
        assert meta.input.quantization["scale"] == pytest.approx(1.0, abs=1e-6)
        assert meta.input.quantization["zero_point"] == 0
        assert meta.normalization is None and meta.value_range == [0.0, 255.0]
        runner = ModelRunner(meta, num_threads=1)
        details = {d["name"]: d for d in runner.interpreter.get_output_details()}
        for spec in meta.outputs.values():
            assert spec.dtype == "int8"
            scale, zero = details[spec.name]["quantization"]
            assert spec.quantization == {"scale": pytest.approx(scale), "zero_point": zero}
        for precision in ("fp16", "fp32"):
            other = saved[task, precision]
            assert other.input.dtype == "float32" and other.input.quantization is None
    sizes = {p: saved["pose", p].model_path.stat().st_size for p in PRECISIONS}
    assert sizes["int8"] < sizes["fp16"] < sizes["fp32"]
    assert sizes["fp16"] < 0.6 * sizes["fp32"] and sizes["int8"] < 0.4 * sizes["fp32"]


@pytest.mark.slow
def test_metadata_round_trips_and_describes_the_model(converted):
    root, saved = converted
    det, pose = saved["detector", "int8"], saved["pose", "int8"]
    again = ModelMetadata.load(root / "int8" / "detector.json")
    assert again == det and again.to_dict() == det.to_dict()
    data = json.loads((root / "int8" / "pose.json").read_text())
    assert data["format"] == "handpose-model/1" and data["family"] == "handpose"
    assert data["input"]["shape"] == [1, SIZE, SIZE, 3]
    assert data["keypoints"]["names"] == list(KEYPOINT_NAMES)
    assert [tuple(e) for e in data["keypoints"]["edges"]] == list(EDGES)
    assert pose.grid == {"size": [3, 3], "stride": 32}
    assert pose.outputs["pose"].shape == [1, 3, 3, 126]
    assert pose.outputs["vect"].shape == [1, 3, 3, 60]
    assert det.classes == ["left", "right"]
    assert det.decode["score_threshold"] == 0.6 and det.decode["nms_threshold"] == 0.45
    assert det.training["command"].startswith("handpose train detector")
    assert det.training["data"] == "synthetic" and det.extra["macs"] > 1e6
    from handpose.codec.boxes import DefaultBoxConfig, default_boxes

    boxes = default_boxes(DefaultBoxConfig.from_dict(det.default_boxes))
    assert det.default_boxes["smin"] == 0.06  # what training encoded with (config_for)
    assert det.outputs["locations"].shape == [1, len(boxes), 4]
    assert det.outputs["scores"].shape == [1, len(boxes), 3]


@pytest.mark.slow
@pytest.mark.parametrize(
    "tamper",
    [
        lambda d: d["outputs"]["pose"].__setitem__("shape", [1, 3, 3, 60]),
        lambda d: d["outputs"]["vect"].__setitem__("name", "StatefulPartitionedCall:7"),
        lambda d: d["outputs"]["pose"].__setitem__("dtype", "float32"),
        lambda d: d["outputs"]["pose"]["quantization"].__setitem__("zero_point", 3),
        lambda d: d["input"].__setitem__("shape", [1, 128, 128, 3]),
    ],
)
def test_tampered_metadata_is_refused_and_removed(converted, tmp_path, tamper):
    root, _ = converted
    shutil.copy(root / "int8" / "pose.tflite", tmp_path / "pose.tflite")
    data = json.loads((root / "int8" / "pose.json").read_text())
    tamper(data)
    meta = ModelMetadata.from_dict(data, tmp_path / "pose.json")
    with pytest.raises(ModelFileError, match="refusing to write pose.tflite"):
        save_checked(meta, tmp_path / "pose.json")
    assert not (tmp_path / "pose.tflite").exists() and not (tmp_path / "pose.json").exists()


@pytest.mark.slow
def test_bench_table_lists_every_model(converted):
    root, saved = converted
    headers, rows = benchmark(root, threads=[1, 2], runs=2, warmup=1)
    assert len(rows) == 3 * len(TASKS)
    assert headers[:4] == ["model", "precision", "size_bytes", "MMACs"]
    for row in rows:
        meta = saved[row[0], row[1]]
        assert row[2] == meta.model_path.stat().st_size
        assert all(float(v) > 0 for v in row[4:])
    n = len(TASKS)
    assert [m.precision for m in find_models(root)] == ["int8"] * n + ["fp16"] * n + ["fp32"] * n
    table = format_table(headers, rows)
    assert table.count("\n") == len(rows) + 1


def test_int8_without_calibration_is_a_clear_error(tmp_path):
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3)])
    with pytest.raises(HandposeError, match="--calibration"):
        export_tflite(model, tmp_path / "m.tflite", "int8", [])
    assert not (tmp_path / "m.tflite").exists()


def test_mac_count_follows_the_formulas():
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inp)  # 8*8*4*3*3*3 = 6912
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same")(x)  # 4*4*4*9 = 576
    x = keras.layers.Conv2D(6, 1)(x)  # 4*4*6*4 = 384
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(5)(x)  # 96*5 = 480
    assert count_macs(keras.Model(inp, x)) == 6912 + 576 + 384 + 480


def test_run_folder_without_checkpoint_is_one_clear_line(tmp_path, capsys):
    from handpose.cli import main

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(config_for("pose")))
    code = main(["convert", "keras", "--pose", str(run), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and "no checkpoint" in err and str(run) in err
    assert not (tmp_path / "out").exists()
    code = main(["convert", "keras", "--pose", str(tmp_path / "nothing"), "--out", "x"])
    assert code == 2 and "not a training run folder" in capsys.readouterr().err


def test_verify_detector_score_takes_boxes_without_a_side():
    """Real photos' boxes have no side (label C + 1): verify scores them class-agnostic."""
    from conftest_app import app_models_dir

    from conversion.verify import detector_score
    from handpose.codec import boxes as box_codec
    from handpose.metadata import ModelMetadata
    from models.training.pipeline import DetectorExample

    meta = ModelMetadata.load(app_models_dir() / "detector.json")
    priors = box_codec.default_boxes(box_codec.DefaultBoxConfig.from_dict(meta.default_boxes))
    variance = box_codec.DefaultBoxConfig.from_dict(meta.default_boxes).variance
    box = np.array([[40.0, 50.0, 120.0, 150.0]], np.float32)
    loc, lab = box_codec.encode(priors, box, np.array([0]), variance=variance)  # as "left"
    scores = np.full((len(priors), 3), -10.0, np.float32)
    scores[lab == 0, 0] = 10.0
    scores[lab == 1, 1] = 10.0
    outputs = {"locations": loc[None], "scores": scores[None]}
    unknown = DetectorExample(np.zeros((224, 224, 3), np.uint8), box, np.array([3]))
    assert detector_score(outputs, [unknown], meta) == pytest.approx(1.0)
    right = DetectorExample(np.zeros((224, 224, 3), np.uint8), box, np.array([2]))
    assert detector_score(outputs, [right], meta) == pytest.approx(0.0)  # per side: wrong side
