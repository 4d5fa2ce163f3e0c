"""`handpose predict`: every image of a folder (recursively) through the pipeline, to JSON."""

import json

import numpy as np
import pytest
from conftest_app import app_models_dir, clip_frames
from PIL import Image

from handpose.cli import main
from handpose.hand import Hand


@pytest.mark.slow
def test_predict_writes_hands_in_image_pixels(tmp_path, capsys):
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    frames = clip_frames(2, (240, 320))
    Image.fromarray(frames[0]).save(images / "a.png")
    Image.fromarray(np.ascontiguousarray(frames[1][:200, :150])).save(images / "sub" / "b.jpg")
    (images / "broken.jpg").write_bytes(b"nope")
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"score_threshold": 0.3}))
    out = tmp_path / "preds.json"
    code = main(
        [
            "predict",
            "--images",
            str(images),
            "--out",
            str(out),
            "--models",
            str(app_models_dir()),
            "--settings",
            str(settings),
        ]
    )
    assert code == 0
    data = json.loads(out.read_text())
    assert [(i["file"], i["width"], i["height"]) for i in data["images"]] == [
        ("a.png", 320, 240),
        ("sub/b.jpg", 150, 200),
    ]
    assert data["region"] == "letterbox"
    for entry in data["images"]:
        assert entry["hands"], "threshold 0.3 lets untrained detections through"
        for record in entry["hands"]:
            hand = Hand.from_json(record)
            assert 0 <= hand.box[0] < hand.box[2] <= entry["width"]
            assert 0 <= hand.box[1] < hand.box[3] <= entry["height"]
            assert hand.keypoints.shape == (21, 2) and hand.joints_3d.shape == (21, 3)


def test_predict_without_images_is_a_one_line_error(tmp_path, capsys):
    code = main(["predict", "--images", str(tmp_path), "--out", str(tmp_path / "p.json")])
    assert code == 2
    assert "no .jpg/.png images" in capsys.readouterr().err
