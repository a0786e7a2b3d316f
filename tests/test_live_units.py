"""Live runtime building blocks: the capture ring, latency statistics, paced sources, URI parsing."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from speech2vid.assets import sample_speech
from speech2vid.audio.constants import SAMPLE_RATE
from speech2vid.config import LiveConfig
from speech2vid.errors import OutputError
from speech2vid.runtime.stats import BIN_MS, CaptureClock, LatencyHistogram, frame_level_dbfs
from speech2vid.sinks.live import parse_sink
from speech2vid.sources.live import CaptureOptions, FileSource, SilenceSource, SourceError, parse_source
from speech2vid.sources.ring import SampleRing, StampRing

# -- ring buffer -------------------------------------------------------------------------------------


def test_ring_wraps_around_and_keeps_order() -> None:
    ring = SampleRing(10)
    out = []
    for start in range(0, 60, 7):  # blocks of 7 through a ring of 10: every read and write wraps at some point
        assert ring.write(np.arange(start, start + 7, dtype=np.float32))
        out.append(ring.read())
    assert np.array_equal(np.concatenate(out), np.arange(0, 63, dtype=np.float32))
    assert ring.overflows == 0


def test_ring_drops_an_incoming_block_instead_of_overwriting_unread_samples() -> None:
    ring = SampleRing(10)
    assert ring.write(np.arange(8, dtype=np.float32))
    assert not ring.write(np.arange(100, 103, dtype=np.float32))  # 3 do not fit in the 2 free places
    assert ring.overflows == 1
    assert ring.write(np.arange(8, 10, dtype=np.float32))  # 2 do
    assert np.array_equal(ring.read(), np.arange(10, dtype=np.float32))
    assert ring.available == 0 and ring.read().shape == (0,)


def test_ring_read_limit() -> None:
    ring = SampleRing(16)
    ring.write(np.arange(12, dtype=np.float32))
    assert np.array_equal(ring.read(5), np.arange(5, dtype=np.float32))
    assert np.array_equal(ring.read(), np.arange(5, 12, dtype=np.float32))


def test_ring_between_real_threads_loses_and_reorders_nothing() -> None:
    """A producer thread writing a counting sequence as fast as it can; the consumer sees it intact."""
    ring = SampleRing(997)  # prime: the 64-sample blocks land at every offset
    total, block = 51_200, 64  # 800 blocks
    written = []

    def produce() -> None:
        n = 0
        while n < total:
            if ring.write(np.arange(n, n + block, dtype=np.float32)):
                written.append(n)
                n += block
            # a refused block is counted as an overflow and retried, as a test of no-overwrite

    t = threading.Thread(target=produce)
    t.start()
    got = []
    deadline = time.monotonic() + 60
    while sum(g.size for g in got) < total and time.monotonic() < deadline:
        got.append(ring.read())
    t.join()
    seq = np.concatenate(got)
    assert seq.size == total
    assert np.array_equal(seq, np.arange(total, dtype=np.float32))  # float32 is exact below 2**24


def test_stamp_ring_keeps_the_newest() -> None:
    stamps = StampRing(capacity=4)
    for i in range(6):
        stamps.write(i * 320, i * 0.02)
    assert stamps.read() == [(640, 0.04), (960, 0.06), (1280, 0.08), (1600, 0.1)]
    assert stamps.read() == []


def test_sample_ring_refuses_zero_capacity() -> None:
    with pytest.raises(ValueError, match="capacity"):
        SampleRing(0)


# -- statistics --------------------------------------------------------------------------------------


def test_latency_quantiles_match_numpy_within_a_bin() -> None:
    rng = np.random.default_rng(0)
    values = rng.gamma(4.0, 50.0, size=5000)  # a skewed latency-like distribution, 10..700 ms
    hist = LatencyHistogram()
    for v in values:
        hist.add(float(v))
    for q in (0.5, 0.99):
        got = hist.quantile(q)
        assert got is not None
        assert abs(got - np.quantile(values, q)) <= BIN_MS
    s = hist.summary()
    assert s["count"] == 5000
    assert abs(s["mean"] - values.mean()) < 1e-6  # type: ignore[operator]
    assert s["max"] == pytest.approx(values.max())


def test_latency_histogram_empty_and_overflow() -> None:
    hist = LatencyHistogram()
    assert hist.summary()["median"] is None
    hist.add(1e9)  # far beyond the histogram: kept in the last bin and in max
    assert hist.quantile(0.5) is not None and hist.max_ms == 1e9


def test_capture_clock_interpolates_between_stamps() -> None:
    clock = CaptureClock(keep=3)
    clock.add(((0, 10.0), (320, 10.02), (640, 10.04)))
    assert clock.time_of(480) == pytest.approx(10.03)
    assert clock.time_of(1000) == pytest.approx(10.04 + 360 / SAMPLE_RATE)
    clock.add(((960, 11.0),))  # a late block (e.g. after a stall) moves time on; the oldest stamp is forgotten
    assert clock.time_of(0) is None
    assert clock.time_of(1280) == pytest.approx(11.02)


def test_frame_level_dbfs() -> None:
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    sine = 0.5 * np.sin(2 * np.pi * 440 * t)
    assert frame_level_dbfs(sine) == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.01)
    assert frame_level_dbfs(np.zeros(100)) == -120.0
    assert frame_level_dbfs(np.zeros(0)) == -120.0


# -- sources -----------------------------------------------------------------------------------------


def _drain(source, limit_s: float = 30.0) -> np.ndarray:  # type: ignore[no-untyped-def]
    parts = []
    deadline = time.monotonic() + limit_s
    with source:
        while not source.finished and time.monotonic() < deadline:
            parts.append(source.read(0.05).samples)
    return np.concatenate(parts)


def test_file_source_delivers_the_whole_file_exactly() -> None:
    from speech2vid.audio.io import read_audio, to_model_rate

    expected = to_model_rate(read_audio(sample_speech())).astype(np.float32)
    got = _drain(FileSource(str(sample_speech()), 320, realtime=False))
    assert np.array_equal(got, expected)


def test_file_source_loops() -> None:
    src = FileSource(str(sample_speech()), 320, realtime=False, loop=True)
    n = src._data.size
    with src:
        got = np.concatenate([src.read(0.05).samples for _ in range(30)])  # 30 x 10 blocks > one pass
    assert got.size > n and not src.finished
    assert np.array_equal(got, np.resize(src._data, got.size))  # np.resize repeats the array


def test_realtime_source_never_runs_ahead_of_the_audio_clock() -> None:
    """Samples delivered by time t never exceed 16 kHz x t (plus one block): it paces like a device."""
    blocksize = 320
    src = SilenceSource(blocksize, realtime=True)
    delivered = 0
    with src:
        t0 = time.monotonic()
        while delivered < SAMPLE_RATE // 2:  # half a second of audio
            chunk = src.read(0.01)
            delivered += chunk.samples.size
            elapsed = time.monotonic() - t0
            assert delivered <= elapsed * SAMPLE_RATE + blocksize
            for index, stamp in chunk.stamps:  # the stamps are the audio clock: sample i "happened" at t0 + i / 16k
                assert stamp == pytest.approx(src._t0 + index / SAMPLE_RATE)
    assert time.monotonic() - t0 >= 0.5 - blocksize / SAMPLE_RATE
    assert not np.any(chunk.samples)


@pytest.mark.parametrize(
    "uri, message",
    [
        ("http://x", "unknown source 'http://x': use mic://default"),
        ("file://", "names no file"),
        ("file://a.wav?speed=2", "unknown option 'speed'"),
        ("silence://?realtime=maybe", "must be 0 or 1"),
        ("file://speech.wav?realtime=0&play=1", "play=1 needs real-time pacing"),
    ],
)
def test_source_uri_errors_are_one_line(uri: str, message: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    if "speech.wav" in uri:
        uri = uri.replace("speech.wav", str(sample_speech()))
    with pytest.raises(SourceError) as info:
        parse_source(uri, CaptureOptions())
    assert message in str(info.value) and "\n" not in str(info.value)


def test_parse_source_forms() -> None:
    mic = parse_source("mic://3", CaptureOptions())
    assert mic.device == 3  # type: ignore[attr-defined]
    assert parse_source("mic://default", CaptureOptions()).device is None  # type: ignore[attr-defined]
    assert parse_source("mic://USB%20Audio", CaptureOptions()).device == "USB Audio"  # type: ignore[attr-defined]
    src = parse_source(f"file://{sample_speech()}?realtime=0&loop=1", CaptureOptions())
    assert isinstance(src, FileSource) and not src.realtime and src.loop


@pytest.mark.parametrize(
    "uri, message",
    [
        ("rtsp://cam", "unknown sink 'rtsp://cam'"),
        ("file://", "names no file"),
        ("file://out.avi", "must end in .mp4"),
        ("null://?meter=1", "unknown option 'meter=1'"),
    ],
)
def test_sink_uri_errors_are_one_line(uri: str, message: str) -> None:
    with pytest.raises(OutputError) as info:
        parse_sink(uri, LiveConfig())
    assert message in str(info.value) and "\n" not in str(info.value)


def test_cli_rejects_a_bad_source_in_one_line() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "speech2vid",
            "live",
            "--source",
            "rtsp://x",
            "--sink",
            "null://",
            "--weights",
            "random",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("speech2vid: error: unknown source 'rtsp://x'") and "Traceback" not in proc.stderr


def test_lookahead_must_be_whole_mfcc_columns(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from speech2vid.config import load_settings
    from speech2vid.errors import ConfigError

    bad = tmp_path / "bad.yaml"
    bad.write_text("live:\n  lookahead_ms: 100\n")
    with pytest.raises(ConfigError, match="live.lookahead_ms"):
        load_settings(bad)
    good = tmp_path / "good.yaml"
    good.write_text("live:\n  lookahead_ms: 102.5\n")
    assert load_settings(good).live.lookahead_columns == 9


def test_profiles_load_by_name() -> None:
    from speech2vid.config import load_settings

    assert load_settings("desktop").engine.backend == "onnxruntime"
    jetson = load_settings("jetson")
    assert jetson.engine.backend == "tensorrt" and jetson.live.fullscreen


def test_microphone_at_48khz_is_resampled_to_16khz() -> None:
    """A device that cannot open 16 kHz: blocks arrive in the PortAudio callback at 48 kHz, the loop gets 16 kHz."""
    from speech2vid.sources.live import MicSource

    mic = MicSource(None, CaptureOptions())
    mic._prepare(48_000)
    t = np.arange(48_000) / 48_000
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    out, stamps = [], []
    for i in range(0, tone.size, 960):  # 20 ms blocks, as PortAudio hands them over
        mic._callback(tone[i : i + 960, None], 960, None, 0)
        chunk = mic._take()
        out.append(chunk.samples)
        stamps.extend(chunk.stamps)
    x = np.concatenate(out)
    assert abs(x.size - SAMPLE_RATE) < 200  # soxr holds back a few ms of filter delay
    spectrum = np.abs(np.fft.rfft(x[2000:14000] * np.hanning(12000)))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / 12000 - 1000) < 2  # still a 1 kHz tone
    assert frame_level_dbfs(x[2000:14000]) == pytest.approx(frame_level_dbfs(tone), abs=0.1)
    assert [i for i, _ in stamps] == [round(k * 960 / 3) for k in range(50)]  # device blocks -> 16 kHz indices
    assert mic.overflows == 0
