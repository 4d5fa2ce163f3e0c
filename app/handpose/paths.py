"""Where the bundled files live: `app/handpose/assets/` (shipped with the app and the package)."""

from __future__ import annotations

import os
from pathlib import Path

ASSETS_DIR = Path(os.environ.get("HANDPOSE_ASSETS", Path(__file__).resolve().parent / "assets"))
DEFAULT_MODELS_DIR = ASSETS_DIR / "models" / "default"
SAMPLE_CLIP = ASSETS_DIR / "sample_clip.mp4"
#: where `handpose convert mediapipe` writes MediaPipe's models by default (lite/, full/), the
#: teacher `handpose data autolabel` uses and the folder the real-model tests look in
MEDIAPIPE_DIR = Path(
    os.environ.get("HANDPOSE_MEDIAPIPE_DIR", Path.home() / ".cache" / "handpose" / "mediapipe")
)
