"""Decode any audio file, or the audio track of a video file, and bring it to the model's 16 kHz mono.

:func:`read_audio` keeps the original rate and channels; :func:`to_model_rate` makes the 16 kHz mono
float32 signal the features need. For inputs of any length the offline commands never hold the whole
file: :func:`scan_speech` reads it once for its length and level, and :func:`speech_blocks` decodes it
again block by block, each block with its 16 kHz mono twin (soxr's streaming resampler, which gives
the same samples as resampling the whole signal at once).
Every failure a user can cause is an :class:`~speech2vid.errors.AudioError` with a one-line message;
that includes non-finite samples (NaN, inf in a float WAV), refused here so that no later stage (the
silence check, the MFCC, the AAC encoder) ever sees them, and a stated sample rate below
:data:`MIN_SAMPLE_RATE` (a broken header: a WAV claiming 1 Hz would last hours and resample to
gigabytes).

A pipe (a named FIFO, or ``<(command)`` in bash, which passes ``/dev/fd/N``) can be read only once,
while the commands read their audio twice (its length first, then the samples): it is read whole into
memory on first use, at most :data:`MAX_PIPE_BYTES` (512 MiB, about 45 minutes of 48 kHz stereo 16-bit
WAV), and kept for the later reads. A named FIFO that no program has opened for writing is refused
after :data:`PIPE_WRITER_WAIT` seconds instead of waiting forever. Other files that are not regular
files (a terminal, a device, a socket) are refused at once.
"""

from __future__ import annotations

import io
import itertools
import logging
import math
import os
import stat
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

import av
import numpy as np
import soxr

from speech2vid.audio.constants import SAMPLE_RATE
from speech2vid.audio.wav import wav_truncation
from speech2vid.errors import AudioError

log = logging.getLogger("speech2vid.audio.io")

SILENCE_THRESHOLD_DBFS = -60.0
_RESAMPLE_QUALITY = "HQ"
MIN_SAMPLE_RATE = 4000  # Hz: below this a stated rate is a broken header (speech needs 2 kHz of bandwidth)
MAX_PIPE_BYTES = 512 * 2**20  # a pipe is held in memory whole: refused beyond this
PIPE_WRITER_WAIT = 5.0  # s a named FIFO may stay without a writer before it is refused
_PIPE_READ = 1 << 20  # bytes per read() of a pipe
_piped: dict[tuple[int, int], bytes] = {}  # pipes read so far, by (st_dev, st_ino): they cannot be read again

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


def _frame_to_array(frame: av.AudioFrame, name: str, position: int = 0) -> np.ndarray:
    """One decoded frame -> float32 ``(samples, channels)``; ``position``: its first sample, for messages."""
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
    if scale == 1.0 and not np.isfinite(data).all():  # only float formats can hold NaN or inf
        at = (position + int(np.argmin(np.isfinite(data).all(axis=1)))) / frame.sample_rate
        raise AudioError(
            f"{name} contains non-finite samples (NaN or infinity, the first at {at:.3f} s): the file is corrupt;"
            " re-export it from its source, or repair it (e.g. sox in.wav out.wav) before use"
        )
    if offset:
        data -= offset
    return (data * scale).astype(np.float32)


def read_pipe(path: str | os.PathLike[str], name: str) -> bytes:
    """All bytes of a pipe, once a writer has opened it; ``name``: the path quoted for messages.

    Raises:
        AudioError: no writer opens it within :data:`PIPE_WRITER_WAIT` s, or it holds more than
            :data:`MAX_PIPE_BYTES`.
    """
    # A plain open() of a FIFO blocks until a writer opens the other end, for ever if none does.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        first = _first_bytes(fd, name)
        os.set_blocking(fd, True)  # a writer is there: read until it closes its end
        chunks: list[bytes] = []
        size = 0
        for data in itertools.chain([first], iter(lambda: os.read(fd, _PIPE_READ), b"")):
            size += len(data)
            if size > MAX_PIPE_BYTES:
                raise AudioError(
                    f"{name} is a pipe holding more than {MAX_PIPE_BYTES / 2**20:.0f} MiB, the most read into "
                    "memory: save it to a file first and pass that"
                )
            chunks.append(data)
    finally:
        os.close(fd)
    return b"".join(chunks)


