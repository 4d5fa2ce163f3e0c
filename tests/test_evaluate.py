"""`handpose evaluate`: predictions JSON against a dataset spec or a COCO keypoints file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from handpose.cli import main
from handpose.hand import Hand
from models.commands.evaluate import evaluate, match_names
from models.data.handpose_format import DatasetWriter
from models.data.sample import Sample


def _hand(rng: np.random.Generator, side: str) -> Hand:
    kp = rng.uniform(20, 90, (21, 2)).astype(np.float32)
    joints = np.concatenate([kp, rng.uniform(300, 400, (21, 1))], axis=1).astype(np.float32)
    box = np.concatenate([kp.min(0) - 4, kp.max(0) + 4])
    return Hand(side, 1.0, box, kp, np.ones(21, np.float32), joints)


@pytest.fixture
def dataset(tmp_path):
    rng = np.random.default_rng(0)
    samples = []
    for i in range(6):
        hands = [_hand(rng, "left" if i % 2 else "right")] if i < 5 else []
        samples.append(Sample(np.zeros((120, 160, 3), np.uint8), hands, name=str(i)))
    with DatasetWriter(tmp_path / "gt", "detection", "test") as writer:
        names = [writer.add(s) for s in samples]
    return tmp_path / "gt", samples, names


def _write_preds(path, names, hands_per_image):
    images = [
        {"file": n.split("/")[-1], "width": 160, "height": 120, "hands": [h.to_json() for h in hs]}
        for n, hs in zip(names, hands_per_image, strict=True)
    ]
    path.write_text(json.dumps({"images": images}))


def test_perfect_predictions_score_one(dataset, tmp_path, capsys):
    folder, samples, names = dataset
    _write_preds(tmp_path / "p.json", names, [s.hands for s in samples])
    code = main(
        [
            "evaluate",
            "--pred",
            str(tmp_path / "p.json"),
            "--gt",
            f"dir:{folder}",
            "--plots",
            str(tmp_path / "plots"),
            "--json",
            str(tmp_path / "m.json"),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "images 6, labelled hands 5" in out and "PCK@0.2 1.000" in out
    result = json.loads((tmp_path / "m.json").read_text())
    assert result["detection"]["map"] == pytest.approx(1.0)
    assert result["detection"]["recall"] == pytest.approx(1.0)
    assert result["pose"]["auc"] > 0.97 and result["pose"]["epe_px"] < 0.05
    assert result["pose"]["bone_angle_deg"] < 0.1
    assert (tmp_path / "plots" / "pck.png").stat().st_size > 1000
    assert (tmp_path / "plots" / "pr.png").stat().st_size > 1000


def test_errors_lower_the_numbers_they_should():
    rng = np.random.default_rng(1)
    truths = [[_hand(rng, "right")] for _ in range(4)]
    preds = []
    for i, (gt,) in enumerate(truths):
        kp = gt.keypoints + (0 if i < 2 else 30)  # two hands with keypoints far off
        side = "left" if i == 3 else "right"  # one with the wrong side
        preds.append([gt.replace(keypoints=kp, handedness=side, score=0.9)])
    preds[0] = []  # one hand missed
    result = evaluate(truths, preds)
    det, pose = result["detection"], result["pose"]
    assert det["recall"] == pytest.approx(0.75)
    assert det["ap_any_side"] == pytest.approx(0.75)
    assert det["ap"]["right"] == pytest.approx(0.5)  # 2 of the 4 right hands, no false positive
    assert pose["detected"] == 3
    assert pose["pck@0.2"] == pytest.approx(0.25)  # only hand 1 is right; the miss counts
    assert pose["pck@0.2_detected"] == pytest.approx(1 / 3)


def test_coco_keypoints_ground_truth(tmp_path, capsys):
    from PIL import Image

    (tmp_path / "images").mkdir()
    Image.new("RGB", (100, 80)).save(tmp_path / "images" / "a.jpg")
    kp = [[20 + 2 * i, 20 + i, 2] for i in range(21)]
    coco = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "bbox": [15, 15, 55, 30],
                "keypoints": sum(kp, []),
                "num_keypoints": 21,
            }
        ],
        "categories": [{"id": 1, "name": "hand"}],
    }
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "hands.json").write_text(json.dumps(coco))
    hand = Hand("hand", 0.8, [15, 15, 70, 45], np.array(kp, np.float32)[:, :2] + 1.0)
    preds = {"images": [{"file": "a.jpg", "width": 100, "height": 80, "hands": [hand.to_json()]}]}
    (tmp_path / "p.json").write_text(json.dumps(preds))
    argv = [
        "evaluate",
        "--pred",
        str(tmp_path / "p.json"),
        "--gt",
        str(tmp_path / "annotations" / "hands.json"),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "any side 1.000" in out and "PCK@0.2 1.000" in out and "EPE 1.4 px" in out


def test_bad_inputs_are_one_line_errors(dataset, tmp_path, capsys):
    folder, samples, names = dataset
    assert main(["evaluate", "--pred", str(tmp_path / "none.json"), "--gt", "x"]) == 2
    assert "handpose predict" in capsys.readouterr().err
    _write_preds(tmp_path / "p.json", [f"other{i}.jpg" for i in range(6)], [[]] * 6)
    assert main(["evaluate", "--pred", str(tmp_path / "p.json"), "--gt", f"dir:{folder}"]) == 2
    assert "no prediction matches" in capsys.readouterr().err


def test_names_match_by_path_suffix():
    found = match_names(["images/000001.jpg", "b/x.png", "y.png"], ["000001.jpg", "a/x.png"])
    assert found == {"images/000001.jpg": "000001.jpg"}
