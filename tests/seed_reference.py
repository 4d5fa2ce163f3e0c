"""The seed's published checkpoints and their forward pass, in plain numpy (importer tests).

Written from the checkpoint section of `../shared/docs/SEED_SYSTEM.md` and the seed's Chainer
code (chainer-hand-pose `hand_ssd_mobilenet_v2.py`, `multibox_v2.py`, `multibox_coder.py`,
`network_mobilenetv2.py`, `model_ppn.py`, the demo's decoders), independently of Keras and of
`conversion.chainer_import`: arrays keyed like Chainer's `save_npz`, NCHW activations in float64,
the seed's output layouts ((dy, dx, dh, dw) boxes, field-major pose channels, (z, y, x) bones)
and the seed's own decoding ((y, x) boxes and (v, u) keypoints).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np

BN_EPS = 1e-3
K, E = 21, 20
#: the seed's hand edges (parent, child): root -> each finger's mcp, then along the finger
EDGES = [(0 if j == 0 else 1 + 4 * f + j - 1, 1 + 4 * f + j) for f in range(5) for j in range(4)]
#: MobileNetV2 conv1..conv17: (expansion, base channels, stride)
BLOCKS = [(1, 16, 1), (6, 24, 2), (6, 24, 1), (6, 32, 2), (6, 32, 1), (6, 32, 1), (6, 64, 2)]
BLOCKS += [(6, 64, 1)] * 3 + [(6, 96, 1)] * 3 + [(6, 160, 2), (6, 160, 1), (6, 160, 1)]
BLOCKS += [(6, 320, 1)]
FE = "extractor/feature_extractor"

# ----------------------------------------------------------------------------- numpy layers


def conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride: int = 1) -> np.ndarray:
    """Chainer Convolution2D on one image: x (C, H, W), w (O, C, kh, kw), pad kh // 2."""
    o, c, kh, kw = w.shape
    pad = kh // 2
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    ho = (x.shape[1] + 2 * pad - kh) // stride + 1
    wo = (x.shape[2] + 2 * pad - kw) // stride + 1
    out = np.zeros((o, ho, wo))
    for i, j in itertools.product(range(kh), range(kw)):
        patch = xp[
            :, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride
        ]
        out += np.einsum("oc,chw->ohw", w[:, :, i, j], patch)
    return out if b is None else out + b[:, None, None]


def depthwise(x: np.ndarray, w: np.ndarray, stride: int = 1) -> np.ndarray:
    """Per-channel 3x3 convolution, pad 1: x (C, H, W), w (C, kh, kw)."""
    c, kh, kw = w.shape
    pad = kh // 2
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    ho = (x.shape[1] + 2 * pad - kh) // stride + 1
    wo = (x.shape[2] + 2 * pad - kw) // stride + 1
    out = np.zeros((c, ho, wo))
    for i, j in itertools.product(range(kh), range(kw)):
        patch = xp[
            :, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride
        ]
        out += w[:, i, j, None, None] * patch
    return out


def bn(x: np.ndarray, a: dict[str, np.ndarray], link: str) -> np.ndarray:
    """gamma (x - avg_mean) / sqrt(avg_var + eps) + beta, per channel."""
    scale = a[f"{link}/gamma"] / np.sqrt(a[f"{link}/avg_var"] + BN_EPS)
    return (x - a[f"{link}/avg_mean"][:, None, None]) * scale[:, None, None] + a[f"{link}/beta"][
        :, None, None
    ]


def relu6(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0.0, 6.0)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# ------------------------------------------------------------------------------ checkpoints


def _conv_w(
    rng: np.random.Generator, shape: tuple[int, ...], gain: float = 0.7, depthwise: bool = False
) -> np.ndarray:
    """0.7 x He-normal weights (outputs of order 1 through a deep ReLU6 stack)."""
    fan_in = shape[2] * shape[3] * (1 if depthwise else shape[1])
    return rng.normal(0.0, gain * math.sqrt(2.0 / fan_in), shape).astype(np.float32)


