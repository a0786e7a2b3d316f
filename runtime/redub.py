"""Re-dubbing (paper section 4.3): a source video + new speech -> the same video, lips following the speech.

Pass 1 (bounded): sample up to ``redub.identity_samples`` frames for the five identity faces (or check
that the video shows a face when ``--face`` photos are given). Pass 2 (streamed, frame by frame):

    source frame (plan: loop | trim | pingpong) -> face tracker (smoothed landmarks, registration)
      -> engine (MFCC window nearest the frame's time; batches, runtime.frame_pump) -> inverse warp + Poisson blend of
      the
      lower face -> VideoFileSink (source size and frame rate, new audio muxed)

Frame rates: the network is driven by 25 fps windows (features.windows); the output keeps the source
rate, and output frame ``j`` (time ``j / rate``) uses window ``round(25 j / rate)``, the 25 fps window
centred nearest to its time. At 25 fps this is the identity; at 30 fps some windows are shown twice,
which keeps every frame in sync with the audio to within 20 ms.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from speech2vid.audio.constants import SAMPLE_RATE
from speech2vid.audio.io import SpeechInfo, check_not_silent, scan_speech
from speech2vid.config import EncodeConfig, RedubConfig
from speech2vid.engine.talking_face import TalkingFaceEngine
from speech2vid.errors import FaceError
from speech2vid.faces import align_photo
from speech2vid.features.windows import FPS, n_frames_for
from speech2vid.frames.blend import crop_to_frame, paste_face, region_mask
from speech2vid.frames.render import to_uint8, watermark
from speech2vid.frames.rendered import face_rgb
from speech2vid.frames.strip import before_after_strip
from speech2vid.outputs import check_distinct
from speech2vid.runtime.face_track import FaceTracker, TrackedFace
from speech2vid.runtime.frame_pump import Batch, pump
from speech2vid.runtime.identity_frames import N_IDENTITY, check_has_face, identity_from_video
from speech2vid.runtime.prefetch import Prefetch
from speech2vid.runtime.speech_feed import SpeechFeed
from speech2vid.sinks.image_file import check_image_path, write_image
from speech2vid.sinks.video_file import VideoFileSink, check_output_path
from speech2vid.sources.video_file import SourceFrames, VideoInfo, fit_plan, probe_video
from speech2vid.stage_clock import StageClock

log = logging.getLogger("speech2vid.runtime.redub")

STRIP_TILES = 6  # frames shown in a before/after strip
TRACK_AHEAD = 2  # batches of frames decoded and tracked ahead of the blending (bounded memory)


@dataclass(frozen=True, eq=False)
class RedubInputs:
    """Everything read from the user's files, checked, before the slow pass starts."""

    video: VideoInfo
    audio: SpeechInfo  # scanned, not held: streamed into the windows (25 fps) and the output's audio track
    faces: list[np.ndarray]  # identity: aligned (112, 112, 3) uint8 RGB
    identity_frames: list[int]  # source frames the identity came from (empty for --face photos)
    output: Path
    n_output: int  # output frames at the source rate
    strip: Path | None = None  # before/after strip image to save (checked writable up front)


@dataclass(frozen=True)
class RedubResult:
    output: Path
    frames: int
    face_frames: int  # frames re-dubbed
    no_face_frames: int  # frames passed through unchanged (no face found)
    poisson_frames: int
    alpha_frames: int  # Poisson could not run (region at the border): feathered alpha instead
    fps: Fraction
    wall_seconds: float
    strip: Path | None = None
    stages: dict[str, float] = field(default_factory=dict)  # ms per frame of each stage (speech2vid.stage_clock)

    def summary(self) -> str:
        return (
            f"wrote {self.output} ({self.frames} frames at {float(self.fps):.3g} fps: {self.face_frames} re-dubbed "
            f"[{self.poisson_frames} Poisson, {self.alpha_frames} alpha], {self.no_face_frames} without a face "
            f"passed through; {self.frames / max(self.wall_seconds, 1e-9):.1f} frames/s)"
        )


