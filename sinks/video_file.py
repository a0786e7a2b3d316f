"""MP4 output: H.264 video with the speech muxed in as AAC, written atomically.

Frames go to a hidden temporary file beside the target, which is renamed onto the target only when
the container is complete. Any error or interrupt deletes the temporary file, so a partial video never
looks like a finished one. Audio is encoded alongside the video (interleaved), up to each frame's end
time, so players and streaming readers find both tracks in step.

Audio can also arrive as it is decoded or captured: ``audio_rate`` (and ``audio_channels``; live
capture says ``live_audio_rate=16000``) opens a track that :meth:`VideoFileSink.write_audio` appends to;
audio sample ``n`` plays at ``n / rate`` s and video frame ``k`` at ``k / fps`` s, both from zero, so the
tracks stay in sync by construction. Samples are dropped once encoded, so memory does not grow with
the length of the audio.

Encoding runs on a thread of its own (:class:`EncodeThread`): x264 at the offline preset costs about
30 ms a 640x480 frame here, as much as tracking and blending it, and PyAV releases the GIL while it
encodes, so the caller prepares the next frame meanwhile. The calls reach FFmpeg in the same order
as without the thread: the same frames and samples, usually the same file byte for byte (x264's own
thread count, which follows the CPUs the calling thread may use, can change its last bits).

H.264 at 4:2:0, what players take, stores colour at half resolution in both directions and so needs an
even width and height. A frame with an odd side (a 511x383 source being re-dubbed) is padded by one
column or row that repeats its last one, not cropped, so every pixel of the source is kept in place;
the file is then one pixel wider or taller, which a warning says.

AAC takes a fixed table of sample rates (8 kHz to 96 kHz, and 7350 Hz). Audio at another rate (4 kHz,
6 kHz) is resampled with soxr to the next rate the encoder takes, at or above its own, so nothing
is lost; audio above the table's top is brought down to its top.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from speech2vid.audio.io import Audio
from speech2vid.errors import OutputError
from speech2vid.files import partial_path
from speech2vid.frames.yuv import rgb_to_i420
from speech2vid.outputs import check_output, is_write_error, write_failed
from speech2vid.partials import remove_stale_partials
from speech2vid.stage_clock import StageClock

log = logging.getLogger("speech2vid.sinks.video_file")

AAC_MAX_CHANNELS = 2
MIN_TRACK_RATE = 8000  # Hz: the lowest rate in common use; AAC's 7350 Hz is legal but rare
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov")  # the MP4 family: H.264 video with AAC audio
ENCODE_QUEUE = 8  # frames waiting for the encoder at most (bounded memory: 8 x a frame)


class EncodeThread:
    """Runs jobs (encode-and-mux calls) one at a time, in order, on one thread.

    A job that fails stops the rest from running; the error is raised to the caller by the next
    :meth:`submit` or by :meth:`finish`. The queue is bounded, so a slow encoder slows the caller down
    instead of holding frames without limit.
    """

    def __init__(self, maxsize: int = ENCODE_QUEUE) -> None:
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize)
        self._error: BaseException | None = None
        self._cancelled = False
        self._thread = threading.Thread(target=self._run, name="speech2vid-encode", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if self._error is None and not self._cancelled:  # keep taking jobs, so submit() never blocks forever
                try:
                    job()
                except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                    self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, job: Callable[[], None]) -> None:
        self._raise()
        if not self._thread.is_alive():
            raise RuntimeError("the encoder thread has finished: nothing more can be written")
        self._jobs.put(job)

    def finish(self, *, cancel: bool = False) -> None:
        """Wait for the queued jobs (skipped with ``cancel``) and stop the thread; raise a job's error."""
        if self._thread.is_alive():
            self._cancelled = cancel
            self._jobs.put(None)
            self._thread.join()
        if not cancel:
            self._raise()


