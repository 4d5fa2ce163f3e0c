"""One distribution for the whole product.

Packages (import name -> folder):
  handpose   -> app/handpose   the runtime the Pi runs (numpy, Pillow, tflite-runtime, actfw)
  models     -> models         networks, datasets, training, metrics (Keras 3 + TensorFlow)
  conversion -> conversion     TFLite conversion, metadata, verification, imports

Extras:
  (none)  the runtime: what `app/` needs on a Raspberry Pi (Python 3.9-3.12; the OS's numpy
          and Pillow: bullseye's 1.19.5 / 8.1.2, bookworm's 1.24.2 / 9.4.0)
  video   reading and writing video files for local runs (PyAV)
  pi      actfw-raspberrypi (HDMI display): on a Raspberry Pi
  train   Keras 3 + TensorFlow CPU and what training, data and conversion need (Python 3.11)
  dev     pytest and the test tools

The TFLite interpreter is the one each platform has wheels for (`handpose.runner` picks it):
  ai-edge-litert  x86_64 / aarch64 Linux and arm64 macOS with Python >= 3.10 (XNNPACK int8;
                  needs numpy >= 1.23.2, takes numpy 2), e.g. bookworm arm64 (Python 3.11)
  tflite-runtime  2.11.0 on Python 3.9 (2.12.0's armv7l wheel needs GLIBCXX_3.4.29, which
                  bullseye armhf's libstdc++ lacks; 2.11.0 loads there with numpy 1.19.5);
                  2.14.0 on armv7l with Python 3.10 / 3.11 (glibc >= 2.34,
                  e.g. bookworm armhf); numpy < 2 with both
"""

from setuptools import find_packages, setup

#: where ai-edge-litert has wheels (its 2.1.0 also has cp39 ones, but needs numpy >= 1.23.2)
LITERT = (
    'python_version >= "3.10" and ('
    '(platform_system == "Linux" and platform_machine == "x86_64")'
    ' or (platform_system == "Linux" and platform_machine == "aarch64")'
    ' or (platform_system == "Darwin" and platform_machine == "arm64"))'
)
#: where tflite-runtime is the interpreter: Python 3.9 anywhere on Linux, armv7l with 3.10 / 3.11
TFLITE_PY39 = 'python_version < "3.10" and platform_system == "Linux"'
TFLITE_ARMV7 = (
    'python_version >= "3.10" and platform_system == "Linux" and platform_machine == "armv7l"'
)
RUNTIME = [
    "actfw-core>=2.21,<3",  # its Requires-Python is >=3.9,<3.12
    "numpy>=1.19.5",  # bullseye's apt numpy
    f"numpy<2; {TFLITE_PY39}",  # tflite-runtime is built against numpy 1.x
    f"numpy<2; {TFLITE_ARMV7}",
    f"ai-edge-litert>=2.1,<3; {LITERT}",
    f"tflite-runtime==2.11.0; {TFLITE_PY39}",
    f"tflite-runtime==2.14.0; {TFLITE_ARMV7}",
    "Pillow>=8.1,<11",  # bullseye's apt Pillow is 8.1.2; actfw-core 2.21 requires pillow<11
]
VIDEO = ["av>=12,<19"]
PI = ["actfw-raspberrypi>=3.3,<4"]
TRAIN = [
    "numpy>=1.26,<2",  # training and the test suite are verified on numpy 1.26
    "tensorflow-cpu>=2.18,<2.19",
    "keras>=3.6,<3.11",
    "tqdm>=4.66",
    "scikit-image>=0.24,<0.27",  # real sample photographs used as backgrounds
    "matplotlib>=3.8,<4",
    *VIDEO,
]
DEV = [
    "pytest>=8,<10",
    "hypothesis>=6.100",
    "jsonschema>=4.20,<5",
    "ruff>=0.6",
    *VIDEO,
]

setup(
    name="handpose",
    version="0.1.0",
    description="Real-time 3D hand pose for Raspberry Pi cameras, shipped as an Actcast app",
    python_requires=">=3.9",  # the runtime; the `train` extra needs Python 3.11
    package_dir={
        "handpose": "app/handpose",
        "models": "models",
        "conversion": "conversion",
    },
    packages=["handpose"]
    + ["handpose." + p for p in find_packages("app/handpose")]
    + find_packages(include=["models", "models.*", "conversion", "conversion.*"]),
    package_data={"handpose": ["assets/**/*", "schemas/*.json"]},
    include_package_data=True,
    install_requires=RUNTIME,
    extras_require={"video": VIDEO, "pi": PI, "train": TRAIN, "dev": DEV},
    entry_points={"console_scripts": ["handpose = handpose.cli:main"]},
)
