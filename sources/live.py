"""Audio sources chosen by URI: ``mic://default``, ``mic://<name or index>``, ``file://speech.wav``, ``silence://``.

Every source yields 16 kHz mono float32 :class:`Chunk` s with *stamps*: (sample index, monotonic time at
which that sample was captured). The live loop keeps its frame clock in samples (frame ``k`` is sample
``640 k``) and uses the stamps only to measure latency, so audio and video cannot drift apart.

``mic://``: a PortAudio input stream (sounddevice) whose callback only copies into preallocated rings
(:mod:`speech2vid.sources.ring`); resampling to 16 kHz (soxr) happens on the reading side when the device
cannot open 16 kHz. ``file://``: a file played at the audio clock's pace (``?realtime=0`` for as fast as
possible, ``?loop=1`` to repeat, ``?play=1`` to hear it on the default output device as well).
``silence://``: digital silence at the audio clock's pace.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import numpy as np

from speech2vid.audio.constants import SAMPLE_RATE
from speech2vid.errors import UserError
from speech2vid.sources.ring import SampleRing, StampRing

log = logging.getLogger("speech2vid.sources.live")

# The consumer polls the ring instead of being woken by the callback, so the callback takes no lock;
# 2 ms adds at most 2 ms to a frame's latency.
POLL_SECONDS = 0.002
# A stream's first block can take long: PulseAudio through ALSA's pulse plugin took up to 1.7 s on a busy
# machine (measured). Until it arrives, a stall is only declared after this long.
START_GRACE_SECONDS = 4.0
# A lost microphone is reopened after 0.25 s, then 0.5, 1, 2, 4 and every 5 s, for ``reopen_seconds``:
# a sound server restarting or a USB microphone re-plugged takes a second or more to come back, and
# back-to-back attempts would all fall into that gap.
REOPEN_FIRST_DELAY = 0.25
REOPEN_MAX_DELAY = 5.0
SCHEMES = ("mic", "file", "silence")


class SourceError(UserError):
    """A source URI is malformed, or its device or file cannot deliver audio."""


@dataclass(frozen=True, eq=False)
class Chunk:
    """Newly captured audio.

    Attributes:
        samples: float32 ``(n,)`` at 16 kHz, continuing the previous chunk.
        stamps: ``(sample index at 16 kHz since the start, monotonic capture time in s)`` pairs, at
            least one per callback block; times of the samples between them follow at 16 kHz.
    """

    samples: np.ndarray
    stamps: tuple[tuple[int, float], ...]


@dataclass(frozen=True)
class CaptureOptions:
    """What a source needs from ``live:`` config (kept apart so sources do not import the config)."""

    blocksize: int = 320  # samples per callback at 16 kHz (20 ms)
    latency: str | float = "low"  # PortAudio suggested latency
    ring_seconds: float = 4.0
    stall_seconds: float = 1.0  # no audio for this long = the device is gone
    reopen_seconds: float = 300.0  # keep trying to reopen a lost device this long (0: end the run at once)


class Source(ABC):
    """open() -> read(timeout)* -> close(); also a context manager."""

    description = "?"
    device_rate = SAMPLE_RATE
    finished = False  # True once a finite source has delivered everything

    def __enter__(self) -> "Source":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Start capturing."""

    def close(self) -> None:
        """Stop capturing and release the device."""

    @abstractmethod
    def read(self, timeout: float) -> Chunk:
        """Audio captured since the last call; waits up to ``timeout`` s for some (may return none)."""

    @property
    def overflows(self) -> int:
        return 0


_EMPTY = np.zeros(0, dtype=np.float32)


