"""Helpers for the MediaPipe family tests: tiny TFLite models in MediaPipe's tensor layout, a
fake mediapipe wheel holding them, and the real models when a cache folder has them.

The tiny models are built with the real TF converter and have MediaPipe's input and output
names, shapes and order, so the whole family (import, metadata, runner, decoders, app) runs
offline:

- palm detector (input_1 [1, 192, 192, 3] float32 in [0, 1]): the score logit of every anchor
  is 40 (m - 0.5), m the mean brightness of its cell (8 x 8 px cells for the 24 x 24 grid, 16 x
  16 for the 12 x 12 one), so a bright square on a dark frame is a palm; every anchor regresses
  the same palm around its centre: a `PALM_SIDE` px box and keypoints `PALM_KEYPOINTS` (input
  px from the anchor centre; wrist below, middle MCP above: an upright hand).
- landmark model (input_1 [1, 224, 224, 3]): landmarks = `CROP_LANDMARKS` (crop px, z 0) plus
  1e-6 x a conv / depthwise / dense feature of the image (so the graph has the ops whose MACs
  are counted); presence = sigmoid(80 (m - 0.12)) with m the mean brightness of the centre
  112 x 112 (a bright square covering 5 % of it is a hand); handedness = sigmoid(2.2) ~ 0.9
  (MediaPipe's "Left" in a mirrored image, so anatomically right); world landmarks =
  `WORLD_LANDMARKS` (metres).
"""

from __future__ import annotations

import functools
import tempfile
import zipfile
from pathlib import Path

import numpy as np

#: the palm every anchor regresses: box side and 7 keypoints, input px from the anchor centre
PALM_SIDE = 40.0
PALM_KEYPOINTS = np.array(
    [[0, 16], [-9, -8], [0, -12], [8, -10], [14, -6], [-14, 8], [-18, -2]], np.float64
)
#: the tiny landmark model's 21 keypoints in crop px: an upright open right hand (palm facing
#: the camera: thumb on the image left), wrist at the bottom centre
_SPREAD = np.radians([-60.0, -22.0, 0.0, 18.0, 36.0])  # thumb .. little, from vertical
_LENGTHS = np.array([[18, 16, 14, 12]] + [[42, 18, 12, 10]] * 4, np.float64)


def _open_hand() -> np.ndarray:
    points = np.zeros((21, 2))
    points[0] = [112.0, 170.0]
    for f in range(5):
        direction = np.array([np.sin(_SPREAD[f]), -np.cos(_SPREAD[f])])
        parent = points[0]
        for j in range(4):
            k = 1 + 4 * f + j
            points[k] = parent + _LENGTHS[f, j] * direction
            parent = points[k]
    return points


CROP_LANDMARKS = _open_hand()
#: world landmarks in metres, the same hand 1 px = 0.5 mm, with some depth
WORLD_LANDMARKS = np.concatenate(
    [(CROP_LANDMARKS - CROP_LANDMARKS.mean(axis=0)) * 5e-4, np.linspace(0, 0.02, 21)[:, None]],
    axis=1,
)
#: MACs of the landmark model's conv (3x3, 3->8, stride 4), depthwise (3x3 on 56x56x8) and
#: dense (8 -> 63) layers
LANDMARK_MACS = 56 * 56 * 8 * 3 * 3 * 3 + 56 * 56 * 8 * 3 * 3 + 8 * 63


def _palm_regressors() -> np.ndarray:
    from handpose.codec.palm import PALM_ANCHORS, encode_palm, ssd_anchors

    anchors = ssd_anchors(PALM_ANCHORS).astype(np.float64)
    size = float(PALM_ANCHORS.input_size)
    rows = []
    for anchor in anchors:
        centre = anchor[:2] * size
        box = np.concatenate([centre - PALM_SIDE / 2, centre + PALM_SIDE / 2]) / size
        keypoints = (centre + PALM_KEYPOINTS) / size
        rows.append(encode_palm(box, keypoints, anchor))
    return np.asarray(rows, np.float32)


def _convert(function, path: Path, size: int) -> Path:
    import tensorflow as tf

    concrete = function.get_concrete_function(tf.TensorSpec([1, size, size, 3], tf.float32))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], function)
    path.write_bytes(converter.convert())
    return path


