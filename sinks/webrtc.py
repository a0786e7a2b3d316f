"""``--sink webrtc://HOST:PORT``: the avatar in a browser page, over WebRTC (aiortc), with its speech.

One server per process (:class:`WebRTCServer`) serves a small page on ``http://HOST:PORT/`` and answers each
viewer's SDP offer on ``POST /offer``. It binds 127.0.0.1 unless a host is given, and takes at most
``viewers`` viewers at once (``?viewers=N``, default 4); one more gets HTTP 503 and a line in the log.

Every viewer gets the avatar's video and the audio it speaks, in step: the audio of slot ``k`` (samples
``640 k .. 640 (k + 1)``) is handed to the audio track together with frame ``k``, so both leave at the same
moment and the RTCP sender reports let the browser line them up. Each viewer's tracks hold at most
:data:`VIDEO_QUEUE` frames and :data:`AUDIO_QUEUE` audio blocks; a viewer whose connection stalls or lags
loses its oldest ones (counted), so it never slows the avatar or the other viewers, and what is kept for it
is bounded. A viewer that never connects is dropped after :data:`CONNECT_SECONDS`.

A viewer's microphone (the page sends it with ``?mic=1``) reaches whoever listens through
:meth:`WebRTCServer.on_microphone`: the ``webrtc://`` source (:mod:`speech2vid.sources.webrtc`) does.
The first viewer to send one is the speaker until it leaves.

``?size=PX`` (default 512) caps the longer side of the frames sent (VP8 encoding is CPU work);
``?stamp=1`` draws the slot index as a row of black and white blocks along the bottom edge, so that a test
can tell which slot a received frame is (tests/test_webrtc.py).
"""

from __future__ import annotations

import asyncio
import collections
import fractions
import importlib.util
import logging
import threading
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit

import cv2
import numpy as np

from speech2vid.audio.constants import SAMPLE_RATE
from speech2vid.errors import OutputError
from speech2vid.features.windows import FPS, SAMPLES_PER_FRAME
from speech2vid.sinks.live import FrameInfo, LiveSink

log = logging.getLogger("speech2vid.sinks.webrtc")

WEBRTC_EXTRA = "pip install 'speech2vid[webrtc]'"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_VIEWERS = 4
MAX_VIEWERS = 64
DEFAULT_SIZE = 512
VIDEO_QUEUE = 2  # frames kept for a viewer that has not taken them yet (then the oldest goes)
AUDIO_QUEUE = 50  # audio blocks (one per slot, 40 ms): 2 s
CONNECT_SECONDS = 20.0  # an offer answered but never connected is dropped after this long
MAX_OFFER_BYTES = 64 * 1024  # an SDP offer is a few kB
VIDEO_CLOCK = 90_000  # RTP video clock (Hz)
STAMP_BITS = 16  # slot index bits drawn with ?stamp=1
STAMP_HEIGHT = 8  # px, the stamp row's height


def require_webrtc_extra() -> None:
    """OutputError (one line) where aiortc or aiohttp is missing: the runtime install leaves them out."""
    if importlib.util.find_spec("aiortc") is None or importlib.util.find_spec("aiohttp") is None:
        raise OutputError(f"webrtc:// needs aiortc and aiohttp, which the runtime install leaves out: {WEBRTC_EXTRA}")


@dataclass(frozen=True)
class WebRTCOptions:
    """A ``webrtc://`` URI as parsed: checked before anything opens."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    viewers: int = DEFAULT_VIEWERS
    size: int = DEFAULT_SIZE
    stamp: bool = False

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"


def parse_webrtc(uri: str) -> WebRTCOptions:
    """``webrtc://[HOST][:PORT][?viewers=N&size=PX&stamp=0|1]``; OutputError (one line) for anything else."""
    parts = urlsplit(uri)
    try:
        port = parts.port
    except ValueError:
        raise OutputError(f"'{uri}': the port must be a number within 1..65535") from None
    host = parts.hostname or DEFAULT_HOST
    opts: dict[str, Any] = {"host": host, "port": DEFAULT_PORT if port is None else port}
    if port == 0:
        raise OutputError(f"'{uri}': the port must be a number within 1..65535")
    bounds = {"viewers": (1, MAX_VIEWERS), "size": (64, 4096), "stamp": (0, 1)}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in bounds:
            raise OutputError(f"'{uri}': unknown option '{key}' (webrtc:// takes viewers=N, size=PX and stamp=0|1)")
        lo, hi = bounds[key]
        if not value.isdigit() or not lo <= int(value) <= hi:
            raise OutputError(f"'{uri}': '{key}' must be a whole number within {lo}..{hi}, got '{value}'")
        opts[key] = bool(int(value)) if key == "stamp" else int(value)
    if parts.path not in ("", "/"):
        raise OutputError(f"'{uri}': a webrtc:// address names a host and port only, e.g. webrtc://127.0.0.1:8080")
    return WebRTCOptions(**opts)


