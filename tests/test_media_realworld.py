"""Real-world inputs and outputs (issue 23): phone videos, odd frame sizes, low sample rates, pipes.

Each input is a real file made here with PyAV (or soundfile), and where what matters is what a user
sees, the real command runs in a subprocess: it succeeds and writes what it says, or it fails with one
line on stderr, at once, without a traceback.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import soxr
from test_hostile import one_line_error, run_cli

from speech2vid.assets import sample_face, sample_speech
from speech2vid.assets.synthetic_video import source_frames
from speech2vid.audio.io import Audio, read_audio
from speech2vid.errors import AudioError
from speech2vid.sources.video_file import SourceFrames, fit_plan, probe_video
from speech2vid.training.prepare.video import upright_frames as prepare_frames

FPS = 25
N_FRAMES = 25


def speech(path: Path, seconds: float, rate: int = 16000) -> Path:
    """The sample speech cut to ``seconds``, at ``rate``."""
    x, sr = sf.read(sample_speech(), dtype="float32")
    x = x[int(0.3 * sr) : int((0.3 + seconds) * sr)]
    sf.write(path, soxr.resample(x, sr, rate) if rate != sr else x, rate)
    return path


def config(tmp_path: Path) -> list[str]:
    """``--config`` with a private engine cache, so the tests never touch ~/.cache."""
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"engine:\n  cache_dir: {tmp_path / 'engines'}\n")
    return ["--config", str(cfg)]


def decode(path: Path) -> list[np.ndarray]:
    """Frames as stored (no rotation applied), int16 for differences."""
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24").astype(np.int16) for f in c.decode(video=0)]


def write_video(
    path: Path,
    frames: list[np.ndarray],
    *,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    rotation: int | None = None,
    rotate_tag: str | None = None,
) -> Path:
    """Frames as stored pixels; ``rotation``: a display matrix (degrees counterclockwise, as FFmpeg and
    PyAV state it); ``rotate_tag``: the legacy ``rotate`` stream tag (degrees clockwise)."""
    h, w = frames[0].shape[:2]
    fmt = "matroska" if path.suffix == ".mkv" else "mp4"
    with av.open(str(path), mode="w", format=fmt) as out:
        stream = out.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
        stream.options = {"crf": "12", "preset": "veryfast"}
        if rotation is not None:
            stream.set_display_rotation(rotation)
        if rotate_tag is not None:
            stream.metadata["rotate"] = rotate_tag
        for k, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = k
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


# -- 1. phone videos: rotation metadata --------------------------------------------------------------


@pytest.fixture(scope="module")
def portrait() -> list[np.ndarray]:
    """An upright portrait talking head, 240 wide and 320 high."""
    return list(source_frames(N_FRAMES, FPS, size=(240, 320)))


def test_upright_turns_clockwise() -> None:
    from speech2vid.sources.video_file import upright

    a = np.arange(6).reshape(2, 3)
    assert upright(a, 0) is a
    np.testing.assert_array_equal(upright(a, 90), [[3, 0], [4, 1], [5, 2]])
    np.testing.assert_array_equal(upright(a, 180), a[::-1, ::-1])
    np.testing.assert_array_equal(upright(a, 270), [[2, 5], [1, 4], [0, 3]])
    assert upright(a, 90).flags.c_contiguous


# A phone held upright films its sensor's landscape frames turned a quarter to the left: the pixels
# are stored landscape, and the metadata says to turn them 90 degrees clockwise for display.
ROTATED = {
    "display matrix -90": dict(rotation=-90, suffix=".mp4"),
    "display matrix 180": dict(rotation=180, suffix=".mp4"),
    "legacy rotate tag": dict(rotate_tag="90", suffix=".mkv"),
}


def _stored(frames: list[np.ndarray], case: str) -> list[np.ndarray]:
    """The pixels a camera stores for upright ``frames`` under ``case``'s metadata."""
    turns = 2 if "180" in case else 1  # counterclockwise quarter turns that the metadata undoes
    return [np.rot90(f, k=turns) for f in frames]


