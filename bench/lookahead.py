"""What a shorter look-ahead costs: windows and frames with R < 17 columns of right context vs the exact ones.

``python -m speech2vid.cli.lookahead [--model lite] [--weights FILE|random] [--audio speech.wav]``
prints, for each look-ahead, the latency it saves and two differences from the exact window (R = 17):

* ``window error``: RMS of (short - exact) over RMS of the exact windows' deviation from silence, on
  the MFCC windows the network is fed. It depends on the audio only, not on any weights: it says how
  much of what the network sees is replaced by silence.
* ``frame change``: mean and max absolute difference of the rendered frames (0-255 scale) with the
  given weights. With ``random`` weights this measures how sensitive an *untrained* network is to its
  audio input (almost not at all), not lip-sync quality; rerun it with trained weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from speech2vid.features.windows import MAX_LOOKAHEAD_COLUMNS, StreamingWindows, speech_windows

DEFAULT_COLUMNS = (17, 13, 9, 5, 0)


@dataclass(frozen=True)
class LookaheadEffect:
    lookahead_ms: float
    saved_ms: float  # latency saved against the exact window
    window_error: float  # relative RMS difference of the MFCC windows (0 = exact)
    frame_mean_abs: float | None  # 0-255 scale, None without an engine
    frame_max_abs: float | None


def short_windows(signal_16k: np.ndarray, columns: int) -> np.ndarray:
    """The windows a live run with ``columns`` of right context feeds the network: float32 (n, 12, 35)."""
    sw = StreamingWindows(columns)
    return np.concatenate([sw.push(signal_16k), sw.flush()])


def lookahead_effects(signal_16k: np.ndarray, render=None, columns=DEFAULT_COLUMNS) -> list[LookaheadEffect]:  # type: ignore[no-untyped-def]
    """One :class:`LookaheadEffect` per look-ahead; ``render`` maps (n, 12, 35) windows to (n, H, W, 3) frames
    in [0, 1]."""
    exact = speech_windows(signal_16k)
    silence = short_windows(np.zeros(1, np.float32), 0)[0]  # every column the MFCC of digital silence
    scale = float(np.sqrt(np.mean((exact - silence) ** 2)))
    ref = None if render is None else render(exact) * 255.0
    out = []
    full_ms = StreamingWindows(MAX_LOOKAHEAD_COLUMNS).lookahead_seconds * 1e3
    for r in columns:
        w = short_windows(signal_16k, r)
        ms = StreamingWindows(r).lookahead_seconds * 1e3
        err = float(np.sqrt(np.mean((w - exact) ** 2))) / scale
        mean_abs = max_abs = None
        if ref is not None:
            diff = np.abs(render(w) * 255.0 - ref)
            mean_abs, max_abs = float(diff.mean()), float(diff.max())
        out.append(LookaheadEffect(ms, full_ms - ms, err, mean_abs, max_abs))
    return out


def format_effects(effects: list[LookaheadEffect]) -> str:
    lines = ["look-ahead   saves   window error   frame change mean / max (0-255)"]
    for e in effects:
        frame = "-" if e.frame_mean_abs is None else f"{e.frame_mean_abs:.4f} / {e.frame_max_abs:.4f}"
        lines.append(f"{e.lookahead_ms:7.1f} ms {e.saved_ms:5.0f} ms   {100 * e.window_error:9.1f} %    {frame}")
    return "\n".join(lines)
