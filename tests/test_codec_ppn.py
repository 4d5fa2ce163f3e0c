"""handpose.codec.ppn: PPN targets, channel layout, decoding with the finger walk."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handpose.codec import ppn
from handpose.errors import ModelFileError
from handpose.metadata import ModelMetadata, TensorSpec
from handpose.skeleton import EDGES, PARENTS

CONFIG = ppn.PPNConfig()


def hand_keypoints() -> np.ndarray:
    """A plausible open right hand in a 224 crop (fingers up, wrist at the bottom)."""
    kp = [[112.0, 200.0]]
    for f, x0 in enumerate([50.0, 80.0, 110.0, 140.0, 170.0]):
        for j in range(4):
            kp.append([x0 + 3.0 * j - (15.0 if f == 0 else 0.0), 160.0 - 28.0 * j - 5.0 * f])
    return np.asarray(kp)


def unit_directions(seed: int = 0) -> np.ndarray:
    d = np.random.default_rng(seed).normal(size=(20, 3))
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def test_config_defaults_and_dicts():
    assert CONFIG.grid_hw == (7, 7) and CONFIG.stride_xy == (32.0, 32.0)
    assert CONFIG.num_bones == 20 and CONFIG.parents == PARENTS
    assert ppn.PPNConfig(input_size=256).grid_hw == (8, 8)
    assert ppn.PPNConfig(input_size=(224, 224), grid=(7, 7)) == CONFIG
    data = json.loads(json.dumps(ppn.PPNConfig(input_size=(192, 256)).to_dict()))
    again = ppn.PPNConfig.from_dict(data)
    assert again.input_hw == (192, 256) and again.grid_hw == (6, 8)
    meta_like = {"input_size": [224, 224], "size": [7, 7], "stride": 32, "score_threshold": 0.1}
    assert ppn.PPNConfig.from_dict(meta_like) == CONFIG
    with pytest.raises(ValueError, match="stride"):
        ppn.PPNConfig.from_dict({"input_size": 224, "size": 7, "stride": 16})
    with pytest.raises(ValueError, match="tree"):
        ppn.PPNConfig(K=3, edges=((0, 1),))


def test_config_from_metadata():
    meta = ModelMetadata(
        family="handpose",
        task="pose",
        model_file="pose.tflite",
        precision="int8",
        input=TensorSpec("image", [1, 224, 224, 3], "uint8"),
        outputs={},
        grid={"size": [7, 7], "stride": 32},
        keypoints={"names": [str(i) for i in range(21)], "edges": [list(e) for e in EDGES]},
        decode={"window": 3},
    )
    config = ppn.PPNConfig.from_metadata(meta)
    assert config.grid_hw == (7, 7) and config.edges == EDGES and config.window == 3
    meta.grid = {"size": [8, 8], "stride": 32}  # disagrees with the 224 input
    with pytest.raises(ModelFileError, match="re-create"):
        ppn.PPNConfig.from_metadata(meta)


def test_encode_targets_shapes_and_values():
    kp = hand_keypoints()
    t = ppn.encode_targets(kp, np.ones(21, bool), unit_directions(), CONFIG)
    assert t["resp"].shape == (7, 7, 21) and t["xy"].shape == (7, 7, 21, 2)
    assert t["wh"].shape == (7, 7, 21, 2) and t["vect"].shape == (7, 7, 20, 3)
    assert t["vect_mask"].shape == (7, 7, 20)
    assert t["resp"].sum() == 21 and t["vect_mask"].sum() == 20
    # the wrist (112, 200) is in cell col 3, row 6 with offset (0.5, 0.25)
    assert t["resp"][6, 3, 0] == 1
    np.testing.assert_allclose(t["xy"][6, 3, 0], [0.5, 0.25])
    np.testing.assert_array_equal(t["cells"][0], [3, 6])
    diag = np.linalg.norm(kp.max(0) - kp.min(0))
    np.testing.assert_allclose(t["wh"][6, 3, 0], [0.2 * diag / 224] * 2, rtol=1e-6)
    # bone 0 (wrist -> thumb cmc) is stored at the wrist's cell, bone 1 at the cmc's cell
    np.testing.assert_allclose(t["vect"][6, 3, 0], unit_directions()[0], rtol=1e-6)
    j, i = t["cells"][1]
    assert t["vect_mask"][i, j, 1] == 1


def test_encode_targets_hidden_outside_and_unknown_directions():
    kp = hand_keypoints()
    visible = np.ones(21, bool)
    visible[5] = False  # index mcp occluded
    kp[20] = [230.0, 10.0]  # little tip outside the crop
    d = unit_directions()
    d[3] = 0.0  # unknown direction
    t = ppn.encode_targets(kp, visible, d, CONFIG)
    assert not t["known"][5] and not t["known"][20]
    assert t["resp"][..., 5].sum() == 0 and t["resp"][..., 20].sum() == 0
    assert t["vect_mask"][..., 5].sum() == 0  # bone 5 (index mcp -> pip) needs its parent
    assert t["vect_mask"][..., 4].sum() == 1  # bone 4 (wrist -> index mcp) is at the wrist
    assert t["vect_mask"][..., 3].sum() == 0
    assert t["vect_mask"].sum() == 20 - 2
    t = ppn.encode_targets(kp, visible, None, CONFIG)
    assert t["vect_mask"].sum() == 0 and not t["vect"].any()
    t = ppn.encode_targets(kp, np.zeros(21, bool), None, CONFIG)
    assert not t["resp"].any() and not t["wh"].any()
    with pytest.raises(ValueError):
        ppn.encode_targets(kp[:20], visible[:20], None, CONFIG)


def test_round_trip_exact():
    kp = hand_keypoints()
    d = unit_directions(3)
    t = ppn.encode_targets(kp, np.ones(21, bool), d, CONFIG)
    pose, vect = ppn.perfect_outputs(t, CONFIG)
    keypoints, scores, directions = ppn.decode(pose, vect, CONFIG)
    np.testing.assert_allclose(keypoints, kp, atol=1e-4)
    np.testing.assert_allclose(scores, 1.0)
    np.testing.assert_allclose(directions, d, atol=1e-6)
    result = ppn.decode(pose[None], vect[None], CONFIG)  # batch axis of 1 accepted
    assert result["keypoints"].shape == (21, 2) and result.directions.dtype == np.float32


def test_keypoints_at_borders_and_corners():
    corners = {0: (0.0, 0.0), 4: (224.0, 224.0), 8: (224.0, 0.0), 12: (0.0, 224.0), 16: (224, 5)}
    kp = np.array([[32.0 * (k % 7) + 1, 32.0 * (k // 7) + 1] for k in range(21)])
    for k, p in corners.items():
        kp[k] = p
    config = ppn.PPNConfig(window=7, tip_window=7)  # no window limit: test the coding only
    t = ppn.encode_targets(kp, np.ones(21, bool), None, config)
    np.testing.assert_array_equal(t["cells"][4], [6, 6])  # far corner clipped into the grid
    np.testing.assert_allclose(t["xy"][6, 6, 4], [1.0, 1.0])
    pose, vect = ppn.perfect_outputs(t, config)
    keypoints, _, directions = ppn.decode(pose, vect, config)
    np.testing.assert_allclose(keypoints, kp, atol=1e-4)
    assert not directions.any()  # zero vect -> zero direction, never NaN


def test_channel_layout():
    pose = np.zeros((7, 7, 126), np.float32)
    vect = np.zeros((7, 7, 60), np.float32)
    k = 9  # middle mcp, a finger base: global argmax
    pose[2, 5, 6 * k + 0] = 0.9  # resp
    pose[2, 5, 6 * k + 1] = 0.8  # conf
    pose[2, 5, 6 * k + 2] = 0.25  # x offset
    pose[2, 5, 6 * k + 3] = 0.75  # y offset
    vect[2, 5, 3 * 9 : 3 * 9 + 3] = [0.0, -0.5, 0.0]  # bone 9 (middle mcp -> pip) at the mcp
    keypoints, scores, directions = ppn.decode(pose, vect, CONFIG)
    np.testing.assert_allclose(keypoints[k], [(5 + 0.25) * 32, (2 + 0.75) * 32])
    assert scores[k] == pytest.approx(0.72)
    np.testing.assert_allclose(directions[9], [0, -1, 0])


def test_decode_searches_children_near_their_parent_only():
    pose = np.zeros((7, 7, 126), np.float32)
    vect = np.zeros((7, 7, 60), np.float32)

    def put(k: int, i: int, j: int, value: float) -> None:
        pose[i, j, 6 * k] = pose[i, j, 6 * k + 1] = value

    put(0, 6, 3, 0.9)  # wrist
    put(5, 0, 0, 0.9)  # index mcp (a base): global argmax, far from the wrist
    put(6, 2, 2, 0.5)  # index pip inside the +-2 window of (0, 0)
    put(6, 6, 6, 0.99)  # stronger distractor outside the window
    put(7, 3, 3, 0.5)  # dip, within 2 of the pip (2, 2)
    put(8, 5, 5, 0.99)  # tip distractor 2 cells away: outside the tip window (+-1)
    put(8, 4, 4, 0.3)  # the tip within +-1 of (3, 3)
    keypoints, scores, _ = ppn.decode(pose, vect, CONFIG)
    cells = np.floor(keypoints / 32).astype(int)
    np.testing.assert_array_equal(cells[[0, 5, 6, 7, 8]], [[3, 6], [0, 0], [2, 2], [3, 3], [4, 4]])
    assert scores[8] == pytest.approx(0.09)


def test_decode_shape_error():
    with pytest.raises(ValueError, match="grid"):
        ppn.decode(np.zeros((8, 8, 126)), np.zeros((8, 8, 60)), CONFIG)


def test_confidence_target_formula():
    kp = hand_keypoints()
    t = ppn.encode_targets(kp, np.ones(21, bool), None, CONFIG)
    pose, _ = ppn.perfect_outputs(t, CONFIG)
    conf = ppn.confidence_target(pose, t["xy"], t["wh"], CONFIG)
    np.testing.assert_allclose(conf[t["resp"] > 0], 1.0, rtol=1e-5)
    # shift the predicted x of the wrist by half a part box: IoU 1/3 (overlap w/2 over 3w/2)
    p = pose.reshape(7, 7, 21, 6).copy()
    w = t["wh"][6, 3, 0, 0]
    p[6, 3, 0, 2] += w / 2 * 7
    conf = ppn.confidence_target(p.reshape(7, 7, 126), t["xy"], t["wh"], CONFIG)
    assert conf[6, 3, 0] == pytest.approx(1 / 3, rel=1e-4)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_round_trip_random_hands(seed):
    """Any hand whose joints stay within a cell of their parent decodes to within 0.5 px."""
    rng = np.random.default_rng(seed)
    kp = np.zeros((21, 2))
    kp[0] = rng.uniform(0, 224, 2)
    for parent, child in EDGES:
        step = rng.uniform(-31, 31, 2) if parent != 0 else rng.uniform(-100, 100, 2)
        kp[child] = np.clip(kp[parent] + step, 0, 224)
    visible = rng.random(21) > 0.2
    t = ppn.encode_targets(kp, visible, unit_directions(seed % 100), CONFIG)
    pose, vect = ppn.perfect_outputs(t, CONFIG)
    keypoints, scores, _ = ppn.decode(pose, vect, CONFIG)
    err = np.abs(keypoints - kp).max(axis=1)
    # a hidden keypoint has no target, and a hidden parent hides the walk to its child
    assert (err[visible & (scores > 0)] < 0.5).all()
    walk_ok = visible.copy()
    for parent, child in EDGES:
        if parent != 0:
            walk_ok[child] &= walk_ok[parent]
    assert (err[walk_ok] < 0.5).all()


def test_seed_channel_permutations():
    rng = np.random.default_rng(5)
    ours = rng.random((7, 7, 21, 6)).astype(np.float32)  # keypoint-major
    seed = np.moveaxis(ours, -1, -2).reshape(7, 7, 126)  # field-major [resp x K, conf x K, ...]
    np.testing.assert_array_equal(seed[..., ppn.pose_channels_from_seed()], ours.reshape(7, 7, 126))
    assert seed[0, 0, 2 * 21 + 5] == ours[0, 0, 5, 2]  # x of keypoint 5 in the seed's layout
    xyz = rng.random((7, 7, 20, 3))
    zyx = xyz[..., ::-1].reshape(7, 7, 60)
    np.testing.assert_array_equal(zyx[..., ppn.vect_channels_from_seed()], xyz.reshape(7, 7, 60))


def reference_decode_cells(pose: np.ndarray, config: ppn.PPNConfig) -> np.ndarray:
    """The finger walk one keypoint at a time: (row, col) of each keypoint's cell."""
    gh, gw = config.grid_hw
    p = np.clip(np.nan_to_num(pose, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    score = p.reshape(gh, gw, config.K, 6)[..., 0] * p.reshape(gh, gw, config.K, 6)[..., 1]
    parents = config.parents
    has_child = {parent for parent, _ in config.edges}
    cells = np.zeros((config.K, 2), np.int64)
    root = parents.index(-1)
    cells[root] = np.unravel_index(int(np.argmax(score[..., root])), (gh, gw))
    for parent, k in config.edges:
        if parents[parent] == -1:
            cells[k] = np.unravel_index(int(np.argmax(score[..., k])), (gh, gw))
            continue
        r = config.window if k in has_child else config.tip_window
        i0, j0 = cells[parent]
        top, left = max(i0 - r, 0), max(j0 - r, 0)
        patch = score[top : i0 + r + 1, left : j0 + r + 1, k]
        di, dj = np.unravel_index(int(np.argmax(patch)), patch.shape)
        cells[k] = (top + di, left + dj)
    return cells


@pytest.mark.parametrize("grid,window,tip_window", [(7, 2, 1), (14, 4, 2), ((7, 9), 1, 0)])
def test_vectorised_walk_picks_the_reference_cells(grid, window, tip_window):
    """One argmax per depth for all fingers: the same cells as the walk keypoint by keypoint,
    ties (first cell in row-major order) and NaN / inf included."""
    config = ppn.PPNConfig(grid=grid, window=window, tip_window=tip_window)
    gh, gw = config.grid_hw
    rng = np.random.default_rng(7)
    for trial in range(100):
        pose = rng.uniform(-0.2, 1.2, (gh, gw, 6 * config.K)).astype(np.float32)
        if trial % 2:
            pose = np.round(pose * 3) / 3  # many equal scores
        if trial % 5 == 0:
            bad = rng.integers(0, pose.size, 50)
            pose.reshape(-1)[bad] = rng.choice([np.nan, np.inf, -np.inf], 50)
        vect = rng.uniform(-1, 1, (gh, gw, 3 * config.num_bones)).astype(np.float32)
        keypoints, scores, _ = ppn.decode(pose, vect, config)
        i, j = reference_decode_cells(pose, config).T
        p = np.clip(np.nan_to_num(pose, nan=0.0, posinf=1.0), 0, 1).reshape(gh, gw, config.K, 6)
        k = np.arange(config.K)
        sx, sy = config.stride_xy
        want = np.stack([(j + p[i, j, k, 2]) * sx, (i + p[i, j, k, 3]) * sy], axis=1)
        np.testing.assert_array_equal(keypoints, want.astype(np.float32))
        np.testing.assert_array_equal(scores, p[i, j, k, 0] * p[i, j, k, 1])