@pytest.mark.parametrize("case", list(ROTATED))
def test_rotated_video_decodes_upright(tmp_path: Path, portrait: list[np.ndarray], case: str) -> None:
    opts = dict(ROTATED[case])
    src = write_video(tmp_path / f"phone{opts.pop('suffix')}", _stored(portrait, case), **opts)
    info = probe_video(src)
    assert (info.width, info.height) == (240, 320)
    with SourceFrames(info) as source:
        got = list(source.frames(fit_plan(info.frames, 5, "loop")))
    prepared = list(itertools.islice(prepare_frames(src), 5))  # `speech2vid prepare` decodes on its own
    for k, (rgb, prep) in enumerate(zip(got, prepared)):
        assert rgb.shape == prep.shape == (320, 240, 3)
        assert np.abs(rgb.astype(np.int16) - portrait[k]).mean() < 4
        np.testing.assert_array_equal(prep, rgb)


@pytest.mark.parametrize("case", ["display matrix -90", "legacy rotate tag"])
def test_redub_of_a_rotated_phone_video_is_upright(tmp_path: Path, portrait: list[np.ndarray], case: str) -> None:
    opts = dict(ROTATED[case])
    src = write_video(tmp_path / f"phone{opts.pop('suffix')}", _stored(portrait, case), **opts)
    out = tmp_path / "out.mp4"
    proc = run_cli(
        *config(tmp_path),
        "redub",
        str(src),
        "--audio",
        str(speech(tmp_path / "new.wav", N_FRAMES / FPS)),
        "-o",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"\b2[0-5] re-dubbed", proc.stdout), proc.stdout  # the face is found (nearly) throughout
    info = probe_video(out)
    assert (info.width, info.height, info.frames) == (240, 320, N_FRAMES)
    got = decode(out)
    for k in range(0, N_FRAMES, 6):
        # Only the lower face is redrawn: the frame as a whole matches the upright source.
        assert np.abs(got[k] - portrait[k]).mean() < 6, k


# -- 2. odd frame sizes ----------------------------------------------------------------------------


def test_redub_of_an_odd_sized_video_pads_to_even(tmp_path: Path) -> None:
    frames = list(source_frames(N_FRAMES, FPS, size=(511, 383)))
    # H.264 at 4:4:4 holds odd sizes (the output's 4:2:0 does not).
    src = write_video(tmp_path / "odd.mp4", frames, pix_fmt="yuv444p")
    assert (probe_video(src).width, probe_video(src).height) == (511, 383)
    out = tmp_path / "out.mp4"
    proc = run_cli(
        *config(tmp_path),
        "redub",
        str(src),
        "--audio",
        str(speech(tmp_path / "new.wav", N_FRAMES / FPS)),
        "-o",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "512x384" in proc.stderr, proc.stderr  # the size written is said
    info = probe_video(out)
    assert (info.width, info.height, info.frames) == (512, 384, N_FRAMES)
    first = decode(out)[0]
    # The added column and row repeat their neighbours; the source's pixels are all kept, in place.
    assert np.abs(first[:, 511] - first[:, 510]).mean() < 3
    assert np.abs(first[383] - first[382]).mean() < 3
    assert np.abs(first[:40, :511] - frames[0][:40]).mean() < 4


# -- 3. audio at rates AAC does not take ----------------------------------------------------------------


@pytest.mark.parametrize("rate", [4000, 6000])
def test_generate_with_low_rate_audio(tmp_path: Path, rate: int) -> None:
    audio = speech(tmp_path / f"speech{rate}.wav", 1.5, rate)
    out = tmp_path / "out.mp4"
    proc = run_cli(*config(tmp_path), "generate", "--face", str(sample_face()), "--audio", str(audio), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    with av.open(str(out)) as c:
        track = c.streams.audio[0]
        assert track.codec_context.name == "aac"
        assert track.rate >= rate
        samples = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(track)])
    assert abs(len(samples) / track.rate - 1.5) < 0.1  # the whole speech, at its own speed
    assert np.abs(samples).max() > 0.05