# ----------------------------------------------------------------------------- frames


def stamp_slot(image: np.ndarray, k: int) -> np.ndarray:
    """``image`` (H, W, 3) uint8 with slot ``k``'s low :data:`STAMP_BITS` bits drawn along its bottom edge:
    bit ``i`` (least significant first) is block ``i`` of ``W // STAMP_BITS`` px, white for 1, black for 0."""
    out = image.copy()
    width = out.shape[1] // STAMP_BITS
    for i in range(STAMP_BITS):
        out[-STAMP_HEIGHT:, i * width : (i + 1) * width] = 255 if (k >> i) & 1 else 0
    return out


def read_stamp(image: np.ndarray) -> int:
    """The slot index :func:`stamp_slot` drew, read back (each block's mean against mid-grey)."""
    width = image.shape[1] // STAMP_BITS
    row = image[-STAMP_HEIGHT + 2 : -2].astype(np.float32).mean(axis=(0, 2))
    bits = [row[i * width + width // 4 : (i + 1) * width - width // 4].mean() > 127 for i in range(STAMP_BITS)]
    return sum(1 << i for i, bit in enumerate(bits) if bit)


def _video_frame(frame: np.ndarray, size: int) -> np.ndarray:
    """The sink's frame as (H, W, 3) uint8 RGB, even-sized (VP8 takes 4:2:0), its longer side at most ``size``."""
    rgb = frame if frame.dtype == np.uint8 else np.clip(frame * 255.0 + 0.5, 0, 255).astype(np.uint8)
    h, w = rgb.shape[:2]
    scale = min(1.0, size / max(h, w))
    nh, nw = max(2, int(h * scale) // 2 * 2), max(2, int(w * scale) // 2 * 2)
    if (nh, nw) != (h, w):
        rgb = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb)


def _pcm16(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.round(samples * 32767.0), -32768, 32767).astype(np.int16)


# ----------------------------------------------------------------------------- the server


class _Viewer:
    """One browser: its peer connection and the avatar's two tracks, each a bounded queue."""

    def __init__(self, number: int, pc: Any, video: Any, audio: Any) -> None:
        self.number, self.pc, self.video, self.audio = number, pc, video, audio
        self.connected = False
        self.opened = time.monotonic()


def queued_track(kind: str, limit: int) -> Any:
    """An aiortc track (``kind`` video or audio) that sends what its ``put`` is given, oldest first, holding
    at most ``limit`` items: when full, the oldest goes (counted in ``dropped``). Used on the server's loop."""
    from aiortc import MediaStreamTrack

    class QueuedTrack(MediaStreamTrack):  # type: ignore[misc]
        def __init__(self, limit: int) -> None:
            super().__init__()
            self.kind = kind
            self._items: collections.deque[Any] = collections.deque(maxlen=limit)
            self._ready = asyncio.Event()
            self.dropped = 0

        def put(self, item: Any) -> None:  # on the server's loop
            if len(self._items) == self._items.maxlen:
                self.dropped += 1
            self._items.append(item)
            self._ready.set()

        async def recv(self) -> Any:
            while not self._items:
                self._ready.clear()
                await self._ready.wait()
            return self._items.popleft()

    return QueuedTrack(limit)


class WebRTCServer:
    """The page, the signalling and every viewer's peer connection, on an asyncio loop in its own thread."""

    def __init__(self, options: WebRTCOptions, *, connect_seconds: float = CONNECT_SECONDS) -> None:
        self.options = options
        self.connect_seconds = connect_seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: Any = None
        self._viewers: dict[int, _Viewer] = {}
        self._count = 0
        self._speaker: int | None = None
        self._mic: Callable[[Any, float], None] | None = None
        self._pending = 0  # slots handed to the loop and not yet given to the viewers' tracks
        self._lock = threading.Lock()
        self.refused = 0  # offers refused: malformed, or one viewer too many
        self.overrun = 0  # slots not handed over because the server's loop was behind

    # -- lifecycle (caller's thread)

    def start(self) -> None:
        """Bind and serve; OutputError (one line) where aiortc is missing or the port is taken."""
        require_webrtc_extra()
        ready: dict[str, Any] = {}
        started = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self._bind())
            except OSError as exc:
                ready["error"] = exc
                started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            loop.close()

        self._thread = threading.Thread(target=serve, name="speech2vid-webrtc", daemon=True)
        self._thread.start()
        started.wait()
        if "error" in ready:
            o = self.options
            raise OutputError(
                f"cannot serve webrtc://{o.host}:{o.port} ({ready['error'].strerror or ready['error']}): "
                "the port is in use or the address is not this machine's; choose another, e.g. webrtc://127.0.0.1:8090"
            )
        log.info("webrtc: the avatar is on %s (at most %d viewers)", self.options.url, self.options.viewers)

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._loop = self._thread = None

    def on_microphone(self, listener: Callable[[Any, float], None] | None) -> None:
        """``listener(frame, arrival)`` gets each audio frame (an ``av.AudioFrame``) of the speaking viewer's
        microphone, on the server's thread, with its arrival time (monotonic s)."""
        self._mic = listener

    @property
    def viewers(self) -> int:
        return len(self._viewers)

    def publish(self, k: int, image: np.ndarray, pcm: np.ndarray) -> None:
        """Slot ``k``'s frame (H, W, 3) uint8 and its audio (int16 16 kHz mono) to every viewer; never blocks."""
        loop = self._loop
        if loop is None or not self._viewers:
            return
        with self._lock:  # a loop that falls behind holds at most VIDEO_QUEUE slots, not all that come
            if self._pending >= VIDEO_QUEUE:
                self.overrun += 1
                return
            self._pending += 1
        loop.call_soon_threadsafe(self._publish, k, image, pcm)

    # -- on the server's loop

    def _publish(self, k: int, image: np.ndarray, pcm: np.ndarray) -> None:
        import av

        with self._lock:
            self._pending -= 1
        video = av.VideoFrame.from_ndarray(image, format="rgb24")
        video.pts, video.time_base = k * (VIDEO_CLOCK // FPS), fractions.Fraction(1, VIDEO_CLOCK)
        audio = None
        if pcm.size:
            audio = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
            audio.sample_rate, audio.time_base = SAMPLE_RATE, fractions.Fraction(1, SAMPLE_RATE)
            audio.pts = k * SAMPLES_PER_FRAME
        for viewer in self._viewers.values():
            if viewer.connected:
                viewer.video.put(video)
                if audio is not None:
                    viewer.audio.put(audio)

    async def _bind(self) -> None:
        from aiohttp import web

        app = web.Application(client_max_size=MAX_OFFER_BYTES)
        app.router.add_get("/", self._page)
        app.router.add_post("/offer", self._offer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.options.host, self.options.port).start()

    async def _shutdown(self) -> None:
        for viewer in list(self._viewers.values()):
            await viewer.pc.close()
        self._viewers.clear()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _page(self, request: Any) -> Any:
        from aiohttp import web

        html = resources.files("speech2vid.sinks").joinpath("webrtc_page.html").read_text(encoding="utf-8")
        return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})

    def _refuse(self, status: int, why: str, peer: str) -> Any:
        from aiohttp import web

        self.refused += 1
        log.warning("webrtc: refused an offer from %s: %s", peer, why)
        return web.json_response({"error": why}, status=status)

    async def _offer(self, request: Any) -> Any:
        from aiohttp import web
        from aiortc import RTCPeerConnection, RTCSessionDescription

        peer = request.remote or "?"
        if len(self._viewers) >= self.options.viewers:
            return self._refuse(503, f"too many viewers (at most {self.options.viewers}: webrtc://...?viewers=N)", peer)
        try:
            body = await request.json()
            offer = RTCSessionDescription(sdp=str(body["sdp"]), type=str(body["type"]))
            if offer.type != "offer":
                raise ValueError(f"type is '{offer.type}', not 'offer'")
        except web.HTTPRequestEntityTooLarge:
            return self._refuse(413, f"the offer is larger than {MAX_OFFER_BYTES} bytes", peer)
        except (ValueError, KeyError, TypeError) as exc:
            return self._refuse(400, f"a malformed offer ({type(exc).__name__}: {str(exc)[:80]})", peer)
        self._count += 1
        number = self._count
        pc = RTCPeerConnection()
        viewer = _Viewer(number, pc, queued_track("video", VIDEO_QUEUE), queued_track("audio", AUDIO_QUEUE))
        self._viewers[number] = viewer

        @pc.on("connectionstatechange")  # type: ignore[misc]
        async def on_state() -> None:
            state = pc.connectionState
            if state == "connected" and not viewer.connected:
                viewer.connected = True
                log.info("webrtc: viewer %d connected (%s), %d watching", number, peer, len(self._viewers))
            elif state in ("failed", "closed"):
                await self._drop(viewer, state)

        @pc.on("track")  # type: ignore[misc]
        def on_track(track: Any) -> None:
            if track.kind == "audio":
                asyncio.ensure_future(self._listen(viewer, track))

        try:
            await pc.setRemoteDescription(offer)
            pc.addTrack(viewer.video)
            pc.addTrack(viewer.audio)
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # aiortc's SDP parser raises what it meets; the peer's fault, not ours
            await self._drop(viewer, "refused")
            return self._refuse(400, f"a malformed offer ({type(exc).__name__}: {str(exc)[:80]})", peer)
        asyncio.get_running_loop().call_later(self.connect_seconds, self._expire, viewer)
        answer = pc.localDescription
        return web.json_response({"sdp": answer.sdp, "type": answer.type})

    def _expire(self, viewer: _Viewer) -> None:
        if not viewer.connected and viewer.number in self._viewers:
            asyncio.ensure_future(self._drop(viewer, f"never connected within {self.connect_seconds:g} s"))

    async def _drop(self, viewer: _Viewer, why: str) -> None:
        if self._viewers.pop(viewer.number, None) is None:
            return
        if self._speaker == viewer.number:
            self._speaker = None
        dropped = viewer.video.dropped
        log.info(
            "webrtc: viewer %d left (%s; %d frames it was too slow for), %d watching",
            *(viewer.number, why, dropped, len(self._viewers)),
        )
        await viewer.pc.close()

    async def _listen(self, viewer: _Viewer, track: Any) -> None:
        """The viewer's microphone: to the listener while this viewer is the speaker."""
        from aiortc.mediastreams import MediaStreamError

        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if self._speaker is None and viewer.number in self._viewers:
                self._speaker = viewer.number
                log.info("webrtc: viewer %d is speaking (its microphone is the source)", viewer.number)
            listener = self._mic
            if self._speaker == viewer.number and listener is not None:
                listener(frame, time.monotonic())


