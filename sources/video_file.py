"""Read a source video frame by frame, in any order a fitting plan asks for, without holding it in memory.

A *plan* lists, for each output frame, the source frame index to show (:func:`fit_plan`). Runs that go
forward are decoded straight through; runs that go backward (``pingpong``) are decoded in blocks of at
most ``block`` frames after a seek and played in reverse, so memory stays bounded by ``block`` frames.

Frames come upright: a phone stores its sensor's frames as they were filmed and says in the file how to
turn them for display (a display matrix, or the older ``rotate`` tag). FFmpeg's own command line turns
them; its libraries, which PyAV wraps, do not, so :func:`upright` does it here and :class:`VideoInfo`
gives the upright size. Only quarter turns are applied (phones write nothing else); a mirroring in the
display matrix is ignored.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator, Literal, Mapping

import numpy as np

from speech2vid.errors import UserError
from speech2vid.frames.yuv import frame_rgb

Fit = Literal["loop", "trim", "pingpong"]
REVERSE_BLOCK = 32  # frames decoded ahead and played backwards in a pingpong run


class VideoError(UserError):
    """A source video is missing, unreadable, or has no video track."""


@dataclass(frozen=True)
class VideoInfo:
    """What the redub pipeline needs to know of a source video before decoding it."""

    path: Path
    width: int
    height: int
    rate: Fraction  # frames per second, exact (30000/1001 for NTSC)
    frames: int
    turn: int = 0  # degrees clockwise (0, 90, 180, 270) that turn the stored frames upright; width, height: after it


def quarter_turn(matrix_ccw: float, tags: Mapping[str, str]) -> int:
    """Degrees clockwise (0, 90, 180 or 270) that turn a video's stored frames upright for display.

    ``matrix_ccw``: the rotation of the display matrix, counterclockwise as FFmpeg states it (0 when the
    file has none); ``tags``: the stream's metadata, whose legacy ``rotate`` tag (clockwise, any case of
    the key) counts when there is no display matrix rotation. Angles are rounded to quarter turns.
    """
    clockwise = -float(matrix_ccw)
    if not clockwise:
        tag = next((v for k, v in tags.items() if k.lower() == "rotate"), "0")
        try:
            clockwise = float(tag)
        except ValueError:  # a tag some tool filled with text: there is nothing to turn by
            clockwise = 0.0
    if not math.isfinite(clockwise):
        return 0
    return int(round(clockwise / 90.0)) % 4 * 90


def frame_turn(frame: Any, stream: Any) -> int:
    """:func:`quarter_turn` of a decoded PyAV video frame (its display matrix) and its stream (tags)."""
    return quarter_turn(getattr(frame, "rotation", 0) or 0, dict(stream.metadata or {}))


def upright(rgb: np.ndarray, turn: int) -> np.ndarray:
    """A stored (H, W, C) frame turned ``turn`` degrees clockwise: (W, H, C) for 90 and 270, C-contiguous."""
    if turn % 360 == 0:
        return rgb
    return np.ascontiguousarray(np.rot90(rgb, k=-(turn // 90)))


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Open ``path`` and read its size, frame rate and frame count; raises :class:`VideoError`."""
    import av

    p = Path(path).expanduser()
    name = repr(str(p))
    if not p.exists():
        raise VideoError(f"video file {name} not found: check the path")
    if p.is_dir():
        raise VideoError(f"{name} is a directory, not a video file")
    try:
        with av.open(str(p)) as container:
            if not container.streams.video:
                raise VideoError(f"{name} has no video track: pass a video file (MP4, MOV, MKV...)")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            frames = int(stream.frames or 0)
            turn, counted = _first_turn_and_packets(container, stream, count=frames <= 0)
            frames = frames if frames > 0 else counted
            width, height = int(stream.codec_context.width), int(stream.codec_context.height)
            if turn in (90, 270):
                width, height = height, width
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise VideoError(
            f"cannot read {name} as a video ({type(exc).__name__}): pass an MP4, MOV or MKV file"
        ) from None
    if not rate or rate <= 0:
        raise VideoError(f"{name} does not state a frame rate: re-encode it (e.g. ffmpeg -i IN -r 25 OUT.mp4)")
    if frames <= 0 or width <= 0 or height <= 0:
        raise VideoError(f"{name} holds no video frames")
    return VideoInfo(p, width, height, Fraction(rate), frames, turn)


