"""MediaPipe palm decoding, pure numpy: SSD anchors, box + keypoint decoding, weighted NMS."""

import math

import numpy as np
import pytest

from handpose.codec.palm import (
    PALM_ANCHORS,
    AnchorOptions,
    PalmDecodeOptions,
    Palms,
    decode_palms,
    encode_palm,
    sigmoid,
    ssd_anchors,
    weighted_nms,
)


def test_palm_anchors_are_mediapipes_2016_in_output_order():
    anchors = ssd_anchors(PALM_ANCHORS)
    assert anchors.shape == (2016, 4) and anchors.dtype == np.float32
    # stride 8: 24 x 24 cells x 2 anchors, then the three stride-16 layers share 12 x 12 x 6
    np.testing.assert_allclose(anchors[0], [0.5 / 24, 0.5 / 24, 1, 1])
    np.testing.assert_allclose(anchors[1], anchors[0])
    np.testing.assert_allclose(anchors[2], [1.5 / 24, 0.5 / 24, 1, 1])  # next column
    np.testing.assert_allclose(anchors[2 * 24], [0.5 / 24, 1.5 / 24, 1, 1])  # next row
    np.testing.assert_allclose(anchors[1151], [23.5 / 24, 23.5 / 24, 1, 1])
    np.testing.assert_allclose(anchors[1152:1158], [[0.5 / 12, 0.5 / 12, 1, 1]] * 6)
    np.testing.assert_allclose(anchors[1158], [1.5 / 12, 0.5 / 12, 1, 1])
    np.testing.assert_allclose(anchors[-1], [11.5 / 12, 11.5 / 12, 1, 1])


def test_anchor_sizes_follow_the_ssd_scales_when_not_fixed():
    options = AnchorOptions(fixed_anchor_size=False)
    anchors = ssd_anchors(options)
    s = [0.1484375 + (0.75 - 0.1484375) * k / 3 for k in range(4)]
    assert anchors[0, 2] == pytest.approx(s[0]) and anchors[1, 2] == pytest.approx(
        math.sqrt(s[0] * s[1])
    )
    group = anchors[1152:1158, 2]  # one 12 x 12 cell: layers 1, 2, 3 with their interpolations
    expected = [s[1], math.sqrt(s[1] * s[2]), s[2], math.sqrt(s[2] * s[3]), s[3], math.sqrt(s[3])]
    np.testing.assert_allclose(group, expected, rtol=1e-6)
    np.testing.assert_allclose(anchors[:, 2], anchors[:, 3])  # aspect ratio 1


def test_anchor_options_round_trip_and_reject_nonsense():
    assert AnchorOptions.from_dict(PALM_ANCHORS.to_dict()) == PALM_ANCHORS
    with pytest.raises(ValueError, match="num_layers"):
        AnchorOptions(num_layers=3)
    with pytest.raises(ValueError, match="unknown"):
        AnchorOptions.from_dict({**PALM_ANCHORS.to_dict(), "bogus": 1})


def mediapipe_decode(raw, anchor):
    """TensorsToDetectionsCalculator's formulas (reverse_output_order, scales 192), written out."""
    cx = raw[0] / 192 * anchor[2] + anchor[0]
    cy = raw[1] / 192 * anchor[3] + anchor[1]
    w, h = raw[2] / 192 * anchor[2], raw[3] / 192 * anchor[3]
    points = [
        (raw[4 + 2 * k] / 192 * anchor[2] + anchor[0], raw[5 + 2 * k] / 192 * anchor[3] + anchor[1])
        for k in range(7)
    ]
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], points


