"""``speech2vid.Avatar``: audio pushed in chunks of any size, rate and format gives ``generate``'s frames.

The bundled weights and photo, the bundled speech. ``generate``'s MP4 is decoded with the runtime's own
converter; the remaining difference is x264's (CRF 18): a few grey levels.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import AsyncIterator

import av
import numpy as np
import pytest
import soundfile as sf
import soxr

import speech2vid
from speech2vid.assets import sample_face, sample_speech
from speech2vid.errors import UserError


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("api")
    path = d / "cfg.yaml"
    path.write_text(f"engine:\n  cache_dir: {d / 'engines'}\n")
    return path


@pytest.fixture(scope="module")
def speech() -> tuple[np.ndarray, int]:
    x, rate = sf.read(str(sample_speech()), dtype="float32")
    return x, rate


@pytest.fixture(scope="module")
def avatar(cfg: Path) -> speech2vid.Avatar:
    a = speech2vid.Avatar(face=sample_face(), precision="fp32", config=[cfg])
    yield a
    a.close()


def pushed(avatar: speech2vid.Avatar, x: np.ndarray, rate: int, seed: int | None) -> list[speech2vid.Frame]:
    """The frames of one utterance pushed whole (``seed`` None) or in random chunks of 1 to 4000 samples."""
    frames: list[speech2vid.Frame] = []
    if seed is None:
        frames += avatar.push(x, rate)
    else:
        rng, i = np.random.default_rng(seed), 0
        while i < len(x):
            n = int(rng.integers(1, 4000))
            frames += avatar.push(x[i : i + n], rate)
            i += n
    return frames + avatar.end_of_speech()


def test_chunks_of_any_size_make_generates_frames(
    avatar: speech2vid.Avatar, speech: tuple[np.ndarray, int], cfg: Path, tmp_path: Path
) -> None:
    x, rate = speech
    first = avatar.idle(0)  # nothing: the timeline continues where the last test left it
    assert first == []
    frames = pushed(avatar, x, rate, seed=1)
    start = frames[0].index
    assert [f.index for f in frames] == list(range(start, start + len(frames)))  # no gaps, no repeats
    assert all(f.pts == pytest.approx(f.index / 25) for f in frames)
    assert all(f.image.shape == (*avatar.size[::-1], 3) and f.image.dtype == np.uint8 for f in frames)
    assert 0 < sum(f.speech for f in frames) < len(frames)  # the pauses show the still face
    assert np.allclose(
        np.concatenate([f.audio_16k for f in frames])[: x.size], x, atol=1e-6
    )  # 16 kHz: the audio itself

    out = tmp_path / "gen.mp4"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "speech2vid",
            "-q",
            "--config",
            str(cfg),
            "generate",
            "--face",
            str(sample_face()),
            "--audio",
            str(sample_speech()),
            "-o",
            str(out),
            "--precision",
            "fp32",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    from speech2vid.config import EncodeConfig
    from speech2vid.frames.yuv import frame_rgb
    from speech2vid.sinks.video_file import VideoFileSink

    with av.open(str(out)) as c:
        generated = [frame_rgb(f) for f in c.decode(video=0)]
    assert len(frames) - len(generated) in (0, 1)  # the API ends its utterance on a whole frame
    # The API's frames through the same encoder settings, so that only differences of the pictures remain.
    again = tmp_path / "api.mp4"
    with VideoFileSink(again, fps=25, size=avatar.size, **EncodeConfig().codec_options()) as sink:
        for f in frames[: len(generated)]:
            sink.write(f.image)
    with av.open(str(again)) as c:
        encoded = [frame_rgb(f) for f in c.decode(video=0)]
    diff = [np.abs(a.astype(int) - g.astype(int)).mean() for a, g in zip(encoded, generated)]
    # Measured: 0.0-0.1 grey levels (x264's threads); a frame from another window differs by 0.3-3 over the
    # whole picture.
    assert max(diff) < 0.2, np.round(diff, 2)


def test_the_frames_do_not_depend_on_the_chunking(avatar: speech2vid.Avatar, speech: tuple[np.ndarray, int]) -> None:
    x, rate = speech
    whole = pushed(avatar, x, rate, seed=None)
    chunked = pushed(avatar, x, rate, seed=2)
    assert len(whole) == len(chunked)
    for a, b in zip(whole, chunked):
        assert np.array_equal(a.image, b.image) and a.speech == b.speech


def test_other_rates_and_int16_stereo(avatar: speech2vid.Avatar, speech: tuple[np.ndarray, int]) -> None:
    x, rate = speech
    ref = pushed(avatar, x, rate, seed=None)
    stereo = soxr.resample(x, rate, 44100)
    pcm = (np.stack([stereo, stereo], axis=1) * 32767).astype(np.int16)
    frames = pushed(avatar, pcm, 44100, seed=3)
    assert abs(len(frames) - len(ref)) <= 1
    diff = [np.abs(a.image.astype(int) - b.image.astype(int)).mean() for a, b in zip(frames, ref)]
    assert np.median(diff) < 0.5 and max(diff) < 3.0, np.round(diff, 2)  # two resamplers: a faint difference


def test_end_of_speech_closes_the_mouth_and_idle_goes_on(
    avatar: speech2vid.Avatar, speech: tuple[np.ndarray, int]
) -> None:
    x, rate = speech
    frames = pushed(avatar, x[: rate * 2], rate, seed=4)  # cut mid-sentence: its last frames still speak
    assert frames[-1].speech
    rest = avatar.idle(3)
    assert [f.index for f in rest] == [frames[-1].index + 1, frames[-1].index + 2, frames[-1].index + 3]
    assert not any(f.speech for f in rest)
    quiet = pushed(avatar, np.zeros(rate, np.float32), rate, seed=None)  # a second of digital silence
    assert len(quiet) == 25 and not any(f.speech for f in quiet)
    closed = quiet[-1].image
    assert all(np.array_equal(closed, f.image) for f in rest + quiet)  # the closed, still face (idle: still)
    assert not np.array_equal(closed, frames[-1].image)


def test_the_async_stream_gives_the_same_frames(avatar: speech2vid.Avatar, speech: tuple[np.ndarray, int]) -> None:
    x, rate = speech
    ref = pushed(avatar, x, rate, seed=5)

    async def chunks() -> AsyncIterator[tuple[np.ndarray, int]]:
        for i in range(0, len(x), 1600):
            yield x[i : i + 1600], rate

    async def collect() -> list[speech2vid.Frame]:
        return [f async for f in avatar.stream(chunks())]

    got = asyncio.run(collect())
    assert len(got) == len(ref) and all(np.array_equal(a.image, b.image) for a, b in zip(got, ref))


@pytest.mark.parametrize(
    "pcm, rate, message",
    [
        (np.full(100, np.nan, np.float32), 16000, "NaN"),
        (np.zeros(100, np.int32), 16000, "int16"),
        (np.zeros(100, np.float32), 100, "sample_rate"),
        (np.zeros((2, 3, 4), np.float32), 16000, "shape"),
    ],
)
def test_bad_audio_is_one_line(avatar: speech2vid.Avatar, pcm: np.ndarray, rate: int, message: str) -> None:
    with pytest.raises(UserError, match=message):
        avatar.push(pcm, rate)


def test_the_readme_voice_agent_example_runs(tmp_path: Path) -> None:
    """docs/avatar_from_tts.py: eSpeak NG's speech piped into the avatar chunk by chunk, into an MP4."""
    import shutil

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    out = tmp_path / "hello.mp4"
    script = Path(__file__).resolve().parents[1] / "docs" / "avatar_from_tts.py"
    run = subprocess.run(
        [sys.executable, str(script), "Hello, I am the avatar.", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    with av.open(str(out)) as c:  # stream attributes are read while the container is open (PyAV >= 15)
        rate, fps = c.streams.audio[0].sample_rate, c.streams.video[0].average_rate
        n = sum(1 for _ in c.decode(video=0))
    assert n > 25 and rate == 16000 and fps == 25