def _bn(rng: np.random.Generator, out: dict[str, np.ndarray], link: str, n: int) -> None:
    out[f"{link}/gamma"] = rng.uniform(0.5, 1.5, n).astype(np.float32)
    out[f"{link}/beta"] = rng.normal(0.0, 0.1, n).astype(np.float32)
    out[f"{link}/avg_mean"] = rng.normal(0.0, 0.1, n).astype(np.float32)
    out[f"{link}/avg_var"] = rng.uniform(0.5, 1.5, n).astype(np.float32)
    out[f"{link}/N"] = np.asarray(1000, np.int64)


def detector_channels(width: float) -> dict[str, int]:
    """The seed detector's channel rule int(d * width) (conv0 always 32)."""
    return {str(d): int(d * width) for d in (16, 24, 32, 64, 96, 128, 160, 256, 320, 512, 1280)}


def detector_arrays(width: float, n_classes: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A random `detector/bestmodel.npz` in the published key layout."""
    rng = np.random.default_rng(seed)
    c = lambda d: int(d * width)  # noqa: E731
    a: dict[str, np.ndarray] = {}

    def conv_link(path: str, cout: int, cin: int, k: int, bn_path: str, grouped: bool = False):
        shape = (cout, 1, k, k) if grouped else (cout, cin, k, k)
        a[f"{path}/W"] = _conv_w(rng, shape, depthwise=grouped)
        _bn(rng, a, bn_path, cout)

    a[f"{FE}/conv0/conv/W"] = _conv_w(rng, (32, 3, 3, 3)) / 128.0  # sees RGB 0..255
    _bn(rng, a, f"{FE}/conv0/bn", 32)
    cin = 32
    for i, (t, d, _s) in enumerate(BLOCKS, start=1):
        out = c(d)
        p = f"{FE}/conv{i}"
        if i == 1:
            conv_link(
                f"{p}/depthwise/depthwise_conv", cin, cin, 3, f"{p}/depthwise/depthwise_bn", True
            )
            conv_link(f"{p}/pointwise/pointwise_conv", out, cin, 1, f"{p}/pointwise/pointwise_bn")
        elif i == 14:
            exp = 6 * cin
            conv_link(
                f"{FE}/conv14_0/pointwise_exp_conv", exp, cin, 1, f"{FE}/conv14_0/pointwise_exp_bn"
            )
            conv_link(
                f"{FE}/conv14_1/depthwise_conv", exp, exp, 3, f"{FE}/conv14_1/depthwise_bn", True
            )
            conv_link(f"{FE}/conv14_2/pointwise_conv", out, exp, 1, f"{FE}/conv14_2/pointwise_bn")
        else:
            exp = t * cin
            conv_link(
                f"{p}/pointwise_exp/pointwise_exp_conv",
                exp,
                cin,
                1,
                f"{p}/pointwise_exp/pointwise_exp_bn",
            )
            conv_link(
                f"{p}/depthwise/depthwise_conv", exp, exp, 3, f"{p}/depthwise/depthwise_bn", True
            )
            conv_link(f"{p}/pointwise/pointwise_conv", out, exp, 1, f"{p}/pointwise/pointwise_bn")
        cin = out
    conv_link(f"{FE}/conv18/conv", c(1280), cin, 1, f"{FE}/conv18/bn")
    extra = {19: (c(1280), c(256), c(512)), 20: (c(512), c(128), c(256))}
    extra.update({21: (c(256), c(128), c(256)), 22: (c(256), c(64), c(128))})
    for i, (cin, mid, out) in extra.items():
        p = f"extractor/conv{i}"
        conv_link(f"{p}/conv1/conv", mid, cin, 1, f"{p}/conv1/bn")
        conv_link(f"{p}/depthwise/depthwise_conv", mid, mid, 3, f"{p}/depthwise/depthwise_bn", True)
        conv_link(f"{p}/pointwise/pointwise_conv", out, mid, 1, f"{p}/pointwise/pointwise_bn")
    sources = [c(32), 6 * c(96), c(1280), c(512), c(256), c(128)]
    for head, per_box in (("loc", 4), ("conf", n_classes + 1)):
        for k, ch in enumerate(sources):
            p = f"multibox/{head}/{k}"
            conv_link(
                f"{p}/depthwise/depthwise_conv", ch, ch, 3, f"{p}/depthwise/depthwise_bn", True
            )
            conv_link(
                f"{p}/pointwise/pointwise_conv", 2 * per_box, ch, 1, f"{p}/pointwise/pointwise_bn"
            )
    # wider logits than a unit BN gives, so that some boxes pass the 0.6 score threshold
    for k in range(6):
        a[f"multibox/conf/{k}/pointwise/pointwise_bn/gamma"] *= 2.5
    return a


def pose_arrays(width: float, seed: int = 0) -> dict[str, np.ndarray]:
    """A random `pose/bestmodel.npz` (PoseProposalNet) in the published key layout."""
    rng = np.random.default_rng(seed)
    m = lambda d: max(int(d * width), 8)  # noqa: E731
    a: dict[str, np.ndarray] = {}
    a["feature_layer/conv0/conv/W"] = _conv_w(rng, (m(32), 3, 3, 3))
    _bn(rng, a, "feature_layer/conv0/bn", m(32))
    cin = m(32)
    for i, (t, d, _s) in enumerate(BLOCKS, start=1):
        p, exp, out = f"feature_layer/conv{i}", t * cin, m(d)
        if t != 1:
            a[f"{p}/expand_conv/W"] = _conv_w(rng, (exp, cin, 1, 1))
            _bn(rng, a, f"{p}/expand_bn", exp)
        a[f"{p}/depthwise_conv/W"] = _conv_w(rng, (1, exp, 3, 3), depthwise=True)
        _bn(rng, a, f"{p}/depthwise_bn", exp)
        a[f"{p}/project_conv/W"] = _conv_w(rng, (out, exp, 1, 1))
        _bn(rng, a, f"{p}/project_bn", out)
        cin = out
    a["lastconv/W"] = _conv_w(rng, (6 * K, cin, 3, 3), 1.0)
    a["lastconv/b"] = rng.normal(0.0, 0.3, 6 * K).astype(np.float32)
    a["vectconv/W"] = _conv_w(rng, (3 * E, cin, 3, 3), 1.0)
    a["vectconv/b"] = rng.normal(0.0, 0.3, 3 * E).astype(np.float32)
    return a


DETECTOR_INI = """[training_param]
batchsize = 64
learning_rate = 0.001

[dataset]
train_set = rhd,stb

[model_param]
model_path = models/hand_ssd_mobilenet_v2
feature_extractor = MobileNetV2
ssd_extractor = MobileNetV2LiteExtractor300
input_size = {size}
num_layers = 6
hand_class = {classes}
smin = 0.025
smax = 0.8
width_multiplier = {width}
resolution_multiplier = 1.0
"""

POSE_INI = """[training_param]
batch_size = 32
joint_dims = 2,3
imsize = {size}x{size}

[dataset]
train_set = fhad,stb,multiview,freihand
use_rgb = yes
use_depth = no

[model]
name = ppn

[ppn]
feature_extractor = mv2

[mv2]
width_multiplier = {width}
"""


def write_release(folder: Path, arrays: dict[str, np.ndarray], ini: str) -> Path:
    """`folder/bestmodel.npz` + `folder/config.ini` like the seed's release."""
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "bestmodel.npz", **arrays)
    (folder / "config.ini").write_text(ini)
    return folder


