"""``python -m speech2vid.cli.synthetic_video OUT.mp4``: a synthetic talking-head source video
(:mod:`speech2vid.assets.synthetic_video`) for re-dubbing tests and docs."""

from __future__ import annotations

import argparse

from speech2vid.assets.synthetic_video import write_source_video


def _frame_ranges(text: str) -> set[int]:
    """``"20-22,40"`` -> {20, 21, 22, 40}."""
    out: set[int] = set()
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python3 -m speech2vid.cli.synthetic_video",
        description="Write a synthetic talking-head source video (the sample face, a moving camera).",
    )
    p.add_argument("output", help="MP4 file to write")
    p.add_argument("--frames", type=int, default=50, help="number of frames (default 50)")
    p.add_argument("--fps", type=int, default=25, help="frame rate (default 25)")
    p.add_argument("--size", default="320x240", help="WIDTHxHEIGHT, even numbers (default 320x240)")
    p.add_argument("--blank", default="", help="frames left blank (no face), e.g. 20-22,40")
    args = p.parse_args(argv)
    w, _, h = args.size.partition("x")
    path = write_source_video(
        args.output, n=args.frames, fps=args.fps, size=(int(w), int(h)), blank=_frame_ranges(args.blank)
    )
    print(f"wrote {path} ({args.frames} frames at {args.fps} fps, {args.size})")


if __name__ == "__main__":
    main()