def test_decode_follows_mediapipes_formulas_and_thresholds():
    anchors = ssd_anchors()
    rng = np.random.default_rng(0)
    raw = rng.normal(0, 20, (2016, 18)).astype(np.float32)
    raw[:, 2:4] = np.abs(raw[:, 2:4]) + 5
    logits = np.full((2016, 1), -8.0, np.float32)
    logits[[10, 1500, 2000]] = [[3.0], [1.0], [250.0]]  # 250 is clipped to 100 first
    raw[1500, 2] = -4.0  # a box of negative width is dropped
    palms = decode_palms(raw, logits, anchors)
    assert len(palms.scores) == 2
    np.testing.assert_allclose(palms.scores, [sigmoid(100.0), sigmoid(3.0)], rtol=1e-6)
    for i, index in enumerate([2000, 10]):
        box, points = mediapipe_decode(raw[index].astype(np.float64), anchors[index])
        np.testing.assert_allclose(palms.boxes[i], box, atol=1e-6)
        np.testing.assert_allclose(palms.keypoints[i], points, atol=1e-6)
    assert len(decode_palms(raw, logits, anchors, min_score=0.999).scores) == 1
    assert decode_palms(raw, np.full(2016, -9.0), anchors).boxes.shape == (0, 4)
    with pytest.raises(ValueError, match="anchors"):
        decode_palms(raw[:100], logits[:100], anchors)


def test_encode_palm_is_the_inverse_of_decoding():
    anchors = ssd_anchors()
    box = [0.3, 0.4, 0.45, 0.52]
    keypoints = np.random.default_rng(1).uniform(0.3, 0.5, (7, 2))
    raw = np.zeros((2016, 18), np.float32)
    raw[777] = encode_palm(box, keypoints, anchors[777])
    logits = np.full(2016, -10.0)
    logits[777] = 5.0
    palms = decode_palms(raw, logits, anchors)
    np.testing.assert_allclose(palms.boxes[0], box, atol=1e-6)
    np.testing.assert_allclose(palms.keypoints[0], keypoints, atol=1e-6)


def test_weighted_nms_averages_each_group_by_score():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60], [0.5, 0, 10.5, 10]])
    keypoints = np.stack([np.full((7, 2), v) for v in (1.0, 2.0, 9.0, 4.0)])
    scores = np.array([0.9, 0.6, 0.7, 0.3])
    out = weighted_nms(Palms(boxes, keypoints, scores), iou_threshold=0.3)
    assert len(out.scores) == 2
    np.testing.assert_allclose(out.scores, [0.9, 0.7], rtol=1e-6)  # the best's own score
    weights = np.array([0.9, 0.6, 0.3])
    group = boxes[[0, 1, 3]]
    np.testing.assert_allclose(out.boxes[0], weights @ group / weights.sum(), rtol=1e-6)
    np.testing.assert_allclose(out.keypoints[0], (0.9 * 1 + 0.6 * 2 + 0.3 * 4) / 1.8, rtol=1e-6)
    np.testing.assert_allclose(out.boxes[1], boxes[2])  # alone: unchanged
    np.testing.assert_allclose(out.keypoints[1], 9.0)


def test_weighted_nms_merges_only_above_the_threshold_and_handles_edges():
    a, b = [0, 0, 10, 10], [5, 0, 15, 10]  # IoU 50 / 150 = 1/3
    palms = Palms(np.array([a, b], float), np.zeros((2, 7, 2)), np.array([0.8, 0.7]))
    assert len(weighted_nms(palms, iou_threshold=1 / 3 + 1e-9).scores) == 2
    assert len(weighted_nms(palms, iou_threshold=1 / 3 - 1e-9).scores) == 1
    assert len(weighted_nms(palms, iou_threshold=0.0, limit=1).scores) == 1
    empty = weighted_nms(Palms(np.zeros((0, 4)), np.zeros((0, 7, 2)), np.zeros(0)), 0.3)
    assert empty.boxes.shape == (0, 4) and empty.keypoints.shape == (0, 7, 2)
    with pytest.raises(ValueError, match="keypoints"):
        weighted_nms(Palms(np.zeros((2, 4)), np.zeros((3, 7, 2)), np.zeros(2)), 0.3)


def test_decode_options_round_trip_ignoring_other_keys():
    options = PalmDecodeOptions(min_score=0.4)
    data = {**options.to_dict(), "nms": "weighted", "region": {}}
    assert PalmDecodeOptions.from_dict(data) == options