# --------------------------------------------------------------------------- forward passes


def _bottleneck_detector(a, x, i, stride):
    p = f"{FE}/conv{i}"
    h = x
    if i != 1:
        h = relu6(
            bn(
                conv(h, a[f"{p}/pointwise_exp/pointwise_exp_conv/W"]),
                a,
                f"{p}/pointwise_exp/pointwise_exp_bn",
            )
        )
    h = relu6(
        bn(
            depthwise(h, a[f"{p}/depthwise/depthwise_conv/W"][:, 0], stride),
            a,
            f"{p}/depthwise/depthwise_bn",
        )
    )
    h = bn(conv(h, a[f"{p}/pointwise/pointwise_conv/W"]), a, f"{p}/pointwise/pointwise_bn")
    return h + x if h.shape == x.shape else h


def _feature_map_lite(a, x, i):
    p = f"extractor/conv{i}"
    h = relu6(bn(conv(x, a[f"{p}/conv1/conv/W"]), a, f"{p}/conv1/bn"))
    h = relu6(
        bn(
            depthwise(h, a[f"{p}/depthwise/depthwise_conv/W"][:, 0], 2),
            a,
            f"{p}/depthwise/depthwise_bn",
        )
    )
    return relu6(
        bn(conv(h, a[f"{p}/pointwise/pointwise_conv/W"]), a, f"{p}/pointwise/pointwise_bn")
    )


