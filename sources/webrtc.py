"""``--source webrtc://``: a browser's microphone, sent over WebRTC to the page of ``--sink webrtc://``.

The audio arrives as decoded Opus frames (48 kHz) on the sink's server thread; here it becomes 16 kHz mono
float32 with its arrival times as stamps. While nobody speaks into a page (no viewer sends a microphone,
or the speaker's audio stalls), silence is delivered at the audio clock's pace, so the avatar idles and
the viewers keep receiving frames.
"""

from __future__ import annotations

import queue
import time
from typing import Any, Callable, Protocol

import numpy as np

from speech2vid.audio.constants import SAMPLE_RATE
from speech2vid.audio.io import Audio, ModelRateStream
from speech2vid.sources.live import Chunk, Source, SourceError

GAP_SECONDS = 0.2  # no microphone audio for this long: silence stands in, at the audio clock's pace
MAX_QUEUED = 500  # microphone frames (20 ms each: 10 s) waiting for the loop before the oldest are dropped


class MicrophoneFeed(Protocol):
    """What the source needs of the server that receives the page's microphone (sinks.webrtc.WebRTCServer)."""

    def on_microphone(self, listener: Callable[[Any, float], None] | None) -> None: ...


class WebRTCSource(Source):
    """16 kHz audio from the speaking viewer's microphone; silence while there is none."""

    description = "webrtc:// (a browser's microphone)"
    blocksize = 320  # 20 ms: an Opus frame, the unit the audio arrives in
    realtime = True

    def __init__(self) -> None:
        self._feed: MicrophoneFeed | None = None
        self._frames: queue.Queue[tuple[np.ndarray, float]] = queue.Queue(maxsize=MAX_QUEUED)
        self._resampler: ModelRateStream | None = None
        self._pos = 0  # 16 kHz samples delivered
        self._filled_until = 0.0  # monotonic time up to which audio (real or silence) has been delivered
        self._last_heard = -1.0
        self.dropped = 0
        self.mic_seconds = 0.0

    def attach(self, feed: MicrophoneFeed) -> None:
        """The server whose viewers' microphones this source plays (the sink's); before :meth:`open`."""
        self._feed = feed

    def open(self) -> None:
        if self._feed is None:
            raise SourceError(
                "--source webrtc:// needs --sink webrtc://HOST:PORT: the page that shows the avatar sends "
                "the microphone"
            )
        self._filled_until = time.monotonic()
        self._feed.on_microphone(self._heard)

    def close(self) -> None:
        if self._feed is not None:
            self._feed.on_microphone(None)

    def _heard(self, frame: Any, arrival: float) -> None:
        """On the server's thread: one decoded frame (av.AudioFrame, packed s16) of the microphone."""
        channels = len(frame.layout.channels)
        raw = frame.to_ndarray()  # planar: (channels, n); packed: (1, n x channels)
        pcm = (raw.T if frame.format.is_planar else raw.reshape(-1, channels)).astype(np.float32) / 32768.0
        if self._resampler is None or self._resampler.rate != frame.sample_rate:
            self._resampler = ModelRateStream(frame.sample_rate)
        samples = self._resampler.push(Audio(pcm, frame.sample_rate))
        try:
            self._frames.put_nowait((samples, arrival))
        except queue.Full:  # the loop stopped reading: the oldest audio goes, memory stays bounded
            self.dropped += 1

    def read(self, timeout: float) -> Chunk:
        blocks: list[np.ndarray] = []
        stamps: list[tuple[int, float]] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                samples, arrival = self._frames.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            stamps.append((self._pos + sum(b.size for b in blocks), arrival))
            blocks.append(samples)
            self._last_heard = arrival
            if self._frames.empty():
                break
        now = time.monotonic()
        if blocks:
            chunk = np.concatenate(blocks)
            self.mic_seconds += chunk.size / SAMPLE_RATE
            self._filled_until = max(self._filled_until, now)
        elif now - max(self._last_heard, self._filled_until - GAP_SECONDS) >= GAP_SECONDS:
            n = int((now - self._filled_until) * SAMPLE_RATE) // self.blocksize * self.blocksize
            if n <= 0:
                return Chunk(np.zeros(0, np.float32), ())
            chunk = np.zeros(n, dtype=np.float32)
            stamps = [(self._pos + i, self._filled_until + i / SAMPLE_RATE) for i in range(0, n, self.blocksize)]
            self._filled_until += n / SAMPLE_RATE
        else:
            return Chunk(np.zeros(0, np.float32), ())
        self._pos += chunk.size
        return Chunk(chunk, tuple(stamps))