def _first_bytes(fd: int, name: str) -> bytes:
    """The first bytes of a pipe opened non-blocking (empty when a writer is there but has written none yet);
    AudioError when no writer shows within :data:`PIPE_WRITER_WAIT` s."""
    deadline = time.monotonic() + PIPE_WRITER_WAIT
    while True:
        try:
            data = os.read(fd, _PIPE_READ)
        except BlockingIOError:  # EAGAIN: a writer has the pipe open
            return b""
        if data:
            return data
        # b"": no writer has the pipe open (yet)
        if time.monotonic() > deadline:
            raise AudioError(
                f"{name} is a named pipe and no program writes to it (waited {PIPE_WRITER_WAIT:g} s): "
                "start the program that writes it first, or pass an audio file"
            )
        time.sleep(0.05)


def _source(path: Path, name: str) -> str | bytes:
    """What FFmpeg should open for ``path``: the path of a regular file, or the bytes of a pipe."""
    try:
        st = path.stat()
    except OSError as exc:
        raise AudioError(f"cannot read {name} ({exc.strerror or type(exc).__name__}): check the path") from None
    if stat.S_ISREG(st.st_mode):
        return str(path)
    if not stat.S_ISFIFO(st.st_mode):
        raise AudioError(f"{name} is not a regular file (a terminal, device or socket): pass an audio file")
    key = (st.st_dev, st.st_ino)
    if key not in _piped:
        try:
            _piped[key] = read_pipe(path, name)
        except OSError as exc:
            raise AudioError(f"cannot read the pipe {name} ({exc.strerror or type(exc).__name__})") from None
    return _piped[key]


def decode_blocks(path: str | os.PathLike[str]) -> Iterator[Audio]:
    """Decode the first audio track of any file FFmpeg reads, one decoded frame at a time.

    Yields:
        :class:`Audio` blocks, all at the file's own rate and channel count, float32 clipped to [-1, 1].

    Raises:
        AudioError: the file is missing, a directory, not a media file, corrupt, truncated, has no
            audio track, changes rate or channels mid-stream, or holds non-finite samples.
    """
    name = _quoted(path)
    p = Path(path)
    if not p.exists():
        raise AudioError(f"audio file {name} not found: check the path")
    if p.is_dir():
        raise AudioError(f"{name} is a directory, not an audio file: pass the path of an audio or video file")
    source = _source(p, name)
    truncation = wav_truncation(source)
    if truncation is not None:
        raise AudioError(f"{name} is truncated ({truncation}): re-export or re-download the file")
    try:
        with av.open(io.BytesIO(source) if isinstance(source, bytes) else source, mode="r") as container:
            if not container.streams.audio:
                raise AudioError(f"{name} has no audio track: pass a file with sound, or a video with an audio track")
            stream = container.streams.audio[0]
            # The rate comes from the decoded frames: HE-AAC headers state half the output rate.
            rate = channels = position = last_block = 0
            damaged = _Damage()
            start: float | None = None  # the first frame's time: where the timeline's sample 0 is
            missing: list[_Gap] = []  # damaged packets since the last good frame
            for frame in _decoded_frames(container, stream, damaged):
                if isinstance(frame, _Gap):
                    missing.append(frame)
                    continue
                if damaged.damaged and rate:  # silence where damage left a hole, so that nothing after it moves
                    gap = _gap_samples(missing, rate, last_block, frame.time, start, position)
                    missing.clear()
                    if gap > last_block // 2:
                        position += gap
                        yield Audio(np.zeros((gap, channels), np.float32), rate)
                if start is None:
                    start = frame.time
                block = _frame_to_array(frame, name, position)
                if not block.shape[0]:
                    continue
                if not rate:
                    rate, channels = int(frame.sample_rate), block.shape[1]
                    if rate <= 0:
                        raise AudioError(f"{name} does not state its sample rate: convert it to a plain WAV first")
                    if rate < MIN_SAMPLE_RATE:
                        raise AudioError(
                            f"{name} states a sample rate of {rate} Hz, below the {MIN_SAMPLE_RATE} Hz speech needs: "
                            "its header is wrong, or it is no recording; re-export it (e.g. as a 16 kHz WAV)"
                        )
                elif block.shape[1] != channels or frame.sample_rate != rate:
                    raise AudioError(
                        f"{name} changes its sample rate or channel count mid-stream: convert it to a plain WAV first"
                    )
                position += block.shape[0]
                last_block = block.shape[0]  # MPEG audio and AAC frames are one size: a damaged one's length
                # Lossy decoders overshoot slightly past full scale; playback would clip there too.
                np.clip(block, -1.0, 1.0, out=block)
                yield Audio(block, rate)
            if missing and rate:  # damage at the very end
                gap = _gap_samples(missing, rate, last_block, None, start, position)
                if gap:
                    yield Audio(np.zeros((gap, channels), np.float32), rate)
            damaged.check(name, rate)
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise AudioError(
            f"cannot decode {name} ({reason}): it is corrupt or not an audio/video file; "
            "re-export it (e.g. as WAV or FLAC)"
        ) from exc


