"""Training losses (keras.ops, so they run on the TensorFlow and the JAX backends).

Every loss returns a dict of named scalar terms plus "total" (their sum), so each term is logged.

Multibox (SSD, as ChainerCV / the seed):
    loc  = sum_{positives} smooth_L1(pred_loc - gt_loc) / n_pos
    conf = sum_{positives + hard negatives} CE(softmax(logits), label) / n_pos
  hard negatives: per image the 3 * n_pos_i background boxes with the largest cross-entropy;
  n_pos = max(total positives in the batch, 1).
  A positive labelled C + 1 (a hand whose side is unknown, e.g. real photographs labelled
  "hand" for a left/right detector) has CE = -log(sum_{c=1..C} p_c) = -log(1 - p_background):
  any side is right, only "background" is wrong.

Pose Proposal Network (Sekii 2018, as the seed), summed over cells and parts, divided by batch:
    resp  = sum (r - r_t)^2                                     (all cells)
    conf  = sum r_t * (c - IoU(pred box, target box))^2          (IoU held constant)
    coord = 5   * sum r_t * ((x - x_t)^2 + (y - y_t)^2)
    size  = 0.5 * sum r_t * ((sqrt w - sqrt w_t)^2 + (sqrt h - sqrt h_t)^2)
    vcos  = 2   * sum m * (1 - cos(v, v_t))
    vnorm = 0.1 * sum m * (|v| - 1)^2
    vsq   = 0.1 * sum m * |v - v_t|^2
  r, c, x, y, w, h: the six sigmoid channels per keypoint; x, y the offset inside the cell
  (0..1), w, h the part box size as a fraction of the input side; v the tanh vector of a bone at
  its parent's cell; m = 1 at that cell when the bone's direction is known.
"""

from __future__ import annotations

from typing import Any

from keras import ops

NEG_POS_RATIO = 3.0
PPN_WEIGHTS: dict[str, float] = {
    "resp": 1.0,
    "conf": 1.0,
    "coord": 5.0,
    "size": 0.5,
    "vcos": 2.0,
    "vnorm": 0.1,
    "vsq": 0.1,
}


def smooth_l1(x: Any) -> Any:
    """0.5 x^2 for |x| < 1, |x| - 0.5 otherwise (elementwise)."""
    ax = ops.abs(x)
    return ops.where(ax < 1.0, 0.5 * x * x, ax - 0.5)


def multibox_loss(
    pred_loc: Any,
    pred_logits: Any,
    gt_loc: Any,
    gt_labels: Any,
    neg_pos_ratio: float = NEG_POS_RATIO,
) -> dict[str, Any]:
    """SSD loss with hard negative mining.

    Args:
        pred_loc: (B, N, 4) predicted offsets; gt_loc: (B, N, 4) encoded targets.
        pred_logits: (B, N, C + 1) class logits (background 0).
        gt_labels: (B, N) int labels, 0 = background, 1..C a class, C + 1 a hand of unknown
            side (CE -log(1 - p_background)), -1 = ignore (never mined).
    Returns: {"loc", "conf", "total"} scalars.
    """
    pred_loc, gt_loc = ops.cast(pred_loc, "float32"), ops.cast(gt_loc, "float32")
    pred_logits = ops.cast(pred_logits, "float32")
    gt_labels = ops.cast(gt_labels, "int32")
    positive = ops.cast(gt_labels > 0, "float32")
    n_pos_image = ops.sum(positive, axis=1)  # (B,)
    n_pos = ops.maximum(ops.sum(n_pos_image), 1.0)

    loc = ops.sum(ops.sum(smooth_l1(pred_loc - gt_loc), axis=-1) * positive) / n_pos

    labels = ops.maximum(gt_labels, 0)
    depth = ops.shape(pred_logits)[-1]  # C + 1
    log_probs = ops.log_softmax(pred_logits, axis=-1)
    ce = -ops.sum(log_probs * ops.one_hot(labels, depth), axis=-1)  # (B, N)
    # unknown side (label C + 1): -log sum_{c >= 1} p_c, i.e. -logsumexp of the hand log-probs
    ce_any = -ops.logsumexp(log_probs[..., 1:], axis=-1)
    ce = ops.where(gt_labels == depth, ce_any, ce)
    # hard negative mining on a gradient-free copy: rank background boxes by their CE
    background = ops.cast(gt_labels == 0, "float32")
    mining = ops.stop_gradient(ce) * background - 1e9 * (1.0 - background)
    order = ops.argsort(-mining, axis=1)
    rank = ops.argsort(order, axis=1)
    n_neg = ops.minimum(neg_pos_ratio * n_pos_image, ops.sum(background, axis=1))
    hard_negative = ops.cast(ops.cast(rank, "float32") < n_neg[:, None], "float32") * background
    conf = ops.sum(ce * (positive + hard_negative)) / n_pos
    return {"loc": loc, "conf": conf, "total": loc + conf}


