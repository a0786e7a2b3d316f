"""Inputs that used to pass unnoticed (issue 23): weights that ignore the audio, float64 weights, a device
or FIFO given as --weights, and a photo with two faces of the same size.

The user-facing cases run the real CLI in a subprocess (test_hostile's helpers): one line on stderr, exit
status 2, no output file.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from test_hostile import _weights, cache_config, leftovers, one_line_error, run_cli, speech

from speech2vid.assets import sample_face

# How far above the probe's bar (engine/talking_face.py MIN_AUDIO_EFFECT) working weights must stay, so
# that a model trained a little differently, or another runtime's rounding, does not trip it.
PROBE_MARGIN = 10.0


def _generate(tmp_path: Path, *args: str, face: Path | None = None) -> tuple[object, Path]:
    out = tmp_path / "out.mp4"
    proc = run_cli(
        "-q",
        "--config",
        str(cache_config(tmp_path)),
        "generate",
        "--model",
        "lite",
        *args,
        "--face",
        str(face or sample_face()),
        "--audio",
        str(speech(tmp_path, 0.5)),
        "-o",
        str(out),
    )
    return proc, out


# -- 1. weights whose frames do not depend on the audio -------------------------------------------------


def _zero(tensors) -> None:  # type: ignore[no-untyped-def]
    for k, v in tensors.items():
        if v.is_floating_point():
            tensors[k] = v.new_zeros(v.shape)


def _constant(tensors) -> None:  # type: ignore[no-untyped-def]
    for k, v in tensors.items():
        if v.is_floating_point():
            tensors[k] = v.new_full(v.shape, 1e-3)


@pytest.mark.parametrize("case", ["zero", "constant"])
def test_weights_that_ignore_the_audio_are_refused_at_open(tmp_path: Path, case: str) -> None:
    weights = _weights(tmp_path, f"{case}.safetensors", {"zero": _zero, "constant": _constant}[case])
    proc, out = _generate(tmp_path, "--weights", str(weights), "--backend", "torch")
    line = one_line_error(proc, "the same frame for different speech")
    assert "probe input" in line and "other weights" in line
    assert not out.exists() and not leftovers(tmp_path)


def _probe_effect(engine) -> float:  # type: ignore[no-untyped-def]
    """The probe's audio effect of an engine that opened (passed the probe)."""
    from speech2vid.engine.talking_face import audio_effect, probe_inputs

    face, windows = probe_inputs()
    with engine:
        engine.set_identity([face])
        return audio_effect(engine.render(windows))


@pytest.mark.parametrize(("weights", "backend"), [(None, "onnxruntime"), ("random", "torch")])
def test_working_weights_pass_the_probe_with_margin(tmp_path: Path, weights: str | None, backend: str) -> None:
    """The bundled weights (the shipped FP32 graphs) and untrained ones: the faintest working model."""
    from speech2vid.config import EngineConfig, load_model_config
    from speech2vid.engine.factory import make_engine
    from speech2vid.engine.talking_face import MIN_AUDIO_EFFECT
    from speech2vid.model.ref import model_ref

    engine = make_engine(
        model_ref(load_model_config("lite"), weights), EngineConfig(cache_dir=str(tmp_path)), backend=backend
    )
    assert _probe_effect(engine) > PROBE_MARGIN * MIN_AUDIO_EFFECT


def test_bundled_fp16_and_int8_engines_pass_the_probe_with_margin(tmp_path: Path) -> None:
    from speech2vid.build_engines.build import build
    from speech2vid.config import CalibConfig, EngineConfig, Settings, load_model_config
    from speech2vid.engine.factory import make_engine
    from speech2vid.engine.talking_face import MIN_AUDIO_EFFECT
    from speech2vid.model.weights import load_model

    loaded = load_model(load_model_config("lite"), None)
    settings = Settings(engine=EngineConfig(cache_dir=str(tmp_path)), calib=CalibConfig(size=8, method="minmax"))
    for precision in ("fp16", "int8"):
        build(loaded, settings, precision=precision, backend="onnxruntime")
        engine = make_engine(loaded, settings.engine, backend="onnxruntime", precision=precision)
        assert _probe_effect(engine) > PROBE_MARGIN * MIN_AUDIO_EFFECT, precision


# -- 2. float weights other than FP32, FP16 and BF16 ----------------------------------------------------


def _float64(tensors) -> None:  # type: ignore[no-untyped-def]
    for k, v in tensors.items():
        if v.is_floating_point():
            tensors[k] = v.double()


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_float64_weights_are_refused_naming_the_tensor(tmp_path: Path, backend: str) -> None:
    from safetensors import safe_open

    weights = _weights(tmp_path, "f64.safetensors", _float64)
    with safe_open(str(weights), framework="np") as f:
        floats = [k for k in f.keys() if f.get_slice(k).get_dtype() == "F64"]
    assert floats
    proc, out = _generate(tmp_path, "--weights", str(weights), "--backend", backend)
    line = one_line_error(proc, "is float64, but weights must be FP32, FP16 or BF16")
    assert any(f"'{name}'" in line for name in floats), line
    assert not out.exists()


