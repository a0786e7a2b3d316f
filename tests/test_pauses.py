"""Pauses between phrases close the mouth (features/pauses.py), checked against a direct computation and on
real speech with a real pause, where Silero VAD alone still hears speech."""

from __future__ import annotations

import numpy as np
import pytest

from speech2vid.assets import sample_speech
from speech2vid.audio.io import read_audio, to_model_rate
from speech2vid.features.pauses import PauseDetector, PauseParams
from speech2vid.features.vad import GateParams, WindowGate, is_silent, silence_column
from speech2vid.features.windows import SAMPLES_PER_FRAME, StreamingWindows

RATE = 16000


def _reference(signal: np.ndarray, n_frames: int, p: PauseParams) -> list[bool]:
    """The definition, written out directly: levels of the 40 ms around each frame (zeros outside the
    signal), quiet against the running peak of the last ``peak_frames`` levels, runs of quiet frames."""
    padded = np.concatenate([np.zeros(320), signal.astype(np.float64), np.zeros(640 * (n_frames + 2))])
    levels = []
    for k in range(n_frames):
        seg = padded[k * 640 : k * 640 + 640]
        ms = np.mean(seg**2)
        levels.append(max(-120.0, 10 * np.log10(ms)) if ms > 0 else -120.0)
    quiet = [levels[k] < max(levels[max(0, k - p.peak_frames + 1) : k + 1]) - p.below_db for k in range(n_frames)]
    return [k >= p.before and all(quiet[k - p.before : k + p.after + 1]) for k in range(n_frames)]


def _bursts() -> np.ndarray:
    """Tone bursts (speech-loud) with gaps of low noise (40 dB down): 400 ms, 60 ms (a stop closure), 200 ms."""
    rng = np.random.default_rng(0)
    parts = []
    for seconds, loud in [
        (0.5, True),
        (0.4, False),
        (0.3, True),
        (0.06, False),
        (0.3, True),
        (0.2, False),
        (0.4, True),
    ]:
        n = int(seconds * RATE)
        t = np.arange(n) / RATE
        parts.append(0.3 * np.sin(2 * np.pi * 180 * t) if loud else 0.003 * rng.standard_normal(n))
    return np.concatenate(parts).astype(np.float32)


def test_pauses_match_the_definition_and_streaming_matches_whole() -> None:
    x = _bursts()
    n = len(x) // SAMPLES_PER_FRAME
    p = PauseParams()
    want = _reference(x, n, p)
    whole = PauseDetector(p)
    whole.push(x)
    whole.finish()
    assert [whole.is_pause(k) for k in range(n)] == want
    # Blocks of odd sizes, asking as soon as each answer is final (as the live loop does).
    rng = np.random.default_rng(1)
    stream, got, k, pos = PauseDetector(p), [], 0, 0
    while pos < len(x):
        step = int(rng.integers(1, 900))
        stream.push(x[pos : pos + step])
        pos += step
        while k < n and stream.decided(k):
            got.append(stream.is_pause(k))
            k += 1
            stream.trim(k)
    stream.finish()
    got += [stream.is_pause(j) for j in range(k, n)]
    assert got == want
    # The 400 ms gap (frames 12.5..22.5) is a pause inside; the 60 ms one (a stop closure) is not.
    assert all(want[14:22]) and not any(want[:12])
    gap60 = int((0.5 + 0.4 + 0.3) * 25)
    assert not any(want[gap60 - 1 : gap60 + 3])


def test_no_pauses_without_speech_or_when_off() -> None:
    rng = np.random.default_rng(2)
    for signal in (np.zeros(RATE, np.float32), (0.01 * rng.standard_normal(RATE)).astype(np.float32)):
        d = PauseDetector()
        d.push(signal)
        d.finish()
        assert not any(d.is_pause(k) for k in range(25))  # nothing is far under its own level
    assert PauseParams.from_db(0) is None


def test_a_pause_in_real_speech_shows_the_still_face_where_silero_still_hears_speech() -> None:
    """The bundled recording with 320 ms of room noise (60 dB down) spliced in after its first second:
    Silero's hysteresis and hangover keep most of that gap "speech", so without pause detection the
    network is driven there; with it, the frames inside the gap get the silence window (the still face)."""
    speech = to_model_rate(read_audio(sample_speech())).astype(np.float32)
    cut = RATE  # after the first second
    gap = (0.001 * np.random.default_rng(3).standard_normal(int(0.32 * RATE))).astype(np.float32)
    x = np.concatenate([speech[:cut], gap, speech[cut : cut + RATE]])
    stream = StreamingWindows(lookahead_columns=5)
    windows = np.stack(list(stream.push(x)) + list(stream.flush()))
    silence = silence_column()

    def silent_frames(pauses: PauseParams | None) -> np.ndarray:
        gate = WindowGate(GateParams(), lookahead_columns=5, pauses=pauses)
        out = []
        for i in range(0, len(x), 1000):  # streamed, as generate reads its audio
            gate.push_audio(x[i : i + 1000])
        gate.flush_audio()
        out.append(gate.gate(windows, final=True))
        return is_silent(np.concatenate(out), silence)

    first, last = cut // SAMPLES_PER_FRAME + 2, (cut + len(gap)) // SAMPLES_PER_FRAME - 1  # well inside the gap
    with_pauses, without = silent_frames(PauseParams()), silent_frames(None)
    assert with_pauses[first : last + 1].all()
    assert not without[first : last + 1].any()  # Silero alone: none of them (measured)
    speaking = slice(5, cut // SAMPLES_PER_FRAME - 3)
    assert with_pauses[speaking].mean() < 0.3  # and the words themselves still reach the network


@pytest.mark.parametrize("before,after", [(0, 0), (2, 1)])
def test_run_lengths_follow_the_params(before: int, after: int) -> None:
    x = _bursts()
    n = len(x) // SAMPLES_PER_FRAME
    p = PauseParams(before=before, after=after)
    d = PauseDetector(p)
    d.push(x)
    d.finish()
    assert [d.is_pause(k) for k in range(n)] == _reference(x, n, p)
