"""Losses: each term against a hand computation on tiny inputs."""

import numpy as np
import pytest

pytest.importorskip("keras")

from models.losses import multibox_loss, ppn_loss, smooth_l1  # noqa: E402


def _f(x):
    return float(np.asarray(x))


def test_smooth_l1():
    np.testing.assert_allclose(np.asarray(smooth_l1(np.array([0.5, -2.0, 1.0]))), [0.125, 1.5, 0.5])


def test_multibox_hard_negative_mining_counts_three_negatives_per_positive():
    n = 20
    labels = np.zeros((1, n), np.int32)
    labels[0, 0] = 1
    logits = np.zeros((1, n, 3), np.float32)
    # negatives 1..n-1 get increasing background-wrongness: CE grows with the index
    logits[0, 1:, 1] = np.arange(1, n, dtype=np.float32)
    loc_gt = np.zeros((1, n, 4), np.float32)
    loc_pred = loc_gt.copy()
    loc_pred[0, 0] = [0.5, 0, 0, 3.0]  # 0.125 + 2.5
    loc_pred[0, 1] = [9, 9, 9, 9]  # a negative: ignored by the loc term
    out = multibox_loss(loc_pred, logits, loc_gt, labels)
    assert _f(out["loc"]) == pytest.approx(2.625)

    def ce(row, label):
        z = logits[0, row]
        return float(np.log(np.exp(z).sum()) - z[label])

    expected = ce(0, 1) + sum(ce(r, 0) for r in (n - 1, n - 2, n - 3))  # the 3 hardest
    assert _f(out["conf"]) == pytest.approx(expected, rel=1e-5)
    assert _f(out["total"]) == pytest.approx(2.625 + expected, rel=1e-5)


def test_multibox_ignores_label_minus_one_and_empty_images():
    labels = np.array([[1, -1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]], np.int32)
    logits = np.zeros((2, 6, 2), np.float32)
    logits[:, :, 1] = 5.0  # everything looks like a hand
    out = multibox_loss(np.zeros((2, 6, 4)), logits, np.zeros((2, 6, 4)), labels)
    ce_pos = np.log(1 + np.exp(-5.0))
    ce_neg = np.log(1 + np.exp(5.0))
    # image 0: 1 positive + 3 of its 4 negatives; image 1 has no positive: no negatives mined
    assert _f(out["conf"]) == pytest.approx(ce_pos + 3 * ce_neg, rel=1e-5)


def _ppn_inputs(rng, b=2, g=3, k=21, e=20):
    resp_t = np.zeros((b, g, g, k), np.float32)
    xy_t = np.zeros((b, g, g, k, 2), np.float32)
    wh_t = np.zeros((b, g, g, k, 2), np.float32)
    for bi in range(b):
        for ki in range(k):
            i, j = rng.integers(0, g, 2)
            resp_t[bi, i, j, ki] = 1
            xy_t[bi, i, j, ki] = rng.uniform(0.1, 0.9, 2)
            wh_t[bi, i, j, ki] = rng.uniform(0.05, 0.3, 2)
    vect_t = rng.normal(size=(b, g, g, e, 3)).astype(np.float32)
    vect_t /= np.linalg.norm(vect_t, axis=-1, keepdims=True)
    mask = (rng.uniform(size=(b, g, g, e)) > 0.8).astype(np.float32)
    return resp_t, xy_t, wh_t, vect_t, mask


def test_ppn_perfect_prediction_has_zero_loss_and_terms_are_weighted():
    rng = np.random.default_rng(0)
    resp_t, xy_t, wh_t, vect_t, mask = _ppn_inputs(rng)
    b, g, k = resp_t.shape[0], resp_t.shape[1], resp_t.shape[-1]
    pose = np.concatenate([resp_t[..., None], resp_t[..., None], xy_t, wh_t], axis=-1)
    pose = pose.reshape(b, g, g, 6 * k)
    vect = vect_t.reshape(b, g, g, 60)
    out = ppn_loss(pose, vect, resp_t, xy_t, wh_t, vect_t, mask)
    for term in ("resp", "conf", "coord", "size", "vcos", "vnorm", "vsq"):
        assert _f(out[term]) == pytest.approx(0.0, abs=1e-3), term
    # shift x of every keypoint by 0.1: coord = 5 * K * 0.01 per image
    moved = pose.reshape(b, g, g, k, 6).copy()
    moved[..., 2] += 0.1 * resp_t
    out = ppn_loss(moved.reshape(b, g, g, 6 * k), vect, resp_t, xy_t, wh_t, vect_t, mask)
    assert _f(out["coord"]) == pytest.approx(5 * k * 0.01, rel=1e-4)
    assert _f(out["conf"]) > 0  # the IoU target dropped below the predicted confidence 1
    # vectors at half length, same direction: cos term 0, norm 0.1 * 0.25 per masked bone
    out = ppn_loss(pose, 0.5 * vect, resp_t, xy_t, wh_t, vect_t, mask)
    assert _f(out["vcos"]) == pytest.approx(0.0, abs=1e-4)
    assert _f(out["vnorm"]) == pytest.approx(0.1 * 0.25 * mask.sum() / b, rel=1e-3)
    assert _f(out["vsq"]) == pytest.approx(0.1 * 0.25 * mask.sum() / b, rel=1e-3)
    total = sum(_f(out[t]) for t in ("resp", "conf", "coord", "size", "vcos", "vnorm", "vsq"))
    assert _f(out["total"]) == pytest.approx(total, rel=1e-5)


def test_ppn_resp_term_counts_all_cells():
    rng = np.random.default_rng(1)
    resp_t, xy_t, wh_t, vect_t, mask = _ppn_inputs(rng, b=1)
    pose = np.full((1, 3, 3, 126), 0.5, np.float32)
    out = ppn_loss(pose, np.zeros((1, 3, 3, 60), np.float32), resp_t, xy_t, wh_t, vect_t, mask)
    assert _f(out["resp"]) == pytest.approx(9 * 21 * 0.25, rel=1e-5)
