"""Decode any audio file, or the audio track of a video file, and bring it to the model's 16 kHz mono.

:func:`read_audio` keeps the original rate and channels (the offline generator muxes the original
audio into its output); :func:`to_model_rate` makes the 16 kHz mono float32 signal the features need.
Every failure a user can cause is an :class:`~speech2vid.errors.AudioError` with a one-line message.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import soxr

from speech2vid.errors import AudioError

from .constants import SAMPLE_RATE
from .wav import wav_truncation

SILENCE_THRESHOLD_DBFS = -60.0
_RESAMPLE_QUALITY = "HQ"

# PyAV sample formats (planar ones end in "p") -> (scale to [-1, 1], the unsigned format's zero).
_SAMPLE_FORMATS: dict[str, tuple[float, float]] = {
    "u8": (1.0 / 2**7, 128.0),
    "s16": (1.0 / 2**15, 0.0),
    "s32": (1.0 / 2**31, 0.0),
    "s64": (1.0 / 2**63, 0.0),
    "flt": (1.0, 0.0),
    "dbl": (1.0, 0.0),
}


@dataclass(frozen=True, eq=False)  # eq on arrays is ambiguous
class Audio:
    """Decoded audio at its own rate.

    Attributes:
        samples: float32 ``(n, channels)`` in [-1, 1].
        rate: samples per second.
    """

    samples: np.ndarray
    rate: int

    def __post_init__(self) -> None:
        if self.samples.ndim != 2 or self.samples.shape[1] < 1:
            raise ValueError(f"Audio.samples must be (n, channels), got shape {self.samples.shape}")
        if self.rate <= 0:
            raise ValueError(f"Audio.rate must be positive, got {self.rate}")

    @property
    def n_samples(self) -> int:
        """Samples per channel."""
        return int(self.samples.shape[0])

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.n_samples / self.rate

    def mono(self) -> Audio:
        """Mixdown to one channel (mean of the channels): ``(n, 1)``."""
        if self.channels == 1:
            return self
        return Audio(self.samples.mean(axis=1, keepdims=True, dtype=np.float64).astype(np.float32), self.rate)

    def resampled(self, rate: int) -> Audio:
        """Same audio at ``rate`` (soxr, high quality), ``(round(n * rate / self.rate), channels)``."""
        if rate == self.rate:
            return self
        out = soxr.resample(self.samples, self.rate, rate, quality=_RESAMPLE_QUALITY)
        return Audio(np.ascontiguousarray(out, dtype=np.float32).reshape(-1, self.channels), rate)


def _quoted(path: str | os.PathLike[str]) -> str:
    # Messages must stay on one line even for odd file names.
    return "'" + str(path).replace("\n", "\\n").replace("\r", "\\r") + "'"


def _frame_to_array(frame: av.AudioFrame, name: str) -> np.ndarray:
    """One decoded frame -> float32 ``(samples, channels)``."""
    fmt = frame.format
    channels = frame.layout.nb_channels
    try:
        scale, offset = _SAMPLE_FORMATS[fmt.name.rstrip("p")]
    except KeyError:  # a sample format newer than this table
        raise AudioError(f"{name} decodes to unsupported sample format {fmt.name!r}: convert it to WAV first") from None
    raw = frame.to_ndarray()
    # Planar frames come as (channels, samples), packed ones as (1, samples * channels).
    data = raw.T if fmt.is_planar else raw.reshape(-1, channels)
    data = data.astype(np.float64)
    if offset:
        data -= offset
    return (data * scale).astype(np.float32)


def read_audio(path: str | os.PathLike[str]) -> Audio:
    """Decode the first audio track of any file FFmpeg reads (WAV, FLAC, MP3, OGG, M4A, MP4, MKV...).

    Returns:
        :class:`Audio` at the file's own rate and channel count, float32 in [-1, 1].

    Raises:
        AudioError: the file is missing, a directory, not a media file, corrupt, truncated, has no
            audio track, or holds no samples.
    """
    name = _quoted(path)
    p = Path(path)
    if not p.exists():
        raise AudioError(f"audio file {name} not found: check the path")
    if p.is_dir():
        raise AudioError(f"{name} is a directory, not an audio file: pass the path of an audio or video file")
    truncation = wav_truncation(p)
    if truncation is not None:
        raise AudioError(f"{name} is truncated ({truncation}): re-export or re-download the file")

    chunks: list[np.ndarray] = []
    try:
        with av.open(str(p), mode="r") as container:
            if not container.streams.audio:
                raise AudioError(f"{name} has no audio track: pass a file with sound, or a video with an audio track")
            stream = container.streams.audio[0]
            # The rate comes from the decoded frames: HE-AAC headers state half the output rate.
            rate = 0
            for frame in container.decode(stream):
                block = _frame_to_array(frame, name)
                if not chunks:
                    rate = int(frame.sample_rate)
                elif block.shape[1] != chunks[0].shape[1] or frame.sample_rate != rate:
                    raise AudioError(
                        f"{name} changes its sample rate or channel count mid-stream: convert it to a plain WAV first"
                    )
                chunks.append(block)
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise AudioError(
            f"cannot decode {name} ({reason}): it is corrupt or not an audio/video file; "
            "re-export it (e.g. as WAV or FLAC)"
        ) from exc
    samples = np.concatenate(chunks) if chunks else np.empty((0, 1), dtype=np.float32)
    if samples.shape[0] == 0:
        raise AudioError(f"{name} contains no audio samples: pass a file with sound")
    if rate <= 0:
        raise AudioError(f"{name} does not state its sample rate: convert it to a plain WAV first")
    # Lossy decoders overshoot slightly past full scale; playback would clip there too.
    np.clip(samples, -1.0, 1.0, out=samples)
    return Audio(samples, rate)


def to_model_rate(audio: Audio) -> np.ndarray:
    """Mono mixdown, then soxr HQ resampling to 16 kHz: float32 ``(round(n * 16000 / rate),)``."""
    return np.ascontiguousarray(audio.mono().resampled(SAMPLE_RATE).samples[:, 0], dtype=np.float32)


def load_speech(path: str | os.PathLike[str]) -> tuple[Audio, np.ndarray]:
    """``(original audio, 16 kHz mono float32 signal)`` of a file; see :func:`read_audio`."""
    audio = read_audio(path)
    return audio, to_model_rate(audio)


def peak_dbfs(signal: np.ndarray) -> float:
    """Peak level in dBFS (``-inf`` for digital silence or an empty signal)."""
    peak = float(np.max(np.abs(signal))) if np.size(signal) else 0.0
    return 20.0 * math.log10(peak) if peak > 0.0 else -math.inf


def check_not_silent(
    signal_16k: np.ndarray, path: str | os.PathLike[str], threshold_dbfs: float = SILENCE_THRESHOLD_DBFS
) -> None:
    """Raise :class:`AudioError` when the peak of the signal is below ``threshold_dbfs``.

    Separate from reading so that callers decide (the CLI skips it with ``--allow-silence``).
    """
    level = peak_dbfs(signal_16k)
    if level < threshold_dbfs:
        raise AudioError(
            f"{_quoted(path)} is silent (peak {level:.1f} dBFS): nothing to lip-sync; pass a file with speech "
            f"(peak above {threshold_dbfs:.0f} dBFS), or --allow-silence to render it anyway"
        )
