"""The live loop with a real ONNX Runtime engine (lite model, random weights) and real sources and sinks.

The sources are file:// and silence:// here (the microphone path is tests/test_live_e2e.py). A recording
sink (a LiveSink like null://, keeping what it is given) lets the tests compare frames.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speech2vid.assets import sample_speech
from speech2vid.audio.constants import SAMPLE_RATE
from speech2vid.audio.io import read_audio, to_model_rate
from speech2vid.config import EngineConfig, LiveConfig, VadConfig
from speech2vid.features.windows import n_frames_for, speech_windows
from speech2vid.runtime.avatar import Avatar
from speech2vid.runtime.idle_face import silence_window
from speech2vid.runtime.live import run_live
from speech2vid.sinks.live import FileSink, FrameInfo, LiveSink, NullSink
from speech2vid.sources.live import FileSource, SilenceSource

LEVEL_GATE = VadConfig(detector="level")  # the -50 dBFS level gate with its hold (live.idle_threshold_dbfs)
# The same graph on batch 1 (live) vs batch N (offline): ONNX Runtime's kernels differ in the last bits, and the
# warp head resamples the face at the moved coordinates, so on this random-noise face a sub-pixel difference
# shows as up to 1.6e-4 at its sharpest edges (measured); 1e-3 is a quarter of one 8-bit level.
RENDER_ATOL = 1e-3


class RecordingSink(LiveSink):
    """Keeps every frame it is given (a real-time sink like display://)."""

    description = "recording"

    def __init__(self, stop_after: int | None = None, stop: threading.Event | None = None) -> None:
        self.frames: list[np.ndarray] = []
        self.infos: list[FrameInfo] = []
        self.audio = 0
        self._stop_after, self._stop = stop_after, stop

    def write(self, frame: np.ndarray, info: FrameInfo) -> None:
        self.frames.append(np.array(frame))
        self.infos.append(info)
        if self._stop is not None and self._stop_after is not None and len(self.frames) >= self._stop_after:
            self._stop.set()  # like a Ctrl-C in the middle of a run

    def write_audio(self, samples: np.ndarray) -> None:
        self.audio += samples.size


class SlowEngine:
    """A deliberately slow backend: the real engine plus a fixed delay per render (an engine that falls behind)."""

    def __init__(self, engine, delay_s: float) -> None:  # type: ignore[no-untyped-def]
        self._engine, self.delay_s = engine, delay_s

    def set_identity(self, faces) -> None:  # type: ignore[no-untyped-def]
        self._engine.set_identity(faces)

    def render(self, windows: np.ndarray) -> np.ndarray:
        time.sleep(self.delay_s)  # simulated compute time, not synchronisation
        return self._engine.render(windows)

    def render_faces(self, windows: np.ndarray) -> np.ndarray:
        time.sleep(self.delay_s)
        return self._engine.render_faces(windows)


class FailingEngine(SlowEngine):
    """Fails on its ``fail_at``-th render (warm-up included)."""

    def __init__(self, engine, fail_at: int) -> None:  # type: ignore[no-untyped-def]
        super().__init__(engine, 0.0)
        self.calls, self.fail_at = 0, fail_at

    def render(self, windows: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.calls >= self.fail_at:
            raise RuntimeError("engine failed (test)")
        return self._engine.render(windows)

    render_faces = render


@pytest.fixture(scope="module")
def engine(lite_loaded, engine_cache, lite_onnx):  # type: ignore[no-untyped-def]
    from speech2vid.engine.factory import make_engine

    eng = make_engine(lite_loaded, EngineConfig(), cache_dir=engine_cache)
    with eng:
        yield eng


AVATAR = Avatar.bare([np.random.default_rng(1).integers(0, 256, (112, 112, 3), dtype=np.uint8)])
CODEC = {"preset": "ultrafast"}


SPEECH_SECONDS = 2.0  # of the sample speech: enough frames, little CPU time (2 cores shared in CI)


def _speech() -> np.ndarray:
    return to_model_rate(read_audio(sample_speech())).astype(np.float32)[: round(SPEECH_SECONDS * SAMPLE_RATE)]


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory) -> str:  # type: ignore[no-untyped-def]
    return str(_write_wav(tmp_path_factory.mktemp("speech") / "speech.wav", _speech()))


def _write_wav(path: Path, x: np.ndarray) -> Path:
    sf.write(path, np.clip(x, -1, 1), SAMPLE_RATE, subtype="PCM_16")
    return path


def _decoded(path: Path) -> tuple[np.ndarray, int]:
    """(frames of the video, audio samples) of an MP4."""
    import av

    with av.open(str(path)) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    with av.open(str(path)) as c:
        audio = sum(f.samples for f in c.decode(audio=0))
    return frames, audio


def test_live_frames_are_the_offline_frames_and_the_file_matches_the_audio(engine, speech_wav, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """As fast as possible from a file: every slot rendered, equal to batch rendering, MP4 in sync."""
    cfg = LiveConfig(idle="off")
    rec = RecordingSink()
    out = tmp_path / "live.mp4"
    report = run_live(
        engine, AVATAR, FileSource(speech_wav, 320, realtime=False), [rec, FileSink(str(out), cfg, None, CODEC)], cfg
    )
    signal = _speech()
    n = n_frames_for(signal.size)
    assert report.audio_samples == signal.size and rec.audio == signal.size
    assert report.frames == n == len(rec.frames) == report.rendered
    assert report.skipped == report.dropped == report.repeated == 0
    assert [i.index for i in rec.infos] == list(range(n)) and all(i.fresh for i in rec.infos)
    assert 1 <= report.max_in_flight <= 2
    expected = engine.render(speech_windows(signal, lookahead_columns=engine.lookahead_columns))
    assert np.abs(np.stack(rec.frames) - expected).max() < RENDER_ATOL
    frames, audio = _decoded(out)
    assert frames.shape[0] == n
    assert abs(audio - signal.size) < 1024  # AAC codes whole 1024-sample frames
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live.mp4"]  # no partial file left beside it
    assert report.latency.count > 0 and report.ended == "source ended"


@pytest.mark.parametrize("policy", ["drop", "repeat"])
def test_slow_engine_frames_are_dropped_or_repeated_never_queued(engine, speech_wav, tmp_path, policy: str) -> None:  # type: ignore[no-untyped-def]
    """An engine four times too slow for 25 fps, in real time: the backlog stays at two, late frames counted."""
    delay = 0.16  # 4 frame periods
    cfg = LiveConfig(idle="off", drop_policy=policy)  # type: ignore[arg-type]
    rec, out = RecordingSink(), tmp_path / "slow.mp4"
    src = FileSource(speech_wav, 320, realtime=True)
    report = run_live(SlowEngine(engine, delay), AVATAR, src, [rec, FileSink(str(out), cfg, None, CODEC)], cfg)  # type: ignore[arg-type]
    n = n_frames_for(round(SPEECH_SECONDS * SAMPLE_RATE))
    assert report.frames == n
    assert report.max_in_flight <= 2
    assert report.skipped > n // 3  # at most one render per 4 slots can keep up
    assert report.rendered + report.skipped == n
    # Each fresh frame waited for its right context and then >= one render: later than look-ahead + late_ms.
    assert report.late == report.latency.count > 0
    if policy == "drop":
        assert report.dropped == report.skipped and report.repeated == 0
        assert len(rec.frames) == report.rendered and all(i.fresh for i in rec.infos)  # real-time sinks skip
    else:
        assert report.repeated == report.skipped and report.dropped == 0
        assert len(rec.frames) == n and sum(not i.fresh for i in rec.infos) == report.skipped
        held = [k for k, i in enumerate(rec.infos) if not i.fresh and k > 0]
        assert all(np.array_equal(rec.frames[k], rec.frames[k - 1]) for k in held)  # the last image again
    indices = [i.index for i in rec.infos]
    assert indices == sorted(set(indices))
    assert _decoded(out)[0].shape[0] == n  # the file keeps every slot, whatever the policy


def test_silence_shows_one_still_face(engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Speech then two seconds of silence: after the speech, one still image (no engine run, no twitching)."""
    signal = np.concatenate([_speech(), np.zeros(SAMPLE_RATE + SAMPLE_RATE // 2, np.float32)])
    wav = _write_wav(tmp_path / "speech_then_silence.wav", signal)
    cfg = LiveConfig(idle="still", idle_hold_frames=8)
    rec = RecordingSink()
    report = run_live(engine, AVATAR, FileSource(str(wav), 320, realtime=False), [rec], cfg, vad=LEVEL_GATE)
    still = engine.render(silence_window()[None])[0]
    speech_frames = n_frames_for(_speech().size)
    # frames whose window (0.35 s centred) is all silence, after the hold: exactly the still face
    first_silent = speech_frames + 5 + cfg.idle_hold_frames
    tail = rec.frames[first_silent:]
    assert len(tail) >= 20
    assert all(np.allclose(f, still, rtol=0, atol=1e-6) for f in tail)
    assert report.idle >= len(tail)
    # while speaking, the network renders every frame (untrained weights barely move the face, so check the flag)
    assert not any(i.idle for i in rec.infos[: speech_frames - 5])
    assert all(i.idle for i in rec.infos[first_silent:])


def test_idle_silence_source_never_runs_the_engine_after_the_hold(engine) -> None:  # type: ignore[no-untyped-def]
    cfg = LiveConfig(idle="still", idle_hold_frames=8)
    sink = NullSink()
    report = run_live(engine, AVATAR, SilenceSource(320, realtime=False), [sink], cfg, duration=2.0, vad=LEVEL_GATE)
    assert report.frames == 50 == sink.frames
    assert report.rendered <= cfg.idle_hold_frames and report.idle >= 50 - cfg.idle_hold_frames
    assert sink.changes == 0


def test_silence_with_the_vad_never_runs_the_engine(engine) -> None:  # type: ignore[no-untyped-def]
    """Silero VAD (the default): no speech column in any window, so no hold is needed; every frame is the
    still face from the first."""
    sink = NullSink()
    report = run_live(
        engine, AVATAR, SilenceSource(320, realtime=False), [sink], LiveConfig(idle="still"), duration=2.0
    )
    assert report.vad == "silero" and report.frames == 50 == sink.frames == report.idle
    assert report.rendered == 0 and sink.changes == 0


def test_stop_finalises_the_file(engine, speech_wav, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A stop request (what Ctrl-C and SIGTERM set) ends the run between frames with a complete file."""
    stop = threading.Event()
    cfg = LiveConfig(idle="off")
    out = tmp_path / "stopped.mp4"
    rec = RecordingSink(stop_after=20, stop=stop)
    report = run_live(
        engine,
        AVATAR,
        FileSource(speech_wav, 320, realtime=True),
        [rec, FileSink(str(out), cfg, None, CODEC)],
        cfg,
        stop=stop,
    )
    assert report.ended == "stopped"
    assert report.frames == n_frames_for(report.audio_samples) < n_frames_for(_speech().size)
    frames, audio = _decoded(out)
    assert frames.shape[0] == report.frames and abs(audio - report.audio_samples) < 1024


def test_engine_failure_leaves_no_file(engine, speech_wav, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = LiveConfig(idle="off")
    out = tmp_path / "crash.mp4"
    with pytest.raises(RuntimeError, match="engine failed"):
        run_live(
            FailingEngine(engine, fail_at=12),
            AVATAR,
            FileSource(speech_wav, 320, realtime=False),  # type: ignore[arg-type]
            [FileSink(str(out), cfg, None, CODEC)],
            cfg,
        )
    assert list(tmp_path.iterdir()) == []  # neither the target nor its temporary file


def test_soak_samples_memory_and_latency(engine) -> None:  # type: ignore[no-untyped-def]
    cfg = LiveConfig(idle="off")
    report = run_live(
        engine, AVATAR, SilenceSource(320, realtime=True), [NullSink()], cfg, duration=1.6, soak_interval=0.4
    )
    assert len(report.soak) >= 2
    assert all(s["rss_mb"] > 0 for s in report.soak)  # type: ignore[operator]
    d = report.as_dict()
    assert {"rss_mb", "rss_mb_per_hour", "latency_median_ms", "latency_p99_ms"} <= set(d["soak_drift"])
    assert d["latency_ms"]["count"] == report.latency.count > 0


def test_stage_stamps_follow_each_frame_and_add_up(engine, speech_wav) -> None:  # type: ignore[no-untyped-def]
    """Real time from a file, an engine with 30 ms of extra compute: every rendered frame's stamps are in
    order, the stages add up to its latency, the look-ahead stage is the window's (from the audio clock),
    and inference includes the engine's 30 ms."""
    from speech2vid.features.windows import LEFT_PAD
    from speech2vid.runtime.live_report import STAGES

    report = run_live(
        SlowEngine(engine, 0.03),
        AVATAR,
        FileSource(speech_wav, 160, realtime=True),
        [NullSink()],
        LiveConfig(idle="off"),
    )
    d = report.as_dict()
    fields, rows = d["frame_stamps"]["fields"], d["frame_stamps"]["frames"]
    assert fields[0] == "k" and len(rows) == d["stages_ms"]["total"]["count"] > 0  # how many: the machine's speed
    t = np.array(
        [r[1:] for r in rows], dtype=np.float64
    )  # centre, heard, read, window, staged, started, rendered, emitted, shown
    assert (np.diff(t, axis=1) >= -1e-9).all()  # each stamp at or after the one before
    np.testing.assert_allclose(
        t[:, 1] - t[:, 0], (LEFT_PAD - 1) / SAMPLE_RATE, atol=1e-6
    )  # the last sample the window needs
    assert (t[:, 6] - t[:, 5] >= 0.03).all()  # inference includes the wrapper's 30 ms
    assert set(d["stages_ms"]) == {*STAGES, "total"}
    total = d["stages_ms"]["total"]
    assert total["median"] == pytest.approx(report.latency.quantile(0.5), abs=1.0)  # the same frames, by another path
    assert sum(d["stages_ms"][s]["mean"] for s in STAGES) == pytest.approx(total["mean"], abs=0.01)
