"""handpose.codec.boxes: default boxes, SSD encode/decode round trips, NMS and edge cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handpose.codec import boxes as B
from handpose.errors import ModelFileError

PRIORS = B.default_boxes(B.DefaultBoxConfig())


def perfect_logits(labels: np.ndarray, num_classes: int, margin: float = 12.0) -> np.ndarray:
    """Logits (N, C + 1) that put almost all probability on the target label."""
    logits = np.zeros((len(labels), num_classes + 1), np.float32)
    logits[np.arange(len(labels)), labels] = margin
    return logits


def test_default_box_layout_at_224():
    config = B.DefaultBoxConfig()
    assert PRIORS.shape == (2100, 4) == (config.num_boxes, 4)
    assert PRIORS.dtype == np.float32
    # the seed truncates int(224 * 2^k * 0.025) = int(5.6), int(11.2), ...
    np.testing.assert_allclose(config.sizes, [5, 11, 22, 44, 89, 179, 224])
    exact = B.DefaultBoxConfig(round_sizes=False).sizes
    np.testing.assert_allclose(exact, [5.6, 11.2, 22.4, 44.8, 89.6, 179.2, 224.0])
    assert B.DefaultBoxConfig(input_size=256).sizes == (6, 12, 25, 51, 102, 204, 256)
    # first map: step 8, cell (0, 0) then (0, 1) (row-major), two boxes per cell
    np.testing.assert_allclose(PRIORS[0], [4, 4, 5, 5], rtol=1e-6)
    side = np.sqrt(5 * 11)
    np.testing.assert_allclose(PRIORS[1], [4, 4, side, side], rtol=1e-6)
    np.testing.assert_allclose(PRIORS[2, :2], [12, 4])
    np.testing.assert_allclose(PRIORS[2 * 28, :2], [4, 12])  # second row
    # second map starts after 2 * 28 * 28 boxes, step 16
    np.testing.assert_allclose(PRIORS[2 * 784], [8, 8, 11, 11], rtol=1e-6)
    # last map: one cell at the centre, sides s_5 and sqrt(s_5 * 224)
    np.testing.assert_allclose(PRIORS[-2], [112, 112, 179, 179], rtol=1e-6)
    np.testing.assert_allclose(PRIORS[-1, 2], np.sqrt(179 * 224), rtol=1e-6)
    # 4x4 map covers the input evenly (step 56)
    start = 2 * (784 + 196 + 49)
    np.testing.assert_allclose(PRIORS[start : start + 8 : 2, 0], [28, 84, 140, 196])


def test_config_dict_round_trip_and_errors():
    config = B.DefaultBoxConfig(input_size=256, grids=(32, 16, 8, 4, 2, 1), round_sizes=False)
    data = json.loads(json.dumps(config.to_dict()))
    assert B.DefaultBoxConfig.from_dict(data) == config
    assert B.DefaultBoxConfig.from_dict({}) == B.DefaultBoxConfig()
    assert len(B.default_boxes(config)) == 2 * (1024 + 256 + 64 + 16 + 4 + 1)
    with pytest.raises(ModelFileError, match="unknown keys"):
        B.DefaultBoxConfig.from_dict({"input_size": 224, "aspect_ratios": [2]})
    with pytest.raises(ModelFileError, match="invalid"):
        B.DefaultBoxConfig.from_dict({"grids": []})


def test_box_iou():
    a = np.array([[0, 0, 10, 10], [5, 5, 15, 15]], float)
    b = np.array([[0, 0, 10, 10], [10, 10, 20, 20], [0, 0, 0, 0]], float)
    iou = B.box_iou(a, b)
    np.testing.assert_allclose(iou, [[1, 0, 0], [25 / 175, 25 / 175, 0]])
    assert B.box_iou(np.zeros((0, 4)), b).shape == (0, 3)


_coord = st.floats(-50.0, 700.0, width=32)


@settings(max_examples=300, deadline=None)
@given(st.lists(_coord, min_size=8, max_size=8), st.booleans())
def test_iou_of_one_pair_is_box_iou_to_the_bit(coords, shared_corner):
    """`iou` does box_iou's float64 arithmetic on Python floats: the same number exactly, for
    inverted, empty and touching boxes too."""
    a, b = np.array(coords[:4], np.float32), np.array(coords[4:], np.float32)
    if shared_corner:
        b[:2] = a[2:]
    assert B.iou(a, b) == float(B.box_iou(a, b)[0, 0])
    assert B.iou(a, a) == float(B.box_iou(a, a)[0, 0])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(_coord, min_size=4, max_size=4), min_size=0, max_size=16),
    st.floats(0.0, 1.0),
    st.integers(0, 20),
)
def test_nms_of_few_boxes_on_python_floats_keeps_what_the_iou_matrix_keeps(
    coords, threshold, limit
):
    """Up to _PYTHON_NMS_MAX boxes NMS walks them on Python floats: the same indices as the
    IoU-matrix path, ties and the limit included."""
    rng = np.random.default_rng(len(coords))
    boxes = np.array(coords, np.float32).reshape(-1, 4)
    boxes[:, 2:] = boxes[:, :2] + np.abs(boxes[:, 2:] - boxes[:, :2]) / 4  # overlapping boxes
    scores = rng.choice([0.5, 0.7, 0.9], len(boxes))  # ties
    fast = B.non_maximum_suppression(boxes, scores, threshold, limit)
    saved = B._PYTHON_NMS_MAX
    B._PYTHON_NMS_MAX = -1
    try:
        matrix = B.non_maximum_suppression(boxes, scores, threshold, limit)
    finally:
        B._PYTHON_NMS_MAX = saved
    np.testing.assert_array_equal(fast, matrix)
    assert fast.dtype == np.int64


def test_iou_of_non_finite_boxes_is_box_iou():
    a = np.array([0.0, np.nan, 10.0, 10.0], np.float32)
    b = np.array([0.0, 0.0, np.inf, 10.0], np.float32)
    for first, second in ((a, b), (b, a), (b, b)):
        with np.errstate(invalid="ignore"):  # inf - inf in box_iou
            want = float(B.box_iou(first, second)[0, 0])
            got = B.iou(first, second)
        assert got == want or (np.isnan(got) and np.isnan(want))


def test_nms():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    np.testing.assert_array_equal(B.non_maximum_suppression(boxes, scores, 0.45), [3, 2])
    np.testing.assert_array_equal(B.non_maximum_suppression(boxes, scores, 0.45, limit=1), [3])
    # IoU of boxes 0 and 1 is 81/119 = 0.68: a threshold above it keeps both
    np.testing.assert_array_equal(B.non_maximum_suppression(boxes, scores, 0.7), [3, 1, 2])
    assert B.non_maximum_suppression(np.zeros((0, 4)), np.zeros(0), 0.5).size == 0


def test_softmax():
    p = B.softmax(np.array([[0.0, 0.0], [1000.0, 0.0]], np.float32))
    np.testing.assert_allclose(p, [[0.5, 0.5], [1.0, 0.0]])
    assert p.dtype == np.float32


def test_encode_formula_and_best_prior_match():
    priors = np.array([[50, 50, 20, 20], [50, 50, 40, 40], [150, 150, 20, 20]], np.float32)
    gt = np.array([[42, 44, 62, 54]], float)  # cx 52, cy 49, w 20, h 10: IoU 0.5 with prior 0
    loc, labels = B.encode(priors, gt, np.array([1]))
    np.testing.assert_array_equal(labels, [2, 0, 0])
    np.testing.assert_allclose(loc[0], [2 / (20 * 0.1), -1 / (20 * 0.1), 0, np.log(0.5) / 0.2])
    np.testing.assert_array_equal(loc[1:], 0)
    # a tiny box below the IoU threshold still takes its best prior
    loc, labels = B.encode(priors, np.array([[148, 148, 150, 150]]), np.array([0]))
    np.testing.assert_array_equal(labels, [0, 0, 1])


def test_encode_two_boxes_best_prior_is_not_stolen():
    priors = np.array([[50, 50, 20, 20], [60, 50, 20, 20]], np.float32)
    # both gts prefer prior 0; bipartite matching gives the second gt prior 1
    gt = np.array([[40, 40, 60, 60], [44, 40, 64, 60]], float)
    _, labels = B.encode(priors, gt, np.array([0, 1]), iou_threshold=0.99)
    np.testing.assert_array_equal(labels, [1, 2])


def test_encode_empty_and_bad_labels():
    loc, labels = B.encode(PRIORS, np.zeros((0, 4)), np.zeros(0, int))
    assert loc.shape == (2100, 4) and loc.dtype == np.float32 and not loc.any()
    assert labels.shape == (2100,) and labels.dtype == np.int32 and not labels.any()
    with pytest.raises(ValueError, match="0..1"):
        B.encode(PRIORS, np.array([[0, 0, 50, 50]]), np.array([2]), num_classes=2)
    with pytest.raises(ValueError):
        B.encode(PRIORS, np.array([[0, 0, 50, 50]]), np.array([-1]))


def round_trip(gt: np.ndarray, labels: np.ndarray, classes: tuple[str, ...]) -> list:
    loc, lab = B.encode(PRIORS, gt, labels)
    return B.decode(loc, perfect_logits(lab, len(classes)), PRIORS, classes)


def test_decode_round_trip_two_classes():
    gt = np.array([[20, 30, 80, 110], [120, 60, 210, 150]], float)
    hands = round_trip(gt, np.array([0, 1]), ("left", "right"))
    assert [h.handedness for h in hands] == ["left", "right"] or [h.handedness for h in hands] == [
        "right",
        "left",
    ]
    by_side = {h.handedness: h for h in hands}
    np.testing.assert_allclose(by_side["left"].box, gt[0], atol=1e-3)
    np.testing.assert_allclose(by_side["right"].box, gt[1], atol=1e-3)
    assert by_side["left"].extras["label"] == 0 and by_side["right"].extras["class_name"] == "right"
    assert all(h.score > 0.99 for h in hands)


def test_decode_fully_overlapping_boxes():
    box = np.array([[60.0, 50.0, 150.0, 160.0]])
    a, b = 2 * (784 + 196) + 2 * (3 * 7 + 3), 2 * (784 + 196) + 2 * (2 * 7 + 2)  # two 7x7 cells
    loc = np.zeros((2100, 4), np.float32)
    for i in (a, b):  # both priors decode to exactly the same box
        loc[i] = B.encode(PRIORS[i : i + 1], box, np.array([0]))[0][0]
    logits = np.zeros((2100, 3), np.float32)
    logits[:, 0] = 10.0  # background everywhere else
    logits[a], logits[b] = (0.0, 10.0, 0.0), (0.0, 9.0, 0.0)
    for merge in (True, False):  # same class: NMS keeps one
        (hand,) = B.decode(loc, logits, PRIORS, ("left", "right"), merge_sides=merge)
        assert hand.handedness == "left"
        fg = B.softmax(logits[a])[1:]
        assert hand.score == pytest.approx(fg.sum() if merge else fg[0])
        np.testing.assert_allclose(hand.box, box[0], atol=1e-3)
    logits[b] = (0.0, 0.0, 9.0)  # other class: per-class NMS keeps both
    hands = B.decode(loc, logits, PRIORS, ("left", "right"), merge_sides=False)
    assert [h.handedness for h in hands] == ["left", "right"]
    np.testing.assert_allclose(hands[1].box, box[0], atol=1e-3)
    (hand,) = B.decode(loc, logits, PRIORS, ("left", "right"))  # merged: one hand, one box
    assert hand.handedness == "left"


def test_decode_hand_of_unsure_side_is_one_confident_detection():
    gt = np.array([[40, 40, 120, 140]], float)
    loc, lab = B.encode(PRIORS, gt, np.array([0]))
    logits = perfect_logits(lab, 2)
    positive = lab > 0
    logits[positive] = (0.0, 2.2, 2.0)  # p(left) ~ 0.52, p(right) ~ 0.42, p(hand) ~ 0.94
    assert B.decode(loc, logits, PRIORS, ("left", "right"), merge_sides=False) == []
    (hand,) = B.decode(loc, logits, PRIORS, ("left", "right"))
    assert hand.handedness == "left" and hand.score == pytest.approx(0.943, abs=0.01)
    assert hand.extras["class_probability"] == pytest.approx(0.518, abs=0.01)
    np.testing.assert_allclose(hand.box, gt[0], atol=1e-3)


def test_decode_single_class_hand_and_unknown_name():
    gt = np.array([[100, 100, 140, 170]], float)
    (hand,) = round_trip(gt, np.array([0]), ("hand",))
    assert hand.handedness == "hand"
    np.testing.assert_allclose(hand.box, gt[0], atol=1e-3)
    loc, lab = B.encode(PRIORS, gt, np.array([0]))
    (palm,) = B.decode(loc, perfect_logits(lab, 1), PRIORS, ("palm",))
    assert palm.handedness == "hand" and palm.extras["class_name"] == "palm"
    (empty,) = B.decode(loc, perfect_logits(lab, 1), PRIORS, ())
    assert empty.handedness == "hand"


def test_decode_no_boxes_and_all_below_threshold():
    loc = np.zeros((2100, 4), np.float32)
    background = perfect_logits(np.zeros(2100, int), 2)
    assert B.decode(loc, background, PRIORS, ("left", "right")) == []
    uniform = np.zeros((2100, 3), np.float32)  # every class 1/3 < 0.6
    assert B.decode(loc, uniform, PRIORS, ("left", "right"), merge_sides=False) == []
    args = (loc, uniform, PRIORS, ("left", "right"))
    assert len(B.decode(*args, score_threshold=0.3, merge_sides=False)) > 0
    assert B.decode(*args, score_threshold=0.7) == []  # merged: p(hand) = 2/3 < 0.7
    assert len(B.decode(*args, score_threshold=0.6)) > 0


def test_decode_probabilities_and_shape_errors():
    gt = np.array([[30, 30, 90, 90]], float)
    loc, lab = B.encode(PRIORS, gt, np.array([1]))
    probs = B.softmax(perfect_logits(lab, 2))
    (hand,) = B.decode(loc, probs, PRIORS, ("left", "right"), from_logits=False)
    assert hand.handedness == "right"
    with pytest.raises(ValueError, match="scores must have shape"):
        B.decode(loc, probs, PRIORS, ("hand",))
    with pytest.raises(ValueError, match="default boxes"):
        B.decode(loc[:10], probs[:10], PRIORS, ("left", "right"))


def test_decode_box_at_image_border_extends_outside():
    gt = np.array([[-20, 180, 40, 250]], float)  # partly outside the 224 input
    (hand,) = round_trip(gt, np.array([0]), ("hand",))
    np.testing.assert_allclose(hand.box, gt[0], atol=1e-3)


def test_decode_drops_boxes_centred_in_letterbox_padding():
    gt = np.array([[60, 5, 120, 40], [60, 100, 120, 160]], float)  # first one in the padding
    loc, lab = B.encode(PRIORS, gt, np.array([0, 1]))
    logits = perfect_logits(lab, 2)
    assert len(B.decode(loc, logits, PRIORS, ("left", "right"))) == 2
    (kept,) = B.decode(loc, logits, PRIORS, ("left", "right"), valid_region=[0, 42, 224, 182])
    assert kept.handedness == "right"
    np.testing.assert_allclose(kept.box, gt[1], atol=1e-3)


def test_decode_max_detections_sorted_by_score():
    n = 2100
    logits = np.zeros((n, 2), np.float32)
    loc = np.zeros((n, 4), np.float32)
    last = n - 2 * (4 * 4 + 2 * 2 + 1)  # the 4x4 map: 16 disjoint-ish cells
    idx = np.arange(last, last + 32, 2)
    logits[idx, 1] = np.linspace(3, 6, len(idx))
    hands = B.decode(loc, logits, PRIORS, ("hand",), score_threshold=0.5, max_detections=5)
    assert len(hands) == 5
    scores = [h.score for h in hands]
    assert scores == sorted(scores, reverse=True)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0, 200),
            st.floats(0, 200),
            st.floats(12, 200),
            st.floats(12, 200),
            st.integers(0, 1),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_encode_decode_round_trip_random_boxes(items):
    gt = np.array([[x, y, x + w, y + h] for x, y, w, h, _ in items], float)
    labels = np.array([c for *_, c in items])
    # keep the boxes that are not near-duplicates of another (NMS would merge those)
    iou = B.box_iou(gt, gt) - np.eye(len(gt))
    keep = [i for i in range(len(gt)) if not any(iou[i, j] > 0.3 for j in range(i))]
    gt, labels = gt[keep], labels[keep]
    loc, lab = B.encode(PRIORS, gt, labels)
    assert (lab > 0).sum() >= len(gt)  # every gt has at least its best prior
    hands = B.decode(loc, perfect_logits(lab, 2), PRIORS, ("left", "right"))
    for box, c in zip(gt, labels, strict=True):
        side = ("left", "right")[c]
        dists = [np.abs(h.box - box).max() for h in hands if h.handedness == side]
        assert dists and min(dists) < 1.0, (box, [h.box for h in hands])


def reference_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """Textbook greedy NMS: walk by score, keep a box that overlaps no kept box too much."""
    keep: list[int] = []
    for i in sorted(range(len(scores)), key=lambda i: (-scores[i], i)):
        if not keep or B.box_iou(boxes[i : i + 1], boxes[keep]).max() <= threshold:
            keep.append(i)
    return keep


@pytest.mark.parametrize("n", [40, 1100])
def test_nms_matches_reference(n):
    rng = np.random.default_rng(n)
    xy = rng.uniform(0, 200, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 60, (n, 2))], axis=1)
    scores = rng.random(n)
    got = B.non_maximum_suppression(boxes, scores, 0.45)
    assert got.tolist() == reference_nms(boxes, scores, 0.45)
    assert len(got) > 10


def greedy_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, limit=None) -> list:
    """Reference NMS: one box at a time against every kept box."""
    kept: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        if limit is not None and len(kept) >= limit:
            break
        if all(B.box_iou(boxes[i], boxes[k])[0, 0] <= threshold for k in kept):
            kept.append(int(i))
    return kept


def test_nms_equals_greedy_reference_small_and_large():
    rng = np.random.default_rng(5)
    for trial in range(300):
        n = int(rng.integers(0, 300 if trial % 20 == 0 else 30))  # > 256: the loop path
        centres, sides = rng.uniform(0, 100, (n, 2)), rng.uniform(1, 40, (n, 2))
        boxes = np.concatenate([centres - sides / 2, centres + sides / 2], axis=1)
        if n and trial % 3 == 0:  # duplicates
            boxes[rng.integers(0, n, n // 2)] = boxes[rng.integers(0, n, n // 2)]
        scores = np.round(rng.uniform(0, 1, n) * 4) / 4 if trial % 2 else rng.uniform(0, 1, n)
        threshold = float(rng.choice([0.0, 0.3, 0.45, 0.7]))
        limit = [None, 1, 3, 20][trial % 4]
        np.testing.assert_array_equal(
            B.non_maximum_suppression(boxes, scores, threshold, limit),
            greedy_nms(boxes, scores, threshold, limit),
        )


@pytest.mark.parametrize("merge_sides", [True, False])
def test_logit_prefilter_changes_nothing(merge_sides):
    """Logits are pre-filtered before the softmax: the same hands as thresholding the softmax of
    every row (the probabilities path), also on the threshold, with NaN and inf."""
    rng = np.random.default_rng(6)
    n = len(PRIORS)
    for trial in range(60):
        classes = [("hand",), ("left", "right")][trial % 2]
        loc = rng.normal(0, 1, (n, 4)).astype(np.float32)
        logits = rng.normal(0, 2, (n, len(classes) + 1)).astype(np.float32)
        logits[:, 0] += rng.uniform(0, 6)
        hot = rng.integers(0, n, 40)
        logits[hot, 1:] += rng.uniform(0, 10, (40, len(classes))).astype(np.float32)
        if trial % 3 == 0:
            logits = np.round(logits * 2) / 2  # many rows exactly on a threshold
        if trial % 5 == 0:
            bad = rng.integers(0, logits.size, 30)
            logits.reshape(-1)[bad] = rng.choice([np.nan, np.inf, -np.inf], 30)
        threshold = float(rng.choice([0.1, 0.5, 0.6, 0.9, 0.999]))
        kwargs = dict(score_threshold=threshold, merge_sides=merge_sides)
        got = B.decode(loc, logits, PRIORS, classes, **kwargs)
        with np.errstate(over="ignore", invalid="ignore"):
            probs = B.softmax(logits, axis=1)
        want = B.decode(loc, probs, PRIORS, classes, from_logits=False, **kwargs)
        assert [(h.handedness, h.score, h.extras) for h in got] == [
            (h.handedness, h.score, h.extras) for h in want
        ]
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a.box, b.box)
