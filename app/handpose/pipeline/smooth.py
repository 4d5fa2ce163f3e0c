"""Smoothing over time: the One Euro filter and `HandSmoother`, which runs one per tracked hand.

One Euro filter (Casiez, Roussel and Vogel, CHI 2012): a low-pass filter whose cutoff rises with
the speed, so a still hand stops jittering and a moving hand lags little. For samples (..., D)
(points of dimension D) at times t, with Δt = t - t_prev > 0:

    a(f)  = 2π f Δt / (2π f Δt + 1)                 (an exponential filter of cutoff f, in Hz)
    dx_t  = (x_t - x̂_t-1) / Δt
    dx̂_t = a(d_cutoff) dx_t + (1 - a(d_cutoff)) dx̂_t-1
    f_c   = min_cutoff + beta |dx̂_t| / scale        (|.| per point, over its D coordinates)
    x̂_t  = a(f_c) x_t + (1 - a(f_c)) x̂_t-1

A box is filtered as two points, its centre and its (width, height), so it never turns inside
out. `scale` makes beta independent of units and distance: `HandSmoother` passes the hand's size
(the longer side of its box in pixels for keypoints and box, 100 mm for the 3D joints), so the
speed is in hand sizes per second, as in MediaPipe's landmark smoothing.
"""

from __future__ import annotations

import math

import numpy as np

from handpose.hand import Hand

#: the 3D joints' speed is measured in units of this many mm (about a palm and a finger)
JOINTS_SCALE_MM = 100.0


def smoothing_factor(dt: float, cutoff: float | np.ndarray) -> float | np.ndarray:
    """a(f) = r / (r + 1) with r = 2π f Δt (module docstring)."""
    r = 2.0 * math.pi * np.asarray(cutoff, np.float64) * dt
    return r / (r + 1.0)


class OneEuroFilter:
    """One Euro filter over arrays of points (module docstring).

    Args:
        min_cutoff: cutoff frequency in Hz when still.
        beta: how fast the cutoff rises with the speed (Hz per unit of speed / scale).
        d_cutoff: cutoff frequency in Hz of the speed estimate.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> None:
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t = 0.0

    def reset(self) -> None:
        self._x = self._dx = None

    def __call__(self, x: np.ndarray, t: float, scale: float = 1.0) -> np.ndarray:
        """The filtered value of sample `x` (..., D) at time `t` seconds (float64 copy).

        The first sample, a sample of another shape, or a time not after the previous one
        passes through unfiltered (and restarts the filter on it).
        """
        x = np.array(x, np.float64)
        dt = t - self._t
        if self._x is None or self._x.shape != x.shape or not dt > 0.0:
            self._x, self._dx, self._t = x, np.zeros_like(x), t
            return x.copy()
        assert self._dx is not None
        # the formulas of the module docstring with the operations of `smoothing_factor` and
        # `np.linalg.norm` written out in the same order (the same floats), without their
        # per-call overhead: the smoother runs 3 filters per hand and frame
        dx = (x - self._x) / dt
        r = 2.0 * math.pi * self.d_cutoff * dt  # a(d_cutoff), a Python float
        self._dx = self._dx + r / (r + 1.0) * (dx - self._dx)
        speed = np.sqrt(np.add.reduce(self._dx * self._dx, axis=-1, keepdims=True))
        speed /= max(scale, 1e-9)
        r_c = 2.0 * math.pi * (self.min_cutoff + self.beta * speed) * dt
        self._x = self._x + r_c / (r_c + 1.0) * (x - self._x)
        self._t = t
        return self._x.copy()


class HandSmoother:
    """One Euro filters on the keypoints, box and 3D joints of each tracked hand.

    Hands are told apart by `Hand.track_id`; a hand without one passes through unchanged. A
    hand's filters restart when it was unseen for more than `reset_after` seconds (or comes
    back with another shape of data) and are forgotten after that.

    Args:
        min_cutoff: One Euro minimum cutoff in Hz.
        beta: One Euro speed coefficient, speed in hand sizes per second.
        d_cutoff: cutoff in Hz of the speed estimate.
        reset_after: seconds unseen after which a hand's filters start over.
    """

    def __init__(
        self,
        min_cutoff: float = 0.5,
        beta: float = 10.0,
        d_cutoff: float = 1.0,
        reset_after: float = 0.5,
    ) -> None:
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        self.reset_after = float(reset_after)
        self._filters: dict[int, tuple[dict[str, OneEuroFilter], float]] = {}

    def _new(self) -> dict[str, OneEuroFilter]:
        return {
            name: OneEuroFilter(self.min_cutoff, self.beta, self.d_cutoff)
            for name in ("box", "keypoints", "joints_3d")
        }

    def __call__(self, hands: list[Hand], timestamp: float) -> list[Hand]:
        """The hands with smoothed box, keypoints and joints_3d (copies), in the same order."""
        out = []
        for hand in hands:
            if hand.track_id is None:
                out.append(hand)
                continue
            entry = self._filters.get(hand.track_id)
            if entry is None or timestamp - entry[1] > self.reset_after:
                filters = self._new()
            else:
                filters = entry[0]
            self._filters[hand.track_id] = (filters, timestamp)
            box = hand.box.astype(np.float64)
            centre_size = np.empty((2, 2))
            centre_size[0] = (box[:2] + box[2:]) / 2.0  # the corners' mean, same floats
            centre_size[1] = box[2:] - box[:2]
            size = max(float(centre_size[1].max()), 1.0)
            centre, extent = filters["box"](centre_size, timestamp, size)
            changes: dict = {"box": np.concatenate([centre - extent / 2, centre + extent / 2])}
            if hand.keypoints is not None:
                changes["keypoints"] = filters["keypoints"](hand.keypoints, timestamp, size)
            if hand.joints_3d is not None:
                changes["joints_3d"] = filters["joints_3d"](
                    hand.joints_3d, timestamp, JOINTS_SCALE_MM
                )
            out.append(hand.replace(**changes))
        self._filters = {
            key: entry
            for key, entry in self._filters.items()
            if timestamp - entry[1] <= self.reset_after
        }
        return out