def _multibox(a, x, head, k, per_box):
    p = f"multibox/{head}/{k}"
    h = relu6(
        bn(
            depthwise(x, a[f"{p}/depthwise/depthwise_conv/W"][:, 0], 1),
            a,
            f"{p}/depthwise/depthwise_bn",
        )
    )
    h = bn(conv(h, a[f"{p}/pointwise/pointwise_conv/W"]), a, f"{p}/pointwise/pointwise_bn")
    return h.transpose(1, 2, 0).reshape(-1, per_box)  # channels-last, cell-major, then box


def detector_forward(a: dict[str, np.ndarray], image: np.ndarray, n_classes: int):
    """The seed's SSD on one RGB image (S, S, 3) 0..255 (mean 0).

    Returns: mb_locs (N, 4) as (dy, dx, dh, dw), mb_confs (N, n_classes + 1) logits, and the
    grid side of each of the six source maps.
    """
    x = np.asarray(image, np.float64).transpose(2, 0, 1)
    h = relu6(bn(conv(x, a[f"{FE}/conv0/conv/W"], stride=2), a, f"{FE}/conv0/bn"))
    ys = []
    for i, (_t, _d, s) in enumerate(BLOCKS, start=1):
        if i == 14:
            h = relu6(
                bn(
                    conv(h, a[f"{FE}/conv14_0/pointwise_exp_conv/W"]),
                    a,
                    f"{FE}/conv14_0/pointwise_exp_bn",
                )
            )
            ys.append(h)
            h = relu6(
                bn(
                    depthwise(h, a[f"{FE}/conv14_1/depthwise_conv/W"][:, 0], 2),
                    a,
                    f"{FE}/conv14_1/depthwise_bn",
                )
            )
            h = bn(conv(h, a[f"{FE}/conv14_2/pointwise_conv/W"]), a, f"{FE}/conv14_2/pointwise_bn")
            continue
        h = _bottleneck_detector(a, h, i, s)
        if i == 6:
            ys.append(h)
    h = relu6(bn(conv(h, a[f"{FE}/conv18/conv/W"]), a, f"{FE}/conv18/bn"))
    ys.append(h)
    for i in (19, 20, 21, 22):
        out = _feature_map_lite(a, ys[-1], i)
        if i != 21:
            ys.append(out)
    locs = np.concatenate([_multibox(a, y, "loc", k, 4) for k, y in enumerate(ys)])
    confs = np.concatenate([_multibox(a, y, "conf", k, n_classes + 1) for k, y in enumerate(ys)])
    return locs, confs, [y.shape[1] for y in ys]


def pose_forward(a: dict[str, np.ndarray], image: np.ndarray):
    """The seed's PoseProposalNet on one RGB crop (S, S, 3) 0..255 (normalised x / 255 - 0.5).

    Returns: pose (6K, G, G) after sigmoid (field-major), vect (3E, G, G) after tanh ((z, y, x)).
    """
    x = np.asarray(image, np.float64).transpose(2, 0, 1) / 255.0 - 0.5
    h = relu6(bn(conv(x, a["feature_layer/conv0/conv/W"], stride=2), a, "feature_layer/conv0/bn"))
    for i, (t, _d, s) in enumerate(BLOCKS, start=1):
        p, inp = f"feature_layer/conv{i}", h
        if t != 1:
            h = relu6(bn(conv(h, a[f"{p}/expand_conv/W"]), a, f"{p}/expand_bn"))
        h = relu6(bn(depthwise(h, a[f"{p}/depthwise_conv/W"][0], s), a, f"{p}/depthwise_bn"))
        h = bn(conv(h, a[f"{p}/project_conv/W"]), a, f"{p}/project_bn")
        if h.shape == inp.shape:
            h = h + inp
    pose = sigmoid(conv(h, a["lastconv/W"], a["lastconv/b"]))
    vect = np.tanh(conv(h, a["vectconv/W"], a["vectconv/b"]))
    return pose, vect


# -------------------------------------------------------------------------- seed decoding


