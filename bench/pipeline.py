"""``speech2vid bench --pipeline``: ``generate``, ``redub`` and ``live`` end to end, at several output sizes.

The engine is no longer what a frame costs; decoding, tracking, compositing and encoding at the photo's
or the video's resolution are. Each run is the real pipeline (``runtime.offline.render_video``,
``runtime.redub.run_redub``, ``runtime.live.run_live``) on inputs made here at the asked size, with its
:class:`~speech2vid.stage_clock.StageClock`: frames per second, the real-time factor, and the
milliseconds per frame of each stage. Stages on other threads (the decoder and tracker of ``redub``, the
video encoder) overlap the pipeline's own, so the stages can add up to more than the wall time per frame.

The inputs: the bundled sample photo, its edges extended to about 3:2 around the face (the face fills about a
third of the width, as in a phone portrait) and resized so that its longer side is the size; for
``redub`` a 16:9 video of that picture drifting slowly (so that decoding and tracking do real work every
frame); for ``live`` the portrait enlarged so that the square ``live`` shows around the face is the
size (``live.photo_side`` set to it); the bundled sample speech, looped.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from speech2vid.config import Settings

log = logging.getLogger("speech2vid.bench.pipeline")

PIPELINES = ("generate", "redub", "live")
SIZES = (256, 512, 1024, 1280, 1920)
STAGES = (
    "decode",
    "detect/track",
    "waiting for tracking",
    "features",
    "engine",
    "composite",
    "encode",
    "x264 (thread)",
    "mux",
)


@dataclass
class PipelineRow:
    """One pipeline at one size: speed, and milliseconds per frame of each stage."""

    pipeline: str
    size: str  # "WxH" of the output frames
    frames: int = 0
    fps: float = 0.0
    realtime: float = 0.0  # frames per second / the video's frame rate
    stages: dict[str, float] = field(default_factory=dict)
    note: str = ""  # generate: the engine's precision; live: slots repeated and dropped, latency p99


def bench_photo(side: int) -> np.ndarray:
    """The sample photo with its edges extended to about 3:2 (landscape) and resized: its longer side is ``side`` px."""
    from speech2vid.assets import sample_face
    from speech2vid.faces import read_photo

    rgb = read_photo(sample_face())
    h, w = rgb.shape[:2]
    pad_x = max(0, (4 * h // 3 - w) // 2) + w // 2
    # replicated edges, not reflected ones: a mirror would add faces that a real portrait does not have
    wide = cv2.copyMakeBorder(rgb, h // 4, h // 4, pad_x, pad_x, cv2.BORDER_REPLICATE)
    hh, ww = wide.shape[:2]
    scale = side / max(hh, ww)
    size = (max(2, round(ww * scale)) // 2 * 2, max(2, round(hh * scale)) // 2 * 2)
    return cv2.resize(wide, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


def bench_video(path: Path, side: int, frames: int) -> Path:
    """A 16:9 clip, longer side ``side`` px, of the bench photo drifting a few pixels (encoded fast)."""
    from speech2vid.sinks.video_file import VideoFileSink

    photo = bench_photo(side)
    width = side // 2 * 2
    height = (side * 9 // 16) // 2 * 2
    scale = max(width / photo.shape[1], height / photo.shape[0])
    base = cv2.resize(
        photo, (round(photo.shape[1] * scale), round(photo.shape[0] * scale)), interpolation=cv2.INTER_AREA
    )
    y0 = max(0, (base.shape[0] - height) // 2)
    with VideoFileSink(path, fps=25, size=(width, height), preset="ultrafast") as sink:
        for i in range(frames):
            dx, dy = 3 * np.sin(i / 20), 2 * np.cos(i / 27)
            m = np.array([[1, 0, dx], [0, 1, dy - y0]], dtype=np.float32)
            sink.write(cv2.warpAffine(base, m, (width, height), borderMode=cv2.BORDER_REFLECT_101))
    return path


def looped_speech(path: Path, seconds: float) -> Path:
    import soundfile as sf

    from speech2vid.assets import sample_speech

    x, sr = sf.read(sample_speech(), dtype="float32")
    n = int(seconds * sr)
    sf.write(path, np.tile(x, int(np.ceil(n / len(x))))[:n], sr)
    return path


def run_pipeline_bench(
    settings: Settings,
    make_engine: Callable[[Settings], Any],
    *,
    sizes: Sequence[int] = SIZES,
    pipelines: Sequence[str] = PIPELINES,
    seconds: float = 20.0,
    progress: Callable[[str], None] = log.info,
) -> list[PipelineRow]:
    """Run each of ``pipelines`` at each of ``sizes`` on ``seconds`` of speech; ``make_engine(settings)``
    gives an engine, not opened (the CLI's factory, so the precision is the settings')."""
    rows: list[PipelineRow] = []
    with tempfile.TemporaryDirectory(prefix="speech2vid-bench-") as tmp:
        work = Path(tmp)
        audio = looped_speech(work / "speech.wav", seconds)
        for side in sizes:
            for name in pipelines:
                progress(f"bench --pipeline: {name} at {side} px, {seconds:.0f} s of speech")
                run = {"generate": _generate, "redub": _redub, "live": _live}[name]
                rows.append(run(settings, make_engine, side, audio, work, seconds))
                for f in work.glob("out*"):
                    f.unlink()
    return rows


def _generate(
    settings: Settings, make_engine: Callable[[Settings], Any], side: int, audio: Path, work: Path, seconds: float
) -> PipelineRow:
    from speech2vid.runtime.offline import prepare_inputs, render_video

    photo = work / f"photo-{side}.png"
    cv2.imwrite(str(photo), cv2.cvtColor(bench_photo(side), cv2.COLOR_RGB2BGR))
    from speech2vid.runtime.engine_choice import prefer_int8

    g = dataclasses.replace(settings.generate, photo_max_side=side)
    # what `generate` runs: the INT8 engine when it is built (generate.prefer_int8)
    settings = prefer_int8(
        settings,
        enabled=g.prefer_int8,
        explicit=False,
        make=make_engine,
        command="generate",
        gain="speed",
        missing=logging.INFO,
    )
    inputs = prepare_inputs(
        [photo],
        audio,
        work / "out-generate.mp4",
        compose="photo",
        photo_max_side=side,
        rest_mouth=g.rest_mouth,
        silence_threshold_dbfs=g.silence_threshold_dbfs,
    )
    with make_engine(settings) as engine:
        result = render_video(engine, inputs, g, settings.encode, progress=False, vad=settings.vad)
    assert inputs.canvas is not None
    w, h = inputs.canvas.size
    return PipelineRow(
        "generate", f"{w}x{h}", result.frames, result.fps, result.fps / 25, result.stages, settings.engine.precision
    )


def _redub(
    settings: Settings, make_engine: Callable[[Settings], Any], side: int, audio: Path, work: Path, seconds: float
) -> PipelineRow:
    from speech2vid.runtime.redub import prepare_redub, run_redub

    video = work / f"clip-{side}.mp4"
    if not video.exists():
        bench_video(video, side, max(50, round(seconds * 25)))
    inputs = prepare_redub(
        video,
        audio,
        work / "out-redub.mp4",
        settings.redub,
        silence_threshold_dbfs=settings.generate.silence_threshold_dbfs,
    )
    with make_engine(settings) as engine:
        result = run_redub(engine, inputs, settings.redub, settings.encode, progress=False)
    fps = result.frames / max(result.wall_seconds, 1e-9)
    return PipelineRow(
        "redub",
        f"{inputs.video.width}x{inputs.video.height}",
        result.frames,
        fps,
        fps / float(inputs.video.rate),
        result.stages,
        settings.engine.precision,
    )


def _live(
    settings: Settings, make_engine: Callable[[Settings], Any], side: int, audio: Path, work: Path, seconds: float
) -> PipelineRow:
    from speech2vid.assets import sample_face
    from speech2vid.faces import read_photo
    from speech2vid.runtime.avatar import live_avatar
    from speech2vid.runtime.live import run_live
    from speech2vid.sinks.live import NullSink
    from speech2vid.sources.live import FileSource

    # live shows a square around the face, 2.2 times the face's extent: about 0.63 of the sample portrait's
    # side, so the portrait enlarged to 1.6 times the size gives a square of at least the size
    photo = work / f"square-{side}.png"
    big = round(1.6 * side)
    square = cv2.resize(read_photo(sample_face()), (big, big), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(photo), cv2.cvtColor(square, cv2.COLOR_RGB2BGR))
    cfg = dataclasses.replace(settings.live, photo_side=max(64, side))
    avatar = live_avatar(
        [photo], aligned=False, compose=cfg.compose, photo_side=cfg.photo_side, rest_mouth=settings.generate.rest_mouth
    )
    source = FileSource(str(audio), cfg.blocksize, realtime=True, loop=False)
    start = time.perf_counter()
    with make_engine(settings) as engine:
        report = run_live(engine, avatar, source, [NullSink()], cfg, vad=settings.vad, duration=seconds)
    wall = time.perf_counter() - start
    fresh = report.frames - report.repeated - report.dropped
    lat = report.latency.summary()
    stages = {name: p50 for name, p50, _ in report.stage_table() if p50 is not None}
    side_px = avatar.present(np.zeros((109, 109, 3), np.float32)).shape if avatar.present else (109, 109)
    note = (
        f"{report.repeated} repeated, {report.dropped} dropped of {report.frames} slots; latency p99 "
        f"{lat['p99'] or float('nan'):.1f} ms"
    )
    return PipelineRow(
        "live",
        f"{side_px[1]}x{side_px[0]}",
        report.frames,
        fresh / max(wall, 1e-9),
        fresh / max(report.frames, 1),
        stages,
        note,
    )


def format_pipeline_table(rows: Sequence[PipelineRow]) -> str:
    """One line per pipeline and size: fps, real-time factor and ms per frame of each stage."""
    from speech2vid.text_table import table_lines

    offline = [r for r in rows if r.pipeline != "live"]
    names = [s for s in STAGES if any(s in r.stages for r in offline)]
    out = []
    if offline:
        header = ("pipeline", "size", "frames", "fps", "x real time", *(f"{n} ms" for n in names), "engine")
        body = [
            [
                r.pipeline,
                r.size,
                str(r.frames),
                f"{r.fps:.1f}",
                f"{r.realtime:.2f}",
                *(f"{r.stages[n]:.2f}" if n in r.stages else "-" for n in names),
                r.note,
            ]
            for r in offline
        ]
        out += table_lines(header, body, right=tuple(range(2, len(header))))
    live = [r for r in rows if r.pipeline == "live"]
    if live:
        names = list(dict.fromkeys(n for r in live for n in r.stages))
        header = ("live", "size", "fresh fps", "fresh share", *(f"{n} p50 ms" for n in names), "slots")
        body = [
            [
                r.pipeline,
                r.size,
                f"{r.fps:.1f}",
                f"{r.realtime:.2f}",
                *(f"{r.stages[n]:.1f}" if n in r.stages else "-" for n in names),
                r.note,
            ]
            for r in live
        ]
        out += [""] + table_lines(header, body, right=tuple(range(2, len(header) - 1)))
    return "\n".join(out)