def output_frames(n_samples_16k: int, rate: Fraction) -> int:
    """Output frames for the new audio at the source rate: ``round(rate * seconds)``, halves up, >= 1."""
    return max(1, math.floor(Fraction(n_samples_16k, SAMPLE_RATE) * rate + Fraction(1, 2)))


def window_for_frames(n_output: int, rate: Fraction, n_windows: int) -> np.ndarray:
    """Index of the 25 fps window nearest each output frame's time, int64 ``(n_output,)``."""
    j = np.arange(n_output, dtype=np.int64)
    k = (2 * j * FPS * rate.denominator + rate.numerator) // (2 * rate.numerator)  # round(j * 25 / rate), exact
    return np.minimum(k, n_windows - 1)


def prepare_redub(
    video: str | Path,
    audio: str | Path,
    output: str | Path,
    cfg: RedubConfig,
    *,
    faces: Sequence[str | Path] = (),
    face_index: int | None = None,
    allow_silence: bool = False,
    silence_threshold_dbfs: float = -60.0,
    strip: str | Path | None = None,
) -> RedubInputs:
    """Read and check every input (fast failures before the slow pass)."""
    if len(faces) > N_IDENTITY:
        raise FaceError(f"give at most {N_IDENTITY} identity photos (--face), got {len(faces)}")
    if face_index is not None and face_index < 0:
        raise FaceError(f"--face-index must be 0 (the largest face) or more, got {face_index}")
    out = check_output_path(output, inputs=[video, audio, *faces])
    strip_path = check_strip_path(strip, inputs=[video, audio, *faces]) if strip is not None else None
    check_distinct([("-o", out), ("--strip", strip_path)])
    info = probe_video(video)
    speech = scan_speech(audio)
    if not allow_silence:
        check_not_silent(speech, audio, silence_threshold_dbfs)
    if faces:
        identity = [align_photo(p, face_index=None).image for p in faces]
        frames: list[int] = []
        check_has_face(info, cfg.identity_samples, face_index)
    else:
        samples = identity_from_video(info, cfg.identity_samples, face_index)
        identity, frames = [s.image for s in samples], [s.frame for s in samples]
    return RedubInputs(info, speech, identity, frames, out, output_frames(speech.n_samples_16k, info.rate), strip_path)


@dataclass
class _Pending:
    """A decoded output frame waiting for its batch."""

    index: int
    source: np.ndarray  # (H, W, 3) uint8
    face: TrackedFace | None


class _Counts:
    def __init__(self) -> None:
        self.face = self.no_face = self.poisson = self.alpha = 0


