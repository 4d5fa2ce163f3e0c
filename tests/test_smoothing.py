"""Smoothing: the One Euro filter's behaviour, and `HandSmoother` on a rendered clip with noise."""

import numpy as np
import pytest

from handpose.hand import Hand
from handpose.pipeline.smooth import HandSmoother, OneEuroFilter, smoothing_factor
from handpose.settings import AppSettings

FPS = 15.0


def test_smoothing_factor_is_the_exponential_filters():
    # a = 2 pi f dt / (2 pi f dt + 1): 1 Hz at 15 fps
    r = 2 * np.pi / 15
    assert smoothing_factor(1 / 15, 1.0) == pytest.approx(r / (r + 1))


def test_one_euro_passes_the_first_sample_and_restarts_on_odd_input():
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    x = np.array([[10.0, 20.0]])
    np.testing.assert_array_equal(f(x, 0.0), x)
    np.testing.assert_array_equal(f(x + 5, 0.0), x + 5)  # same time: restarts on it
    np.testing.assert_array_equal(f(np.zeros((2, 2)), 1.0), np.zeros((2, 2)))  # new shape


def test_one_euro_is_an_exponential_filter_without_beta():
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    f(np.zeros((1, 2)), 0.0)
    a = smoothing_factor(1 / 15, 1.0)
    np.testing.assert_allclose(f(np.ones((1, 2)), 1 / 15), a)
    values = [f(np.ones((1, 2)), n / 15)[0, 0] for n in range(2, 60)]
    assert values[-1] == pytest.approx(1.0, abs=1e-3) and np.all(np.diff(values) > 0)


def test_beta_follows_fast_moves_with_less_lag():
    def lag(beta):
        f = OneEuroFilter(min_cutoff=0.5, beta=beta)
        out = [f(np.array([[100.0 * n / 15, 0.0]]), n / 15)[0, 0] for n in range(30)]
        return 100.0 * 29 / 15 - out[-1]  # a point moving 100 px/s

    assert lag(0.0) == pytest.approx(100.0 / (2 * np.pi * 0.5), rel=0.05)  # v / (2 pi f)
    assert lag(10.0) < 0.1 * lag(0.0)


def noisy(hand, rng, sigma):
    size = float(max(hand.box[2] - hand.box[0], hand.box[3] - hand.box[1]))
    return hand.replace(keypoints=hand.keypoints + rng.normal(0, sigma * size, (21, 2)))


def keypoint_error(hand, truth):
    size = float(max(truth.box[2] - truth.box[0], truth.box[3] - truth.box[1]))
    return float(np.sqrt(((hand.keypoints - truth.keypoints) ** 2).sum(1).mean()) / size)


def smoothed_error(frames, smoother, sigma=0.02):
    """Mean keypoint error (in hand sizes) of the raw noisy and the smoothed keypoints."""
    rng = np.random.default_rng(0)
    raw, smooth = [], []
    for n, labels in enumerate(frames):
        inputs = [noisy(h, rng, sigma) for h in labels]
        for truth, given, out in zip(labels, inputs, smoother(inputs, n / FPS), strict=True):
            raw.append(keypoint_error(given, truth))
            smooth.append(keypoint_error(out, truth))
    return float(np.mean(raw)), float(np.mean(smooth))


@pytest.mark.slow
def test_app_defaults_steady_a_still_hand_and_do_not_hurt_a_moving_one():
    from models.data.synthetic import render_clip

    settings = AppSettings()
    clip = [h for _, h in render_clip(45, seed=4, size=(240, 320), fps=FPS, crossing=True)]
    make = lambda: HandSmoother(settings.smoothing_min_cutoff, settings.smoothing_beta)  # noqa: E731
    raw, smooth = smoothed_error([clip[0]] * 45, make())  # a still hand, 2 % keypoint noise
    assert smooth < 0.7 * raw, (raw, smooth)
    raw, smooth = smoothed_error(clip, make())  # two hands moving and crossing
    assert smooth < raw, (raw, smooth)


def test_box_stays_a_box_and_hands_without_ids_pass():
    smoother = HandSmoother(min_cutoff=0.5, beta=10.0)
    for n in range(10):
        x = 100.0 + 40.0 * (n % 2)  # jumping around
        hand = Hand("right", 0.9, [x, 50, x + 30 + 20 * (n % 3), 90], track_id=1)
        out = smoother([hand], n / FPS)[0]
        assert out.box[2] > out.box[0] and out.box[3] > out.box[1]
    untracked = Hand("left", 0.9, [0, 0, 10, 10])
    assert smoother([untracked], 1.0)[0] is untracked


def test_a_hand_unseen_for_a_while_starts_over():
    smoother = HandSmoother(min_cutoff=0.5, beta=0.0, reset_after=0.5)
    smoother([Hand("right", 0.9, [0, 0, 10, 10], track_id=2)], 0.0)
    back = smoother([Hand("right", 0.9, [100, 100, 110, 110], track_id=2)], 1.0)[0]
    np.testing.assert_allclose(back.box, [100, 100, 110, 110])