def _iou_cxcywh(a: Any, b: Any) -> Any:
    """IoU of boxes (..., 4) given as (cx, cy, w, h) in the same units."""
    a0, a1 = a[..., :2] - a[..., 2:] / 2, a[..., :2] + a[..., 2:] / 2
    b0, b1 = b[..., :2] - b[..., 2:] / 2, b[..., :2] + b[..., 2:] / 2
    wh = ops.maximum(ops.minimum(a1, b1) - ops.maximum(a0, b0), 0.0)
    inter = wh[..., 0] * wh[..., 1]
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    return inter / ops.maximum(union, 1e-9)


def ppn_loss(
    pose: Any,
    vect: Any,
    resp_t: Any,
    xy_t: Any,
    wh_t: Any,
    vect_t: Any,
    vect_mask: Any,
    weights: dict[str, float] | None = None,
) -> dict[str, Any]:
    """PPN loss terms (see module docstring).

    Args:
        pose: (B, G, G, 6K) sigmoid outputs, per keypoint (resp, conf, x, y, w, h).
        vect: (B, G, G, 3E) tanh outputs, per bone (x, y, z).
        resp_t: (B, G, G, K) 1 at the cell holding keypoint k, else 0.
        xy_t: (B, G, G, K, 2) offset of the keypoint inside its cell (0..1).
        wh_t: (B, G, G, K, 2) part box size / input side.
        vect_t: (B, G, G, E, 3) unit bone direction at the parent's cell.
        vect_mask: (B, G, G, E) 1 where vect_t is defined.
    Returns: {"resp", "conf", "coord", "size", "vcos", "vnorm", "vsq", "total"} (weighted).
    """
    w = dict(PPN_WEIGHTS, **(weights or {}))
    pose, vect, resp_t, xy_t, wh_t, vect_t, vect_mask = (
        ops.cast(a, "float32") for a in (pose, vect, resp_t, xy_t, wh_t, vect_t, vect_mask)
    )
    shape = ops.shape(pose)
    batch, gh, gw = shape[0], shape[1], shape[2]
    k = resp_t.shape[-1]
    p = ops.reshape(pose, (batch, gh, gw, k, 6))
    resp, conf, xy, wh = p[..., 0], p[..., 1], p[..., 2:4], p[..., 4:6]
    bsize = ops.cast(batch, "float32")

    # IoU of predicted and target part boxes, in units of the input side
    grid = ops.cast(ops.stack([gw, gh]), "float32")
    jj = ops.cast(ops.arange(gw), "float32")[None, None, :, None]
    ii = ops.cast(ops.arange(gh), "float32")[None, :, None, None]
    cell = ops.stack([jj + 0.0 * ii, ii + 0.0 * jj], axis=-1)  # (1, G, G, 1, 2)
    box_p = ops.concatenate([(cell + xy) / grid, wh], axis=-1)
    box_t = ops.concatenate([(cell + xy_t) / grid, wh_t], axis=-1)
    iou = ops.stop_gradient(_iou_cxcywh(box_p, box_t))

    terms = {
        "resp": ops.sum(ops.square(resp - resp_t)),
        "conf": ops.sum(resp_t * ops.square(conf - iou)),
        "coord": ops.sum(resp_t[..., None] * ops.square(xy - xy_t)),
        "size": ops.sum(
            resp_t[..., None] * ops.square(ops.sqrt(wh + 1e-9) - ops.sqrt(wh_t + 1e-9))
        ),
    }
    e = vect_mask.shape[-1]
    v = ops.reshape(vect, (batch, gh, gw, e, 3))
    norm = ops.sqrt(ops.sum(ops.square(v), axis=-1) + 1e-9)
    norm_t = ops.sqrt(ops.sum(ops.square(vect_t), axis=-1) + 1e-9)
    cos = ops.sum(v * vect_t, axis=-1) / (norm * norm_t)
    terms["vcos"] = ops.sum(vect_mask * (1.0 - cos))
    terms["vnorm"] = ops.sum(vect_mask * ops.square(norm - 1.0))
    terms["vsq"] = ops.sum(vect_mask[..., None] * ops.square(v - vect_t))
    out = {name: w[name] * value / bsize for name, value in terms.items()}
    out["total"] = sum(out.values())
    return out


def side_loss(side: Any, side_t: Any, weight: float = 1.0) -> Any:
    """Binary cross-entropy of the pose network's p(right hand) (B, 1) against `side_t` (B, 1):
    1 right, 0 left, -1 unknown (masked out); mean over the batch's sided examples."""
    side, side_t = ops.cast(side, "float32"), ops.cast(side_t, "float32")
    mask = ops.cast(side_t >= 0.0, "float32")
    p = ops.clip(side, 1e-6, 1.0 - 1e-6)
    target = ops.maximum(side_t, 0.0)
    bce = -(target * ops.log(p) + (1.0 - target) * ops.log(1.0 - p))
    return weight * ops.sum(bce * mask) / ops.maximum(ops.sum(mask), 1.0)
