"""`handpose evaluate --models ...` (models.commands.compare): scoring and the real command."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest_app import app_models_dir
from PIL import Image

from handpose.hand import Hand
from models.commands import compare
from models.data.handpose_format import DatasetWriter
from models.data.sample import Sample


def _hand(side: str, box, score: float = 1.0, shift: float = 0.0) -> Hand:
    x0, y0, x1, y1 = box
    grid = np.stack(np.meshgrid(np.linspace(x0, x1, 7), np.linspace(y0, y1, 3)), -1)
    keypoints = grid.reshape(21, 2).astype(np.float32) + shift
    return Hand(side, score, np.asarray(box, np.float32), keypoints, np.ones(21, np.float32))


def test_parse_gt_names_sets():
    assert compare.parse_gt("subhih=dir:/d/subhih") == ("subhih", "dir:/d/subhih")
    assert compare.parse_gt("dir:/data/real/asl_letters") == (
        "asl_letters",
        "dir:/data/real/asl_letters",
    )
    assert compare.parse_gt("dir:/d/x?limit=3") == ("x", "dir:/d/x?limit=3")


def test_parse_models_names_folders():
    assert compare.parse_models("new=/runs/convert/int8") == ("new", "/runs/convert/int8")
    assert compare.parse_models("/runs/convert/int8") == ("int8", "/runs/convert/int8")


def test_score_set_counts_reported_hands_sides_and_keypoints():
    truths = [
        [_hand("left", (10, 10, 50, 60))],
        [_hand("hand", (100, 100, 140, 150)), _hand("right", (0, 0, 30, 30))],
    ]
    predictions = [
        # right box, wrong side, keypoints exact
        [_hand("right", (10, 10, 50, 60), 0.9)],
        # first hand found with keypoints 30 px off (> 0.2 x 50); second only below threshold
        [_hand("left", (100, 100, 140, 150), 0.8, shift=30.0), _hand("right", (0, 0, 30, 30), 0.3)],
    ]
    row = compare.score_set(truths, predictions, threshold=0.6, iou=0.5)
    assert row["images"] == 2 and row["hands"] == 3
    assert row["recall"] == pytest.approx(2 / 3)  # the 0.3 hand is not reported
    assert row["ap50"] == pytest.approx(1.0)  # every box is found at some score, none false
    assert row["side"] == pytest.approx(0.0)  # one sided label matched, side wrong
    assert row["kp_hands"] == 3
    assert row["pck_found"] == pytest.approx(0.5)  # exact hand 1.0, shifted hand 0.0
    assert row["pck_all"] == pytest.approx(1 / 3)


def test_side_accuracy_is_nan_without_sided_labels():
    truths = [[_hand("hand", (0, 0, 10, 10))]]
    assert math.isnan(compare.side_accuracy(truths, [[_hand("left", (0, 0, 10, 10))]], 0.5))


def test_format_table_has_a_row_per_set_and_models():
    rows = [
        {"set": "a", "models": "m", "images": 2, "hands": 3, "recall": 0.5, "ap50": 0.25,
         "false_per_100": 50.0, "side": float("nan"), "det_side": 0.5, "pck_found": 1.0,
         "pck01_found": 0.75, "nme_found": 0.0625, "pck_all": 0.5},
        {"set": "b", "models": "m", "images": 1, "hands": 1, "recall": 1.0, "ap50": 1.0,
         "side": 1.0},
    ]  # fmt: skip
    lines = compare.format_table(rows).splitlines()
    assert len(lines) == 4
    assert lines[2].split() == [
        "a", "m", "2", "3", "50.0", "25.0", "50.0", "-", "50.0", "-", "100.0", "75.0", "0.062",
        "50.0", "-",
    ]  # fmt: skip
    assert lines[3].split()[-7:] == ["-"] * 7


def test_false_boxes_count_reported_hands_on_no_label():
    from handpose.hand import Hand

    label = Hand("hand", 1.0, np.array([10, 10, 50, 50], np.float32))
    on = Hand("left", 0.9, np.array([12, 12, 52, 52], np.float32))
    face = Hand("right", 0.9, np.array([100, 10, 140, 50], np.float32))
    assert compare.false_boxes([[label], []], [[on, face], [face]]) == 2
    assert compare.false_boxes([[label]], [[on]]) == 0


def test_nme_is_the_mean_distance_over_the_hand_size():
    from models import metrics

    gt = np.zeros((1, 21, 2))
    gt[0, :, 0] = np.linspace(0, 100, 21)  # a hand 100 px wide
    pred = gt.copy()
    pred[0, :, 1] += 5.0  # every keypoint 5 px off
    assert metrics.nme(pred, gt) == pytest.approx(0.05)
    pred[0, 0, 1] += 21 * 10.0  # one keypoint 215 px off: the mean grows by 210 / 21 / 100
    assert metrics.nme(pred, gt) == pytest.approx(0.05 + 0.1)


def test_evaluate_models_runs_every_model_set_on_every_set(tmp_path, capsys):
    from handpose.cli import main

    rng = np.random.default_rng(1)
    for name in ("one", "two"):
        with DatasetWriter(tmp_path / name / "test", "detection", "test") as writer:
            for _ in range(2):
                image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
                writer.add(Sample(image, [_hand("left", (20, 20, 90, 100))]))
    models = str(app_models_dir())
    sheet, out = tmp_path / "sheet.png", tmp_path / "rows.json"
    code = main(["evaluate", "--models", models, "--models", f"again={models}",
                 "--gt", f"one=dir:{tmp_path / 'one'}", "--gt", f"dir:{tmp_path / 'two'}",
                 "--split", "test", "--threads", "1", "--sheet", str(sheet),
                 "--sheet-count", "2", "--json", str(out)])  # fmt: skip
    assert code == 0
    rows = json.loads(out.read_text())
    assert [(r["set"], r["images"], r["hands"]) for r in rows] == [("one", 2, 2), ("two", 2, 2)] * 2
    for row in rows:
        assert 0.0 <= row["recall"] <= 1.0 and 0.0 <= row["ap50"] <= 1.0
    assert [r["models"] for r in rows] == ["int8", "int8", "again", "again"]
    # the same models twice score the same
    assert rows[0]["ap50"] == rows[2]["ap50"] and rows[1]["recall"] == rows[3]["recall"]
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].split()[:4] == ["set", "models", "images", "hands"]
    assert f"wrote {sheet}" in printed
    assert Image.open(sheet).size == (2 * 224, 2 * 224)  # 2 per set, first model set only


def test_evaluate_pred_still_takes_one_gt(tmp_path, capsys):
    from handpose.cli import main

    pred = tmp_path / "p.json"
    pred.write_text(json.dumps({"images": []}))
    assert main(["evaluate", "--pred", str(pred), "--gt", "dir:a", "--gt", "dir:b"]) != 0
    assert "--pred takes one --gt" in capsys.readouterr().err
