"""One distribution for the whole product.

Packages (import name -> folder):
  handpose   -> app/handpose   the runtime the Pi runs (numpy, Pillow, tflite-runtime, actfw)
  models     -> models         networks, datasets, training, metrics (Keras 3 + TensorFlow)
  conversion -> conversion     TFLite conversion, metadata, verification, imports

Extras:
  (none)  the runtime: what `app/` needs on a Raspberry Pi
  video   reading and writing video files for local runs (PyAV)
  pi      actfw-raspberrypi and picamera: installable only on a Raspberry Pi
  train   Keras 3 + TensorFlow CPU and what training, data and conversion need
  dev     pytest and the test tools
"""

from setuptools import find_packages, setup

RUNTIME = [
    "actfw-core>=2.21,<3",
    "numpy>=1.26,<2",  # tflite-runtime 2.14 is built against numpy 1.x
    "Pillow>=9.5,<11",  # actfw-core 2.21 requires pillow<11
    "tflite-runtime==2.14.0; platform_system == 'Linux'",
]
VIDEO = ["av>=12,<19"]
PI = ["actfw-raspberrypi>=3.3,<4", "picamera>=1.13; platform_machine in 'armv7l aarch64'"]
TRAIN = [
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
    python_requires=">=3.11,<3.12",
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