def check_output_path(path: str | Path, inputs: Sequence[str | Path] = (), what: str = "output") -> Path:
    """Fail before any work is done when the video cannot be written, or would replace one of ``inputs``
    (the one output rule: :func:`speech2vid.outputs.check_output`)."""
    return check_output(path, what=what, inputs=inputs, suffixes=VIDEO_SUFFIXES)


def even_size(size: tuple[int, int]) -> tuple[int, int]:
    """``(width, height)`` rounded up to even numbers, as H.264 at 4:2:0 needs."""
    w, h = size
    return w + w % 2, h + h % 2


def pad_to(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An (H, W, 3) frame padded at the right and bottom to ``size`` (width, height) by repeating its
    last column and row; the frame itself when it has that size already."""
    h, w = rgb.shape[:2]
    if (w, h) == size:
        return rgb
    return np.pad(rgb, ((0, size[1] - h), (0, size[0] - w), (0, 0)), mode="edge")


def track_rate(rate: int, accepted: Sequence[int] | None) -> int:
    """The sample rate to encode audio of ``rate`` Hz at, given the encoder's ``accepted`` rates (None: any).

    ``rate`` itself when accepted; else the lowest accepted rate at or above both ``rate`` and
    :data:`MIN_TRACK_RATE` (resampling up loses nothing); else, above the encoder's range, its highest.
    """
    if not accepted or rate in accepted:
        return rate
    above = [r for r in accepted if r >= max(rate, MIN_TRACK_RATE)]
    return min(above) if above else max(accepted)


class VideoFileSink:
    """``write(frame)`` RGB uint8 (H, W, 3) frames; ``close()`` finishes and renames; ``abort()`` discards."""

    def __init__(
        self,
        path: str | Path,
        *,
        fps: int | Fraction,
        size: tuple[int, int],
        audio: Audio | None = None,
        video_codec: str = "libx264",
        crf: int = 18,
        preset: str = "medium",
        audio_codec: str = "aac",
        audio_bitrate: int = 128_000,
        live_audio_rate: int | None = None,
        audio_rate: int | None = None,
        audio_channels: int = 1,
        clock: StageClock | None = None,
    ):
        import av

        self.path = check_output_path(path)
        remove_stale_partials(self.path.parent if str(self.path.parent) else Path("."))
        self.tmp = partial_path(self.path, self.path.suffix)
        self.fps = fps
        self._rate = Fraction(fps)  # exact, also for 30000/1001 (NTSC) sources being re-dubbed
        self.width, self.height = size
        self.encoded_size = even_size(size)  # (width, height) in the file: odd sides padded by one
        if self.encoded_size != (self.width, self.height):
            log.warning(
                "%dx%d frames have an odd side, which H.264 (4:2:0) cannot store: writing %dx%d "
                "(the last column or row repeated)",
                self.width,
                self.height,
                *self.encoded_size,
            )
        self.frames_written = 0
        streamed = audio_rate if audio_rate is not None else live_audio_rate
        if audio is not None and streamed is not None:
            raise ValueError("give either the whole audio or audio_rate for write_audio(), not both")
        if audio is not None:
            streamed, audio_channels = audio.rate, audio.channels
        elif live_audio_rate is not None:
            audio_channels = 1
        self._audio_pos = 0  # samples of the audio track already sent to the encoder
        self._audio_base = 0  # track index of _audio_samples[:, 0] (what is encoded is dropped)
        self._audio_rate = streamed  # of the track; audio arrives at ``streamed`` and is resampled when they differ
        self._audio_channels = min(audio_channels, AAC_MAX_CHANNELS)
        self._resampler: Any = None
        self._clock = clock  # where the encoder's time goes (bench --pipeline): its thread, and the final mux
        self._encoder = EncodeThread()
        try:
            self._container = av.open(str(self.tmp), mode="w", format="mp4")
            video = self._container.add_stream(video_codec, rate=fps)
            if not isinstance(video, av.video.stream.VideoStream):
                raise ValueError(f"{video_codec} is not a video codec")
            self._video = video
            self._video.width, self._video.height = self.encoded_size
            self._video.pix_fmt = "yuv420p"
            self._video.options = {"crf": str(crf), "preset": preset}
            self._video.codec_context.time_base = 1 / self._rate
            self._audio_stream: av.audio.stream.AudioStream | None = None
            if streamed is not None:
                self._audio_rate = track_rate(streamed, av.codec.Codec(audio_codec, "w").audio_rates)
                if self._audio_rate != streamed:
                    import soxr

                    log.info(
                        "audio at %d Hz, which %s does not take: resampled to %d Hz",
                        streamed,
                        audio_codec,
                        self._audio_rate,
                    )
                    self._resampler = soxr.ResampleStream(
                        streamed, self._audio_rate, self._audio_channels, dtype="float32", quality="HQ"
                    )
                layout = "mono" if self._audio_channels == 1 else "stereo"
                sound = self._container.add_stream(audio_codec, rate=self._audio_rate, layout=layout)
                if not isinstance(sound, av.audio.stream.AudioStream):
                    raise ValueError(f"{audio_codec} is not an audio codec")
                sound.bit_rate = audio_bitrate
                self._audio_stream = sound
                self._audio_samples = np.zeros((self._audio_channels, 0), dtype=np.float32)
        except (av.FFmpegError, ValueError) as exc:
            self._discard()
            raise OutputError(f"cannot start writing {self.path}: {exc}".replace("\n", " ")) from None
        if audio is not None:
            self.write_audio(audio.samples)

    @staticmethod
    def _planar(samples: np.ndarray) -> np.ndarray:
        """``(n,)`` or ``(n, channels)`` -> ``(channels <= 2, n)`` float32; more than two channels are mixed
        down to stereo."""
        x = np.asarray(samples, dtype=np.float32)
        x = x.reshape(-1, 1) if x.ndim == 1 else x
        if x.shape[1] > AAC_MAX_CHANNELS:
            x = np.stack([x[:, 0::2].mean(axis=1), x[:, 1::2].mean(axis=1)], axis=1)
        return np.ascontiguousarray(np.clip(x, -1.0, 1.0).T)

    def _encode_audio_until(self, end_sample: int) -> None:
        import av

        if self._audio_stream is None or self._audio_rate is None:
            return
        end = min(end_sample, self._audio_base + self._audio_samples.shape[1])
        if end <= self._audio_pos:
            return
        chunk = np.ascontiguousarray(
            self._audio_samples[:, self._audio_pos - self._audio_base : end - self._audio_base]
        )
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono" if chunk.shape[0] == 1 else "stereo")
        frame.sample_rate = self._audio_rate
        frame.pts = self._audio_pos
        frame.time_base = Fraction(1, self._audio_rate)
        self._audio_pos = end
        # Keep only what is not encoded yet, so memory stays flat however long the audio is.
        self._audio_samples = self._audio_samples[:, end - self._audio_base :]
        self._audio_base = end
        self._encode(self._audio_stream, frame)

    def _encode(self, stream: Any, frame: Any) -> None:
        """Encode ``frame`` on ``stream`` and mux its packets, on the encoder thread."""
        container, clock = self._container, self._clock

        def job() -> None:
            for packet in stream.encode(frame):
                container.mux(packet)

        if clock is None:
            self._encoder.submit(job)
        else:

            def timed() -> None:
                with clock("x264 (thread)"):
                    job()

            self._encoder.submit(timed)

    def write(self, rgb: np.ndarray) -> None:
        import av

        # Converted here to the encoder's 4:2:0 planes (a new array: the caller may reuse ``rgb``): OpenCV does it
        # in one pass where swscale, given RGB, takes several times as long at 720p and above.
        self._write_frame(av.VideoFrame.from_ndarray(rgb_to_i420(pad_to(rgb, self.encoded_size)), format="yuv420p"))

    def write_i420(self, planes: np.ndarray) -> None:
        """Append a frame given as its I420 planes, ``(H * 3 / 2, W)`` uint8 at the encoded size
        (:mod:`speech2vid.frames.yuv`): no conversion here; ``planes`` must not be changed afterwards."""
        import av

        w, h = self.encoded_size
        if planes.shape != (h * 3 // 2, w) or planes.dtype != np.uint8:
            raise ValueError(
                f"I420 planes of a {w}x{h} frame are ({h * 3 // 2}, {w}) uint8, got {planes.shape} {planes.dtype}"
            )
        self._write_frame(av.VideoFrame.from_ndarray(planes, format="yuv420p"))

    def _write_frame(self, frame: Any) -> None:
        frame.pts = self.frames_written
        try:
            self._encode(self._video, frame)
            self.frames_written += 1
            if self._audio_rate is not None:
                self._encode_audio_until(int(self.frames_written * self._audio_rate / self._rate))
        except OSError as exc:
            self._raise_write_error(exc)
            raise

    def _raise_write_error(self, exc: OSError) -> None:
        """A full disk or a vanished folder while writing: the partial file is removed and the error is one
        line naming the output (the one output rule); other OS errors are left as they are."""
        if is_write_error(exc):
            self._discard()
            raise write_failed(self.path, exc) from None

    def write_audio(self, samples: np.ndarray) -> None:
        """Append float32 samples, ``(n,)`` mono or ``(n, channels)``, to the audio track; they are
        encoded as the video frames catch up with them."""
        if self._audio_stream is None:
            raise ValueError("write_audio() needs a sink opened with audio_rate (or live_audio_rate)")
        chunk = self._planar(samples)
        if chunk.shape[0] != self._audio_channels:
            raise ValueError(f"write_audio() got {chunk.shape[0]} channels, the track has {self._audio_channels}")
        self._append_audio(chunk)

    def _append_audio(self, chunk: np.ndarray, last: bool = False) -> None:
        """Queue ``(channels, n)`` samples at the input rate for the track, resampled when it has another rate."""
        if self._resampler is not None:
            out = self._resampler.resample_chunk(np.ascontiguousarray(chunk.T), last=last)
            chunk = np.clip(np.asarray(out, dtype=np.float32).reshape(-1, self._audio_channels).T, -1.0, 1.0)
        self._audio_samples = np.concatenate((self._audio_samples, chunk), axis=1)

    def close(self) -> Path:
        """Flush both encoders, finish the container and move it onto the target name."""
        try:
            if self._audio_stream is not None:
                if self._resampler is not None:  # the resampler's delayed tail
                    self._append_audio(np.zeros((self._audio_channels, 0), np.float32), last=True)
                self._encode_audio_until(self._audio_base + self._audio_samples.shape[1])
            self._encoder.finish()  # from here on this thread alone touches the container
            with self._clock("mux") if self._clock is not None else contextlib.nullcontext():
                if self._audio_stream is not None:
                    for packet in self._audio_stream.encode(None):
                        self._container.mux(packet)
                for packet in self._video.encode(None):
                    self._container.mux(packet)
                self._container.close()
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self._raise_write_error(exc)
            self._discard()
            raise
        except BaseException:
            self._discard()
            raise
        log.info(
            "wrote %s: %d frames of %dx%d at %.3g fps, %.1f kB",
            self.path,
            self.frames_written,
            *self.encoded_size,
            float(self.fps),
            self.path.stat().st_size / 1e3,
        )
        return self.path

    def _discard(self) -> None:
        encoder = getattr(self, "_encoder", None)
        if encoder is not None:
            encoder.finish(cancel=True)
        container = getattr(self, "_container", None)
        if container is not None:
            try:
                container.close()
            except Exception:  # the file is deleted next; a close error changes nothing
                pass
        self.tmp.unlink(missing_ok=True)

    def abort(self) -> None:
        """Discard everything written so far; the target path is left untouched."""
        self._discard()

    def __enter__(self) -> "VideoFileSink":
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
