"""A/V offset along a long live recording: ``python docs/soak_av_offset.py soak.mp4``.

Reads an MP4 written by ``speech2vid live --sink "file://soak.mp4?meter=1"``: every frame carries a bar
showing the level of the audio the loop captured for that frame's 40 ms. Per window of the recording
(its first and last minutes, and every tenth in between) the bar is compared with the level of the
muxed AAC audio around each frame's time, shifted by -5..5 frames; the shift with the least error is
that window's A/V offset (0: in sync). Streams the video (one bar row per frame), so an hour fits in memory.
"""

from __future__ import annotations

import sys

import av
import numpy as np

from speech2vid.audio.constants import SAMPLE_RATE
from speech2vid.features.windows import SAMPLES_PER_FRAME as FRAME
from speech2vid.runtime.stats import frame_level_dbfs
from speech2vid.sinks.live import METER_DB, METER_PX

WINDOW = 60 * 25  # frames per window: one minute


def meter_levels(path: str) -> np.ndarray:
    shown = []
    with av.open(path) as c:
        for f in c.decode(video=0):
            row = f.to_ndarray(format="rgb24")[-METER_PX // 2].mean(axis=1)  # the bar's middle row, grey
            shown.append((row > 127).sum() / row.size * METER_DB - METER_DB)
    return np.array(shown)


def audio(path: str) -> np.ndarray:
    with av.open(path) as c:
        chunks = list(c.decode(audio=0))
    assert chunks[0].sample_rate == SAMPLE_RATE
    return np.concatenate([f.to_ndarray()[0] for f in chunks]).astype(np.float32)


def offset(shown: np.ndarray, heard: np.ndarray) -> tuple[int, float]:
    err = {
        d: float(
            np.mean(np.abs(shown[max(d, 0) : len(shown) + min(d, 0)] - heard[max(-d, 0) : len(heard) - max(d, 0)]))
        )
        for d in range(-5, 6)
    }
    best = min(err, key=lambda d: err[d])
    return best, err[best]


def main(path: str) -> None:
    shown, x = meter_levels(path), audio(path)
    n = len(shown)
    heard = np.clip(
        [frame_level_dbfs(x[max(0, k * FRAME - FRAME // 2) : k * FRAME + FRAME // 2]) for k in range(n)], -METER_DB, 0
    )
    print(f"{n} frames ({n / 25 / 60:.1f} min), {x.size / SAMPLE_RATE / 60:.1f} min of audio")
    starts = sorted({0, *range(0, max(n - WINDOW, 0), max(n // 10, 1)), max(n - WINDOW, 0)})
    for s in starts:
        d, e = offset(shown[s : s + WINDOW], heard[s : s + WINDOW])
        print(f"minute {s / 1500:5.1f}: offset {d:+d} frames (meter error {e:.2f} dB)")


if __name__ == "__main__":
    main(sys.argv[1])