def _first_turn_and_packets(container: Any, stream: Any, *, count: bool) -> tuple[int, int]:
    """The turn of the first decoded frame (the display matrix reaches the frames, not the stream's
    Python API), and with ``count`` the number of non-empty packets (the header did not state it)."""
    turn: int | None = None
    packets = 0
    for packet in container.demux(stream):
        packets += bool(packet.size)
        if turn is None:
            for frame in packet.decode():
                turn = frame_turn(frame, stream)
                break
        if turn is not None and not count:
            break
    return turn or 0, packets


def fit_plan(n_source: int, n_output: int, fit: Fit) -> np.ndarray:
    """Source frame index for each output frame, int64 ``(n_output,)``.

    loop: 0..N-1, 0..N-1, ...; pingpong: 0..N-1, N-2..1, 0..N-1, ... (no frame shown twice in a row);
    trim: 0..N-1 cut at the output's length, and when the output is longer the last frame is held.
    """
    if n_source < 1 or n_output < 0:
        raise ValueError(f"need n_source >= 1 and n_output >= 0, got {n_source} and {n_output}")
    j = np.arange(n_output, dtype=np.int64)
    if fit == "loop":
        return j % n_source
    if fit == "trim":
        return np.minimum(j, n_source - 1)
    if fit == "pingpong":
        if n_source == 1:
            return np.zeros_like(j)
        period = 2 * n_source - 2
        p = j % period
        return np.where(p < n_source, p, period - p)
    raise ValueError(f"fit must be loop, trim or pingpong, got {fit!r}")


class SourceFrames:
    """Decode frames of one video by index; forward reads stream, backward reads go by blocks."""

    def __init__(self, info: VideoInfo, block: int = REVERSE_BLOCK):
        import av

        self.info, self.block = info, block
        self._container = av.open(str(info.path))
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self._decoder: Iterator[tuple[int, np.ndarray]] | None = None
        self._next = 0  # index the decoder yields next

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> "SourceFrames":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _index(self, frame: object, counted: int) -> int:
        pts, tb = getattr(frame, "pts", None), self._stream.time_base
        if pts is None or tb is None:
            return counted
        start = self._stream.start_time or 0
        return int(round((pts - start) * tb * self.info.rate))

    def _decode_from(self, index: int) -> Iterator[tuple[int, np.ndarray]]:
        """Seek to the keyframe at or before ``index`` and yield ``(i, rgb)`` for i >= index."""
        tb = self._stream.time_base
        ts = (
            0
            if index == 0 or tb is None
            else int((self._stream.start_time or 0) + Fraction(index) / self.info.rate / tb)
        )
        self._container.seek(ts, stream=self._stream, backward=True, any_frame=False)
        counted = -1
        for frame in self._container.decode(self._stream):
            counted += 1
            i = self._index(frame, counted)
            if i >= index:
                yield i, upright(frame_rgb(frame), self.info.turn)

    def _read(self, index: int) -> np.ndarray:
        """Frame ``index``; continues the current decode when it lies just ahead, else seeks."""
        if self._decoder is None or not self._next <= index < self._next + 2 * self.block:
            self._decoder = self._decode_from(index)
        for i, rgb in self._decoder:
            self._next = i + 1
            if i >= index:
                return rgb
        # Past the last frame (the header over-counted): hold the last decoded frame instead.
        self._decoder = None
        if index > 0:
            return self._read(index - 1)
        raise VideoError(f"{str(self.info.path)!r} decodes to no frames")

    def frames(self, plan: np.ndarray) -> Iterator[np.ndarray]:
        """Yield the (H, W, 3) uint8 RGB source frame of each plan entry, in order."""
        last_index, last = -1, None
        k = 0
        while k < len(plan):
            i = int(plan[k])
            if i == last_index and last is not None:  # held frame (trim)
                yield last
                k += 1
                continue
            if k + 1 < len(plan) and plan[k + 1] == i - 1:  # a backward run: decode a block, play it reversed
                run = 1
                while k + run < len(plan) and plan[k + run] == i - run and run < self.block:
                    run += 1
                low = i - run + 1
                self._decoder = None
                block = [self._read(low + n) for n in range(run)]
                for rgb in reversed(block):
                    yield rgb
                last_index, last = low, block[0]
                self._decoder = None  # the next forward run seeks again
                k += run
                continue
            last_index, last = i, self._read(i)
            yield last
            k += 1
