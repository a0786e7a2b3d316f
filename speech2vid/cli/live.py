"""``live`` and ``devices``: options, start-up summary, signals, the final report."""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from speech2vid.cli.options import RANDOM_LABEL, add_engine_options, engine_for, settings_from
from speech2vid.errors import UserError
from speech2vid.files import write_json_atomic

log = logging.getLogger("speech2vid.live")

MAX_DURATION_S = 7 * 24 * 3600.0  # --duration: a week; a longer kiosk run needs no stop at all


def add_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    from speech2vid.features.windows import MAX_LOOKAHEAD_COLUMNS, lookahead_seconds

    p = add(
        "live", cmd_live, "a face speaking live: microphone (or file) -> window, MP4 or null, with measured latency"
    )
    p.add_argument(
        "--face",
        action="append",
        metavar="PHOTO",
        help="face photo (repeat up to 5 times; default the bundled sample face)",
    )
    p.add_argument("--aligned", action="store_true", help="the photos are already aligned 112x112 face crops")
    p.add_argument(
        "--source",
        default="mic://default",
        metavar="URI",
        help="mic://default, mic://<device name or index> (see `speech2vid devices`), "
        "file://speech.wav[?realtime=0&loop=1&play=1], silence:// or webrtc:// (the microphone of a browser "
        "showing the --sink webrtc:// page) (default mic://default)",
    )
    p.add_argument(
        "--sink",
        action="append",
        metavar="URI",
        help="display://, file://out.mp4[?meter=1], webrtc://HOST:PORT[?viewers=N&size=PX] (a page on "
        "http://HOST:PORT/, 127.0.0.1:8080 by default) or null:// (repeatable; default display://)",
    )
    p.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this much audio")
    p.add_argument(
        "--soak",
        action="store_true",
        help="soak test: sample memory and latency every --duration/10 s (at least 10 s; 60 s without "
        "--duration) and report their drift at exit and in --stats",
    )
    p.add_argument("--stats", metavar="FILE.json", help="write frame counts and latency statistics as JSON")
    p.add_argument(
        "--lookahead-ms",
        type=float,
        metavar="MS",
        help=f"audio waited for past each frame: {lookahead_seconds(0) * 1e3:g} + "
        f"{(lookahead_seconds(1) - lookahead_seconds(0)) * 1e3:g} R ms, "
        f"R = 0..{MAX_LOOKAHEAD_COLUMNS} (default: the model's look-ahead; less fills the unheard columns with "
        "silence)",
    )
    p.add_argument(
        "--idle",
        choices=["alive", "still", "off"],
        help="nobody speaks: alive (still mouth, blinks, sway; default), still, off (the network throughout)",
    )
    p.add_argument("--drop-policy", choices=["drop", "repeat"], help="when the engine falls behind (default repeat)")
    p.add_argument("--fullscreen", action="store_true", help="kiosk: borderless fullscreen window, cursor hidden")
    p.add_argument("--no-overlay", action="store_true", help="no fps/latency/level text on the window")
    add_engine_options(p)

    add("devices", cmd_devices, "list the capture devices a mic:// source can name")


def cmd_live(args: argparse.Namespace) -> int:
    from speech2vid.runtime.engine_choice import live_precision

    settings = settings_from(args)
    plan = plan_live(args, settings)  # URIs and paths are checked before any engine loads
    settings = live_precision(settings, explicit=args.precision is not None, make=engine_for)
    ref, engine = engine_for(settings)
    return run_planned(plan, settings, engine, ref)


def live_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """``live:`` config keys set by command-line options."""
    out: dict[str, Any] = {}
    if args.lookahead_ms is not None:
        out["lookahead_ms"] = args.lookahead_ms
    if args.drop_policy is not None:
        out["drop_policy"] = args.drop_policy
    if getattr(args, "idle", None) is not None:
        out["idle"] = args.idle
    if args.fullscreen:
        out["fullscreen"] = True
    if args.no_overlay:
        out["overlay"] = False
    return out


def _install_stop_handlers(stop: threading.Event) -> Callable[[], None]:
    """Ctrl-C / SIGTERM (systemd stop) set ``stop`` so the loop ends between frames and files are finalised."""

    def handler(signum: int, _frame: object) -> None:
        stop.set()
        stop.signum = signum  # type: ignore[attr-defined]

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for s, h in previous.items():
            signal.signal(s, h)

    return restore


