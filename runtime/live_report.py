"""What a live run did: per-frame stamps through the loop's stages, counts, latency histograms and soak
samples; :meth:`LiveReport.as_dict` is ``live --stats``' JSON."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from speech2vid.audio.constants import SAMPLE_RATE
from speech2vid.runtime.stats import LatencyHistogram

STAMP_HISTORY = 1500  # per-frame stamps kept for the stats (the last 60 s): memory stays flat
# Stages of a fresh frame's latency, each from the previous stamp (the first from the window centre's capture).
STAGES = ("lookahead", "capture", "features", "queue", "inference", "handoff", "sinks")


@dataclass
class FrameStamps:
    """Monotonic times (s) of one fresh frame on its way through the loop; None where not reached."""

    k: int
    centre: float  # the window centre's sample captured (the latency's origin)
    heard: float  # the last sample the window needs captured (the audio callback's clock)
    read: float  # its block read from the ring by the loop
    window: float  # MFCC window complete, VAD gate applied
    staged: float | None = None  # handed to the inference worker
    started: float | None = None  # the engine began rendering it
    rendered: float | None = None  # the engine returned it
    emitted: float | None = None  # the loop began writing it to the sinks
    shown: float | None = None  # every sink has it (display: drawn)

    def stage_ms(self) -> dict[str, float] | None:
        """Durations of :data:`STAGES` in ms (None unless every stamp is there)."""
        t = (self.centre, self.heard, self.read, self.window, self.started, self.rendered, self.emitted, self.shown)
        if any(v is None for v in t):
            return None
        ts = [float(v) for v in t]  # type: ignore[arg-type]
        # "queue" runs from the window to the engine's start (staging is instantaneous)
        out = {name: (b - a) * 1e3 for name, a, b in zip(STAGES, ts, ts[1:])}
        out["total"] = (ts[-1] - ts[0]) * 1e3
        return out


@dataclass
class LiveReport:
    """What a run did; :meth:`as_dict` is the ``--stats`` JSON."""

    frames: int = 0  # slots emitted (= 25 fps x audio seconds)
    rendered: int = 0  # fresh images from the engine
    idle: int = 0  # slots showing the still face
    skipped: int = 0  # windows the engine had no time for
    dropped: int = 0  # skipped slots real-time sinks did not get (drop policy)
    repeated: int = 0  # skipped slots filled with the last image (repeat policy)
    late: int = 0
    audio_samples: int = 0
    overflows: int = 0
    reopens: int = 0
    mic_lost_seconds: float = 0.0  # silence stood in for a lost microphone while it was reopened (the face idled)
    max_in_flight: int = 0
    lookahead_ms: float = 0.0
    model_lookahead_ms: float = 0.0  # the model's own right context (live.lookahead_ms may emit earlier)
    vad: str = ""  # silero | level | off
    speech_frames: int = 0  # frames whose window held speech (VAD) or was loud enough (level)
    blinks: int = 0
    blink_frames: list[int] = field(default_factory=list)  # the first frame of each of the last 256 blinks
    expected_latency_ms: float = 0.0
    inference_ms: float = 0.0
    wall_seconds: float = 0.0
    ended: str = ""
    error: str | None = None
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    # per stage of the frames the engine rendered, and their total (``latency`` also counts still frames)
    stages: dict[str, LatencyHistogram] = field(
        default_factory=lambda: {s: LatencyHistogram() for s in (*STAGES, "total")}
    )
    stamps: deque[FrameStamps] = field(default_factory=lambda: deque(maxlen=STAMP_HISTORY))
    soak: list[dict[str, float | int | None]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def add_stamps(self, st: FrameStamps) -> None:
        self.stamps.append(st)
        ms = st.stage_ms()
        if ms is not None:
            for name, v in ms.items():
                self.stages[name].add(max(0.0, v))

    def stage_table(self) -> list[tuple[str, float | None, float | None]]:
        """(stage, p50 ms, p99 ms) for each stage and the total, over the frames the engine rendered."""
        return [(n, h.quantile(0.5), h.quantile(0.99)) for n, h in self.stages.items()]

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("latency", "soak", "meta", "stages", "stamps")}
        out["audio_seconds"] = self.audio_samples / SAMPLE_RATE
        out["latency_ms"] = self.latency.summary()
        out["stages_ms"] = {n: h.summary() for n, h in self.stages.items()}
        t0 = self.stamps[0].centre if self.stamps else 0.0
        out["frame_stamps"] = {  # seconds since the first kept frame's centre sample was captured
            "fields": ["k", "centre", "heard", "read", "window", "staged", "started", "rendered", "emitted", "shown"],
            "frames": [
                [st.k]
                + [
                    None if v is None else round(v - t0, 6)
                    for v in (
                        st.centre,
                        st.heard,
                        st.read,
                        st.window,
                        st.staged,
                        st.started,
                        st.rendered,
                        st.emitted,
                        st.shown,
                    )
                ]
                for st in self.stamps
            ],
        }
        if self.soak:
            out["soak"] = self.soak
            out["soak_drift"] = soak_drift(self.soak)
        return {**self.meta, **out}


def soak_drift(samples: list[dict[str, float | int | None]]) -> dict[str, float | None]:
    """Memory and latency drift over a soak: the change from the first sample after warm-up to the last, and
    the least-squares slopes (RSS in MiB per hour, latency in ms per hour) over all samples after warm-up."""
    kept = samples[1:] if len(samples) > 2 else samples  # the first interval includes start-up

    def values(key: str) -> tuple[np.ndarray, np.ndarray]:
        pts = [(float(s["t_s"]), float(s[key])) for s in kept if s.get(key) is not None]  # type: ignore[arg-type]
        arr = np.array(pts, dtype=np.float64).reshape(-1, 2)
        return arr[:, 0], arr[:, 1]

    out: dict[str, float | None] = {}
    for key in ("rss_mb", "latency_median_ms", "latency_p99_ms"):
        t, v = values(key)
        out[key] = float(v[-1] - v[0]) if v.size else None
        out[f"{key}_per_hour"] = float(np.polyfit(t / 3600, v, 1)[0]) if v.size >= 3 else None
    return out
