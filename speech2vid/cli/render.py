"""``generate``, ``demo`` and ``redub``: a photo or a video made to speak a recording."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from typing import Callable

from speech2vid.cli.options import RANDOM_LABEL, add_engine_options, engine_for, number, settings_from

log = logging.getLogger("speech2vid.cli")


def add_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    from speech2vid.config import MAX_SIDE

    p = add("generate", cmd_generate, "render a face photo speaking an audio file into an MP4")
    p.add_argument(
        "--face",
        action="append",
        required=True,
        metavar="PHOTO",
        help="face photo (repeat up to 5 times for five identity images)",
    )
    p.add_argument("--audio", required=True, metavar="FILE", help="speech: WAV, FLAC, MP3, or a video's audio track")
    p.add_argument("-o", "--output", required=True, metavar="OUT.mp4", help="output video (H.264 + AAC)")
    p.add_argument("--aligned", action="store_true", help="the photos are already aligned 112x112 face crops")
    p.add_argument("--face-index", type=int, metavar="N", help="which face when a photo has several (0 = largest)")
    p.add_argument("--allow-silence", action="store_true", help="render silent audio as a still face")
    p.add_argument(
        "--idle",
        choices=["alive", "still", "off"],
        help="frames without speech (Silero VAD): still (default), alive (blinks, slight sway) or off "
        "(the network's output even for noise)",
    )
    p.add_argument(
        "--size",
        type=number(int, 16, MAX_SIDE),
        metavar="PX",
        help="output size in pixels: the photo's longer side at most (default 1280), or with --raw-face "
        "the square's side (default 256)",
    )
    p.add_argument(
        "--raw-face",
        action="store_true",
        help="show the network's 109x109 face alone, upscaled, instead of the photo with only the lower face generated",
    )
    add_engine_options(p)

    p = add("demo", cmd_demo, "render the bundled sample face speaking the bundled sample speech")
    p.add_argument("-o", "--output", default="demo.mp4", metavar="OUT.mp4", help="output video (default demo.mp4)")
    p.add_argument(
        "--synthetic", action="store_true", help="use the bundled procedural (cartoon) face instead of the real photo"
    )
    add_engine_options(p)

    p = add(
        "redub",
        cmd_redub,
        "re-dub a video with new speech: the speaker's lips follow the new audio",
        epilog="--fit: the output is as long as the new audio (round(fps x seconds) frames at the source "
        "frame rate). loop restarts the video, pingpong plays it forwards and backwards, trim cuts "
        "it where the audio ends and, when the audio is longer, holds the last frame (logged). "
        "Frames without a face pass through unchanged and are counted in the summary.",
    )
    p.add_argument("video", metavar="VIDEO", help="source video with a speaker facing the camera")
    p.add_argument("--audio", required=True, metavar="NEW.wav", help="new speech: WAV, FLAC, MP3, or a video's audio")
    p.add_argument("-o", "--output", required=True, metavar="OUT.mp4", help="output video (source size and fps)")
    p.add_argument(
        "--face",
        action="append",
        metavar="PHOTO",
        help="identity photo instead of frames of the video (repeat up to 5 times)",
    )
    p.add_argument("--face-index", type=int, metavar="N", help="which face of the video to re-dub (0 = largest)")
    p.add_argument("--fit", choices=["loop", "trim", "pingpong"], help="fit the video to the audio (default loop)")
    p.add_argument(
        "--region",
        choices=["lower", "full"],
        help="blended region: lower = from just below the eyes down (default), full = whole face",
    )
    p.add_argument("--allow-silence", action="store_true", help="re-dub silent audio (a closed mouth)")
    p.add_argument("--strip", metavar="PNG", help="also save a before/after strip of six frames")
    add_engine_options(p)


def cmd_generate(args: argparse.Namespace) -> int:
    from speech2vid.model.ref import RANDOM
    from speech2vid.runtime.engine_choice import prefer_int8
    from speech2vid.runtime.offline import prepare_inputs, render_video

    settings = settings_from(args)
    gen = settings.generate
    inputs = prepare_inputs(
        args.face,
        args.audio,
        args.output,
        aligned=args.aligned,
        face_index=args.face_index,
        allow_silence=args.allow_silence,
        silence_threshold_dbfs=gen.silence_threshold_dbfs,
        compose=gen.compose,
        photo_max_side=gen.photo_max_side,
        rest_mouth=gen.rest_mouth,
    )
    if settings.weights != RANDOM:  # random weights have no INT8 engine to prefer
        settings = prefer_int8(
            settings,
            enabled=gen.prefer_int8,
            explicit=args.precision is not None,
            make=engine_for,
            command="generate",
            gain="speed",
            missing=logging.INFO,
        )
    ref, engine = engine_for(settings)
    e = settings.engine
    log.info(
        "model %s (%s), backend %s on %s, %s; %d frames for %.2f s of audio",
        *(ref.name, ref.source, e.backend, e.device, e.precision, inputs.n_frames, inputs.audio.duration),
    )
    label = RANDOM_LABEL if ref.is_random else None
    with engine:
        result = render_video(
            engine, inputs, gen, settings.encode, label=label, progress=not args.quiet, vad=settings.vad
        )
    print(
        f"wrote {result.output} ({result.frames} frames, {result.audio_seconds:.2f} s, "
        f"{result.fps:.1f} frames/s on {e.backend} {e.precision})"
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from speech2vid.assets import sample_face, sample_speech, sample_synth_face

    # A real photo (NASA's portrait of Eileen Collins, public domain); --synthetic: a procedural face.
    args.face = [str(sample_synth_face() if args.synthetic else sample_face())]
    args.audio = str(sample_speech())
    args.aligned = False
    args.face_index = None
    args.allow_silence = False
    args.size = None
    if args.weights is None:
        from speech2vid.config import load_model_config
        from speech2vid.model.ref import RANDOM, bundled_weights

        if bundled_weights(load_model_config(settings_from(args).model).name) is None:
            args.weights = RANDOM  # a model without bundled weights still shows the plumbing, labelled
    return cmd_generate(args)


def cmd_redub(args: argparse.Namespace) -> int:
    from speech2vid.runtime.redub import prepare_redub, run_redub

    settings = settings_from(args)
    cfg = dataclasses.replace(settings.redub, **{k: v for k, v in (("fit", args.fit), ("region", args.region)) if v})
    inputs = prepare_redub(
        args.video,
        args.audio,
        args.output,
        cfg,
        faces=args.face or (),
        face_index=args.face_index,
        allow_silence=args.allow_silence,
        silence_threshold_dbfs=settings.generate.silence_threshold_dbfs,
        strip=args.strip,
    )
    ref, engine = engine_for(settings)
    v = inputs.video
    log.info(
        "re-dubbing %s (%dx%d, %.3g fps, %d frames) with %.2f s of audio: %d frames, fit %s, region %s",
        *(
            v.path,
            v.width,
            v.height,
            float(v.rate),
            v.frames,
            inputs.audio.duration,
            inputs.n_output,
            cfg.fit,
            cfg.region,
        ),
    )
    label = RANDOM_LABEL if ref.is_random else None
    with engine:
        result = run_redub(
            engine, inputs, cfg, settings.encode, face_index=args.face_index, label=label, progress=not args.quiet
        )
    print(result.summary())
    if result.strip is not None:
        print(f"wrote {result.strip} (before/after strip)")
    return 0