def seed_default_boxes(size: int, grids: list[int], smin: float = 0.025) -> np.ndarray:
    """The seed's MultiboxCoder priors (N, 4) as (cy, cx, h, w): steps ceil(S / G), sizes int."""
    steps = [math.ceil(size / g) for g in grids]
    sizes = [int(size * math.pow(2, k) * smin) for k in range(len(grids))] + [size]
    boxes = []
    for k, grid in enumerate(grids):
        for v, u in itertools.product(range(grid), repeat=2):
            cy, cx = (v + 0.5) * steps[k], (u + 0.5) * steps[k]
            boxes.append((cy, cx, sizes[k], sizes[k]))
            s = math.sqrt(sizes[k] * sizes[k + 1])
            boxes.append((cy, cx, s, s))
    return np.asarray(boxes)


def _iou_yx(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    tl = np.maximum(box[:2], others[:, :2])
    br = np.minimum(box[2:], others[:, 2:])
    inter = np.prod(br - tl, axis=1) * (tl < br).all(axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(others[:, 2:] - others[:, :2], axis=1)
    return inter / (area + areas - inter)


def seed_decode_boxes(mb_loc, mb_conf, priors, nms=0.45, score=0.6, variance=(0.1, 0.2)):
    """The seed's MultiboxCoder.decode: boxes (R, 4) (ymin, xmin, ymax, xmax), labels, scores."""
    b = priors.copy()
    b[:, :2] += mb_loc[:, :2] * variance[0] * priors[:, 2:]
    b[:, 2:] *= np.exp(mb_loc[:, 2:] * variance[1])
    b[:, :2] -= b[:, 2:] / 2
    b[:, 2:] += b[:, :2]
    e = np.exp(mb_conf - mb_conf.max(axis=1, keepdims=True))
    prob = e / e.sum(axis=1, keepdims=True)
    out_b, out_l, out_s = [], [], []
    for label in range(mb_conf.shape[1] - 1):
        s = prob[:, label + 1]
        keep = s >= score
        bl, sl = b[keep], s[keep]
        chosen: list[int] = []
        for i in np.argsort(-sl, kind="stable"):
            if chosen and (_iou_yx(bl[i], bl[chosen]) >= nms).any():
                continue
            chosen.append(int(i))
        out_b += [bl[i] for i in chosen]
        out_l += [label] * len(chosen)
        out_s += [sl[i] for i in chosen]
    return np.asarray(out_b).reshape(-1, 4), np.asarray(out_l, int), np.asarray(out_s)


def seed_decode_pose(pose: np.ndarray, vect: np.ndarray, size: int):
    """The seed demo's PPN decoding: keypoints (K, 2) as (v, u) and joints (K, 3) as (z, y, x).

    Bone lengths 1.5 (from the root) and 1.0, directions read at the parent's cell.
    """
    _, out_h, out_w = pose.shape
    resp, conf, xs, ys = (pose[f * K : (f + 1) * K] for f in range(4))
    delta = resp * conf
    scale_h, scale_w = size / out_h, size / out_w
    vu = np.zeros((K, 2))
    cells: dict[int, tuple[int, int]] = {}
    for k in [0, 1, 5, 9, 13, 17]:
        i, j = np.unravel_index(np.argmax(delta[k]), delta[k].shape)
        vu[k] = scale_h * (i + ys[k][i, j]), scale_w * (j + xs[k][i, j])
        cells[k] = (int(i), int(j))
    for f in range(5):
        for step in range(3):
            p, q = 1 + 4 * f + step, 2 + 4 * f + step
            sz = 1 if step == 2 else 2
            ph, pw = cells[p]
            top, left = max(0, ph - sz), max(0, pw - sz)
            target = delta[q][top : min(out_h, ph + sz + 1), left : min(out_w, pw + sz + 1)]
            qh, qw = np.unravel_index(np.argmax(target), target.shape)
            i, j = top + int(qh), left + int(qw)
            vu[q] = scale_h * (i + ys[q][i, j]), scale_w * (j + xs[q][i, j])
            cells[q] = (i, j)
    v = vect.reshape(E, 3, out_h, out_w)
    zyx = np.zeros((K, 3))
    for e, (s, t) in enumerate(EDGES):
        i, j = cells[s]
        orien = v[e, :, i, j] / np.linalg.norm(v[e, :, i, j])
        zyx[t] = zyx[s] + orien * (1.5 if s == 0 else 1.0)
    return vu, zyx