def run_redub(
    engine: TalkingFaceEngine,
    inputs: RedubInputs,
    cfg: RedubConfig,
    encode: EncodeConfig,
    *,
    face_index: int | None = None,
    label: str | None = None,
    progress: bool = True,
    clock: StageClock | None = None,
) -> RedubResult:
    """Stream the source through the tracker, the engine and the blender into the output MP4 (atomic);
    ``clock`` collects where the time goes (``bench --pipeline``)."""
    from tqdm import tqdm

    start = time.perf_counter()
    clock = clock or StageClock()
    info = inputs.video
    engine.set_identity(inputs.faces)
    plan = fit_plan(info.frames, inputs.n_output, cfg.fit)
    if cfg.fit == "trim" and inputs.n_output > info.frames:
        log.warning(
            "the new audio is longer than the video: holding its last frame for %d frames (--fit trim)",
            inputs.n_output - info.frames,
        )
    windows_of = window_for_frames(inputs.n_output, info.rate, n_frames_for(inputs.audio.n_samples_16k))
    strip_at = set(np.linspace(0, inputs.n_output - 1, min(STRIP_TILES, inputs.n_output)).round().astype(int).tolist())
    strip_pairs: list[tuple[np.ndarray, np.ndarray]] = []
    tracker = FaceTracker(float(info.rate), cfg, face_index)
    counts = _Counts()
    sink = VideoFileSink(
        inputs.output,
        fps=info.rate,
        size=(info.width, info.height),
        audio_rate=inputs.audio.rate,
        audio_channels=inputs.audio.channels,
        **encode.codec_options(),
        clock=clock,
    )

    def batches(tracked: Iterator[_Pending]) -> Iterator[Batch[_Pending]]:
        """Batches of tracked source frames; every frame's window is read (in order), so the feed
        advances, and muxes the audio, with the video."""
        while batch := list(itertools.islice(tracked, cfg.batch)):
            with clock("features"):
                windows = feed.windows([windows_of[p.index] for p in batch])
            yield Batch(batch, windows, np.array([p.face is not None for p in batch]))

    def finish(p: _Pending, rendered: np.ndarray | None) -> None:
        """Blend the rendered face into its source frame and write it."""
        out = p.source
        if p.face is not None and rendered is not None:
            with clock("composite"):
                mask = region_mask(p.face.landmarks, p.face.transform, cfg.region, cfg.below_eyes)
                out, method = paste_face(
                    p.source,
                    to_uint8(face_rgb(rendered)),
                    mask,
                    crop_to_frame(p.face.transform),
                    method=cfg.blend,
                    feather=cfg.feather,
                )
        else:
            method = "no face"
        if method in ("poisson", "alpha"):
            counts.face += 1
            counts.poisson += method == "poisson"
            counts.alpha += method == "alpha"
        else:  # no face, or its region lies off the frame: the source frame as it is
            counts.no_face += 1
        if label:
            out = watermark(out, label)
        if p.index in strip_at:
            strip_pairs.append((p.source, out))
        with clock("encode"):
            sink.write(out)
        bar.update(1)

    bar = tqdm(total=inputs.n_output, unit="frame", desc="re-dubbing", disable=not progress, leave=False)
    try:
        with sink, SourceFrames(info) as source:
            feed = SpeechFeed(inputs.audio, sink.write_audio, engine.lookahead_columns)

            # The engine renders batch k while this thread blends batch k - 1 (the sink encodes on its own
            # thread) and a third decodes and tracks the frames after them.
            def tracked_frames() -> Iterator[_Pending]:
                for j, rgb in enumerate(clock.iterate(source.frames(plan), "decode")):
                    with clock("detect/track"):
                        face = tracker.track(rgb)
                    yield _Pending(j, rgb, face)

            with Prefetch(tracked_frames(), TRACK_AHEAD * cfg.batch) as tracked:
                for pending, rendered in clock.iterate(
                    pump(engine, batches(clock.iterate(tracked, "waiting for tracking"))), "engine"
                ):
                    finish(pending, rendered)
            feed.finish()  # the audio past the last frame's window, for the muxed track
            # Before the sink closes: should the strip fail, the video is discarded too, not left looking done.
            strip_path = write_strip(inputs.strip, strip_pairs) if inputs.strip is not None and strip_pairs else None
    finally:
        bar.close()
    result = RedubResult(
        inputs.output,
        sink.frames_written,
        counts.face,
        counts.no_face,
        counts.poisson,
        counts.alpha,
        info.rate,
        time.perf_counter() - start,
        strip_path,
        clock.per_frame_ms(sink.frames_written),
    )
    log.debug(
        "face detector ran on %d of %d frames; landmark filter restarted %d times (lost faces, cuts)",
        tracker.detections,
        sink.frames_written,
        tracker.resets,
    )
    return result


def check_strip_path(path: str | Path, inputs: Sequence[str | Path] = ()) -> Path:
    """Fail before any work is done when the strip image cannot be written (the one output rule)."""
    return check_image_path(path, option="--strip", description="the strip image", inputs=inputs)


def write_strip(path: Path, pairs: list[tuple[np.ndarray, np.ndarray]]) -> Path:
    """Save a before/after strip (PNG, or what the extension says), written to a temporary name then renamed."""
    return write_image(path, before_after_strip(pairs), "the strip image")
