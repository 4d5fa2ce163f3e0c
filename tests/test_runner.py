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
