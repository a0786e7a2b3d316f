"""`speech2vid generate` end to end: a photo + speech in, a playable MP4 with audio out.

The bad-input tests run the real console command in a subprocess, because what they check is what a
user sees: one line on stderr, a non-zero exit, no traceback, and no output file left behind.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import soxr

from speech2vid.assets import sample_face, sample_speech
from speech2vid.cli import main

SECONDS = 1.8  # keeps each render to a few seconds on 2 CPU cores


def speech_at(tmp_path: Path, rate: int, seconds: float = SECONDS, channels: int = 1) -> Path:
    """The bundled speech cut to `seconds` and resampled to `rate` (soxr), written as a WAV."""
    x, sr = sf.read(sample_speech(), dtype="float32")
    x = x[: int(seconds * sr)]
    y = soxr.resample(x, sr, rate)
    if channels == 2:
        y = np.stack([y, 0.5 * y], axis=1)
    path = tmp_path / f"speech_{rate}_{channels}ch.wav"
    sf.write(path, y, rate)
    return path


def probe(path: Path) -> tuple[int, float, int, float]:
    """(video frames decoded, video fps, audio streams, audio seconds) read back with PyAV."""
    with av.open(str(path)) as c:
        video = c.streams.video[0]
        fps = float(video.average_rate)
        audio_streams = len(c.streams.audio)
        audio_seconds = float(c.streams.audio[0].duration * c.streams.audio[0].time_base) if audio_streams else 0.0
        frames = sum(1 for _ in c.decode(video=0))
    return frames, fps, audio_streams, audio_seconds


@pytest.mark.parametrize(("rate", "channels", "backend"), [(16000, 1, "torch"), (48000, 2, "onnxruntime")])
def test_generate_writes_playable_mp4_with_audio(tmp_path: Path, rate: int, channels: int, backend: str) -> None:
    audio = speech_at(tmp_path, rate, channels=channels)
    out = tmp_path / "out.mp4"
    code = main(
        [
            "-q",
            "--config",
            str(_cache_config(tmp_path)),
            "generate",
            "--face",
            str(sample_face()),
            "--audio",
            str(audio),
            "-o",
            str(out),
            "--model",
            "lite",
            "--weights",
            "random",
            "--backend",
            backend,
        ]
    )
    assert code == 0
    frames, fps, n_audio, audio_seconds = probe(out)
    duration = sf.info(audio).duration
    assert abs(frames - round(25 * duration)) <= 1
    assert fps == 25.0
    assert n_audio == 1 and abs(audio_seconds - duration) < 0.1
    assert abs(frames / 25.0 - duration) <= 1 / 25 + 1e-9  # video as long as the audio within a frame
    assert not list(tmp_path.glob(".*partial*")), "temporary file left behind"


def test_random_weights_are_labelled_in_the_picture(tmp_path: Path) -> None:
    """The watermark band darkens the top rows; a labelled video must differ there from an unlabelled one."""
    from speech2vid.frames.render import video_frame

    frame = np.full((109, 109, 3), 0.8, np.float32)
    plain, labelled = video_frame(frame, 256), video_frame(frame, 256, "RANDOM WEIGHTS")
    top = slice(0, 25)
    assert plain[top].mean() > 190 and labelled[top].mean() < 120
    assert np.array_equal(plain[100:], labelled[100:])


def _cache_config(tmp_path: Path) -> Path:
    """Keep exported engines inside the test's folder, never in the user's cache."""
    cfg = tmp_path / "cache.yaml"
    cfg.write_text(f"engine:\n  cache_dir: {tmp_path / 'engines'}\n")
    return cfg


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "speech2vid", *args], capture_output=True, text=True, timeout=300)


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    face, speech = str(sample_face()), str(speech_at(tmp_path, 16000, 1.0))
    text = tmp_path / "notes.wav"
    text.write_text("these are not audio samples\n" * 50)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x10\x00\x00WAVE" + np.random.default_rng(0).bytes(4096))  # header, then noise
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    blank = tmp_path / "blank.png"
    import cv2

    cv2.imwrite(str(blank), np.tile(np.linspace(0, 255, 320, dtype=np.uint8), (240, 1)))
    badcfg = tmp_path / "bad.yaml"
    badcfg.write_text("engine:\n  bakend: torch\n")
    gen = ["generate", "--model", "lite", "--weights", "random", "--backend", "torch"]
    return {
        "missing file": ([*gen, "--face", face, "--audio", str(tmp_path / "nope.wav")], "nope.wav"),
        "non-audio file": ([*gen, "--face", face, "--audio", str(text)], "notes.wav"),
        "corrupt wav": ([*gen, "--face", face, "--audio", str(corrupt)], "corrupt.wav"),
        "empty audio": ([*gen, "--face", face, "--audio", str(empty)], "empty.wav"),
        "no face": ([*gen, "--face", str(blank), "--audio", speech], "no face"),
        "unknown config key": (["--config", str(badcfg), *gen, "--face", face, "--audio", speech], "engine.bakend"),
        "no bundled weights": (["generate", "--model", "paper", "--face", face, "--audio", speech], "--weights"),
        "corrupt weights": (
            ["generate", "--model", "lite", "--weights", str(text), "--face", face, "--audio", speech],
            "not a safetensors file",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing file",
        "non-audio file",
        "corrupt wav",
        "empty audio",
        "no face",
        "unknown config key",
        "no bundled weights",
        "corrupt weights",
    ],
)
def test_bad_input_is_one_line_no_traceback_no_output(tmp_path: Path, case: str) -> None:
    args, needle = _bad_inputs(tmp_path)[case]
    out = tmp_path / "out.mp4"
    proc = run_cli(*args, "-o", str(out))
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("speech2vid: error: ") and needle in lines[0]
    assert "Traceback" not in proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".*partial*"))


def test_help_lists_subcommands() -> None:
    proc = run_cli("--help")
    assert proc.returncode == 0
    for command in ("generate", "demo", "info", "bench"):
        assert command in proc.stdout
