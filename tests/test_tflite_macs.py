"""MAC count from a TFLite graph agrees with the Keras layer count (conversion.macs)."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from conversion.macs import count_macs  # noqa: E402
from handpose.tflite_macs import count_tflite_macs  # noqa: E402


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_graph_count_equals_the_keras_count(tmp_path, precision):
    from conversion.tflite_export import export_tflite

    inputs = keras.Input((48, 48, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    x = keras.layers.Conv2D(16, 1)(x)
    y = keras.layers.Dense(5)(keras.layers.GlobalAveragePooling2D()(x))
    z = keras.layers.Conv2D(4, 3, padding="valid")(x)
    model = keras.Model(inputs, {"a": y, "b": z})
    expected = count_macs(model)
    assert expected == 24 * 24 * 8 * 27 + 24 * 24 * 8 * 9 + 24 * 24 * 16 * 8 + 16 * 5 + (
        22 * 22 * 4 * 9 * 16
    )
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (48, 48, 3), dtype=np.uint8) for _ in range(2)]
    exported = export_tflite(model, tmp_path / "m.tflite", precision, images)
    assert count_tflite_macs(exported.path) == expected