class PacedSource(Source):
    """A signal released at the audio clock's pace (``realtime``) or all at once, in blocks."""

    def __init__(self, blocksize: int, realtime: bool = True, loop: bool = False):
        self.blocksize = blocksize
        self.realtime = realtime
        self.loop = loop
        self._pos = 0
        self._t0 = 0.0

    @abstractmethod
    def _signal(self, start: int, n: int) -> np.ndarray:
        """Samples ``[start, start + n)`` of the (possibly looped) signal, shorter at its end."""

    def open(self) -> None:
        self._t0 = time.monotonic()
        self._pos = 0

    def read(self, timeout: float) -> Chunk:
        if self.finished:
            return Chunk(_EMPTY, ())
        if self.realtime:
            due = self._t0 + (self._pos + self.blocksize) / SAMPLE_RATE  # when the next block has "happened"
            wait = due - time.monotonic()
            if wait > timeout:
                time.sleep(max(timeout, 0.0))  # pacing a simulated capture, not synchronisation
                return Chunk(_EMPTY, ())
            if wait > 0:
                time.sleep(wait)
            n_blocks = max(1, int((time.monotonic() - self._t0) * SAMPLE_RATE - self._pos) // self.blocksize)
        else:
            n_blocks = 10
        samples = self._signal(self._pos, n_blocks * self.blocksize)
        if samples.shape[0] < n_blocks * self.blocksize:
            self.finished = True
        now = time.monotonic()
        stamps = tuple(
            (self._pos + i, self._t0 + (self._pos + i) / SAMPLE_RATE if self.realtime else now)
            for i in range(0, samples.shape[0], self.blocksize)
        )
        self._pos += samples.shape[0]
        return Chunk(samples, stamps)


class FileSource(PacedSource):
    """``file://speech.wav``: any file :func:`read_audio` decodes, resampled to 16 kHz mono.

    ``play``: also sent to the default output device (PortAudio), started with the pacing clock, so a
    demo can be heard while the face speaks.
    """

    def __init__(self, path: str, blocksize: int, realtime: bool = True, loop: bool = False, play: bool = False):
        super().__init__(blocksize, realtime, loop)
        from speech2vid.audio.io import read_audio, to_model_rate

        if play and not realtime:
            raise SourceError("file:// source: play=1 needs real-time pacing (drop realtime=0)")
        self.path = Path(path).expanduser()
        self._data = to_model_rate(read_audio(self.path)).astype(np.float32)
        if self._data.size == 0:
            raise SourceError(f"source file {self.path} holds no audio")
        self.play = play
        pace = "real time" if realtime else "as fast as possible"
        extra = (", looped" if loop else "") + (", played to the speakers" if play else "")
        self.description = f"file {self.path} ({self._data.size / SAMPLE_RATE:.2f} s, {pace}{extra})"

    def open(self) -> None:
        if self.play:
            sd = _sounddevice()
            try:
                sd.play(self._data, SAMPLE_RATE, loop=self.loop)
            except (ValueError, sd.PortAudioError) as exc:
                raise SourceError(f"cannot play {self.path} to the speakers: {exc} (drop play=1)") from None
        super().open()

    def close(self) -> None:
        if self.play:
            _sounddevice().stop()

    def _signal(self, start: int, n: int) -> np.ndarray:
        if not self.loop:
            return self._data[start : start + n]
        idx = np.arange(start, start + n) % self._data.size
        return self._data[idx]


class SilenceSource(PacedSource):
    """``silence://``: zeros forever (an idle kiosk, a benchmark without audio)."""

    description = "silence"

    def _signal(self, start: int, n: int) -> np.ndarray:
        return np.zeros(n, dtype=np.float32)


class MicSource(Source):
    """``mic://``: a capture device through PortAudio, resampled to 16 kHz when it cannot open 16 kHz."""

    def __init__(self, device: str | int | None, options: CaptureOptions):
        self.device = device
        self.options = options
        self.description = f"microphone {device if device is not None else 'default'}"
        self._stream: Any = None
        self._ring: SampleRing | None = None
        self._stamps = StampRing()
        self._resampler: Any = None
        self._last_data = 0.0
        self._device_overflows = 0
        self._started = False
        self.reopens = 0  # reopen attempts in all, for the stats
        self.lost_samples = 0  # 16 kHz samples of silence stood in for a lost device, for the stats
        self._lost: _Outage | None = None  # the device is gone: silence flows, reopens are tried

    # -- the callback: PortAudio's thread; copies only, never blocks, allocates a buffer or logs ----
    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        # The time the block arrived, minus its length: when its first sample was captured. PortAudio's
        # inputBufferAdcTime is not trustworthy through ALSA's pulse plugin (off by ~0.7 s, measured).
        t_first = time.monotonic() - frames / self.device_rate
        ring = self._ring
        if ring is None:
            return
        if status:  # PortAudio lost input before this block (the OS buffer overran): count it, log nothing here
            self._device_overflows += 1
        index = ring.written
        if ring.write(indata[:, 0]):
            self._stamps.write(index, t_first)

    @property
    def overflows(self) -> int:
        """Blocks lost: by the device (PortAudio's overflow flag) or because the loop was a whole ring behind."""
        return self._device_overflows + (self._ring.overflows if self._ring is not None else 0)

    def open(self) -> None:
        sd = _sounddevice()
        try:
            try:
                sd.check_input_settings(self.device, channels=1, dtype="float32", samplerate=SAMPLE_RATE)
                rate = SAMPLE_RATE
            except sd.PortAudioError:
                info = sd.query_devices(self.device, "input")
                rate = int(info["default_samplerate"])
                log.info(
                    "%s cannot capture at %d Hz: capturing at %d Hz and resampling", self.description, SAMPLE_RATE, rate
                )
        except (ValueError, sd.PortAudioError) as exc:
            raise SourceError(f"cannot open {self.description}: {exc} (see `speech2vid devices`)") from None
        self._prepare(rate)
        self._start_stream(sd)

    def _prepare(self, rate: int) -> None:
        """Buffers for capturing at ``rate`` Hz: the ring, and a streaming soxr resampler unless it is 16 kHz."""
        self.device_rate = rate
        self._ring = SampleRing(int(self.options.ring_seconds * rate))
        self._resampler = None
        if rate != SAMPLE_RATE:
            import soxr

            # LQ holds back 6 ms (HQ 21 ms) and passes far more than the 300-3700 Hz the MFCC's mel bank reads.
            self._resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="LQ")

    def _start_stream(self, sd: Any) -> None:
        blocksize = max(1, round(self.options.blocksize * self.device_rate / SAMPLE_RATE))
        try:
            self._stream = sd.InputStream(
                device=self.device,
                samplerate=self.device_rate,
                channels=1,
                dtype="float32",
                blocksize=blocksize,
                latency=self.options.latency,
                callback=self._callback,
            )
            self._stream.start()
        except (ValueError, sd.PortAudioError) as exc:
            self._stream = None
            raise SourceError(f"cannot open {self.description}: {exc} (see `speech2vid devices`)") from None
        self.input_latency = float(self._stream.latency)
        self._last_data = time.monotonic()
        self._started = False  # no audio from this stream yet

    def close(self) -> None:
        if self._stream is not None:
            try:
                self._stream.abort()
                self._stream.close()
            except Exception as exc:  # a vanished device may refuse to close; nothing is left to release
                log.debug("closing %s: %s", self.description, exc)
            self._stream = None

    @property
    def lost_seconds(self) -> float:
        """Seconds of silence that stood in for a lost device (the face idled meanwhile)."""
        return self.lost_samples / SAMPLE_RATE

    def _lose(self, why: str) -> None:
        """The device stalled or errored: close it; from now on silence flows until a reopen succeeds."""
        self.close()
        now = time.monotonic()
        # Silence starts where the device's audio stopped, so the outage takes its real length in the output.
        self._lost = _Outage(why, since=min(now, self._last_data), next_try=now, delay=REOPEN_FIRST_DELAY)
        log.warning(
            "%s %s: showing the idle face and reopening it for up to %g s",
            self.description,
            why,
            self.options.reopen_seconds,
        )

    def _while_lost(self) -> None:
        """Fill the ring with the silence due by now (real-time pace) and try a reopen when one is due.

        Raises:
            SourceError: the device did not come back within ``reopen_seconds``.
        """
        lost, ring = self._lost, self._ring
        if lost is None or ring is None:  # not lost, or not open
            return
        now = time.monotonic()
        due = int((now - lost.since) * self.device_rate) - lost.filled
        while due > 0:  # the callback is stopped: this thread is the ring's only writer now
            block = np.zeros(min(due, ring.capacity // 2), dtype=np.float32)
            index = ring.written
            if not ring.write(block):
                break  # the loop is a whole ring behind: it will read, and the rest follows next time
            self._stamps.write(index, lost.since + lost.filled / self.device_rate)
            lost.filled += block.shape[0]
            self.lost_samples += round(block.shape[0] * SAMPLE_RATE / self.device_rate)
            due -= block.shape[0]
        if now < lost.next_try:
            return
        if now - lost.since > self.options.reopen_seconds:
            raise SourceError(
                f"{self.description} {lost.why} and could not be reopened within "
                f"{self.options.reopen_seconds:g} s ({lost.attempts} attempts)"
            )
        lost.attempts += 1
        self.reopens += 1
        try:
            self._start_stream(_sounddevice())
        except SourceError as exc:
            lost.next_try, lost.delay = now + lost.delay, min(2 * lost.delay, REOPEN_MAX_DELAY)
            log.info("%s (attempt %d; next in %.2g s)", exc, lost.attempts, lost.next_try - now)
            return
        log.warning("%s reopened after %.1f s (attempt %d)", self.description, now - lost.since, lost.attempts)
        self._lost = None

    def read(self, timeout: float) -> Chunk:
        ring = self._ring
        if ring is None or (self._stream is None and self._lost is None):
            raise RuntimeError("MicSource.read() before open()")
        deadline = time.monotonic() + timeout
        while ring.available == 0:
            now = time.monotonic()
            if self._lost is not None:
                self._while_lost()
            else:
                limit = (
                    self.options.stall_seconds
                    if self._started
                    else max(self.options.stall_seconds, START_GRACE_SECONDS)
                )
                if now - self._last_data > limit or not self._stream.active:
                    self._lose("stopped delivering audio" if self._stream.active else "stream ended with an error")
                    continue
            if ring.available or now >= deadline:
                break
            time.sleep(POLL_SECONDS)  # see POLL_SECONDS: the callback never signals a lock
        if self._lost is None and ring.available:
            self._last_data = time.monotonic()
            self._started = True
        return self._take()

    def _take(self) -> Chunk:
        """Everything in the ring, at 16 kHz, with its stamps moved to 16 kHz sample indices."""
        ring = self._ring
        if ring is None:
            raise RuntimeError("MicSource read before open()")
        first = ring.read_pos
        raw = ring.read()
        stamps = [(i, t) for i, t in self._stamps.read() if i >= first]
        if self._resampler is None:
            return Chunk(raw, tuple(stamps))
        # soxr's output sample j is input sample j / ratio (it withholds its filter delay, it does not shift)
        ratio = SAMPLE_RATE / self.device_rate
        return Chunk(self._resampler.resample_chunk(raw), tuple((round(i * ratio), t) for i, t in stamps))


@dataclass
class _Outage:
    """A lost device: why, since when (monotonic s), silence filled in (device-rate samples), reopen schedule."""

    why: str
    since: float
    next_try: float
    delay: float
    filled: int = 0
    attempts: int = 0


def _sounddevice() -> Any:
    """The sounddevice module; SourceError (one line) where the PortAudio library is missing."""
    try:
        import sounddevice
    except OSError as exc:  # the Python package is there but libportaudio2 is not
        raise SourceError(
            f"cannot load PortAudio ({exc}): install libportaudio2 (apt-get install libportaudio2)"
        ) from None
    return sounddevice


# Query options each scheme accepts, with their defaults.
_OPTIONS: dict[str, dict[str, bool]] = {
    "mic": {},
    "file": {"realtime": True, "loop": False, "play": False},
    "silence": {"realtime": True},
    "webrtc": {},
}
_FORMS = (
    "mic://default, mic://<device name or index>, file://speech.wav[?realtime=0&loop=1&play=1], silence:// "
    "or webrtc:// (the microphone of the page that --sink webrtc:// serves)"
)


def parse_source(uri: str, options: CaptureOptions) -> Source:
    """A source (not opened) for ``uri``; raises SourceError naming the accepted forms."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in _OPTIONS:
        raise SourceError(f"unknown source '{uri}': use {_FORMS}")
    flags = dict(_OPTIONS[scheme])
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in flags:
            known = ", ".join(flags) or "none"
            raise SourceError(f"source '{uri}': unknown option '{key}' (options for {scheme}://: {known})")
        if value.lower() not in ("0", "1", "true", "false", "yes", "no"):
            raise SourceError(f"source '{uri}': option '{key}' must be 0 or 1, got '{value}'")
        flags[key] = value.lower() in ("1", "true", "yes")
    name = unquote(parts.netloc + parts.path)
    if scheme == "webrtc":
        if name:
            raise SourceError(f"source '{uri}': webrtc:// takes no address (the page is --sink webrtc://HOST:PORT's)")
        from speech2vid.sources.webrtc import WebRTCSource

        return WebRTCSource()
    if scheme == "mic":
        name = name or "default"
        device: str | int | None = None if name == "default" else int(name) if name.isdigit() else name
        return MicSource(device, options)
    if scheme == "file":
        if not name:
            raise SourceError(f"source '{uri}' names no file: use file://speech.wav or file:///abs/path.wav")
        return FileSource(name, options.blocksize, **flags)
    return SilenceSource(options.blocksize, **flags)


def list_devices() -> list[dict[str, Any]]:
    """Capture devices a ``mic://`` URI can name: index, name, input channels, default rate."""
    sd = _sounddevice()
    default = sd.default.device[0]
    return [
        {
            "index": i,
            "name": d["name"],
            "channels": d["max_input_channels"],
            "default_samplerate": d["default_samplerate"],
            "default": i == default,
        }
        for i, d in enumerate(sd.query_devices())
        if d["max_input_channels"] > 0
    ]