# ----------------------------------------------------------------------------- the sink


class WebRTCSink(LiveSink):
    """Frames and their audio to every viewer of :class:`WebRTCServer`, slot by slot."""

    realtime = True

    def __init__(self, options: WebRTCOptions, label: str | None = None) -> None:
        self.options = options
        self.label = label
        self.server = WebRTCServer(options)
        self.server.start()
        self.description = f"webrtc {options.url}"
        self._audio = np.zeros(0, dtype=np.float32)  # captured samples not yet sent
        self._audio_start = 0  # absolute index of _audio[0]
        self.frames = 0

    def write_audio(self, samples: np.ndarray) -> None:
        self._audio = np.concatenate([self._audio, samples.astype(np.float32, copy=False)])

    def write(self, frame: np.ndarray, info: FrameInfo) -> None:
        from speech2vid.frames.render import watermark

        image = _video_frame(frame, self.options.size)
        if self.label:
            image = watermark(image, self.label)
        if self.options.stamp:
            image = stamp_slot(image, info.index)
        # everything heard up to the end of this slot leaves with it (a dropped slot's audio too)
        end = (info.index + 1) * SAMPLES_PER_FRAME - self._audio_start
        pcm = _pcm16(self._audio[: max(0, end)])
        self._audio = self._audio[max(0, end) :]
        self._audio_start += pcm.size
        self.server.publish(info.index, image, pcm)
        self.frames += 1

    def close(self, abort: bool = False) -> None:
        self.server.stop()