@dataclass(frozen=True)
class LivePlan:
    """What ``live`` will read and write, checked before the engine loads: a typo in a URI or a path costs
    nothing."""

    photos: list[str]
    source_uri: str
    source: Any  # a runtime.sources.Source, not opened
    sinks: list[Any]  # sinks.live.SinkSpec, nothing opened
    stats: Path | None
    duration: float | None
    aligned: bool  # the photos are registered 112x112 crops
    soak: bool  # sample memory and latency through the run


def plan_live(args: argparse.Namespace, settings: Any) -> LivePlan:
    """Check ``live``'s options against the one output rule (:mod:`speech2vid.outputs`): no output may be
    an input (a face photo, the source file, the background image) or another output, or a device."""
    from speech2vid.assets import sample_face
    from speech2vid.outputs import check_distinct, check_output
    from speech2vid.sinks.live import sink_spec
    from speech2vid.sinks.video_file import check_output_path
    from speech2vid.sources.live import CaptureOptions, parse_source

    cfg = settings.live
    duration = args.duration
    if duration is not None and not (math.isfinite(duration) and 0 < duration <= MAX_DURATION_S):
        raise UserError(f"--duration must be seconds within (0, {MAX_DURATION_S:.0f}] (a week), got {duration}")
    photos = args.face or [str(sample_face())]
    if len(photos) > 5:
        raise UserError(f"give 1 to 5 face photos (--face), got {len(photos)}")
    options = CaptureOptions(
        blocksize=cfg.blocksize,
        latency=cfg.latency,
        ring_seconds=cfg.ring_seconds,
        stall_seconds=cfg.stall_seconds,
        reopen_seconds=cfg.reopen_seconds,
    )
    specs = [sink_spec(uri) for uri in args.sink or ["display://"]]
    source = parse_source(args.source, options)
    pages = [spec for spec in specs if spec.webrtc is not None]
    if len(pages) > 1:
        raise UserError("give one --sink webrtc://HOST:PORT: one page serves every viewer (?viewers=N)")
    if pages:
        from speech2vid.sinks.webrtc import require_webrtc_extra

        require_webrtc_extra()  # before any engine loads or is chosen
    if args.source.lower().startswith("webrtc:") and not pages:
        raise UserError(
            "--source webrtc:// needs --sink webrtc://HOST:PORT: the page that shows the avatar sends the microphone"
        )
    inputs = [p for p in (*photos, cfg.background_image, getattr(source, "path", None)) if p is not None]
    outputs: list[tuple[str, Path | None]] = [
        (f"--sink {spec.uri}", check_output_path(spec.path, inputs=inputs, what=f"--sink {spec.uri}"))
        for spec in specs
        if spec.path is not None
    ]
    stats = check_output(args.stats, what="--stats", inputs=inputs) if args.stats else None
    check_distinct([*outputs, ("--stats", stats)])
    return LivePlan(photos, args.source, source, specs, stats, duration, aligned=args.aligned, soak=args.soak)