def build_palm_model(path: Path) -> Path:
    """The tiny palm detector (module docstring) written to `path`."""
    import tensorflow as tf

    regressors = tf.constant(_palm_regressors()[None])

    @tf.function
    def palm(input_1):
        grey = tf.reduce_mean(input_1, axis=-1, keepdims=True)
        fine = tf.nn.avg_pool2d(grey, 8, 8, "VALID")  # (1, 24, 24, 1)
        coarse = tf.nn.avg_pool2d(grey, 16, 16, "VALID")  # (1, 12, 12, 1)
        fine = tf.reshape(tf.tile(tf.reshape(fine, [1, 576, 1]), [1, 1, 2]), [1, 1152, 1])
        coarse = tf.reshape(tf.tile(tf.reshape(coarse, [1, 144, 1]), [1, 1, 6]), [1, 864, 1])
        scores = 40.0 * (tf.concat([fine, coarse], axis=1) - 0.5)
        boxes = regressors + 1e-6 * tf.reduce_mean(grey)
        return boxes, scores

    return _convert(palm, path, 192)


def build_landmark_model(path: Path) -> Path:
    """The tiny landmark model (module docstring) written to `path`."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    conv = tf.constant(rng.normal(0, 0.3, (3, 3, 3, 8)).astype(np.float32))
    depthwise = tf.constant(rng.normal(0, 0.3, (3, 3, 8, 1)).astype(np.float32))
    dense = tf.constant(rng.normal(0, 1.0, (8, 63)).astype(np.float32))
    landmarks = np.concatenate([CROP_LANDMARKS, np.zeros((21, 1))], axis=1).reshape(1, 63)
    landmarks = tf.constant(landmarks.astype(np.float32))
    world = tf.constant(WORLD_LANDMARKS.reshape(1, 63).astype(np.float32))

    @tf.function
    def landmark(input_1):
        x = tf.nn.conv2d(input_1, conv, 4, "SAME")
        x = tf.nn.depthwise_conv2d(x, depthwise, [1, 1, 1, 1], "SAME")
        feature = tf.matmul(tf.reduce_mean(x, axis=[1, 2]), dense)  # (1, 63)
        centre = tf.reduce_mean(input_1[:, 56:168, 56:168, :])
        presence = tf.sigmoid(80.0 * (tf.reshape(centre, [1, 1]) - 0.12))
        handedness = tf.sigmoid(tf.fill([1, 1], 2.2) + 0.0 * presence)
        return landmarks + 1e-6 * feature, presence, handedness, world + 1e-9 * feature

    return _convert(landmark, path, 224)


@functools.cache
def tiny_wheel() -> Path:
    """A zip laid out like the mediapipe wheel, holding the tiny models as lite and full."""
    folder = Path(tempfile.mkdtemp(prefix="handpose-test-mediapipe-"))
    palm = build_palm_model(folder / "palm.tflite")
    landmark = build_landmark_model(folder / "landmark.tflite")
    wheel = folder / "mediapipe-0.10.14-cp311-cp311-manylinux_2_17_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for variant in ("lite", "full"):
            archive.write(palm, f"mediapipe/modules/palm_detection/palm_detection_{variant}.tflite")
            archive.write(
                landmark, f"mediapipe/modules/hand_landmark/hand_landmark_{variant}.tflite"
            )
        archive.writestr("mediapipe/modules/hand_landmark/handedness.txt", "Left\nRight\n")
    return wheel


@functools.cache
def tiny_mediapipe_dir() -> Path:
    """`handpose convert mediapipe` output (lite/, full/) of the tiny models; built once."""
    from conversion.mediapipe_import import import_models

    out = tiny_wheel().parent / "models"
    import_models(tiny_wheel(), out, check=False, command="test")
    return out


def palm_frame(
    centre: tuple[float, float], side: float, size: tuple[int, int] = (480, 640)
) -> np.ndarray:
    """A dark frame (H, W) with a bright square `side` px wide at `centre` (x, y): a palm for
    the tiny palm detector."""
    height, width = size
    frame = np.full((height, width, 3), 20, np.uint8)
    x, y = centre
    half = side / 2
    frame[int(y - half) : int(y + half), int(x - half) : int(x + half)] = 235
    return frame


def real_mediapipe_dir() -> Path | None:
    """The real MediaPipe models (lite/ and full/) where `handpose convert mediapipe` writes
    them by default (`handpose.paths.MEDIAPIPE_DIR`: $HANDPOSE_MEDIAPIPE_DIR, else
    ~/.cache/handpose/mediapipe), or None."""
    from handpose.paths import MEDIAPIPE_DIR

    names = [f"{v}/{n}.json" for v in ("lite", "full") for n in ("detector", "pose")]
    return MEDIAPIPE_DIR if all((MEDIAPIPE_DIR / n).is_file() for n in names) else None


SKIP_REAL = (
    "the real MediaPipe models are not cached: run `handpose convert mediapipe` (needs the "
    "package index; writes ~/.cache/handpose/mediapipe, or $HANDPOSE_MEDIAPIPE_DIR)"
)