def test_float64_weights_are_refused_by_load_weights(tmp_path: Path) -> None:
    """pack-weights, training and the torch backend read files through load_weights."""
    from speech2vid.config import load_model_config
    from speech2vid.errors import WeightsError
    from speech2vid.model.speech2vid import build_model
    from speech2vid.model.weights import load_weights

    weights = _weights(tmp_path, "f64.safetensors", _float64)
    with pytest.raises(WeightsError, match=r"tensor '[^']+' is float64"):
        load_weights(build_model(load_model_config("lite")), weights)


# -- 3. a device, FIFO or folder given as --weights ------------------------------------------------------


def _not_a_file(tmp_path: Path, case: str) -> str:
    if case == "device":
        return "/dev/zero"
    if case == "fifo":
        path = tmp_path / "weights.fifo"
        os.mkfifo(path)
        return str(path)
    path = tmp_path / "weights_dir"
    path.mkdir()
    return str(path)


NOT_A_FILE = [
    ("device", "is a character device, not a weights file"),
    ("fifo", "is a FIFO (named pipe), not a weights file"),
    ("folder", "is a folder, not a weights file"),
]


@pytest.mark.skipif(
    not hasattr(os, "mkfifo") or not Path("/dev/zero").is_char_device(), reason="needs POSIX FIFOs and /dev/zero"
)
@pytest.mark.parametrize(("case", "needle"), NOT_A_FILE)
def test_weights_that_are_not_a_regular_file_say_what_they_are(tmp_path: Path, case: str, needle: str) -> None:
    path = _not_a_file(tmp_path, case)
    proc, out = _generate(tmp_path, "--weights", path)  # the default backend: onnxruntime, torch-free
    line = one_line_error(proc, needle)
    assert "not found" not in line and path in line
    assert not out.exists()


@pytest.mark.skipif(
    not hasattr(os, "mkfifo") or not Path("/dev/zero").is_char_device(), reason="needs POSIX FIFOs and /dev/zero"
)
@pytest.mark.parametrize(("case", "needle"), NOT_A_FILE)
def test_pack_weights_of_a_non_file_says_what_it_is(tmp_path: Path, case: str, needle: str) -> None:
    proc = run_cli(
        "pack-weights", _not_a_file(tmp_path, case), "-o", str(tmp_path / "packed.safetensors"), "--model", "lite"
    )
    assert "not found" not in one_line_error(proc, needle)
    assert not (tmp_path / "packed.safetensors").exists()


# -- 4. two faces of the same size in one photo ---------------------------------------------------------


@pytest.fixture(scope="module")
def two_faces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample face pasted twice side by side, at the same size."""
    from PIL import Image

    from speech2vid.faces import read_photo

    rgb = read_photo(sample_face())
    path = tmp_path_factory.mktemp("faces") / "two.png"
    Image.fromarray(np.concatenate([rgb, rgb], axis=1)).save(path)
    return path


def test_a_choice_between_equal_faces_is_announced(two_faces: Path, caplog: pytest.LogCaptureFixture) -> None:
    from speech2vid.faces import align_photo, detect_faces, read_photo

    width = read_photo(sample_face()).shape[1]
    boxes = detect_faces(read_photo(two_faces))
    assert len(boxes) == 2 and {b.center[0] < width for b in boxes} == {True, False}
    with caplog.at_level(logging.INFO, logger="speech2vid.faces"):
        face = align_photo(two_faces)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, caplog.text
    text = warnings[0].getMessage()
    assert face.box is not None
    taken = f"x={face.box.left:.0f}..{face.box.right:.0f}"
    assert "2 faces found" in text and f"using face 0 ({face.box.width:.0f}x" in text and taken in text, text
    assert "face 1 is about as large" in text and "--face-index N (0 = largest" in text, text

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="speech2vid.faces"):
        chosen = align_photo(two_faces, face_index=1)  # the user chose: nothing to say
    assert chosen.box is not None and chosen.box != face.box
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_one_face_gets_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    from speech2vid.faces import align_photo

    with caplog.at_level(logging.INFO, logger="speech2vid.faces"):
        align_photo(sample_face())
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_generate_with_two_equal_faces_says_which_it_took(tmp_path: Path, two_faces: Path) -> None:
    proc, out = _generate(tmp_path, face=two_faces)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if "faces found" in ln]
    assert len(lines) == 1, proc.stderr
    assert "using face 0" in lines[0] and "--face-index" in lines[0] and not lines[0].startswith("speech2vid: error")
    assert out.is_file()


def test_redub_of_a_video_with_two_equal_faces_says_which_it_took(tmp_path: Path, two_faces: Path) -> None:
    from speech2vid.faces import read_photo
    from speech2vid.sinks.video_file import VideoFileSink

    frame = read_photo(two_faces)
    frame = frame[: frame.shape[0] // 2 * 2, : frame.shape[1] // 2 * 2]
    video = tmp_path / "two.mp4"
    with VideoFileSink(video, fps=25, size=(frame.shape[1], frame.shape[0]), preset="ultrafast") as sink:
        for _ in range(25):
            sink.write(frame)
    out = tmp_path / "out.mp4"
    proc = run_cli(
        "-q",
        "--config",
        str(cache_config(tmp_path)),
        "redub",
        str(video),
        "--audio",
        str(speech(tmp_path, 1.0)),
        "-o",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if "faces found" in ln]
    assert len(lines) == 1 and "using face 0" in lines[0] and "--face-index" in lines[0], proc.stderr
    assert out.is_file()