MAX_DAMAGED_SHARE = 0.02  # damaged packets concealed with silence, as a share of all: beyond it the file is refused


class _Damage:
    """Counts the audio packets that the decoder rejects (a damaged MPEG-PS or broadcast recording)."""

    def __init__(self) -> None:
        self.packets = self.damaged = 0
        self.first: Exception | None = None

    def check(self, name: str, rate: int) -> None:
        if not self.damaged:
            return
        if not rate or self.damaged > max(1, MAX_DAMAGED_SHARE * self.packets):
            assert self.first is not None
            raise self.first
        log.warning(
            "%s: %d of %d audio packets are damaged; replaced by silence of the same length",
            name,
            self.damaged,
            self.packets,
        )


@dataclass(frozen=True)
class _Gap:
    seconds: Fraction | None  # the damaged packet's duration, where the container states it


def _gap_samples(
    missing: list[_Gap], rate: int, block: int, time: float | None, start: float | None, position: int
) -> int:
    """Samples of silence for damaged packets: up to the next good frame's time where frames carry times
    (a demuxer may merge packets), else their stated durations, else one frame each."""
    if time is not None and start is not None:
        return max(0, min(round((time - start) * rate) - position, 60 * rate))
    return sum(int(g.seconds * rate) if g.seconds else block for g in missing)


def _decoded_frames(container: Any, stream: Any, damage: _Damage) -> Iterator[Any]:
    """The stream's decoded frames; a packet the decoder rejects becomes a :class:`_Gap`."""
    for packet in container.demux(stream):
        if packet.size:
            damage.packets += 1
        try:
            yield from packet.decode()
        except av.error.InvalidDataError as exc:
            damage.damaged += 1
            damage.first = damage.first or exc
            yield _Gap(Fraction(packet.duration) * packet.time_base if packet.duration and packet.time_base else None)


def read_audio(path: str | os.PathLike[str]) -> Audio:
    """The whole first audio track of a file (see :func:`decode_blocks`), at its own rate and channels.

    Raises:
        AudioError: as :func:`decode_blocks`, and for a file that holds no samples.
    """
    blocks = list(decode_blocks(path))
    if not blocks:
        raise AudioError(f"{_quoted(path)} contains no audio samples: pass a file with sound")
    return Audio(np.concatenate([b.samples for b in blocks]), blocks[0].rate)


