"""Bundled sample inputs for the demo and the tests (provenance and licences in README.md here)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the detector's spec names its file; faces imports assets, not the other way at run time
    from speech2vid.faces.mediapipe import DetectorSpec

MESH_MODEL = "face_landmark"  # FaceMesh's file name in MediaPipe's wheel and in faces/

_HERE = Path(__file__).resolve().parent


def sample_face() -> Path:
    """A portrait photo (NASA, astronaut Eileen Collins, public domain, via scikit-image)."""
    return _HERE / "sample_face.png"


def sample_speech() -> Path:
    """About five seconds of synthetic English speech (espeak-ng), 16 kHz mono WAV."""
    return _HERE / "sample_speech.wav"


def bundled_weights_dir() -> Path:
    """Default weights, one FP16 safetensors file per model name (provenance in weights/README.md)."""
    return _HERE / "weights"


def bundled_graphs_dir() -> Path:
    """The default weights' FP32 ONNX graphs, one folder per model, made by `speech2vid export --default`."""
    return _HERE / "graphs"


def sample_synth_face() -> Path:
    """A face from `speech2vid synth` whose identity the bundled weights never saw in training."""
    return _HERE / "sample_synth_face.png"


def silero_vad_model() -> Path:
    """Silero VAD's 16 kHz ONNX graph (MIT licence, vad/LICENSE; provenance in README.md here)."""
    return _HERE / "vad" / "silero_vad_16k_op15.onnx"


def face_detector_graph(spec: DetectorSpec) -> Path:
    """MediaPipe's BlazeFace detector (short or full range) as an ONNX graph (Apache-2.0, faces/NOTICE;
    made by ``speech2vid pack-mediapipe`` from the mediapipe 0.10.14 wheel's TFLite model)."""
    return _HERE / "faces" / f"{spec.name}.onnx"


def face_mesh_graph() -> Path:
    """MediaPipe's FaceMesh landmark model (468 points) as an ONNX graph (Apache-2.0, faces/NOTICE)."""
    return _HERE / "faces" / f"{MESH_MODEL}.onnx"
