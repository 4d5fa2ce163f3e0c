"""Helpers for the app tests (imported by tests/test_app*.py, test_capture.py, ...)."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np


def write_clip(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    """Write RGB uint8 frames to an MPEG-4 video with PyAV; returns `path`."""
    import av

    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = 4_000_000
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@functools.cache
def app_models_dir(precision: str = "int8") -> Path:
    """A model folder {detector,pose}.{tflite,json} of tiny untrained networks (width 0.35,
    input 224), converted and described with the conversion package; built once per session.
    """
    from conversion.metadata_writer import build_metadata, save_checked
    from conversion.tflite_export import export_tflite
    from models.networks import build_detector, build_pose

    folder = Path(tempfile.mkdtemp(prefix="handpose-test-models-")) / precision
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(4)]
    detector = build_detector(width=0.35, input_size=224)
    fire_everywhere(detector)
    for task, network in (("detector", detector), ("pose", build_pose(width=0.35, input_size=224))):
        exported = export_tflite(network, folder / f"{task}.tflite", precision, images)
        config = {"model": {"width": 0.35, "classes": ["left", "right"]}, "command": "test"}
        meta = build_metadata(exported, task, config)
        save_checked(meta, folder / f"{task}.json")
    return folder


def fire_everywhere(detector) -> None:
    """Flip the untrained detector's background prior (p ~ 0.98, see BACKGROUND_BIAS) so that
    every box scores about 0.45 for each hand class: the app tests need detections to flow."""
    for layer in detector.layers:
        if layer.name.startswith("conf") and layer.name.endswith("_pointwise_conv"):
            kernel, bias = layer.get_weights()
            per_box = bias.reshape(-1, 3)
            per_box[:, 0] = -2.0
            layer.set_weights([kernel * 0.1, per_box.ravel()])


def clip_frames(n_frames: int = 12, size: tuple[int, int] = (240, 320)) -> list[np.ndarray]:
    """Frames of a synthetic hand clip (the renderer's `render_clip` when it is there, else
    moving coloured blobs on a gradient)."""
    try:
        from models.data.synthetic import render_clip
    except ImportError:
        render_clip = None
    if render_clip is not None:
        return [image for image, _ in render_clip(n_frames, seed=3, size=size, fps=10)]
    height, width = size
    ys, xs = np.mgrid[0:height, 0:width]
    frames = []
    for i in range(n_frames):
        frame = np.zeros((height, width, 3), np.uint8)
        frame[..., 2] = (xs * 255 // width).astype(np.uint8)
        cx, cy = width // 3 + 4 * i, height // 2
        blob = (xs - cx) ** 2 + (ys - cy) ** 2 < (height // 6) ** 2
        frame[blob] = (230, 180, 150)
        frames.append(frame)
    return frames
