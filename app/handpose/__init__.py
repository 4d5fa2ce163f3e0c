"""handpose: real-time 3D hand pose on a Raspberry Pi camera (runtime package).

This package is what `app/` ships to the Pi. It must import without TensorFlow: only numpy,
Pillow, tflite-runtime (or a fallback interpreter) and actfw. Conventions for every array it
passes around are written once in `docs/CONVENTIONS.md` and summarised in `handpose.hand`.
"""

__version__ = "0.1.0"
