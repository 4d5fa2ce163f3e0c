"""`handpose data teacher`: matching teacher hands to human boxes, the stats, the written splits.

Unit tests use hand-made `Hand`s; the end-to-end test runs the command through the CLI on a
tiny labelImg set with the tiny MediaPipe-layout teacher (`conftest_mediapipe`: a bright square
on a dark frame is an upright right hand).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from handpose.errors import HandposeError
from handpose.hand import Hand
from models.data.teacher import (
    PROJECT_ROOT,
    TeacherStats,
    check_out_dir,
    consensus,
    keypoint_nme,
    label_boxes,
    label_unboxed,
    match_teacher,
    mirror_hands,
)

WIDTH, HEIGHT = 100, 80


def human(box, side="hand") -> Hand:
    """A human box label (as the voc / yolo loaders make them)."""
    return Hand(side, 1.0, box)


def teacher(box, side="right", score=0.9, presence=0.95, handedness=0.9, keypoints=True) -> Hand:
    """A teacher hand: keypoints on the diagonal of `box`, 3D joints rising along z (mm,
    wrist-relative), MediaPipe-like extras."""
    x0, y0, x1, y1 = box
    points = np.linspace([x0, y0], [x1, y1], 21) if keypoints else None
    joints = None
    if points is not None:
        joints = np.column_stack([points - points[0], np.arange(21.0) * 5]).astype(np.float32)
    return Hand(
        side,
        score,
        box,
        keypoints=points,
        keypoint_scores=None if points is None else np.full(21, presence),
        joints_3d=joints,
        extras={"presence": presence, "handedness_score": handedness},
    )


def counts(stats: TeacherStats) -> dict[str, int]:
    return {k: v for k, v in vars(stats).items() if v}


# ---------------------------------------------------------------------------------- match_teacher


def test_match_teacher_is_greedy_one_to_one_by_iou():
    a, b = human([0, 0, 10, 10]), human([20, 0, 30, 10])
    t_b = teacher([21, 0, 31, 10])  # IoU with b: 90 / 110 = 0.818
    t_a = teacher([0, 0, 10, 10])  # IoU with a: 1
    assert match_teacher([a, b], [t_b, t_a], 0.3) == [(0, 1), (1, 0)]  # best pair first
    assert match_teacher([a, b], [t_b, t_a], 0.9) == [(0, 1)]
    assert match_teacher([a, b], [t_b, t_a], 0.81) == [(0, 1), (1, 0)]
    # two teacher hands on one box: the better one wins, the other stays unmatched
    assert match_teacher([a], [teacher([1, 0, 11, 10]), t_a], 0.3) == [(0, 1)]
    # two boxes on one teacher hand: the one it overlaps more
    assert match_teacher([human([0, 0, 12, 10]), a], [t_a], 0.3) == [(1, 0)]
    # no overlap never matches, even at a threshold of 0
    assert match_teacher([a], [teacher([50, 50, 60, 60])], 0.0) == []
    assert match_teacher([], [t_a], 0.3) == []
    assert match_teacher([a], [], 0.3) == []


# ----------------------------------------------------------------------------------- label_boxes


def test_label_boxes_keeps_human_box_with_teacher_keypoints_and_side():
    stats = TeacherStats()
    box = human([10, 10, 40, 50])
    # the teacher's box is tighter (its keypoints' box) and one keypoint lies left of the image
    taught = teacher([12, 14, 38, 46], side="left")
    taught.keypoints[0] = [-3.0, 20.0]
    (label,) = label_boxes([box], [taught], WIDTH, HEIGHT, 0.3, 0.5, stats)
    assert label.handedness == "left"
    assert label.box.tolist() == [10.0, 10.0, 40.0, 50.0]  # the human box
    np.testing.assert_array_equal(label.keypoints, taught.keypoints)
    expected = np.ones(21, np.float32)
    expected[0] = 0.0  # visibility: outside the image
    np.testing.assert_array_equal(label.keypoint_scores, expected)
    assert label.score == 1.0
    np.testing.assert_array_equal(label.joints_3d, taught.joints_3d)  # the 3D teaches `vect`
    assert counts(stats) == {"boxes": 1, "keypoints": 1}


def test_label_boxes_counts_missed_doubtful_disagreeing_and_extra():
    stats = TeacherStats()
    boxes = [
        human([10, 10, 40, 50]),  # matched, confident: keypoints
        human([60, 10, 90, 50]),  # matched, doubtful (presence 0.3)
        human([10, 55, 40, 80], "left"),  # matched, the teacher says right
        human([60, 55, 90, 79]),  # no teacher hand: missed
        human([45, 0, 55, 8], "right"),  # matched, the teacher agrees on right
        human([0, 60, 8, 70]),  # matched by a teacher hand without keypoints: doubtful
    ]
    hands = [
        teacher([0, 0, 6, 6]),  # confident, matches nothing: extra
        teacher([61, 12, 89, 48], presence=0.3),
        teacher([11, 56, 39, 79], side="right"),
        teacher([12, 12, 38, 48], side="left"),
        teacher([70, 70, 99, 79], score=0.2),  # doubtful and unmatched: not an extra
        teacher([45, 0, 55, 8], side="right", handedness=0.6),
        teacher([0, 60, 8, 70], keypoints=False),
    ]
    labels = label_boxes(boxes, hands, WIDTH, HEIGHT, 0.3, 0.5, stats)
    assert [h.handedness for h in labels] == ["left", "hand", "left", "hand", "right", "hand"]
    assert [h.box.tolist() for h in labels] == [h.box.tolist() for h in boxes]
    assert [h.keypoints is not None for h in labels] == [True, False, False, False, True, False]
    assert counts(stats) == {
        "boxes": 6,
        "keypoints": 2,
        "missed": 1,
        "doubtful": 2,
        "side_disagree": 1,
        "extra": 1,
    }
    # --min-score above the handedness confidence 0.6 makes the agreeing right hand doubtful
    stats = TeacherStats()
    label_boxes(boxes, hands, WIDTH, HEIGHT, 0.3, 0.7, stats)
    assert counts(stats) == {
        "boxes": 6,
        "keypoints": 1,
        "missed": 1,
        "doubtful": 3,
        "side_disagree": 1,
        "extra": 1,
    }
    # stats accumulate over images; an image without boxes counts confident teacher hands
    assert label_boxes([], [teacher([1, 1, 9, 9])], WIDTH, HEIGHT, 0.3, 0.7, stats) == []
    assert stats.extra == 2 and stats.boxes == 6


def test_label_boxes_iou_threshold():
    box = human([10, 10, 40, 50])
    loose = teacher([20, 20, 40, 50])  # IoU 600 / 1200 = 0.5
    stats = TeacherStats()
    (label,) = label_boxes([box], [loose], WIDTH, HEIGHT, 0.3, 0.5, stats)
    assert label.keypoints is not None and stats.keypoints == 1
    stats = TeacherStats()
    (label,) = label_boxes([box], [loose], WIDTH, HEIGHT, 0.6, 0.5, stats)
    assert label.keypoints is None and label.handedness == "hand"
    assert counts(stats) == {"boxes": 1, "missed": 1, "extra": 1}


# --------------------------------------------------------------------------------- label_unboxed


def test_label_unboxed_keeps_exactly_one_confident_hand():
    stats = TeacherStats()
    assert label_unboxed("hand", [], WIDTH, HEIGHT, 0.5, stats) is None
    assert label_unboxed("hand", [teacher([1, 1, 30, 30], presence=0.2)], WIDTH, HEIGHT, 0.5,
                         stats) is None  # fmt: skip
    assert label_unboxed("hand", [teacher([1, 1, 30, 30], keypoints=False)], WIDTH, HEIGHT, 0.5,
                         stats) is None  # fmt: skip
    two = [teacher([1, 1, 30, 30]), teacher([50, 1, 80, 30], side="left")]
    assert label_unboxed("hand", two, WIDTH, HEIGHT, 0.5, stats) is None
    assert label_unboxed("left", [teacher([1, 1, 30, 30])], WIDTH, HEIGHT, 0.5, stats) is None
    assert counts(stats) == {"no_hand": 3, "several": 1, "side_disagree": 1}
    stats = TeacherStats()
    # the teacher's box is clipped to the image; its side is kept for an unknown-side class
    (label,) = label_unboxed("hand", [teacher([70, 50, 110, 90], side="left")], WIDTH, HEIGHT,
                             0.5, stats)  # fmt: skip
    assert label.handedness == "left"
    assert label.box.tolist() == [70.0, 50.0, 100.0, 80.0]
    assert label.keypoints.shape == (21, 2) and label.score == 1.0
    assert int(label.keypoint_scores.sum()) == 15  # (70 + 2k, 50 + 2k) inside 100 x 80: k < 15
    (label,) = label_unboxed("right", [teacher([5, 5, 30, 40])], WIDTH, HEIGHT, 0.5, stats)
    assert label.handedness == "right"
    assert counts(stats) == {"keypoints": 2}


# --------------------------------------------------------------------------------- check_out_dir


def test_check_out_dir_refuses_the_project(tmp_path, monkeypatch):
    assert check_out_dir(tmp_path / "teacher") == tmp_path / "teacher"
    for inside in (PROJECT_ROOT, PROJECT_ROOT / "models" / "teacher", PROJECT_ROOT / "a" / ".."):
        with pytest.raises(HandposeError, match="is inside the project"):
            check_out_dir(inside)
    monkeypatch.chdir(PROJECT_ROOT / "models")
    with pytest.raises(HandposeError, match="is inside the project"):
        check_out_dir(Path("teacher-out"))
    link = tmp_path / "link"
    link.symlink_to(PROJECT_ROOT / "models", target_is_directory=True)
    with pytest.raises(HandposeError, match="is inside the project"):
        check_out_dir(link / "teacher-out")


def test_cli_refuses_out_inside_the_project(tmp_path, capsys):
    from handpose.cli import main as cli_main

    root = tmp_path / "voc"
    root.mkdir()
    out = PROJECT_ROOT / "tests" / "teacher-test-never-written"
    code = cli_main(["data", "teacher", f"voc:{root}", "--out", str(out)])
    assert code == 2
    assert "is inside the project" in capsys.readouterr().err
    assert not out.exists()


# ------------------------------------------------------------------------------------ end to end


def _voc_pair(folder: Path, stem: str, image: np.ndarray, name: str, box) -> None:
    from PIL import Image

    Image.fromarray(image).save(folder / f"{stem}.png")
    h, w = image.shape[:2]
    x0, y0, x1, y1 = box
    (folder / f"{stem}.xml").write_text(
        f"<annotation>\n\t<folder>voc</folder>\n\t<filename>{stem}.png</filename>\n"
        f"\t<size>\n\t\t<width>{w}</width>\n\t\t<height>{h}</height>\n\t\t<depth>3</depth>\n"
        f"\t</size>\n\t<object>\n\t\t<name>{name}</name>\n\t\t<difficult>0</difficult>\n"
        f"\t\t<bndbox>\n\t\t\t<xmin>{x0}</xmin>\n\t\t\t<ymin>{y0}</ymin>\n"
        f"\t\t\t<xmax>{x1}</xmax>\n\t\t\t<ymax>{y1}</ymax>\n\t\t</bndbox>\n\t</object>\n"
        "</annotation>\n",
        encoding="utf-8",
    )


def test_teacher_command_on_a_voc_set(tmp_path, capsys):
    pytest.importorskip("tensorflow")
    from conftest_mediapipe import palm_frame, tiny_mediapipe_dir

    from handpose.cli import main as cli_main
    from models.data.handpose_format import HandposeDataset

    root = tmp_path / "voc"
    root.mkdir()
    # a.png: a bright square the tiny teacher sees as a right hand (box about
    # [103, 66, 187, 134]); b.png: a dark frame where it sees nothing
    _voc_pair(root, "a", palm_frame((150, 120), 30, (240, 320)), "palm", (100, 60, 190, 140))
    _voc_pair(root, "b", np.full((240, 320, 3), 20, np.uint8), "dark", (20, 20, 60, 70))
    (root / "test.txt").write_text("a\nb\n", encoding="utf-8")
    models = tiny_mediapipe_dir() / "full"
    out = tmp_path / "taught"
    code = cli_main(
        ["data", "teacher", f"voc:{root}?classes=palm:hand;dark:left", "--out", str(out),
         "--splits", "test", "--models", str(models)]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.splitlines() == [
        f"{out / 'test'}: images 2, written 2, boxes 2, keypoints 1, missed 1, doubtful 0, "
        "side_disagree 0, extra 0, inconsistent 0, no_hand 0, several 0, unreadable 0"
    ]
    assert sorted(p.name for p in out.iterdir()) == ["test"]
    info = json.loads((out / "test" / "dataset.json").read_text())
    assert info["count"] == 2 and info["task"] == "detection"
    assert info["source"] == "teacher:mediapipe-full"
    assert "--splits test" in info["command"] and "--iou 0.3 --min-score 0.5" in info["command"]
    lines = (out / "test" / "labels.jsonl").read_text().splitlines()
    assert len(lines) == 2
    records = [json.loads(line) for line in lines]
    assert [r["file"] for r in records] == ["images/000000.jpg", "images/000001.jpg"]
    (a,) = records[0]["hands"]
    assert a["handedness"] == "right" and a["box"] == [100.0, 60.0, 190.0, 140.0]
    assert len(a["keypoints"]) == 21 and all(k[2] == 1.0 for k in a["keypoints"])
    assert len(a["joints_3d"]) == 21 and a["joints_3d"][0] == [0.0, 0.0, 0.0]  # wrist-relative
    (b,) = records[1]["hands"]
    assert b == {"handedness": "left", "score": 1.0, "box": [20.0, 20.0, 60.0, 70.0]}
    dataset = HandposeDataset(out / "test")
    assert len(dataset) == 2 and dataset[0].hands[0].keypoints.shape == (21, 2)
    # the keypoints are the teacher's: inside its hand, around the bright square
    kp = dataset[0].hands[0].keypoints
    assert kp[:, 0].min() > 100 and kp[:, 0].max() < 190
    assert kp[:, 1].min() > 60 and kp[:, 1].max() < 140


def test_mirror_hands_puts_a_mirrored_image_s_hand_back_and_swaps_its_side():
    hand = teacher((10, 20, 40, 60), side="left")
    (back,) = mirror_hands(mirror_hands([hand], WIDTH), WIDTH)
    np.testing.assert_allclose(back.box, hand.box)
    np.testing.assert_allclose(back.keypoints, hand.keypoints)
    (once,) = mirror_hands([hand], WIDTH)
    assert once.handedness == "right"
    np.testing.assert_allclose(once.box, [60, 20, 90, 60])
    np.testing.assert_allclose(once.keypoints[0], [WIDTH - 10, 20])
    np.testing.assert_allclose(back.joints_3d, hand.joints_3d)
    np.testing.assert_allclose(once.joints_3d[:, 0], -hand.joints_3d[:, 0])  # x mirrored
    np.testing.assert_allclose(once.joints_3d[:, 1:], hand.joints_3d[:, 1:])


def test_consensus_averages_agreeing_teachers_and_marks_disagreement():
    main = teacher((10, 10, 50, 50))
    near = teacher((12, 10, 52, 50))  # 2 px off a 40 px hand: NME 0.05
    far = teacher((30, 10, 70, 50))  # 20 px off: NME 0.5
    (agreed,) = consensus([main], [[near]], 0.3, 0.1)
    assert not agreed.extras.get("inconsistent")
    np.testing.assert_allclose(agreed.keypoints, (main.keypoints + near.keypoints) / 2)
    tilted = near.replace(joints_3d=near.joints_3d * np.array([1, 1, 3], np.float32))
    (agreed_3d,) = consensus([main], [[tilted]], 0.3, 0.1)
    np.testing.assert_allclose(agreed_3d.joints_3d, (main.joints_3d + tilted.joints_3d) / 2)
    assert keypoint_nme(main.keypoints, near.keypoints) == pytest.approx(0.05)
    for other in ([far], [teacher((12, 10, 52, 50), side="left")], []):
        (checked,) = consensus([main], [other], 0.3, 0.1)
        assert checked.extras["inconsistent"] is True
        np.testing.assert_allclose(checked.keypoints, main.keypoints)
    # no second opinion asked: the hand is kept as it is
    assert consensus([main], [], 0.3, 0.1)[0] is main


def test_inconsistent_teacher_hands_give_no_keypoints():
    stats = TeacherStats()
    marked = teacher((10, 10, 50, 50)).replace(extras={"inconsistent": True, "presence": 0.95})
    (label,) = label_boxes([human((8, 8, 52, 52))], [marked], WIDTH, HEIGHT, 0.3, 0.5, stats)
    assert label.keypoints is None and stats.inconsistent == 1 and stats.keypoints == 0
