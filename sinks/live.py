"""Live sinks chosen by URI: ``display://`` (a window), ``file://out.mp4`` (video + captured audio), ``null://``.

Every sink gets the engine's frame (109, 109, 3) float RGB in [0, 1] once per 25 fps slot it takes, with
a :class:`FrameInfo`; it renders what it needs itself (an MP4 at ``output_size``, a composed kiosk
window). *Real-time* sinks (display, null) only care about fresh images: with ``drop_policy: drop`` they
skip a slot the engine could not fill. A file must keep one frame per slot to stay in sync with its
audio, so it holds the previous image for such a slot.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

import cv2
import numpy as np

from speech2vid.config import LiveConfig
from speech2vid.errors import OutputError, UserError
from speech2vid.frames.compose import avatar_side, background, compose, overlay
from speech2vid.frames.render import to_uint8, video_frame, watermark
from speech2vid.outputs import write_failed

if TYPE_CHECKING:  # sinks.webrtc builds on this module
    from speech2vid.sinks.webrtc import WebRTCOptions

log = logging.getLogger("speech2vid.sinks.live")


@dataclass(frozen=True)
class FrameInfo:
    """What the live loop knows about the slot being shown (for overlays and tests)."""

    index: int  # 25 fps slot
    fresh: bool  # a newly computed image (False: the previous one held for a slot the engine missed)
    latency_ms: float | None  # capture of the window centre -> this write (None: not measured)
    level_dbfs: float  # audio level of the 40 ms centred on the frame's time
    fps: float  # fresh images per second, recent
    dropped: int  # slots skipped or held so far
    idle: bool  # the still face is shown because nobody speaks


class LiveSink(ABC):
    realtime = True  # False: needs every slot (files)
    quit_requested = False  # a user closed the window / pressed q or Esc
    description = "?"

    @abstractmethod
    def write(self, frame: np.ndarray, info: FrameInfo) -> None:
        """Show or store ``frame``: the engine's (109, 109, 3) float32 RGB in [0, 1], or the photo it was
        composed into, (H, W, 3) uint8."""

    def write_audio(self, samples: np.ndarray) -> None:
        """Captured 16 kHz float32 ``(n,)`` samples, in order, before the frames they belong to."""

    def close(self, abort: bool = False) -> None:
        """Finish: a file is finalised and renamed onto its name, or with ``abort`` (the run crashed) discarded."""


class NullSink(LiveSink):
    """``null://``: counts what it gets, and how often the image changed (still-mouth checks)."""

    description = "null"

    def __init__(self) -> None:
        self.frames = 0
        self.changes = 0
        self.audio_samples = 0
        self._last: np.ndarray | None = None

    def write(self, frame: np.ndarray, info: FrameInfo) -> None:
        image = to_uint8(frame)
        if self._last is not None and not np.array_equal(image, self._last):
            self.changes += 1
        self._last = image
        self.frames += 1

    def write_audio(self, samples: np.ndarray) -> None:
        self.audio_samples += int(samples.shape[0])


METER_DB = 60.0  # the level meter spans -60..0 dBFS
METER_PX = 8  # its height


def draw_meter(image: np.ndarray, level_dbfs: float) -> np.ndarray:
    """A copy of ``image`` (H, W, 3) uint8 with a white bar along its bottom, as long as the level on -60..0 dBFS."""
    out = image.copy()
    w = out.shape[1]
    length = round(w * min(1.0, max(0.0, (level_dbfs + METER_DB) / METER_DB)))
    out[-METER_PX:] = 0
    out[-METER_PX:, :length] = 255
    return out