def wav_claiming(path: Path, rate: int, samples: np.ndarray) -> Path:
    """A 16-bit mono WAV whose header states ``rate``, whatever the samples were recorded at."""
    data = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    path.write_bytes(
        b"RIFF"
        + struct.pack("<I", 36 + len(data))
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )
    return path


def test_wav_header_claiming_1_hz_is_one_line(tmp_path: Path) -> None:
    x, _ = sf.read(sample_speech(), dtype="float32")
    audio = wav_claiming(tmp_path / "one_hz.wav", 1, x[:16000])
    with pytest.raises(AudioError, match="1 Hz"):
        read_audio(audio)
    out = tmp_path / "out.mp4"
    proc = run_cli(
        *config(tmp_path), "generate", "--face", str(sample_face()), "--audio", str(audio), "-o", str(out), timeout=60
    )
    one_line_error(proc, "1 Hz")
    assert not out.exists()


# -- 4. pipes ------------------------------------------------------------------------------------------


def test_fifo_without_a_writer_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "speech.wav"
    os.mkfifo(fifo)
    start = time.monotonic()
    proc = run_cli(
        *config(tmp_path),
        "generate",
        "--face",
        str(sample_face()),
        "--audio",
        str(fifo),
        "-o",
        str(tmp_path / "out.mp4"),
        timeout=60,
    )
    one_line_error(proc, "no program writes to it")
    assert time.monotonic() - start < 30


def test_fifo_with_a_writer_is_read(tmp_path: Path) -> None:
    wav = speech(tmp_path / "x.wav", 1.0)
    fifo = tmp_path / "speech.fifo"
    os.mkfifo(fifo)
    got: list[object] = []

    def writer() -> None:
        time.sleep(0.5)  # the reader opens first and must wait for the writer, not give up
        with open(fifo, "wb") as f:
            f.write(wav.read_bytes())

    def reader() -> None:
        try:
            got.append(read_audio(fifo))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            got.append(exc)

    threads = [threading.Thread(target=f, daemon=True) for f in (writer, reader)]
    for t in threads:
        t.start()
    threads[1].join(30)
    assert not threads[1].is_alive(), "reading a FIFO hangs"
    audio = got[0]
    assert isinstance(audio, Audio), audio
    assert audio.rate == 16000 and audio.n_samples == sf.info(wav).frames


def test_process_substitution(tmp_path: Path) -> None:
    wav = speech(tmp_path / "x.wav", 1.5)
    out = tmp_path / "out.mp4"
    cmd = [
        sys.executable,
        "-m",
        "speech2vid",
        *config(tmp_path),
        "generate",
        "--face",
        str(sample_face()),
        "-o",
        str(out),
    ]
    script = f"{shlex.join(cmd)} --audio <(cat {shlex.quote(str(wav))})"
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    with av.open(str(out)) as c:
        assert abs(float(c.streams.audio[0].duration * c.streams.audio[0].time_base) - 1.5) < 0.1
        assert c.streams.video[0].frames == round(1.5 * FPS)


def test_pipe_larger_than_the_cap_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import speech2vid.audio.io as audio_io

    monkeypatch.setattr(audio_io, "MAX_PIPE_BYTES", 10_000)
    wav = speech(tmp_path / "x.wav", 1.0)  # 32 kB
    read_fd, write_fd = os.pipe()

    def writer() -> None:
        with os.fdopen(write_fd, "wb") as f:
            try:
                f.write(wav.read_bytes())
            except BrokenPipeError:
                pass

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        with pytest.raises(AudioError, match="save it to a file"):
            read_audio(f"/dev/fd/{read_fd}")
    finally:
        os.close(read_fd)
        thread.join(5)
