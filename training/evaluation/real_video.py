"""Ground truth from real talking video: ``speech2vid eval --videos DIR``.

For each clip, one of its frames is the photo (the first by default) and the clip's own audio is the
speech. ``generate`` renders that photo speaking that audio (the product's own path, MP4 and all), and
both the rendered video and the real one are measured frame by frame with dlib's pretrained 68-point
model (the original, not the runtime's compact copy: :class:`speech2vid.training.evaluation.visible.Instruments`).

Per clip and system:

* ``r_real``: Pearson correlation of the system's inner-lip gap (``faces.ibug68.lip_gap_ratio``) with the
  real speaker's, frame by frame;
* ``std_ratio``: the system's gap standard deviation over the real one's (1: as much motion as the person);
* ``lmd``: mouth landmark distance, the mean over frames and over points 48-67 of the distance between the
  system's and the real mouth, each taken relative to the mean of its own nose points 27-35 and divided by
  its own inter-ocular distance (head position and size removed), in % of the inter-ocular distance.

Systems: ``model`` (the rendered video), ``still`` (the photo frame held for the whole clip: the baseline
to beat) and ``real`` (the clip itself, which must score LMD 0 and r 1: a check of the instrument).

Beside them, per clip, ``loudness_r``: the real lip gap's correlation with the clip's own loudness (dB per
frame). It says how much of this speaker's lip motion the sound's envelope explains: a speaker who opens
the mouth to breathe before speaking, or barely moves the jaw, scores low, and no model driven by the
audio can be expected to follow such lips much better.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from speech2vid.faces.ibug68 import LEFT_EYE, NOSE_BASE, NOSE_BRIDGE, RIGHT_EYE, lip_gap_ratio

MOUTH = tuple(range(48, 68))
NOSE = NOSE_BRIDGE + NOSE_BASE  # 27-35
SYSTEMS = ("model", "still", "real")
FIGURE_TILES = 6  # frames shown per clip in the side-by-side figure
FIGURE_PX = 160  # side of each mouth tile in the figure


@dataclass(frozen=True)
class ClipScore:
    frames: int  # frames compared (both videos have a face)
    r_real: float
    std_ratio: float
    lmd: float  # % of the inter-ocular distance


# ----------------------------------------------------------------------------- pure measures


def mouth_shape(points: np.ndarray) -> np.ndarray:
    """(20, 2) mouth points 48-67 relative to the nose points' mean, in inter-ocular distances."""
    pts = np.asarray(points, dtype=np.float64)
    iod = float(np.linalg.norm(pts[list(RIGHT_EYE)].mean(axis=0) - pts[list(LEFT_EYE)].mean(axis=0)))
    shape: np.ndarray = (pts[list(MOUTH)] - pts[list(NOSE)].mean(axis=0)) / max(iod, 1e-6)
    return shape


def mouth_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean point distance between two faces' mouths (:func:`mouth_shape`), in % of the inter-ocular distance."""
    return float(np.linalg.norm(mouth_shape(a) - mouth_shape(b), axis=1).mean() * 100.0)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 3 or np.std(a) < 1e-9 or np.std(b) < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def compare(system: Sequence[np.ndarray | None], real: Sequence[np.ndarray | None]) -> ClipScore:
    """Score a system's per-frame landmarks against the real clip's (None: no face in that frame)."""
    both = [(s, r) for s, r in zip(system, real) if s is not None and r is not None]
    if not both:
        return ClipScore(0, math.nan, math.nan, math.nan)
    gap_s = np.array([lip_gap_ratio(s) for s, _ in both])
    gap_r = np.array([lip_gap_ratio(r) for _, r in both])
    std_r = float(np.std(gap_r))
    return ClipScore(
        frames=len(both),
        r_real=_pearson(gap_s, gap_r),
        std_ratio=float(np.std(gap_s)) / std_r if std_r > 1e-9 else math.nan,
        lmd=float(np.mean([mouth_distance(s, r) for s, r in both])),
    )


def loudness_r(real: Sequence[np.ndarray | None], loudness: np.ndarray) -> float:
    """Pearson correlation of the real inner-lip gap with the per-frame loudness, over frames with a face."""
    both = [(lip_gap_ratio(r), float(db)) for r, db in zip(real, loudness) if r is not None]
    if not both:
        return math.nan
    gap, loud = np.array(both).T
    return _pearson(gap, loud)


# ----------------------------------------------------------------------------- clips


@dataclass(frozen=True, eq=False)
class MeasuredClip:
    """A real clip measured once at 25 fps (the source frame nearest each tick): its landmarks, the frames
    that are kept (the photo and the figure's), and its audio at 16 kHz."""

    name: str
    points: list[np.ndarray | None]  # dlib's 68 points per tick, None where it finds no face
    kept: dict[int, np.ndarray]  # tick -> RGB frame, for the ticks asked for
    signal_16k: np.ndarray


