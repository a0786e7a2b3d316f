"""Offline generation: a face photo + a speech file -> an MP4 of that face speaking.

audio file -> 16 kHz MFCC windows (one per video frame) -> engine (identity once, frames in batches,
double-buffered so encoding batch k overlaps inference of batch k+1) -> frames -> MP4 with the audio.
Every input is read and checked before the slow work starts, so a bad input fails in a second. The
audio is then streamed (:class:`~speech2vid.runtime.speech_feed.SpeechFeed`): memory does not depend
on its length.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from speech2vid.audio.io import SpeechInfo, check_not_silent, scan_speech
from speech2vid.config import EncodeConfig, GenerateConfig, VadConfig
from speech2vid.engine.talking_face import TalkingFaceEngine
from speech2vid.errors import UserError
from speech2vid.features.pauses import PauseParams
from speech2vid.features.vad import GateParams, WindowGate, is_silent
from speech2vid.features.windows import FPS, n_frames_for
from speech2vid.frames.idle import EyeBox, IdleAnimator, animate
from speech2vid.frames.photo_canvas import PhotoCanvas, compose_on_photo, compose_region
from speech2vid.frames.render import to_uint8, video_frame, watermark
from speech2vid.frames.rendered import face_rgb
from speech2vid.frames.yuv import I420Photo
from speech2vid.runtime.avatar import photo_inputs
from speech2vid.runtime.frame_pump import Batch, pump
from speech2vid.runtime.idle_face import idle_face
from speech2vid.runtime.speech_feed import SpeechFeed
from speech2vid.sinks.video_file import VideoFileSink, check_output_path
from speech2vid.stage_clock import StageClock

log = logging.getLogger("speech2vid.runtime.offline")

MAX_FACES = 5


@dataclass(frozen=True)
class Inputs:
    """Everything read from the user's files, checked and ready for the engine."""

    audio: SpeechInfo  # scanned, not held: streamed into the windows and the output's audio track
    faces: list[np.ndarray]  # aligned (112, 112, 3) uint8 RGB
    output: Path
    eyes: tuple[EyeBox, ...] | None = None  # the first photo's eyes in output-frame coordinates (idle blinks)
    canvas: PhotoCanvas | None = None  # compose photo: the first photo, at its resolution, receives the faces

    @property
    def n_frames(self) -> int:
        """Video frames: one per 40 ms of audio (:func:`~speech2vid.features.windows.n_frames_for`)."""
        return n_frames_for(self.audio.n_samples_16k)


@dataclass(frozen=True)
class GenerateResult:
    output: Path
    frames: int
    audio_seconds: float
    wall_seconds: float
    stages: dict[str, float] = field(default_factory=dict)  # ms per frame of each stage (speech2vid.stage_clock)

    @property
    def fps(self) -> float:
        return self.frames / self.wall_seconds if self.wall_seconds > 0 else float("inf")


def prepare_inputs(
    faces: Sequence[str | Path],
    audio: str | Path,
    output: str | Path,
    *,
    aligned: bool = False,
    face_index: int | None = None,
    allow_silence: bool = False,
    silence_threshold_dbfs: float = -60.0,
    compose: str = "photo",
    photo_max_side: int = 1280,
    rest_mouth: bool = False,
) -> Inputs:
    """Read and check every input. ``compose="photo"`` (not for ``aligned`` crops) keeps the first photo,
    at most ``photo_max_side`` px, as the output frame that receives the generated lower faces."""
    if not 1 <= len(faces) <= MAX_FACES:
        raise UserError(f"give 1 to {MAX_FACES} face photos (--face), got {len(faces)}")
    out = check_output_path(output, inputs=[*faces, audio])
    info = scan_speech(audio)
    if not allow_silence:
        check_not_silent(info, audio, silence_threshold_dbfs)
    photo = photo_inputs(
        faces, face_index=face_index, aligned=aligned, compose=compose, max_side=photo_max_side, rest_mouth=rest_mouth
    )
    return Inputs(info, photo.faces, out, photo.eyes, photo.canvas)


