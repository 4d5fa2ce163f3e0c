"""models.metrics against small hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from handpose.hand import Hand
from models import metrics as M


def hand(side: str, box: list[float], score: float = 1.0) -> Hand:
    return Hand(handedness=side, score=score, box=np.asarray(box, np.float32))


# ----------------------------------------------------------------------------------- detection


def test_perfect_detections_ap_one():
    truths = [
        [hand("left", [0, 0, 10, 10]), hand("right", [20, 20, 40, 40])],
        [hand("left", [5, 5, 9, 9])],
    ]
    result = M.average_precision(truths, truths, iou_threshold=0.5)
    assert result.ap == {"left": 1.0, "right": 1.0}
    assert float(result) == 1.0 and result["map"] == 1.0 and result.recall == 1.0
    assert result.num_gt == {"left": 2, "right": 1}


def test_missing_detection_halves_recall():
    truths = [[hand("hand", [0, 0, 10, 10])], [hand("hand", [50, 50, 60, 60])]]
    preds = [[hand("hand", [0, 0, 10, 10], 0.9)], []]
    result = M.average_precision(preds, truths)
    assert result.recall == 0.5
    assert result.ap["hand"] == pytest.approx(0.5)  # precision 1 up to recall 0.5


def test_false_positive_ranked_first():
    # scores: FP 0.9, TP 0.8 -> precision 0.5 at recall 1 -> AP 0.5
    truths = [[hand("hand", [0, 0, 10, 10])]]
    preds = [[hand("hand", [100, 100, 110, 110], 0.9), hand("hand", [0, 0, 10, 10], 0.8)]]
    assert M.average_precision(preds, truths).ap["hand"] == pytest.approx(0.5)
    # the reverse order: TP first -> AP 1 (the later FP does not lower the envelope)
    preds = [[hand("hand", [100, 100, 110, 110], 0.7), hand("hand", [0, 0, 10, 10], 0.8)]]
    assert M.average_precision(preds, truths).ap["hand"] == pytest.approx(1.0)


def test_duplicate_and_low_iou_and_wrong_class():
    truths = [[hand("left", [0, 0, 10, 10])]]
    shifted = [0, 0, 10, 10 * 0.45]  # IoU 0.45 < 0.5
    preds = [[hand("left", [0, 0, 10, 10], 0.9), hand("left", [0, 0, 10, 10], 0.8)]]
    r = M.average_precision(preds, truths)  # duplicate is a false positive after the TP
    assert r.ap["left"] == 1.0 and r.recall == 1.0
    assert M.average_precision([[hand("left", shifted)]], truths).ap["left"] == 0.0
    wrong = M.average_precision([[hand("right", [0, 0, 10, 10])]], truths)
    assert wrong.ap["left"] == 0.0 and np.isnan(wrong.ap["right"]) and wrong.map == 0.0
    assert M.average_precision([[hand("left", shifted)]], truths, iou_threshold=0.4).map == 1.0


def test_tuple_inputs_and_empty_cases():
    truths = [(np.array([[0, 0, 10, 10]]), np.array([0])), (np.zeros((0, 4)), np.zeros(0))]
    preds = [
        (np.array([[0, 0, 10, 10]]), np.array([0.7]), np.array([0])),
        (np.array([[5, 5, 8, 8]]), np.array([0.9]), np.array([0])),
    ]
    r = M.average_precision(preds, truths, classes=[0, 1])
    # ranking: FP (0.9, image 2), TP (0.7) -> AP 0.5; class 1 has no ground truth
    assert r.ap[0] == pytest.approx(0.5) and np.isnan(r.ap[1]) and r.map == pytest.approx(0.5)
    none = M.average_precision([[]], [[hand("hand", [0, 0, 1, 1])]])
    assert none.ap["hand"] == 0.0 and none.recall == 0.0
    empty = M.average_precision([[]], [[]])
    assert np.isnan(empty.map) and np.isnan(empty.recall)
    with pytest.raises(ValueError):
        M.average_precision([[]], [])


def test_voc_ap_all_point_interpolation():
    # precision 1, 0.5, 0.667 at recall 1/3, 1/3, 2/3 -> envelope 1, 0.667, 0.667
    ap = M.voc_ap(np.array([1 / 3, 1 / 3, 2 / 3]), np.array([1.0, 0.5, 2 / 3]))
    assert ap == pytest.approx(1 / 3 + 1 / 3 * 2 / 3)


# ---------------------------------------------------------------------------------------- pose


def pose_case():
    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 100, (3, 21, 2))
    gt[:, 0] = [0, 0]
    gt[:, 1] = [100, 50]  # box size max(w, h) = 100 for every hand
    visible = np.ones((3, 21), bool)
    return gt, visible


def test_perfect_pose():
    gt, vis = pose_case()
    curve = M.pck(gt, gt, vis)
    assert isinstance(curve, M.PCKCurve) and len(curve.thresholds) == 51
    assert (curve.values == 1.0).all()
    assert M.pck_at(gt, gt, vis) == 1.0 and M.auc(curve) == pytest.approx(1.0)
    assert M.end_point_error(gt, gt, vis) == 0.0
    np.testing.assert_allclose(M.keypoint_box_sizes(gt, vis), 100.0)


def test_shifted_prediction():
    gt, vis = pose_case()
    pred = gt + [3.3, 4.4]  # 5.5 px = 0.055 of the 100 px box
    assert M.end_point_error(pred, gt, vis) == pytest.approx(5.5)
    assert M.pck(pred, gt, vis, threshold=0.054) == 0.0
    assert M.pck(pred, gt, vis, threshold=0.056) == 1.0
    curve = M.pck(pred, gt, vis, thresholds=[0.0, 0.1, 0.5])
    np.testing.assert_allclose(curve.values, [0, 1, 1])
    # AUC over 0..0.5 in steps of 0.01: PCK 0 up to 0.05, 1 from 0.06 -> (0.005 + 0.44) / 0.5
    assert M.auc(pred, gt, vis) == pytest.approx((0.005 + 0.44) / 0.5)
    # a given box size (e.g. of the labelled hand box) replaces the keypoint box
    assert M.pck(pred, gt, vis, np.full(3, 20.0), threshold=0.2) == 0.0
    assert M.pck(pred, gt, vis, np.full(3, 20.0), threshold=0.3) == 1.0


def test_visibility_and_half_correct():
    gt, vis = pose_case()
    pred = gt.copy()
    pred[:, 10:] += 1000.0  # keypoints 10..20 wrong
    vis[:, 11:] = False  # ... but only keypoint 10 of them counts
    assert M.pck_at(pred, gt, vis) == pytest.approx(10 / 11)
    assert M.end_point_error(pred, gt, vis) == pytest.approx(1000 * np.sqrt(2) / 11)
    assert np.isnan(M.pck_at(pred, gt, np.zeros_like(vis)))
    assert np.isnan(M.end_point_error(pred, gt, np.zeros_like(vis)))


def test_bone_angle_error():
    gt = np.tile(np.array([1.0, 0.0, 0.0]), (2, 20, 1))
    pred = gt.copy()
    assert M.bone_angle_error_deg(pred, gt) == pytest.approx(0.0, abs=1e-6)
    pred[0] = [0.0, 5.0, 0.0]  # 90 degrees on half of the bones
    assert M.bone_angle_error_deg(pred, gt) == pytest.approx(45.0)
    gt2 = gt.copy()
    gt2[0] = 0.0  # unknown ground truth is left out
    assert M.bone_angle_error_deg(pred, gt2) == pytest.approx(0.0, abs=1e-6)
    pred[1] = -gt[1] * 3
    assert M.bone_angle_error_deg(pred, gt, mask=np.array([[False] * 20, [True] * 20])) == (
        pytest.approx(180.0)
    )
