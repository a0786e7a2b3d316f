"""The offline commands stream their speech (issue 13, item 7): memory does not depend on its length.

`generate` and `redub` read a speech file through :class:`~speech2vid.runtime.speech_feed.SpeechFeed`:
decoded block by block, windows cut as the audio arrives, the original audio handed on to the MP4 sink
and dropped once encoded. Checked here: the streamed windows and audio are the batch ones, and the
memory the feed allocates (tracemalloc sees numpy's buffers) is the same for 20 s and for 200 s.
Measured for the whole command with /usr/bin/time (README, "Security and reliability").
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import soundfile as sf

from speech2vid.assets import sample_speech
from speech2vid.audio.io import read_audio, scan_speech, to_model_rate
from speech2vid.features.windows import speech_windows
from speech2vid.runtime.speech_feed import SpeechFeed

BATCH = 8


def long_speech(tmp_path: Path, seconds: float, rate: int = 16000, channels: int = 1) -> Path:
    x, sr = sf.read(sample_speech(), dtype="float32")
    if rate != sr:
        import soxr

        x = soxr.resample(x, sr, rate)
    x = np.tile(x, int(np.ceil(seconds * rate / len(x))))[: int(seconds * rate)]
    if channels > 1:
        x = np.stack([x * (0.5 + 0.5 * c) for c in range(channels)], axis=1)
    path = tmp_path / f"speech_{seconds:g}s_{rate}_{channels}.wav"
    sf.write(path, x, rate, subtype="FLOAT")
    return path


def feed_all(path: Path, audio_out) -> tuple[int, np.ndarray | None]:  # type: ignore[no-untyped-def]
    """Every window in batches, as generate asks for them; (windows, the last batch)."""
    feed = SpeechFeed(scan_speech(path), audio_out)
    last = None
    for start in range(0, feed.n_windows, BATCH):
        last = feed.windows(range(start, min(start + BATCH, feed.n_windows)))
    feed.finish()
    return feed.n_windows, last


def test_streamed_windows_and_audio_are_the_batch_ones(tmp_path: Path) -> None:
    path = long_speech(tmp_path, 7.3, rate=44100, channels=2)
    whole = read_audio(path)
    expected = speech_windows(to_model_rate(whole))
    got, audio = [], []
    feed = SpeechFeed(scan_speech(path), audio.append)
    assert feed.n_windows == len(expected)
    for start in range(0, feed.n_windows, BATCH):
        got.append(feed.windows(range(start, min(start + BATCH, feed.n_windows))))
    feed.finish()
    np.testing.assert_allclose(np.concatenate(got), expected, atol=1e-4)
    np.testing.assert_array_equal(np.concatenate(audio), whole.samples)  # every sample, in order, once


def test_redub_rate_mapping_reads_windows_twice_in_order(tmp_path: Path) -> None:
    """At 30 fps some 25 fps windows are shown twice; the feed serves repeats and never goes back."""
    from fractions import Fraction

    from speech2vid.runtime.redub import window_for_frames

    path = long_speech(tmp_path, 3.0)
    expected = speech_windows(to_model_rate(read_audio(path)))
    feed = SpeechFeed(scan_speech(path), lambda _: None)
    index = window_for_frames(90, Fraction(30), feed.n_windows)
    got = np.concatenate([feed.windows(index[i : i + BATCH]) for i in range(0, len(index), BATCH)])
    np.testing.assert_allclose(got, expected[index], atol=1e-4)


def _peak_bytes(path: Path) -> int:
    tracemalloc.start()
    try:
        feed_all(path, lambda block: None)  # the sink encodes and drops what it is given
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_feed_memory_does_not_grow_with_the_audio(tmp_path: Path) -> None:
    short, long = long_speech(tmp_path, 20.0), long_speech(tmp_path, 200.0)
    _peak_bytes(short)  # first use: imports and caches
    peak_short, peak_long = _peak_bytes(short), _peak_bytes(long)
    # 200 s held whole would be 12.8 MB of samples and 2 MB of windows; streamed, both peaks are the same.
    assert peak_long < 1.1 * peak_short + 256 * 1024, (peak_short, peak_long)