def run_planned(plan: LivePlan, settings: Any, engine: Any, model: Any) -> int:
    """Run ``speech2vid live`` as ``plan`` says with ``engine`` (made by the CLI, not opened yet) for
    ``model`` (its ``name`` and ``is_random`` label the outputs)."""
    from speech2vid.runtime import live
    from speech2vid.runtime.avatar import live_avatar
    from speech2vid.sinks.live import open_sink

    cfg = settings.live
    duration, source = plan.duration, plan.source
    avatar = live_avatar(
        plan.photos,
        aligned=plan.aligned,
        compose=cfg.compose,
        photo_side=cfg.photo_side,
        rest_mouth=settings.generate.rest_mouth,
    )
    label = RANDOM_LABEL if model.is_random else None
    codec = settings.encode.codec_options(live=True)
    sinks: list[Any] = []

    def summary(report: Any) -> None:
        rate = f", device rate {source.device_rate} Hz resampled to 16 kHz" if source.device_rate != 16000 else ""
        print(
            f"speech2vid live: source {source.description}{rate}\n"
            f"  engine {engine.label}\n"
            f"  sinks {', '.join(s.description for s in sinks)}\n"
            f"  look-ahead {report.lookahead_ms:.1f} ms (model {report.model_lookahead_ms:.1f} ms), inference "
            f"{report.inference_ms:.1f} ms/frame, expected latency ~{report.expected_latency_ms:.0f} ms; drop policy "
            f"{cfg.drop_policy}, idle {cfg.idle}, voice activity {report.vad}\n"
            f"  {'running for %.0f s' % duration if duration else 'running'}; Ctrl-C (or q / Esc in the window) stops"
            + "".join(f"\n  open {s.url} in a browser" for s in sinks if hasattr(s, "url")),
            flush=True,
        )

    stop = threading.Event()
    restore = _install_stop_handlers(stop)
    try:
        for spec in plan.sinks:
            sinks.append(open_sink(spec, cfg, label=label, codec=codec))
        page = next((s for s in sinks if hasattr(s, "server")), None)
        if hasattr(source, "attach") and page is not None:
            source.attach(page.server)  # the page's microphone is the source
        with engine:
            soak_interval = (max(10.0, duration / 10) if duration else 60.0) if plan.soak else None
            report = live.run_live(
                engine,
                avatar,
                source,
                sinks,
                cfg,
                vad=settings.vad,
                duration=duration,
                stop=stop,
                soak_interval=soak_interval,
                on_start=summary,
            )
    except BaseException:
        for s in sinks:  # run_live closes them itself once it has started; closing twice is harmless
            s.close(abort=True)
        raise
    finally:
        restore()
    e = settings.engine
    report.meta = {
        "source": plan.source_uri,
        "sinks": [spec.uri for spec in plan.sinks],
        "engine": engine.label,
        "backend": e.backend,
        "device": e.device,
        "precision": e.precision,
        "model": model.name,
        "drop_policy": cfg.drop_policy,
        "idle_mode": cfg.idle,
        "blocksize": cfg.blocksize,
    }
    lat = report.latency.summary()

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    print(
        f"{report.frames} frames ({report.rendered} rendered, {report.idle} idle, {report.repeated} repeated, "
        f"{report.dropped} dropped, {report.late} late) for {report.audio_samples / 16000:.2f} s of audio; "
        f"latency median {fmt(lat['median'])} ms, p99 {fmt(lat['p99'])} ms ({report.ended})"
    )
    print(stage_table(report))
    if report.soak:
        d = report.as_dict()["soak_drift"]
        print(
            f"soak drift after warm-up ({len(report.soak)} samples): RSS {fmt(d['rss_mb'])} MiB "
            f"({fmt(d['rss_mb_per_hour'])} MiB/h), latency median {fmt(d['latency_median_ms'])} ms "
            f"({fmt(d['latency_median_ms_per_hour'])} ms/h), p99 {fmt(d['latency_p99_ms'])} ms "
            f"({fmt(d['latency_p99_ms_per_hour'])} ms/h)"
        )
    for s in sinks:
        if getattr(s, "written", False):
            print(f"wrote {s.path} ({s.frames} frames)")
    if plan.stats is not None:
        write_json_atomic(plan.stats, report.as_dict())
    if report.error:
        raise UserError(f"{report.error}; outputs were finalised")
    return _stopped_by(getattr(stop, "signum", None))


def _stopped_by(signum: int | None) -> int:
    """The exit status of a run a signal ended, as every other command's (130 SIGINT, 143 SIGTERM), with
    one line saying so; here the outputs were finalised, not removed: a recording stopped is complete."""
    if signum is None:
        return 0
    what, code = ("interrupted (SIGINT)", 130) if signum == signal.SIGINT else ("terminated (SIGTERM)", 143)
    print(f"speech2vid: {what}: stopped, outputs finalised", file=sys.stderr)
    return code


def stage_table(report: Any) -> str:
    """The per-stage latency breakdown of fresh frames: p50 / p99 in ms, then the total."""
    rows = report.stage_table()

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:7.1f}"

    lines = [f"latency by stage ({report.stages['total'].count} rendered frames measured)   p50 ms   p99 ms"]
    lines += [f"  {name:<52}{fmt(p50)}  {fmt(p99)}" for name, p50, p99 in rows]
    return "\n".join(lines)


def cmd_devices(args: argparse.Namespace) -> int:
    from speech2vid.sources.live import list_devices

    devices = list_devices()
    if not devices:
        print("no capture devices found (is a microphone connected, or PulseAudio running?)")
        return 0
    print("capture devices (use mic://<index> or mic://<name>; * = mic://default):")
    for d in devices:
        print(
            f"{'*' if d['default'] else ' '} {d['index']:3d}  {d['name']}  ({d['channels']} ch, "
            f"{d['default_samplerate']:.0f} Hz)"
        )
    return 0