class ModelRateStream:
    """Streaming :func:`to_model_rate`: blocks at ``rate`` in, 16 kHz mono float32 out.

    soxr's stream resampler keeps its own state, so the concatenated output equals resampling the
    whole signal at once, for any block sizes.
    """

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._soxr = (
            None
            if rate == SAMPLE_RATE
            else soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality=_RESAMPLE_QUALITY)
        )

    def push(self, block: Audio) -> np.ndarray:
        """``block`` at ``self.rate`` -> float32 ``(m,)`` at 16 kHz (m may be 0: the resampler's delay)."""
        mono = np.ascontiguousarray(block.mono().samples[:, 0], dtype=np.float32)
        return mono if self._soxr is None else self._soxr.resample_chunk(mono, last=False)

    def finish(self) -> np.ndarray:
        """The resampler's remaining output at the end of the signal."""
        if self._soxr is None:
            return np.zeros(0, dtype=np.float32)
        return np.asarray(self._soxr.resample_chunk(np.zeros(0, dtype=np.float32), last=True), dtype=np.float32)


def speech_blocks(path: str | os.PathLike[str]) -> Iterator[tuple[Audio, np.ndarray]]:
    """``(original block, its 16 kHz mono samples)`` pairs of a file, streamed; the last pair's
    original block is empty and carries the resampler's tail. Errors as :func:`decode_blocks`."""
    resampler: ModelRateStream | None = None
    last: Audio | None = None
    for block in decode_blocks(path):
        if resampler is None:
            resampler = ModelRateStream(block.rate)
        last = block
        yield block, resampler.push(block)
    if resampler is not None and last is not None:
        yield Audio(np.zeros((0, last.channels), dtype=np.float32), last.rate), resampler.finish()


@dataclass(frozen=True)
class SpeechInfo:
    """What one streamed pass over a speech file found (:func:`scan_speech`); the file itself is not held."""

    path: Path
    rate: int  # the file's own sample rate
    channels: int
    n_samples: int  # per channel, at ``rate``
    n_samples_16k: int  # of the 16 kHz mono signal the features see
    peak_dbfs: float  # of the 16 kHz mono signal

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.n_samples / self.rate


def scan_speech(path: str | os.PathLike[str]) -> SpeechInfo:
    """Read a speech file once, block by block: its format, length and peak level, in constant memory.

    Raises:
        AudioError: as :func:`decode_blocks`, and for a file that holds no samples.
    """
    rate = channels = n = n16 = 0
    peak = 0.0
    for block, mono16 in speech_blocks(path):
        rate, channels = block.rate, block.channels
        n += block.n_samples
        n16 += mono16.size
        if mono16.size:
            peak = max(peak, float(np.max(np.abs(mono16))))
    if n == 0:
        raise AudioError(f"{_quoted(path)} contains no audio samples: pass a file with sound")
    level = 20.0 * math.log10(peak) if peak > 0.0 else -math.inf
    return SpeechInfo(Path(path), rate, channels, n, n16, level)


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
    signal_16k: np.ndarray | SpeechInfo, path: str | os.PathLike[str], threshold_dbfs: float = SILENCE_THRESHOLD_DBFS
) -> None:
    """Raise :class:`AudioError` when the peak of the signal (or of a scanned file) is below ``threshold_dbfs``.

    Separate from reading so that callers decide (the CLI skips it with ``--allow-silence``).
    """
    level = signal_16k.peak_dbfs if isinstance(signal_16k, SpeechInfo) else peak_dbfs(signal_16k)
    if level < threshold_dbfs:
        raise AudioError(
            f"{_quoted(path)} is silent (peak {level:.1f} dBFS): nothing to lip-sync; pass a file with speech "
            f"(peak above {threshold_dbfs:.0f} dBFS), or --allow-silence to render it anyway"
        )
