"""The avatar as a Python object for voice agents: audio chunks in, timed frames out.

``speech2vid.Avatar(face="me.jpg")`` opens the same engine and takes the same steps as ``generate``
(16 kHz resampling, streaming MFCC windows, the speech gate, the photo composite), but the audio arrives
in chunks of any size and sample rate, as a text-to-speech or a WebRTC track delivers it::

    with speech2vid.Avatar(face="me.jpg") as avatar:
        for pcm in tts_chunks():                     # float32 or int16, mono or (n, channels)
            for frame in avatar.push(pcm, 22050):
                show(frame.image, at=frame.pts)
        for frame in avatar.end_of_speech():          # the last frames; the mouth closes
            show(frame.image, at=frame.pts)
        for frame in avatar.idle(25):                 # one second of the idle face
            show(frame.image, at=frame.pts)

A frame is ready once the audio ``Avatar.latency_seconds`` past its time has been pushed (the model's
look-ahead). ``Avatar.stream`` does the same over an async iterable of chunks, the engine off the event loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterable, AsyncIterator, Sequence

import numpy as np

from speech2vid.audio.io import MIN_SAMPLE_RATE, Audio, ModelRateStream
from speech2vid.errors import UserError
from speech2vid.features.vad import is_silent
from speech2vid.features.windows import FPS, SAMPLES_PER_FRAME, StreamingWindows, lookahead_seconds
from speech2vid.runtime.idle_face import idle_face
from speech2vid.runtime.offline import speech_gate

MAX_CHUNK_SECONDS = 600  # one push at most: longer audio goes in several (memory stays bounded)
MAX_RATE = 384000  # Hz: the highest rate audio interfaces run at


@dataclass(frozen=True, eq=False)
class Frame:
    """One video frame of the avatar.

    Attributes:
        index: frame number since the avatar opened (25 per second, no gaps).
        pts: presentation time in seconds, ``index / 25``: the time of the audio it shows.
        image: (H, W, 3) uint8 RGB.
        audio_16k: float32 (640,): the speech this frame covers, [pts, pts + 40 ms), at 16 kHz mono.
        speech: whether the network rendered it (False: the still or idle face of a pause or silence).
    """

    index: int
    pts: float
    image: np.ndarray
    audio_16k: np.ndarray
    speech: bool


class Avatar:
    """A talking face driven by pushed audio; see the module docstring.

    Args:
        face: the photo (or up to five photos of the same person).
        weights: model weights (default: the bundled ones); ``model``: ``lite`` (default) or a model YAML.
        precision, backend, device: the engine, as ``generate --precision/--backend/--device``.
        config: YAML files laid over ``configs/default.yaml`` (its ``generate:`` and ``vad:`` sections apply).
        idle: ``still`` (default from the config), ``alive`` (blinks and sway in pauses) or ``off``.
    """

    def __init__(
        self,
        face: str | Path | Sequence[str | Path],
        *,
        weights: str | Path | None = None,
        model: str | None = None,
        precision: str | None = None,
        backend: str | None = None,
        device: str | None = None,
        config: Sequence[str | Path] = (),
        idle: str | None = None,
    ) -> None:
        from speech2vid.build_engines.build import ready_engine
        from speech2vid.config import load_model_config, load_settings
        from speech2vid.model.ref import model_ref
        from speech2vid.runtime.avatar import photo_inputs

        overrides: dict[str, Any] = {}
        engine = {
            k: v for k, v in (("precision", precision), ("backend", backend), ("device", device)) if v is not None
        }
        if engine:
            overrides["engine"] = engine
        if model is not None:
            overrides["model"] = model
        if weights is not None:
            overrides["weights"] = str(weights)
        if idle is not None:
            overrides["generate"] = {"idle": idle}
        self.settings = settings = load_settings(*config, overrides=overrides)
        gen = settings.generate
        photos = [face] if isinstance(face, (str, Path)) else list(face)
        self._photo = photo_inputs(photos, compose=gen.compose, max_side=gen.photo_max_side, rest_mouth=gen.rest_mouth)
        self.ref = model_ref(load_model_config(settings.model), settings.weights)
        self.engine = ready_engine(self.ref, settings.engine).open()
        try:
            self.engine.set_identity(self._photo.faces)
            gating = gen.idle != "off" and settings.vad.detector == "silero"
            self._idle = idle_face(self.engine.render_faces, gen.idle, gating=gating)
        except BaseException:
            self.engine.close()
            raise
        self._resampler: ModelRateStream | None = None
        self._index = 0  # the next frame's number
        self._audio = np.zeros(0, np.float32)  # 16 kHz audio of the frames not yet made
        self._start_utterance()

    # ------------------------------------------------------------------ public

    @property
    def latency_seconds(self) -> float:
        """Audio needed past a frame's time before it can be made (the model's look-ahead)."""
        return lookahead_seconds(self.engine.lookahead_columns)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames."""
        canvas = self._photo.canvas
        side = self.settings.generate.output_size
        return canvas.size if canvas is not None else (side, side)

    def push(self, pcm: np.ndarray, sample_rate: int) -> list[Frame]:
        """Add speech: float (-1..1) or int16 samples, ``(n,)`` or ``(n, channels)``, at ``sample_rate``.
        Returns the frames that this audio completes (possibly none: the look-ahead is not heard yet)."""
        samples = _as_float(pcm)
        if not MIN_SAMPLE_RATE <= int(sample_rate) <= MAX_RATE:
            raise UserError(f"sample_rate must be within {MIN_SAMPLE_RATE}..{MAX_RATE} Hz, got {sample_rate}")
        if samples.shape[0] > MAX_CHUNK_SECONDS * sample_rate:
            raise UserError(f"push at most {MAX_CHUNK_SECONDS} s at a time, got {samples.shape[0] / sample_rate:.0f} s")
        frames: list[Frame] = []
        if self._resampler is not None and self._resampler.rate != int(sample_rate):  # the rate changed mid-utterance
            frames += self._feed(self._resampler.finish())
        if self._resampler is None or self._resampler.rate != int(sample_rate):
            self._resampler = ModelRateStream(int(sample_rate))
        return frames + self._feed(self._resampler.push(Audio(samples, int(sample_rate))))

    def end_of_speech(self) -> list[Frame]:
        """The utterance is over: the frames still waiting for look-ahead audio are made (their future is
        silence), so the mouth closes. Speech pushed afterwards starts on the next frame."""
        tail = self._resampler.finish() if self._resampler is not None else np.zeros(0, np.float32)
        frames = self._feed(tail)
        pad = (-self._pushed) % SAMPLES_PER_FRAME  # the utterance ends on a frame boundary
        frames += self._feed(np.zeros(pad, np.float32))
        final = self._windows.flush()
        if self._gate is not None:
            self._gate.flush_audio()
            final = self._gate.gate(final, final=True)
        frames += self._frames(final[: self._pushed // SAMPLES_PER_FRAME - self._made])
        self._audio = np.zeros(0, np.float32)
        self._start_utterance()
        return frames

    def idle(self, count: int = 1) -> list[Frame]:
        """``count`` frames of the face with nobody speaking (the still face; blinks and sway with ``idle: alive``)."""
        if count < 0:
            raise UserError(f"count must be >= 0, got {count}")
        return [self._frame(self._idle.still, False, np.zeros(SAMPLES_PER_FRAME, np.float32)) for _ in range(count)]

    async def stream(self, chunks: AsyncIterable[tuple[np.ndarray, int]]) -> AsyncIterator[Frame]:
        """Frames of ``(pcm, sample_rate)`` chunks as they arrive, then :meth:`end_of_speech`'s; the engine
        runs in a worker thread, so the event loop stays free."""
        async for pcm, rate in chunks:
            for frame in await asyncio.to_thread(self.push, pcm, rate):
                yield frame
        for frame in await asyncio.to_thread(self.end_of_speech):
            yield frame

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> Avatar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the pipeline

    def _start_utterance(self) -> None:
        lookahead = self.engine.lookahead_columns
        self._windows = StreamingWindows(lookahead_columns=lookahead)
        self._gate = speech_gate(self.settings.vad, lookahead) if self._idle.gating else None
        self._resampler = None
        self._pushed = 0  # 16 kHz samples of this utterance
        self._made = 0  # frames of this utterance

    def _feed(self, mono16: np.ndarray) -> list[Frame]:
        if not mono16.size:
            return []
        self._pushed += mono16.size
        self._audio = np.concatenate([self._audio, mono16])
        windows = self._windows.push(mono16)
        if self._gate is not None:
            self._gate.push_audio(mono16)
            windows = self._gate.gate(windows)
        return self._frames(windows)

    def _frames(self, windows: np.ndarray) -> list[Frame]:
        if not len(windows):
            return []
        silent = is_silent(windows, self._idle.silence) if self._idle.gating else np.zeros(len(windows), bool)
        rendered = iter(self.engine.render_faces(np.ascontiguousarray(windows[~silent])) if (~silent).any() else ())
        frames = []
        for quiet in silent:
            audio = self._audio[:SAMPLES_PER_FRAME]
            self._audio = self._audio[SAMPLES_PER_FRAME:]
            audio = np.pad(audio, (0, SAMPLES_PER_FRAME - audio.size))
            frames.append(self._frame(self._idle.still if quiet else next(rendered), not quiet, audio))
            self._made += 1
        return frames

    def _frame(self, face: np.ndarray, speech: bool, audio: np.ndarray) -> Frame:
        from speech2vid.frames.idle import animate
        from speech2vid.frames.render import video_frame
        from speech2vid.frames.rendered import face_rgb
        from speech2vid.runtime.offline import photo_frame

        canvas, eyes = self._photo.canvas, self._photo.eyes or ()
        if canvas is not None:
            image = photo_frame(canvas, face, self._idle.animator, not speech, eyes, None)
        else:
            rgb = face_rgb(face)
            if self._idle.animator is not None:
                rgb = animate(rgb, self._idle.animator.step(not speech), eyes)
            image = video_frame(rgb, self.settings.generate.output_size)
        frame = Frame(self._index, self._index / FPS, image, audio, speech)
        self._index += 1
        return frame


def _as_float(pcm: np.ndarray) -> np.ndarray:
    """(n, channels) float32 in [-1, 1] from float or int16 samples, (n,) or (n, channels)."""
    x = np.asarray(pcm)
    if x.dtype == np.int16:
        x = x.astype(np.float32) / 32768.0
    elif not np.issubdtype(x.dtype, np.floating):
        raise UserError(f"pcm must be float (-1..1) or int16 samples, got {x.dtype}")
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] < 1:
        raise UserError(f"pcm must be (samples,) or (samples, channels), got shape {x.shape}")
    x = np.asarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise UserError("pcm holds NaN or infinite samples")
    clipped: np.ndarray = np.clip(x, -1.0, 1.0)
    return clipped
