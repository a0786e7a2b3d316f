"""Fuzzing the readers of user files: the config loader, the audio decoder and the photo reader.

Whatever bytes a user hands over, each reader returns a well-formed result or raises its one-line
:class:`~speech2vid.errors.UserError`; anything else (a traceback, a hang, NaN samples) fails. Generated
with hypothesis, bounded: a fixed number of examples (derandomized, so CI runs the same ones), each with a
generous deadline that only a hang would pass, and no example database written to the working tree.
About 15-45 s in all on two busy cores.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import soundfile as sf
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from speech2vid.errors import UserError

FUZZ = settings(
    max_examples=50,
    deadline=10_000,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
MAX_MESSAGE = 600  # characters: one readable line


def check_message(exc: UserError) -> None:
    text = str(exc)
    assert "\n" not in text and 0 < len(text) < MAX_MESSAGE, text[:2000]


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


# -- configs ---------------------------------------------------------------------------------------------

SECTIONS = ["engine", "generate", "redub", "live", "model", "weights", "calib", "nope"]
KEYS = [
    "backend",
    "precision",
    "device",
    "batch",
    "onnxruntime",
    "intra_op_threads",
    "crf",
    "output_size",
    "lookahead_ms",
    "reopen_seconds",
    "fit",
    "region",
    "min",
    "max",
    "opt",
    "idle",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(["torch", "int8", "fp16", "cpu", "loop", "lower"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)),
    max_leaves=20,
)
documents = st.dictionaries(
    st.sampled_from(SECTIONS), st.one_of(values, st.dictionaries(st.sampled_from(KEYS), values)), max_size=4
)
yaml_texts = st.one_of(
    documents.map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
    st.text(max_size=300),  # anything at all, YAML or not
    st.lists(
        st.sampled_from(
            [
                "engine:",
                "  backend: ",
                "&a ",
                "*a",
                "!!python/object:os.system",
                "[",
                "{",
                "- ",
                "<<: *a",
                "\n",
                "  ",
                "? ",
                "|",
                "'",
                '"',
                "%YAML 1.1\n",
                "---\n",
                "\x00",
            ]
        ),
        max_size=30,
    ).map("".join),
)


@FUZZ
@given(text=yaml_texts)
def test_config_loader_returns_settings_or_one_line(scratch: Path, text: str) -> None:
    from speech2vid.config import Settings, load_settings

    path = scratch / "fuzz.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        assert isinstance(load_settings(path), Settings)
    except UserError as exc:
        check_message(exc)


# -- audio -----------------------------------------------------------------------------------------------


def _wav(subtype: str, channels: int, rate: int) -> bytes:
    x = (0.3 * np.sin(np.arange(1600) / 5.0)).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, np.stack([x] * channels, axis=1), rate, subtype=subtype, format="WAV")
    return buf.getvalue()


@st.composite
def wav_bytes(draw: st.DrawFn) -> bytes:
    """A valid small WAV, then its header (first 60 bytes) overwritten in places, truncated or extended."""
    data = bytearray(
        _wav(
            draw(st.sampled_from(["PCM_16", "PCM_24", "FLOAT", "DOUBLE", "PCM_U8"])),
            draw(st.integers(1, 3)),
            draw(st.sampled_from([8000, 16000, 44100])),
        )
    )
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, 59))
        data[at] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data) + draw(st.binary(max_size=64))


@FUZZ
@given(data=st.one_of(wav_bytes(), st.binary(max_size=512)))
def test_audio_reader_returns_finite_audio_or_one_line(scratch: Path, data: bytes) -> None:
    from speech2vid.audio.io import read_audio, scan_speech

    path = scratch / "fuzz.wav"
    path.write_bytes(data)
    try:
        audio = read_audio(path)
    except UserError as exc:
        check_message(exc)
        return
    assert audio.samples.dtype == np.float32 and audio.n_samples > 0 and audio.rate > 0
    assert np.isfinite(audio.samples).all() and np.abs(audio.samples).max() <= 1.0
    info = scan_speech(path)  # the streamed pass the offline commands use agrees with it
    assert (info.rate, info.n_samples) == (audio.rate, audio.n_samples)


# -- photos ----------------------------------------------------------------------------------------------


def _image(fmt: str) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


@st.composite
def image_bytes(draw: st.DrawFn) -> bytes:
    """A valid small PNG, JPEG, GIF or BMP with bytes overwritten (header and body), truncated or extended."""
    data = bytearray(_image(draw(st.sampled_from(["PNG", "JPEG", "GIF", "BMP"]))))
    for _ in range(draw(st.integers(0, 8))):
        at = draw(st.integers(0, min(len(data) - 1, draw(st.sampled_from([32, 256, len(data) - 1])))))
        data[at] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@FUZZ
@given(data=st.one_of(image_bytes(), st.binary(max_size=256)))
def test_photo_reader_returns_rgb_or_one_line(scratch: Path, data: bytes) -> None:
    from speech2vid.faces.photo import read_photo

    path = scratch / "fuzz.img"
    path.write_bytes(data)
    try:
        rgb = read_photo(path)
    except UserError as exc:
        check_message(exc)
        return
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.flags.c_contiguous