class FileSink(LiveSink):
    """``file://out.mp4``: H.264 at ``output_size`` with the captured audio as AAC, written atomically.

    ``meter``: a white audio level bar along the bottom of every frame (``file://out.mp4?meter=1``), so
    that sync can be checked by eye or by a program even with untrained weights.
    """

    realtime = False

    def __init__(self, path: str, cfg: LiveConfig, label: str | None, codec: dict[str, Any], meter: bool = False):
        from speech2vid.audio.constants import SAMPLE_RATE
        from speech2vid.sinks.video_file import VideoFileSink

        self.size = cfg.output_size
        self.label = label
        self._sink = VideoFileSink(path, fps=25, size=(self.size, self.size), live_audio_rate=SAMPLE_RATE, **codec)
        self.path = self._sink.path
        self.meter = meter
        self.description = f"file {self.path}{' with level meter' if meter else ''}"
        self.failed = False  # a write failed and the file was discarded
        self._source: np.ndarray | None = None  # the last frame given, and its rendering: a held frame
        self._image: np.ndarray | None = None  # is the same object and is not scaled again

    def write(self, frame: np.ndarray, info: FrameInfo) -> None:
        if self._image is None or frame is not self._source:
            self._source, self._image = frame, video_frame(frame, self.size, self.label)
        try:
            self._sink.write(draw_meter(self._image, info.level_dbfs) if self.meter else self._image)
        except OSError as exc:
            raise self._failed(exc) from None

    def write_audio(self, samples: np.ndarray) -> None:
        try:
            self._sink.write_audio(samples)
        except OSError as exc:
            raise self._failed(exc) from None

    def _failed(self, exc: OSError) -> OutputError:
        """A write failed (a full disk, a quota): the partial file is removed at once, so that the loop can
        end, finalise the other sinks and keep its statistics."""
        self.failed = True
        self._sink.abort()
        return exc if isinstance(exc, OutputError) else write_failed(self.path, exc)

    @property
    def frames(self) -> int:
        return self._sink.frames_written

    @property
    def written(self) -> bool:
        """The file is complete under its name."""
        return not self.failed and self._sink.path.is_file() and not self._sink.tmp.exists()

    def close(self, abort: bool = False) -> None:
        if self.failed:
            return  # discarded when the write failed
        if abort or self.frames == 0:
            if not abort:
                log.warning("no frames for %s: nothing written", self.path)
            self._sink.abort()
            return
        try:
            self._sink.close()
        except OSError as exc:
            raise self._failed(exc) from None


class DisplaySink(LiveSink):
    """``display://``: the avatar composed onto the background, in an OpenCV window or, where OpenCV has no
    GUI (opencv-python-headless), a Tk window. ``q`` / Esc / closing the window ends the run."""

    def __init__(self, cfg: LiveConfig, label: str | None, title: str = "speech2vid"):
        self.cfg = cfg
        self.label = label
        self.title = title
        self._window: _Window = _open_window(title, cfg.window_size, cfg.fullscreen)
        self.size = self._window.size
        self._canvas = background(self.size, cfg.background_colour, cfg.background_image)
        self._side = avatar_side(self.size, cfg.avatar_scale)
        self._closed = False
        self._latency = "-"
        self.description = (
            f"display {self._window.kind} {self.size[0]}x{self.size[1]}{' fullscreen' if cfg.fullscreen else ''}"
        )

    def render(self, frame: np.ndarray, info: FrameInfo) -> np.ndarray:
        """The window's image: (height, width, 3) uint8 RGB."""
        avatar = display_avatar(frame, self._side)
        if self.label:
            avatar = watermark(avatar, self.label)
        out = compose(self._canvas, avatar)
        if self.cfg.overlay:
            if info.latency_ms is not None:
                self._latency = f"{info.latency_ms:.0f} ms"  # a held frame shows the last measured latency
            lat = self._latency
            overlay(
                out,
                [
                    f"{info.fps:4.1f} fps  latency {lat}",
                    f"level {info.level_dbfs:5.1f} dBFS  skipped {info.dropped}" + ("  idle" if info.idle else ""),
                ],
            )
        return out

    def write(self, frame: np.ndarray, info: FrameInfo) -> None:
        self._window.show(self.render(frame, info))
        if self._window.quit_requested:
            self.quit_requested = True

    def close(self, abort: bool = False) -> None:
        if not self._closed:
            self._closed = True
            self._window.close()


def display_avatar(frame: np.ndarray, side: int) -> np.ndarray:
    """The engine's frame scaled for the window: (side, side, 3) uint8. Bicubic, not the files' Lanczos: it
    runs on the live loop's thread every frame, and enlarging 109 px to 512 px took 0.4 ms bicubic against
    6.8 ms Lanczos (one thread, measured), for a difference hard to see at that size."""
    return cv2.resize(to_uint8(frame), (side, side), interpolation=cv2.INTER_CUBIC)


class _Window(ABC):
    kind = "?"
    size: tuple[int, int] = (0, 0)
    quit_requested = False

    @abstractmethod
    def show(self, rgb: np.ndarray) -> None: ...

    @abstractmethod
    def close(self) -> None: ...


class _CvWindow(_Window):
    kind = "opencv"

    def __init__(self, title: str, size: tuple[int, int], fullscreen: bool):
        import cv2

        self._cv2, self.title = cv2, title
        cv2.namedWindow(title, cv2.WINDOW_NORMAL)  # raises cv2.error without a GUI backend
        if fullscreen:
            cv2.setWindowProperty(title, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)
            _x, _y, w, h = cv2.getWindowImageRect(title)
            size = (w, h) if w > 0 and h > 0 else size
        else:
            cv2.resizeWindow(title, *size)
        self.size = size

    def show(self, rgb: np.ndarray) -> None:
        self._cv2.imshow(self.title, rgb[:, :, ::-1])
        key = self._cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27) or self._cv2.getWindowProperty(self.title, self._cv2.WND_PROP_VISIBLE) < 1:
            self.quit_requested = True

    def close(self) -> None:
        self._cv2.destroyWindow(self.title)
        self._cv2.waitKey(1)


