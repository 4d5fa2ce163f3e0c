"""handpose.runner.ModelRunner on real converted models: input paths and output dequantization."""

import time

import numpy as np
import pytest
from conftest_app import app_models_dir

from handpose.metadata import ModelMetadata
from handpose.runner import ModelRunner


@pytest.mark.slow
def test_int8_models_take_camera_pixels_as_they_are():
    folder = app_models_dir()
    runner = ModelRunner(ModelMetadata.load(folder / "detector.json"), num_threads=1)
    assert runner._raw_input  # uint8 input, scale 1 / zero point 0: copied, no float pass
    image = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    out = runner.run(image)
    interpreter = runner.interpreter  # the same interpreter fed by hand
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], image[None])
    interpreter.invoke()
    for key, spec in runner.metadata.outputs.items():
        (raw_detail,) = [d for d in interpreter.get_output_details() if d["name"] == spec.name]
        raw = interpreter.get_tensor(raw_detail["index"]).astype(np.float32)
        scale, zero = raw_detail["quantization"]
        np.testing.assert_allclose(out[key], (raw - zero) * scale, rtol=0, atol=1e-6)
        assert out[key].dtype == np.float32


@pytest.mark.slow
def test_runner_adds_up_its_invokes():
    runner = ModelRunner(ModelMetadata.load(app_models_dir() / "pose.json"), num_threads=1)
    assert (runner.invokes, runner.invoke_seconds, runner.invoke_cpu_seconds) == (0, 0.0, 0.0)
    image = np.zeros((*runner.input_size, 3), np.uint8)
    start = time.perf_counter()
    for _ in range(3):
        runner.run(image)
    elapsed = time.perf_counter() - start
    assert runner.invokes == 3
    assert 0 < runner.invoke_seconds <= elapsed  # invokes only: feeding and reading are not in it
    assert runner.invoke_cpu_seconds > 0


@pytest.mark.slow
@pytest.mark.parametrize(
    "quant,raw",
    [((1.0, 0), True), ((1.0000001192092896, 0), True), ((1.7, 3), False), ((0.5, -20), False)],
)
def test_pixels_fed_as_they_are_or_by_table_are_what_the_arithmetic_gives(quant, raw):
    """Quantized uint8 inputs: a scale within float32 rounding of 1 maps every pixel value to
    itself (fed as it is), any other goes through the table of the 256 values; both feed the
    interpreter exactly what clip(round(x / scale + zero)) gives."""
    runner = ModelRunner(ModelMetadata.load(app_models_dir() / "pose.json"), num_threads=1)
    runner._input_quant = quant
    runner._choose_input_path()
    assert runner._raw_input is raw and runner._table is not None
    image = np.random.default_rng(1).integers(0, 256, (*runner.input_size, 3), dtype=np.uint8)
    runner.run(image)
    fed = runner.interpreter.get_tensor(runner._input_index)[0]
    want = np.clip(np.round(image.astype(np.float32) / quant[0] + quant[1]), 0, 255)
    np.testing.assert_array_equal(fed, want.astype(np.uint8))
