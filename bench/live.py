"""``speech2vid bench --live``: the real live loop, fed by a file in real time, once per engine precision.

Each run is :func:`speech2vid.runtime.live.run_live` with a ``file://`` source paced by the audio clock
(looped speech), the configured VAD and idle behaviour, and a ``null://`` sink (or the sinks given), so
what is measured is what ``speech2vid live`` does minus the microphone's own buffering. The result is
the per-stage latency of the frames the engine rendered (p50 / p99 ms; stages as in runtime/live.py)
and their total, side by side for each precision whose engine is built. A precision whose engine is
not built is listed as skipped with the command that builds it; nothing falls back to another one.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence, cast

from speech2vid.config import Precision, Settings
from speech2vid.files import write_json_atomic

if TYPE_CHECKING:
    from speech2vid.runtime.avatar import Avatar

log = logging.getLogger("speech2vid.bench.live")

DEFAULT_PRECISIONS = ("fp32", "fp16", "int8")


@dataclass
class LiveBenchRow:
    """One precision's run: its engine, what the loop did, and (stage, p50, p99) rows in ms."""

    precision: str
    load: int = 0  # CPU-bound processes running beside the loop (bench --live --load)
    engine: str = ""
    skipped: str | None = None  # why it did not run (engine not built)
    frames: int = 0
    rendered: int = 0
    repeated: int = 0
    dropped: int = 0
    lookahead_ms: float = 0.0
    stages: list[tuple[str, float | None, float | None]] = field(default_factory=list)


def run_live_bench(
    settings: Settings,
    make_engine: Callable[[Settings], Any],
    *,
    audio: str | Path,
    avatar: Avatar,
    precisions: Sequence[str] = DEFAULT_PRECISIONS,
    seconds: float = 20.0,
    sinks: Callable[[], list[Any]] | None = None,
    loads: Sequence[int] = (0,),
) -> list[LiveBenchRow]:
    """Run the live loop for ``seconds`` of ``audio`` (looped, real time) once per precision and load
    (``loads``: how many CPU-bound processes run beside it, :class:`speech2vid.bench.cpu_load.CpuLoad`).

    ``make_engine(settings)`` returns an engine, not opened, for ``settings.engine`` (the CLI's factory);
    an ``EngineRefused`` (engine not built) skips that precision. ``sinks()`` makes fresh sinks per run
    (default one ``null://``). ``present`` and ``sway_scale``: as ``live`` shows the photo (``runtime.avatar``).
    """
    from speech2vid.bench.cpu_load import CpuLoad
    from speech2vid.engine.cache import EngineRefused
    from speech2vid.runtime.live import run_live
    from speech2vid.sinks.live import NullSink
    from speech2vid.sources.live import FileSource

    rows = []
    for precision, load in ((p, n) for p in precisions for n in loads):
        row = LiveBenchRow(precision, load)
        rows.append(row)
        # a name from the CLI's --precision choices (the engine precisions)
        s = dataclasses.replace(
            settings, engine=dataclasses.replace(settings.engine, precision=cast(Precision, precision))
        )
        try:
            engine = make_engine(s)
        except EngineRefused as exc:
            row.skipped = str(exc).split(": ", 1)[-1]
            log.warning("bench --live: %s skipped: %s", precision, row.skipped)
            continue
        row.engine = engine.label
        log.info(
            "bench --live: %s, %.0f s of real-time audio, %d CPU-bound processes beside", engine.label, seconds, load
        )
        source = FileSource(str(audio), settings.live.blocksize, realtime=True, loop=True)
        with engine, CpuLoad(load):
            report = run_live(
                engine,
                avatar,
                source,
                sinks() if sinks else [NullSink()],
                settings.live,
                vad=settings.vad,
                duration=seconds,
            )
        row.frames, row.rendered = report.frames, report.rendered
        row.repeated, row.dropped = report.repeated, report.dropped
        row.lookahead_ms = report.lookahead_ms
        row.stages = report.stage_table()
    return rows


def format_live_table(rows: Sequence[LiveBenchRow]) -> str:
    """Stages down, precisions across: ``p50 / p99`` ms; then frames rendered of all and skipped runs."""
    ran = [r for r in rows if r.skipped is None]

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    width = 17
    lines = []
    if ran:
        lines.append(
            f"{'stage (ms, p50 / p99)':<24}"
            + "".join(
                f"{r.precision + (f' load {r.load}' if len(rows) > 1 and any(x.load for x in rows) else ''):>{width}}"
                for r in ran
            )
        )
        for i, (name, _, _) in enumerate(ran[0].stages):
            cells = "".join(f"{fmt(r.stages[i][1]) + ' / ' + fmt(r.stages[i][2]):>{width}}" for r in ran)
            lines.append(f"{name:<24}{cells}")
        lines.append(f"{'rendered / frames':<24}" + "".join(f"{f'{r.rendered} / {r.frames}':>{width}}" for r in ran))
        lines.append(f"{'look-ahead (ms)':<24}" + "".join(f"{r.lookahead_ms:>{width}.1f}" for r in ran))
        lines += [
            f"  {r.precision}: {r.engine}" + (f", {r.load} CPU-bound processes beside" if r.load else "") for r in ran
        ]
    lines += [f"  {r.precision}: skipped ({r.skipped})" for r in rows if r.skipped is not None]
    return "\n".join(lines)


def write_live_json(rows: Sequence[LiveBenchRow], path: str | Path) -> None:
    data = [
        {**dataclasses.asdict(r), "stages": [{"stage": n, "p50_ms": a, "p99_ms": b} for n, a, b in r.stages]}
        for r in rows
    ]
    write_json_atomic(Path(path).expanduser(), data)