def clip_ticks(frames: int, rate: Fraction, samples_16k: int, seconds: float | None) -> list[int]:
    """The source frame shown at each 25 fps tick; the count follows the shorter of picture and sound."""
    from speech2vid.audio.constants import SAMPLE_RATE
    from speech2vid.features.windows import FPS

    duration = min(Fraction(frames) / rate, Fraction(samples_16k, SAMPLE_RATE))
    if seconds is not None:
        duration = min(duration, Fraction(seconds).limit_denominator(1000))
    n = max(1, int(duration * FPS))
    return [min(frames - 1, int(Fraction(k, FPS) * rate + Fraction(1, 2))) for k in range(n)]


def measure_clip(path: Path, inst: Any, keep: Callable[[int], set[int]], seconds: float | None = None) -> MeasuredClip:
    """Decode a talking clip (rotation applied), streaming, and measure every tick's face; ``keep(n)``
    names the ticks whose frames are kept, given the tick count (called before any frame is decoded)."""
    from speech2vid.audio.io import load_speech
    from speech2vid.features.windows import SAMPLES_PER_FRAME
    from speech2vid.sources.video_file import SourceFrames, fit_plan, probe_video

    info = probe_video(path)
    signal = load_speech(path)[1]
    ticks = clip_ticks(info.frames, info.rate, signal.size, seconds)
    wanted = keep(len(ticks))
    points: list[np.ndarray | None] = []
    kept: dict[int, np.ndarray] = {}
    with SourceFrames(info) as source:
        frames = source.frames(fit_plan(info.frames, info.frames, "trim"))
        j, rgb = -1, None
        for k, source_index in enumerate(ticks):
            while j < source_index:  # ticks never go backwards: a source frame is decoded once
                rgb = next(frames)
                j += 1
            assert rgb is not None
            points.append(_points(inst, rgb))
            if k in wanted:
                kept[k] = rgb
    return MeasuredClip(path.name, points, kept, signal[: len(ticks) * SAMPLES_PER_FRAME])


def _points(inst: Any, rgb: np.ndarray) -> np.ndarray | None:
    shape = inst.face(rgb)
    return None if shape is None else np.asarray(inst.points(shape))


def figure_ticks(n: int) -> set[int]:
    return set(np.linspace(0, n - 1, min(FIGURE_TILES, n)).round().astype(int).tolist())


