"""Gestures: the classifier on the renderer's presets and clips (exact labels), hysteresis.

The pose network is not part of these tests: the classifier sees the ground-truth 3D joints of
the rendered hands (`models.gesture_eval`), once as they are and once with noisy bones.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from handpose.gestures import (
    GESTURES,
    RULES,
    GestureFilter,
    GestureRecognizer,
    classify,
    conditions,
    gesture_scores,
    measure,
)
from handpose.hand import Hand
from models.data.synthetic.kinematics import GESTURES as PRESETS
from models.data.synthetic.kinematics import HandShape, forward_kinematics, rotation_from_euler
from models.gesture_eval import evaluate, format_results, perturb_bones, rotate_180

ROOT = Path(__file__).resolve().parents[1]


def preset_joints(name, left=False, shape=None, rotation=None):
    """Camera-frame joints of a preset (thumbs_down: the thumbs_up hand turned upside down)."""
    rotation = np.eye(3) if rotation is None else rotation
    joints = forward_kinematics(PRESETS[name], shape or HandShape.average(), left=left).joints
    if name == "thumbs_down":
        rotation = rotation_from_euler(0.0, 0.0, np.pi) @ rotation
    return joints @ rotation.T + np.array([0.0, 0.0, 450.0])


def test_the_gestures_are_the_renderers_presets():
    assert set(GESTURES) == set(PRESETS)
    assert set(RULES) == set(GESTURES)
    schema = json.loads((ROOT / "data_schema.json").read_text())
    assert schema["definitions"]["gesture"]["enum"] == list(GESTURES)


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("left", [False, True], ids=["right", "left"])
def test_every_preset_is_recognised_for_any_hand_shape(name, left):
    rng = np.random.default_rng(0)
    for shape in (HandShape.average(), *(HandShape.sample(rng) for _ in range(5))):
        # turned and tilted like a hand in front of a camera (thumbs keep pointing up / down)
        rotation = rotation_from_euler(rng.uniform(-0.8, 0.8), rng.uniform(0, 0.6), 0.0)
        got, score = classify(preset_joints(name, left, shape, rotation))
        assert got == name and score > 0.85, (name, got, score)


def test_a_mirrored_hand_has_the_same_scores():
    joints = preset_joints("call")
    mirrored = joints * np.array([-1.0, 1.0, 1.0])
    assert gesture_scores(joints) == pytest.approx(gesture_scores(mirrored))


def test_conditions_and_degenerate_input():
    probs = conditions(measure(preset_joints("point")))
    assert probs["index_extended"] > 0.95 and probs["middle_curled"] > 0.95
    assert all(0.0 <= p <= 1.0 for p in probs.values())
    assert classify(None) == (None, 0.0)
    assert classify(np.full((21, 3), np.nan)) == (None, 0.0)
    assert classify(np.zeros((21, 3))) == (None, 0.0)  # no size
    assert max(gesture_scores(np.zeros((21, 3))).values()) == 0.0


def test_filter_waits_for_frames_and_holds_through_dips():
    fist = dict.fromkeys(GESTURES, 0.0) | {"fist": 0.9}
    dip = dict.fromkeys(GESTURES, 0.0) | {"fist": 0.5}  # below threshold, above hold
    point = dict.fromkeys(GESTURES, 0.0) | {"point": 0.9, "fist": 0.3}
    nothing = dict.fromkeys(GESTURES, 0.0)
    f = GestureFilter(threshold=0.6, frames=3)
    assert [f.update(fist)[0] for _ in range(3)] == [None, None, "fist"]
    assert f.update(dip) == ("fist", 0.5)  # kept: 0.5 >= 0.6 - 0.2
    assert [f.update(point)[0] for _ in range(3)] == ["fist", "fist", "point"]
    assert [f.update(nothing)[0] for _ in range(3)] == ["point", "point", None]
    flicker = [fist, point] * 4  # no gesture wins 3 frames in a row: nothing changes
    assert {GestureFilter(0.6, 3).update(s)[0] for s in flicker} == {None}


def test_recognizer_keeps_a_filter_per_track_and_forgets_it():
    hand = Hand("right", 0.9, [0, 0, 10, 10], joints_3d=preset_joints("victory"))
    recognizer = GestureRecognizer(threshold=0.6, frames=2)
    assert recognizer([hand.replace(track_id=4)], 0.0)[0].gesture is None
    out = recognizer([hand.replace(track_id=4), hand.replace(track_id=5)], 0.1)
    assert [h.gesture for h in out] == ["victory", None]
    assert recognizer([hand], 5.0)[0].gesture == "victory"  # no track: at once, no hysteresis
    assert recognizer([hand.replace(track_id=4)], 5.1)[0].gesture is None  # forgotten after 2 s
    assert hand.gesture is None  # inputs are not changed


def test_rotate_180_and_bone_noise():
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    hand = Hand("left", 1, [0, 0, 1, 2], keypoints=np.full((21, 2), 0.5),
                joints_3d=preset_joints("fist"))  # fmt: skip
    turned_image, (turned,) = rotate_180(image, [hand])
    np.testing.assert_array_equal(turned_image[0, 0], image[1, 2])
    np.testing.assert_allclose(turned.box, [2, 0, 3, 2])
    np.testing.assert_allclose(turned.keypoints, np.tile([2.5, 1.5], (21, 1)))  # (W - u, H - v)
    assert turned.handedness == "left"
    joints, error = perturb_bones(hand.joints_3d, 0.1, np.random.default_rng(0))
    assert 4.0 < error < 10.0
    np.testing.assert_allclose(joints[0], hand.joints_3d[0], atol=1e-3)


@pytest.mark.slow
def test_accuracy_on_rendered_clips_of_each_preset_both_hands():
    """The issue's bar: >= 90 % of frames right per gesture and per hand, on rendered clips
    (30 frames, two hands), with the app's hysteresis (its first 2 frames are misses), on the
    exact joints and with bone noise of about 7 degrees."""
    results = evaluate(GESTURES, seeds=(11,), n_frames=30, sigmas=(0.0, 0.1))
    print(format_results(results))
    for r in results:
        for side in ("right", "left"):
            assert r.accuracy(side) >= 0.9, (r.preset, r.sigma, side, r.accuracy(side))
            assert r.accuracy(side, "raw_correct") >= 0.9, (r.preset, r.sigma, side)
