"""The MP4 sink encodes on a thread of its own: the file must be what FFmpeg writes without one, and an
encoder error must reach the caller and leave no output behind."""

from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from speech2vid.sinks.video_file import EncodeThread, VideoFileSink

SIZE = (96, 64)
RATE = 16000


def _frames(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    base = rng.integers(0, 255, (SIZE[1], SIZE[0], 3), dtype=np.uint8)
    return [np.roll(base, 3 * k, axis=1) for k in range(n)]


def _tone(n: int) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * 220 * np.arange(n) / RATE)).astype(np.float32)


def _reference_mp4(path: Path, frames: list[np.ndarray], audio: np.ndarray) -> None:
    """The same calls in the caller's thread, straight through PyAV (the independent reference): each
    frame, then the audio up to that frame's end, then both encoders flushed."""
    with av.open(str(path), mode="w", format="mp4") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        video.options = {"crf": "18", "preset": "veryfast"}
        video.codec_context.time_base = Fraction(1, 25)
        sound = out.add_stream("aac", rate=RATE, layout="mono")
        sound.bit_rate = 128_000
        pos = 0
        for k, rgb in enumerate(frames):
            # 4:2:0 as the sink converts it (OpenCV's BT.601, frames/yuv.py; itself checked below)
            frame = av.VideoFrame.from_ndarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420), format="yuv420p")
            frame.pts = k
            for packet in video.encode(frame):
                out.mux(packet)
            end = min((k + 1) * RATE // 25, len(audio))
            if end > pos:
                chunk = av.AudioFrame.from_ndarray(audio[None, pos:end].copy(), format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts, chunk.time_base = RATE, pos, Fraction(1, RATE)
                pos = end
                for packet in sound.encode(chunk):
                    out.mux(packet)
        for packet in sound.encode(None):
            out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)


def _decoded(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with av.open(str(path)) as f:
        video = np.stack([fr.to_ndarray(format="rgb24") for fr in f.decode(video=0)])
    with av.open(str(path)) as f:
        audio = np.concatenate([fr.to_ndarray().reshape(-1) for fr in f.decode(audio=0)])
    return video, audio


def test_threaded_sink_writes_what_plain_pyav_writes(tmp_path: Path) -> None:
    """Usually the very same bytes (measured: identical files in most runs). Not asserted: x264 sizes its
    own thread pool from the CPUs the calling thread may use, and its output changes in the last bits
    with that count, which other libraries in the process can change (seen once in the full suite, 22
    bytes of 38 kB). What must hold: every frame and every audio sample of the reference, in order."""
    frames = _frames(30)
    audio = _tone(30 * RATE // 25)
    _reference_mp4(tmp_path / "reference.mp4", frames, audio)
    with VideoFileSink(tmp_path / "sink.mp4", fps=25, size=SIZE, preset="veryfast", audio_rate=RATE) as sink:
        sink.write_audio(audio)
        for rgb in frames:
            sink.write(rgb)
            rgb[:] = 0  # the caller may reuse its buffer at once: the sink copied the frame
    got_v, got_a = _decoded(tmp_path / "sink.mp4")
    want_v, want_a = _decoded(tmp_path / "reference.mp4")
    assert got_v.shape == want_v.shape == (30, SIZE[1], SIZE[0], 3)
    mse = np.mean((got_v.astype(np.float64) - want_v) ** 2)
    # the same pictures: two CRF 18 encodes of them with other x264 thread counts differ by about 45 dB
    # (44.8 seen in the full suite); a frame of zeros or its neighbour instead is under 10 dB
    assert mse == 0 or 10 * np.log10(255**2 / mse) > 38
    assert got_a.shape == want_a.shape
    np.testing.assert_allclose(got_a, want_a, atol=1e-3)


def test_encoder_error_reaches_the_caller_and_no_file_is_left(tmp_path: Path) -> None:
    out = tmp_path / "broken.mp4"
    sink = VideoFileSink(out, fps=25, size=SIZE, preset="veryfast")
    sink.write(_frames(1)[0])

    def fail() -> None:
        raise av.FFmpegError(28, "No space left on device")

    sink._encoder.submit(fail)  # what a full disk does to a mux call on the encoder thread
    with pytest.raises(av.FFmpegError):
        with sink:
            for rgb in _frames(50):
                sink.write(rgb)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # the partial file is gone too


def test_encode_thread_runs_jobs_in_order_and_stops_after_an_error() -> None:
    done: list[int] = []
    worker = EncodeThread(maxsize=2)
    for k in range(20):
        worker.submit(lambda k=k: done.append(k))
    worker.finish()
    assert done == list(range(20))

    ran: list[int] = []
    worker = EncodeThread(maxsize=2)
    gate = threading.Event()
    worker.submit(gate.wait)
    worker.submit(lambda: (_ for _ in ()).throw(ValueError("bad frame")))
    worker.submit(lambda: ran.append(1))  # queued behind the failing job: must not run
    gate.set()
    with pytest.raises(ValueError, match="bad frame"):
        worker.finish()
    assert ran == []
    with pytest.raises(ValueError, match="bad frame"):  # and every later call says so too
        worker.submit(lambda: None)

    worker = EncodeThread()
    worker.finish()
    with pytest.raises(RuntimeError, match="finished"):
        worker.submit(lambda: None)


def test_the_sinks_colour_conversion_is_swscales_within_rounding() -> None:
    """The sink converts RGB to 4:2:0 with OpenCV, not FFmpeg's swscale (several times faster at 720p and
    above): the same BT.601 limited-range matrix, so luma agrees within a level and a round trip through
    either loses the same."""
    from speech2vid.frames.yuv import frame_rgb, rgb_to_i420

    rgb = np.random.default_rng(3).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    rgb = cv2.GaussianBlur(rgb, (0, 0), 2.0)  # a picture's smooth chroma, not noise
    ours = rgb_to_i420(rgb)
    swscale = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p").to_ndarray()
    assert np.abs(ours[:120].astype(int) - swscale[:120]).max() <= 1
    back_ours = frame_rgb(av.VideoFrame.from_ndarray(ours, format="yuv420p")).astype(int)
    back_sws = av.VideoFrame.from_ndarray(swscale, format="yuv420p").to_ndarray(format="rgb24").astype(int)
    assert abs(np.abs(back_ours - rgb).mean() - np.abs(back_sws - rgb).mean()) < 0.5
    assert np.abs(back_ours - rgb).mean() < 3