def mouth_tile(rgb: np.ndarray, points: np.ndarray | None) -> np.ndarray:
    """A FIGURE_PX square around the mouth (1.6 inter-ocular distances wide), grey where no face was found."""
    import cv2

    if points is None:
        return np.full((FIGURE_PX, FIGURE_PX, 3), 96, np.uint8)
    centre = points[list(MOUTH)].mean(axis=0)
    side = 1.6 * float(np.linalg.norm(points[list(RIGHT_EYE)].mean(axis=0) - points[list(LEFT_EYE)].mean(axis=0)))
    scale = FIGURE_PX / max(side, 1.0)
    m = np.array([[scale, 0.0, FIGURE_PX / 2 - scale * centre[0]], [0.0, scale, FIGURE_PX / 2 - scale * centre[1]]])
    return np.asarray(
        cv2.warpAffine(rgb, m, (FIGURE_PX, FIGURE_PX), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    )


def clip_figure(
    real: dict[int, np.ndarray],
    model: dict[int, np.ndarray],
    real_pts: Sequence[np.ndarray | None],
    model_pts: Sequence[np.ndarray | None],
) -> np.ndarray:
    """Two rows of mouth tiles at the same moments: the real speaker on top, the rendered face below."""
    picks = sorted(set(real) & set(model))
    top = np.concatenate([mouth_tile(real[k], real_pts[k]) for k in picks], axis=1)
    bottom = np.concatenate([mouth_tile(model[k], model_pts[k]) for k in picks], axis=1)
    return np.concatenate([top, np.full((4, top.shape[1], 3), 255, np.uint8), bottom], axis=0)


# ----------------------------------------------------------------------------- the evaluation

Render = Callable[[Path, Path, Path], None]  # (photo, speech file, output mp4), the product's generate path


def evaluate_videos(
    clips: Sequence[Path],
    render: Render,
    *,
    photo_frame: int = 0,
    seconds: float | None = None,
    figure: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score every clip (model, still, real); with ``figure``, save real and rendered mouths side by side."""
    import cv2
    from tqdm import tqdm

    from speech2vid.training.evaluation.visible import Instruments, decode_video, frame_loudness, write_wav

    inst = Instruments()
    per_clip: list[dict[str, Any]] = []
    rows: list[np.ndarray] = []
    bar = tqdm(total=len(clips), unit="clip", desc="eval videos", disable=not progress, dynamic_ncols=True)
    with tempfile.TemporaryDirectory(prefix="speech2vid-eval-videos-") as tmp_name:
        tmp = Path(tmp_name)
        for path in clips:

            def keep(n: int) -> set[int]:  # said before the clip is decoded and measured
                if photo_frame >= n:
                    raise ValueError(
                        f"{path.name} has {n} frames at 25 fps: --photo-frame {photo_frame} is past its end"
                    )
                return figure_ticks(n) | {photo_frame}

            clip = measure_clip(path, inst, keep, seconds)
            n = len(clip.points)
            photo_pts = clip.points[photo_frame]
            if photo_pts is None:
                raise ValueError(
                    f"dlib finds no face in frame {photo_frame} of {path.name}: give another --photo-frame"
                )
            photo = tmp / "photo.png"
            cv2.imwrite(str(photo), cv2.cvtColor(clip.kept[photo_frame], cv2.COLOR_RGB2BGR))
            out = tmp / "model.mp4"
            render(photo, write_wav(tmp / "speech.wav", clip.signal_16k), out)
            model_pts: list[np.ndarray | None] = []
            model_kept: dict[int, np.ndarray] = {}
            for k, rgb in zip(range(n), decode_video(out)):
                model_pts.append(_points(inst, rgb))
                if k in clip.kept:
                    model_kept[k] = rgb
            systems = {
                "model": compare(model_pts, clip.points),
                "still": compare([photo_pts] * n, clip.points),
                "real": compare(clip.points, clip.points),
            }
            per_clip.append(
                {
                    "clip": clip.name,
                    "frames": n,
                    **{k: asdict(v) for k, v in systems.items()},
                    "loudness_r": loudness_r(clip.points, frame_loudness(clip.signal_16k, n)),
                }
            )
            if figure is not None:
                real_kept = {k: v for k, v in clip.kept.items() if k in figure_ticks(n)}
                rows.append(clip_figure(real_kept, model_kept, clip.points, model_pts))
            bar.update()
    bar.close()
    result = summarise(per_clip)
    if figure is not None and rows:
        write_figure(figure, rows)
        result["figure"] = str(figure)
    return result


def _median(values: Iterable[float]) -> float:
    v = np.array([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    return float(np.median(v)) if v.size else math.nan


# The acceptance bar of the issue "Lips that move like a person's", on medians over held-out clips.
BAR = {"r_real": 0.6, "lmd_vs_still": 0.85}


def summarise(per_clip: list[dict[str, Any]]) -> dict[str, Any]:
    medians = {s: {k: _median(c[s][k] for c in per_clip) for k in ("r_real", "std_ratio", "lmd")} for s in SYSTEMS}
    ratio = medians["model"]["lmd"] / medians["still"]["lmd"] if medians["still"]["lmd"] > 0 else math.nan
    return {
        "clips": per_clip,
        "median": medians,
        "loudness_r": _median(c.get("loudness_r", math.nan) for c in per_clip),
        "lmd_vs_still": ratio,
        "bar": BAR,
        "meets_bar": {
            "r_real": medians["model"]["r_real"] >= BAR["r_real"],
            "lmd_vs_still": ratio <= BAR["lmd_vs_still"],
        },
    }


def table(result: dict[str, Any]) -> str:
    lines = [f"{'clip':24} {'frames':>6}  " + "  ".join(f"{s + ' r':>8} {s + ' LMD':>10}" for s in SYSTEMS)]
    for c in result["clips"]:
        lines.append(
            f"{c['clip'][:24]:24} {c['frames']:6d}  "
            + "  ".join(f"{c[s]['r_real']:8.2f} {c[s]['lmd']:10.2f}" for s in SYSTEMS)
        )
    lines.append("")
    lines.append(f"{'median':8} {'r real':>7} {'std ratio':>10} {'LMD %IOD':>9}")
    for s in SYSTEMS:
        m = result["median"][s]
        lines.append(f"{s:8} {m['r_real']:7.2f} {m['std_ratio']:10.2f} {m['lmd']:9.2f}")
    lines.append(
        f"the real lips' r with their own loudness {result['loudness_r']:.2f} "
        "(how much of this speaker's lip motion the sound's envelope explains)"
    )
    ok = result["meets_bar"]
    lines.append(
        f"model LMD / still LMD {result['lmd_vs_still']:.2f} (bar <= {BAR['lmd_vs_still']}: "
        f"{'ok' if ok['lmd_vs_still'] else 'MISSED'}); r with the real lips (bar >= {BAR['r_real']}: "
        f"{'ok' if ok['r_real'] else 'MISSED'})"
    )
    return "\n".join(lines)


def write_figure(path: Path, rows: list[np.ndarray]) -> None:
    """Stack the clips' rows (real above rendered) into one image, written atomically."""
    from speech2vid.sinks.image_file import write_image

    width = max(r.shape[1] for r in rows)
    gap = np.full((10, width, 3), 255, np.uint8)
    parts: list[np.ndarray] = []
    for r in rows:
        pad = np.full((r.shape[0], width - r.shape[1], 3), 255, np.uint8)
        parts += [np.concatenate([r, pad], axis=1), gap]
    write_image(path, np.concatenate(parts[:-1], axis=0), "the figure")