def render_video(
    engine: TalkingFaceEngine,
    inputs: Inputs,
    cfg: GenerateConfig,
    encode: EncodeConfig,
    *,
    label: str | None = None,
    progress: bool = True,
    vad: VadConfig | None = None,
    clock: StageClock | None = None,
) -> GenerateResult:
    """Run an opened engine over the prepared inputs and write the MP4 (atomically).

    With ``cfg.idle`` still or alive and ``vad.detector`` silero (the defaults), non-speech audio reaches
    the engine as silence, frames without speech show one still face, and ``alive`` adds blinks and sway
    (frames/idle.py), as ``speech2vid live`` does. ``clock`` collects where the time goes (``bench --pipeline``).
    """
    from tqdm import tqdm

    start = time.perf_counter()
    clock = clock or StageClock()
    engine.set_identity(inputs.faces)
    vad = vad or VadConfig()
    idle = idle_face(engine.render_faces, cfg.idle, gating=cfg.idle != "off" and vad.detector == "silero")
    gating, silence, still, animator = idle.gating, idle.silence, idle.still, idle.animator  # level: live-only
    gate = speech_gate(vad, engine.lookahead_columns) if gating else None
    eyes = inputs.eyes or ()
    n_frames = inputs.n_frames
    sink = VideoFileSink(
        inputs.output,
        fps=FPS,
        size=inputs.canvas.size if inputs.canvas is not None else (cfg.output_size, cfg.output_size),
        audio_rate=inputs.audio.rate,
        audio_channels=inputs.audio.channels,
        **encode.codec_options(),
        clock=clock,
    )
    # Only the region of the lower face changes between frames: it alone is converted and patched into
    # the photo's own I420 planes (frames/yuv.py). Idle sway moves the whole frame and a label is drawn
    # over it: those frames go the whole way.
    canvas = inputs.canvas
    planes = I420Photo(canvas.photo, canvas.x0, canvas.y0, canvas.x1, canvas.y1) if canvas is not None else None
    bar = tqdm(total=n_frames, unit="frame", desc="generating", disable=not progress, leave=False)
    try:
        with sink:
            feed = SpeechFeed(inputs.audio, sink.write_audio, engine.lookahead_columns, gate)

            def batches() -> Iterator[Batch[bool]]:
                """The windows of each batch of frames; with the gate, silent ones show the still face."""
                for first in range(0, n_frames, cfg.batch):
                    w = feed.windows(range(first, min(first + cfg.batch, n_frames)))
                    silent = is_silent(w, silence) if gating else np.zeros(len(w), dtype=bool)
                    yield Batch([bool(q) for q in silent], w, ~silent)

            for silent, rendered in clock.iterate(pump(engine, clock.iterate(batches(), "features")), "engine"):
                frame = still if rendered is None else rendered
                if canvas is not None and planes is not None and animator is None and not label:
                    with clock("composite"):
                        region = compose_region(canvas, frame)
                    with clock("encode"):
                        sink.write_i420(planes.frame(region))
                    bar.update(1)
                    continue
                with clock("composite"):
                    if canvas is not None:
                        image = photo_frame(canvas, frame, animator, silent, eyes, label)
                    elif animator is not None:
                        image = video_frame(
                            animate(face_rgb(frame), animator.step(silent), eyes), cfg.output_size, label
                        )
                    else:
                        image = video_frame(face_rgb(frame), cfg.output_size, label)
                with clock("encode"):
                    sink.write(image)
                bar.update(1)
            with clock("features"):
                feed.finish()  # the audio past the last frame's window, for the muxed track
    finally:
        bar.close()
    elapsed = time.perf_counter() - start
    result = GenerateResult(
        inputs.output, sink.frames_written, inputs.audio.duration, elapsed, clock.per_frame_ms(sink.frames_written)
    )
    log.info("%d frames in %.1f s (%.1f frames/s)", result.frames, elapsed, result.fps)
    return result


def speech_gate(vad: VadConfig, lookahead_columns: int) -> WindowGate:
    """The offline speech gate of ``vad`` (Silero VAD, hangover, pre-roll, pauses) for a model's windows."""
    return WindowGate(
        GateParams.from_ms(vad.threshold, vad.hangover_ms, vad.preroll_ms),
        lookahead_columns,
        pauses=PauseParams.from_db(vad.pause_below_db),
    )


def photo_frame(
    canvas: PhotoCanvas,
    face: np.ndarray,
    animator: IdleAnimator | None,
    silent: bool,
    eyes: tuple[EyeBox, ...],
    label: str | None,
) -> np.ndarray:
    """One output frame of ``compose: photo``: the generated lower face on the photo, idle motion on top."""
    out = compose_on_photo(canvas, face)
    if animator is not None:
        pose = animator.step(silent)
        if not pose.is_rest:
            # The pose's sway is in 109 px face units: scale it to the photo's face.
            moved = animate(out.astype(np.float32) / 255.0, pose.scaled(canvas.face_scale), eyes)
            out = to_uint8(moved)
    return watermark(out, label) if label else out
