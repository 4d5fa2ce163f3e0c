"""`handpose convert chainer`: the seed's checkpoints -> Keras -> TFLite, without Chainer.

Release folders are written here in the published layout (`seed_reference`: random arrays
keyed like Chainer's save_npz, config.ini like the seed's): a detector at the released input
256 (width 0.25, classes left / right) and a pose network at 224 (width 0.35). The imported
Keras networks are checked against an independent numpy forward pass of the same arrays in the
seed's own output layout, and the converted TFLite files (real converter, real interpreter)
against the seed's own decoders: boxes, classes and scores, keypoints and bone directions.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

import seed_reference as ref  # noqa: E402

from conversion.chainer_import import (  # noqa: E402
    KIND_ARRAYS,
    KIND_IGNORED,
    import_network,
    load_checkpoint,
    read_seed_config,
    table_rules,
)
from handpose.errors import HandposeError  # noqa: E402

DET = {"width": 0.25, "size": 256, "classes": ("left", "right")}
POSE = {"width": 0.35, "size": 224}


def detector_ini(**change) -> str:
    values = dict(DET, **change)
    return ref.DETECTOR_INI.format(
        size=values["size"], classes=", ".join(values["classes"]), width=values["width"]
    )


def pose_ini(**change) -> str:
    values = dict(POSE, **change)
    return ref.POSE_INI.format(size=values["size"], width=values["width"])


def test_image(size: int, seed: int) -> np.ndarray:
    """A uint8 (S, S, 3) image with coarse structure and noise (activations of every size)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (8, 8, 3))
    image = np.kron(coarse, np.ones((size // 8, size // 8, 1)))
    return np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)


test_image.__test__ = False  # a helper, not a test


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    root = tmp_path_factory.mktemp("release")
    det = ref.detector_arrays(DET["width"], len(DET["classes"]), seed=0)
    pose = ref.pose_arrays(POSE["width"], seed=1)
    ref.write_release(root / "detector", det, detector_ini())
    ref.write_release(root / "pose", pose, pose_ini())
    return {"root": root, "detector": det, "pose": pose}


@pytest.fixture(scope="module")
def imported(releases):
    return {task: import_network(releases["root"] / task, task) for task in ("detector", "pose")}


def seed_to_ours_pose(pose: np.ndarray, vect: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The seed's (6K, G, G) field-major / (3E, G, G) (z, y, x) heads in our channels-last
    keypoint-major / (x, y, z) layout, written out independently of handpose.codec.ppn."""
    g = pose.shape[1]
    ours_pose = pose.transpose(1, 2, 0).reshape(g, g, 6, ref.K).transpose(0, 1, 3, 2)
    ours_vect = vect.transpose(1, 2, 0).reshape(g, g, ref.E, 3)[..., ::-1]
    return ours_pose.reshape(g, g, 6 * ref.K), ours_vect.reshape(g, g, 3 * ref.E)


# ------------------------------------------------------------------------ mapping and config


@pytest.mark.parametrize("task", ["detector", "pose"])
def test_tables_name_every_published_array(releases, task):
    rules = table_rules(task)
    expected = {
        f"{r.chainer}/{name}"
        for r in rules
        for name in KIND_ARRAYS[r.kind] + KIND_IGNORED.get(r.kind, ())
    }
    assert expected == set(releases[task])
    targets = [r.keras for r in rules if r.keras]
    assert len(targets) == len(set(targets)), "two Chainer links load one Keras layer"


def test_read_seed_config(tmp_path):
    path = tmp_path / "config.ini"
    path.write_text(detector_ini(classes=("hand",), size=224, width=1.0))
    config = read_seed_config(path, "detector")
    assert (config.width, config.input_size, config.classes, config.smin) == (
        1.0,
        224,
        ("hand",),
        0.025,
    )
    assert config.top_channels == 1280 and config.values["model_param"]["num_layers"] == "6"
    path.write_text(pose_ini(size=224, width=0.5))
    assert read_seed_config(path, "pose").input_size == 224


@pytest.mark.parametrize(
    "ini,task,message",
    [
        (detector_ini(size=300), "detector", "ceil\\(S / G\\)"),
        (detector_ini(width=0.35), "detector", "conv14 expands to 198 channels"),
        (
            detector_ini().replace("MobileNetV2LiteExtractor300", "MobileNetV2Extractor300"),
            "detector",
            "only the seed's MobileNetV2LiteExtractor300",
        ),
        (
            detector_ini().replace("hand_class", "classes"),
            "detector",
            "no \\[model_param\\] hand_class",
        ),
        (pose_ini().replace("224x224", "224x160"), "pose", "only square"),
        (pose_ini().replace("use_depth = no", "use_depth = yes"), "pose", "depth-image"),
        (
            pose_ini().replace("name = ppn", "name = hourglass"),
            "pose",
            "\\[model\\] name = hourglass",
        ),
    ],
)
def test_config_the_importer_cannot_reproduce_is_refused(tmp_path, ini, task, message):
    path = tmp_path / "config.ini"
    path.write_text(ini)
    with pytest.raises(HandposeError, match=message) as error:
        read_seed_config(path, task)
    assert str(path) in str(error.value)


# ---------------------------------------------------------------- Keras against numpy forward


def test_imported_detector_matches_numpy_forward(releases, imported):
    model, config, report = imported["detector"]
    assert (config.width, config.input_size, config.classes) == (0.25, 256, ("left", "right"))
    assert report.weights == model.count_params()
    assert report.arrays == len(releases["detector"]) == report.loaded + len(report.unused)
    assert {why.split(" ")[0] for why in report.unused.values()} == {"BatchNormalization", "conv21"}
    image = test_image(256, 5)
    locs, confs, grids = ref.detector_forward(releases["detector"], image, 2)
    assert grids == [32, 16, 8, 4, 2, 1]  # the released 256 input
    out = model(image[None].astype(np.float32))
    got_locs, got_scores = np.asarray(out["locations"])[0], np.asarray(out["scores"])[0]
    assert got_locs.shape == (2 * sum(g * g for g in grids), 4) == locs.shape
    assert np.ptp(locs) > 1.0 and np.ptp(confs) > 5.0  # outputs of a real range
    want_locs = locs[:, [1, 0, 3, 2]]  # the seed's (dy, dx, dh, dw) -> our (dx, dy, dw, dh)
    assert np.abs(got_locs - want_locs).max() <= 1e-4 * np.abs(want_locs).max()
    assert np.abs(got_scores - confs).max() <= 1e-4 * np.abs(confs).max()


def test_imported_pose_matches_numpy_forward(releases, imported):
    model, config, report = imported["pose"]
    assert (config.width, config.input_size) == (0.35, 224)
    assert report.weights == model.count_params() and report.arrays == report.loaded + len(
        report.unused
    )
    image = test_image(224, 6)
    pose, vect = ref.pose_forward(releases["pose"], image)
    want_pose, want_vect = seed_to_ours_pose(pose, vect)
    out = model(image[None].astype(np.float32))
    got_pose, got_vect = np.asarray(out["pose"])[0], np.asarray(out["vect"])[0]
    assert got_pose.shape == (7, 7, 126) and got_vect.shape == (7, 7, 60)
    assert np.ptp(want_pose) > 0.3 and np.ptp(want_vect) > 0.5
    assert np.abs(got_pose - want_pose).max() <= 1e-5
    assert np.abs(got_vect - want_vect).max() <= 1e-5


# ---------------------------------------------------------------------- errors name the key


@pytest.fixture(scope="module")
def scratch(imported):
    """A second detector network that the error tests may leave half-loaded."""
    from conversion.chainer_import import build_keras

    return build_keras(imported["detector"][1])


@pytest.mark.parametrize(
    "change,key,message",
    [
        ("drop", "extractor/conv20/depthwise/depthwise_bn/avg_var", "missing array"),
        ("add", "extractor/conv23/conv1/conv/W", "not part of the seed's layout"),
        ("add", "multibox/loc/0/pointwise/pointwise_conv/b", "not part of the seed's layout"),
        ("narrow", "extractor/conv19/pointwise/pointwise_conv/W", "has shape \\(127, 64, 1, 1\\)"),
        ("nan", "multibox/conf/3/pointwise/pointwise_bn/avg_var", "NaN or infinite"),
    ],
)
def test_checkpoint_mismatch_names_the_key(releases, scratch, change, key, message):
    arrays = dict(releases["detector"])
    if change == "drop":
        del arrays[key]
    elif change == "add":
        arrays[key] = np.zeros(3, np.float32)
    elif change == "narrow":
        arrays[key] = arrays[key][:-1]
    else:
        arrays[key] = np.where(np.arange(len(arrays[key])) == 2, np.nan, arrays[key])
    with pytest.raises(HandposeError, match=message) as error:
        load_checkpoint(scratch, arrays, table_rules("detector"), "bestmodel.npz")
    assert key in str(error.value) and "bestmodel.npz" in str(error.value)


def test_keras_weight_without_array_is_an_error(releases, scratch):
    rules = [r for r in table_rules("detector") if r.keras != "conv18_bn"]
    arrays = {k: v for k, v in releases["detector"].items() if "/conv18/bn/" not in k}
    with pytest.raises(HandposeError, match="conv18_bn"):
        load_checkpoint(scratch, arrays, rules, "bestmodel.npz")


def test_bad_release_folders_are_named(releases, tmp_path):
    ref.write_release(tmp_path / "det", releases["pose"], detector_ini())
    with pytest.raises(HandposeError, match="pass it as --pose"):
        import_network(tmp_path / "det", "detector")
    with pytest.raises(HandposeError, match="not a folder"):
        import_network(tmp_path / "nothing", "pose")
    (tmp_path / "det" / "bestmodel.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(HandposeError, match="not a readable .npz checkpoint"):
        import_network(tmp_path / "det", "detector")
    ref.write_release(tmp_path / "det", releases["detector"], "")
    with pytest.raises(HandposeError, match="det/config.ini: no \\[model_param\\] width"):
        import_network(tmp_path / "det", "detector")


# ------------------------------------------------------------------ TFLite, app, predict


@pytest.fixture(scope="module")
def converted(releases, tmp_path_factory):
    """`handpose convert chainer` on both folders: fp32 and int8 (synthetic calibration).

    Returns the output folder; what the command printed is in `out.parent / "printed.txt"`.
    """
    import contextlib
    import io

    from handpose.cli import main

    out = tmp_path_factory.mktemp("imported") / "models"
    root = releases["root"]
    argv = [
        "convert",
        "chainer",
        "--detector",
        str(root / "detector"),
        "--pose",
        str(root / "pose"),
    ]
    argv += ["--out", str(out), "--precision", "fp32", "int8", "--calibration", "synthetic"]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main([*argv, "--samples", "4"])
    assert code == 0
    (out.parent / "printed.txt").write_text(printed.getvalue())
    return out


def run_model(folder, task, image):
    from handpose.metadata import ModelMetadata
    from handpose.runner import ModelRunner

    meta = ModelMetadata.load(folder / f"{task}.json")
    return meta, ModelRunner(meta, num_threads=1).run(image)


def seed_detections(releases, image):
    locs, confs, grids = ref.detector_forward(releases["detector"], image, 2)
    boxes, labels, scores = ref.seed_decode_boxes(locs, confs, ref.seed_default_boxes(256, grids))
    order = np.argsort(-scores, kind="stable")
    return boxes[order][:, [1, 0, 3, 2]], labels[order], scores[order]  # (y, x) -> (x, y)


def our_detections(meta, outputs, score_threshold=0.6):
    from handpose.codec import boxes as codec

    hands = codec.decode(
        outputs["locations"][0],
        outputs["scores"][0],
        codec.default_boxes(codec.DefaultBoxConfig.from_dict(meta.default_boxes)),
        meta.classes,
        score_threshold=score_threshold,
        nms_threshold=meta.decode["nms_threshold"],
        max_detections=100000,
        merge_sides=False,  # the seed's per-class thresholds and NMS
    )
    return hands


@pytest.mark.slow
def test_convert_writes_app_folders_with_our_metadata(converted, releases):
    from handpose.metadata import ModelMetadata

    printed = (converted.parent / "printed.txt").read_text().splitlines()
    assert printed[0].startswith("detector: imported ")
    assert "(width 0.25, input 256, classes left, right)" in printed[0]
    assert "528 arrays, 425 loaded into 170 Keras layers" in printed[0]
    assert "88 BatchNormalization N (batch counts), 15 conv21 (feeds nothing" in printed[0]
    assert [line.split(":")[0] for line in printed[1:3]] == [
        str(converted / "fp32" / "detector.tflite"),
        str(converted / "int8" / "detector.tflite"),
    ]
    assert printed[3].startswith("pose: imported ") and len(printed) == 6

    for precision in ("fp32", "int8"):
        det = ModelMetadata.load(converted / precision / "detector.json")
        pose = ModelMetadata.load(converted / precision / "pose.json")
        for meta in (det, pose):
            meta.verify_file()
            assert meta.family == "handpose" and meta.precision == precision
            assert "imported from chainer-hand-pose" in meta.architecture
            source = meta.training["source"]
            assert source["format"] == "chainer-hand-pose"
            assert source["checkpoint"].endswith(f"{meta.task}/bestmodel.npz")
            assert len(source["sha256"]) == 64 and meta.training["command"].startswith(
                "handpose convert chainer"
            )
        assert det.classes == ["left", "right"] and det.input.shape == [1, 256, 256, 3]
        assert det.default_boxes == {
            "input_size": 256,
            "grids": [32, 16, 8, 4, 2, 1],
            "smin": 0.025,
            "variance": [0.1, 0.2],
            "round_sizes": True,
        }
        assert det.decode["score_threshold"] == 0.6 and det.decode["nms_threshold"] == 0.45
        assert pose.grid == {"size": [7, 7], "stride": 32} and pose.input.shape == [1, 224, 224, 3]
    data = json.loads((converted / "int8" / "detector.json").read_text())
    assert data["input"]["dtype"] == "uint8" and data["input"]["quantization"]["scale"] == 1.0
    assert data["training"]["config"]["model"]["padding"] == "symmetric"


@pytest.mark.slow
def test_tflite_detections_are_the_seeds(converted, releases):
    image = test_image(256, 7)
    want_boxes, want_labels, want_scores = seed_detections(releases, image)
    assert len(want_scores) >= 3, "the random detector should fire somewhere"
    meta, outputs = run_model(converted / "fp32", "detector", image)
    hands = our_detections(meta, outputs)
    assert len(hands) == len(want_scores)
    for hand, box, label, score in zip(hands, want_boxes, want_labels, want_scores, strict=True):
        assert hand.handedness == ("left", "right")[label]
        assert hand.score == pytest.approx(score, abs=1e-4)
        np.testing.assert_allclose(hand.box, box, atol=1e-2)
    # int8: every confident seed detection is found, same class, nearly the same box
    meta, outputs = run_model(converted / "int8", "detector", image)
    from handpose.codec.boxes import box_iou

    found = our_detections(meta, outputs, score_threshold=0.5)
    for box, label, score in zip(want_boxes, want_labels, want_scores, strict=True):
        if score < 0.8:
            continue
        same = [h for h in found if h.handedness == ("left", "right")[label]]
        assert same and box_iou(box[None], np.stack([h.box for h in same])).max() > 0.9


@pytest.mark.slow
def test_tflite_keypoints_are_the_seeds(converted, releases):
    from handpose.codec.ppn import PPNConfig, decode

    image = test_image(224, 8)
    vu, zyx = ref.seed_decode_pose(*ref.pose_forward(releases["pose"], image), 224)
    bones = np.array([zyx[t] - zyx[s] for s, t in ref.EDGES])
    want_dirs = (bones / np.linalg.norm(bones, axis=1, keepdims=True))[:, ::-1]  # -> (x, y, z)
    meta, outputs = run_model(converted / "fp32", "pose", image)
    keypoints, _, directions = decode(
        outputs["pose"], outputs["vect"], PPNConfig.from_metadata(meta)
    )
    np.testing.assert_allclose(keypoints, vu[:, ::-1], atol=1e-2)  # (v, u) -> (x, y)
    np.testing.assert_allclose(directions, want_dirs, atol=1e-4)
    meta, outputs = run_model(converted / "int8", "pose", image)
    keypoints, _, directions = decode(
        outputs["pose"], outputs["vect"], PPNConfig.from_metadata(meta)
    )
    error = np.linalg.norm(keypoints - vu[:, ::-1], axis=1)
    assert np.median(error) < 2.0  # px of 224 (cell 32); random nets have near-ties
    assert np.median(np.sum(directions * want_dirs, axis=1)) > 0.99


@pytest.mark.slow
def test_app_predict_and_bench_run_the_imported_models(converted, tmp_path, capsys):
    from PIL import Image

    from conversion.bench import benchmark
    from handpose.cli import main
    from handpose.hand import Hand

    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(test_image(256, 9)[:, :200]).save(images / "a.png")
    out = tmp_path / "preds.json"
    code = main(
        ["predict", "--images", str(images), "--out", str(out), "--models", str(converted / "int8")]
    )
    assert code == 0
    entry = json.loads(out.read_text())["images"][0]
    assert (entry["width"], entry["height"]) == (200, 256) and entry["hands"]
    for record in entry["hands"]:
        hand = Hand.from_json(record)
        assert hand.handedness in ("left", "right") and hand.keypoints.shape == (21, 2)
        assert hand.joints_3d.shape == (21, 3)
    headers, rows = benchmark(converted, threads=[1], runs=1, warmup=0)
    assert {(r[0], r[1]) for r in rows} == {
        (t, p) for t in ("detector", "pose") for p in ("int8", "fp32")
    }


@pytest.mark.slow
def test_verify_reimports_the_checkpoint(converted, tmp_path):
    from handpose.cli import main

    report = tmp_path / "verify.json"
    main(
        [
            "convert",
            "verify",
            str(converted),
            "--data",
            "synthetic",
            "--samples",
            "2",
            "--json",
            str(report),
        ]
    )
    results = json.loads(report.read_text())
    assert {(r["model"], r["precision"]) for r in results} == {
        (m, p) for m in ("detector", "pose") for p in ("float", "int8", "fp32")
    }
    for r in results:
        if r["precision"] == "fp32":
            assert abs(r["drop_points"]) < 1e-6
            assert all(
                err["max"] <= 1e-3 * max(err["range"], 1.0) for err in r["raw_error"].values()
            )