class _TkWindow(_Window):
    kind = "tk"

    def __init__(self, title: str, size: tuple[int, int], fullscreen: bool):
        import tkinter as tk

        try:
            self._root = tk.Tk()
        except tk.TclError as exc:
            raise UserError(f"display:// cannot open a window ({exc}): set DISPLAY or use --sink null://") from None
        self._root.title(title)
        self._root.configure(background="black")
        if fullscreen:
            self._root.attributes("-fullscreen", True)
            self._root.configure(cursor="none")
            size = (self._root.winfo_screenwidth(), self._root.winfo_screenheight())
        else:
            self._root.geometry(f"{size[0]}x{size[1]}")
        self.size = size
        self._photo = tk.PhotoImage(width=size[0], height=size[1])
        self._label = tk.Label(self._root, image=self._photo, borderwidth=0, highlightthickness=0)
        self._label.pack(fill="both", expand=True)
        for key in ("<Key-q>", "<Escape>"):
            self._root.bind(key, self._quit)
        self._root.protocol("WM_DELETE_WINDOW", self._quit)
        self._root.update()

    def _quit(self, *_: object) -> None:
        self.quit_requested = True

    def show(self, rgb: np.ndarray) -> None:
        h, w = rgb.shape[:2]
        self._photo.configure(data=b"P6 %d %d 255\n" % (w, h) + rgb.tobytes(), format="PPM")
        self._root.update()  # draws and runs the key/close handlers; the loop never blocks here

    def close(self) -> None:
        try:
            self._root.destroy()
        except Exception as exc:  # already destroyed by the window manager
            log.debug("closing the Tk window: %s", exc)


def _open_window(title: str, size: tuple[int, int], fullscreen: bool) -> _Window:
    try:
        return _CvWindow(title, size, fullscreen)
    except Exception as exc:  # cv2.error: this OpenCV build has no GUI (the headless wheel)
        log.debug("no OpenCV window (%s): using Tk", str(exc).splitlines()[0] if str(exc) else exc)
    try:
        import tkinter  # noqa: F401
    except ImportError:
        raise UserError(
            "display:// needs an OpenCV build with a GUI (pip install opencv-python) or Python's tkinter"
        ) from None
    return _TkWindow(title, size, fullscreen)


@dataclass(frozen=True)
class SinkSpec:
    """A sink URI as parsed, before anything is opened: checked before the engine loads."""

    uri: str
    scheme: str  # null | display | file | webrtc
    path: str | None = None  # file:// only
    meter: bool = False  # file:// only
    webrtc: WebRTCOptions | None = None  # webrtc:// only


def sink_spec(uri: str) -> SinkSpec:
    """Parse ``uri`` without opening anything; raises OutputError naming the accepted forms."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    allowed = {"file": {"meter"}}.get(scheme, set())
    if scheme == "webrtc":
        from speech2vid.sinks.webrtc import parse_webrtc

        return SinkSpec(uri, scheme, webrtc=parse_webrtc(uri))
    if scheme not in ("null", "display", "file"):
        raise OutputError(
            f"unknown sink '{uri}': use display://, file://out.mp4[?meter=1], webrtc://HOST:PORT or null://"
        )
    for key, value in query.items():
        if key not in allowed or value not in ("0", "1"):
            raise OutputError(
                f"sink '{uri}': unknown option '{key}={value}' (file:// takes meter=0|1; others take none)"
            )
    if scheme != "file":
        return SinkSpec(uri, scheme)
    path = unquote(parts.netloc + parts.path)
    if not path:
        raise OutputError(f"sink '{uri}' names no file: use file://out.mp4")
    return SinkSpec(uri, scheme, path, meter=query.get("meter") == "1")


def open_sink(
    spec: SinkSpec, cfg: LiveConfig, *, label: str | None = None, codec: dict[str, Any] | None = None
) -> LiveSink:
    """Open the sink ``spec`` describes (a window, a file being written, or a counter)."""
    if spec.scheme == "null":
        return NullSink()
    if spec.scheme == "display":
        return DisplaySink(cfg, label)
    if spec.webrtc is not None:
        from speech2vid.sinks.webrtc import WebRTCSink

        return WebRTCSink(spec.webrtc, label)
    assert spec.path is not None  # sink_spec gives every file:// spec its path
    return FileSink(spec.path, cfg, label, codec or {}, meter=spec.meter)


def parse_sink(uri: str, cfg: LiveConfig, *, label: str | None = None, codec: dict[str, Any] | None = None) -> LiveSink:
    """Open the sink for ``uri``; raises OutputError naming the accepted forms."""
    return open_sink(sink_spec(uri), cfg, label=label, codec=codec)
