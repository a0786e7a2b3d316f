"""``speech2vid eval --photos --speech``: the measure of what a viewer sees, and the measure checked itself.

The instruments are dlib's pretrained landmark and face-recognition models; the checks here make sure the
measure can tell a talking face from a still one: the still photo scores no lip motion, and the photo-mode
ground truth (the photo's lips moved along eSpeak NG's own phoneme timeline) scores above the bar.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from speech2vid.training.evaluation.visible import (
    PhotoLook,
    frame_loudness,
    lagged_correlations,
    lip_gap_ratio,
    lip_ring_lab,
    score,
    silent_frames,
)

ROOT = Path(__file__).resolve().parents[1]
EVAL_PHOTOS = ROOT / "data" / "eval" / "photos"
EVAL_SPEECH = ROOT / "data" / "eval" / "speech"


def test_lip_gap_ratio_is_gap_over_eye_distance() -> None:
    pts = np.zeros((68, 2))
    pts[36:42] = [0.0, 0.0]  # right eye centre at x = 0
    pts[42:48] = [40.0, 0.0]  # left eye centre at x = 40: inter-ocular distance 40
    for top, bottom in ((61, 67), (62, 66), (63, 65)):
        pts[top] = [20.0, 50.0]
        pts[bottom] = [20.0, 54.0]  # a 4 px gap
    assert lip_gap_ratio(pts) == pytest.approx(0.1)


def test_lagged_correlation_finds_a_known_delay() -> None:
    rng = np.random.default_rng(0)
    loud = np.convolve(rng.standard_normal(300), np.ones(4) / 4, mode="same")
    gap = np.roll(loud, 2)  # the mouth follows the sound by 2 frames
    lags = lagged_correlations(gap, loud)
    assert max(lags, key=lambda k: lags[k]) == 2 and lags[2] == pytest.approx(1.0, abs=0.05)


def test_silences_are_runs_of_five_quiet_frames() -> None:
    loud = np.full(40, -20.0)
    loud[10:13] = -80.0  # 120 ms: too short
    loud[20:30] = -80.0  # 400 ms: a silence
    quiet = silent_frames(loud)
    assert not quiet[10:13].any() and quiet[20:30].all() and quiet.sum() == 10


def test_frame_loudness_follows_the_signal() -> None:
    t = np.arange(16000) / 16000
    x = np.where(t < 0.5, 0.5 * np.sin(2 * np.pi * 200 * t), 0.0)
    loud = frame_loudness(x, 25)
    assert loud[5] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.5) and loud[20] < -90


def test_a_still_face_scores_no_motion() -> None:
    s = score(np.full(100, 0.2), np.linspace(-40, -10, 100), [0.1])
    assert s.gap_std < 1e-12 and s.r_loudness == 0.0 and s.identity_distance == pytest.approx(0.1)
    s = score(np.full(10, math.nan), np.zeros(10), [])
    assert s.faces_found == 0 and math.isnan(s.gap_std)


def _lips_photo() -> tuple[np.ndarray, np.ndarray]:
    """A textured 320 px skin image with red lips drawn at the mouth model's base shape (its own canvas)."""
    import cv2

    from speech2vid.faces.mouth_model import BASE_SHAPE

    rng = np.random.default_rng(3)
    img = np.clip(rng.normal((200, 160, 140), 12, (320, 320, 3)), 0, 255).astype(np.uint8)  # skin with grain
    points = BASE_SHAPE.copy()
    points[61:64, 1] -= 3  # lips a little apart, so that the ring has an inside
    points[65:68, 1] += 3
    cv2.fillPoly(img, [np.round(points[48:60]).astype(np.int32)], (170, 50, 60))
    cv2.fillPoly(img, [np.round(points[60:68]).astype(np.int32)], (40, 20, 20))
    return img, points


def test_the_lip_ring_colour_is_cielab_of_the_lips() -> None:
    """Against scikit-image's own sRGB -> CIE Lab (D65), an independent reference: within 1 dE (OpenCV's
    8-bit Lab rounds)."""
    from skimage.color import rgb2lab

    img, points = _lips_photo()
    got = lip_ring_lab(img, points)
    want = rgb2lab(np.array([[[170, 50, 60]]], np.uint8))[0, 0]
    assert np.linalg.norm(got - want) < 1.0, (got, want)


def test_the_photo_compared_with_itself_is_as_sharp_and_as_coloured() -> None:
    import cv2

    img, points = _lips_photo()
    look = PhotoLook.of(img, points, (img.shape[1], img.shape[0]))
    ratio, de = look.compare(img, points)
    assert ratio == pytest.approx(1.0) and de == pytest.approx(0.0, abs=1e-9)
    blurred = cv2.GaussianBlur(img, (0, 0), 2.0)  # what an enlarged 109 px face does to the photo's grain
    ratio, de = look.compare(blurred, points)
    assert ratio < 0.3, ratio
    grey = img.copy()
    ring = np.abs(img.astype(int) - (170, 50, 60)).sum(axis=2) == 0
    grey[ring] = (120, 110, 110)  # lips drawn grey: the colour a viewer notices
    ratio, de = look.compare(grey, points)
    assert de > 20, de
    big = cv2.resize(img, (640, 640), interpolation=cv2.INTER_CUBIC)  # a frame at another size than the photo
    look_big = PhotoLook.of(img, points, (640, 640))
    ratio, de = look_big.compare(cv2.resize(img, (640, 640), interpolation=cv2.INTER_AREA), points * 2)
    assert ratio == pytest.approx(1.0) and de < 1.0
    assert look_big.compare(big, points * 2)[0] < 1.0  # cubic enlargement is softer than the area-resized photo


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="the photo-mode truth needs eSpeak NG (apt-get install espeak-ng)"
)
def test_eval_photos_scores_still_near_zero_and_truth_above_the_bar(tmp_path: Path) -> None:
    photos, speech = tmp_path / "photos", tmp_path / "speech"
    photos.mkdir()
    speech.mkdir()
    shutil.copy(EVAL_PHOTOS / "02_biden.jpg", photos)
    shutil.copy(EVAL_SPEECH / "jfk_inaugural.flac", speech)
    out = tmp_path / "eval.json"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "speech2vid",
            "eval",
            "--photos",
            str(photos),
            "--speech",
            str(speech),
            "--seconds",
            "5",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "gap std" in run.stdout and "bar (model" in run.stdout
    res = json.loads(out.read_text())
    med = res["median"]
    assert med["still"]["gap_std"] < 0.002  # the measure sees no motion in a still photo
    assert med["truth"]["gap_std"] >= 0.04 and med["truth"]["r_loudness"] >= 0.4  # and sees a talking one
    assert med["model"]["identity_distance"] < 0.6  # dlib's own rule: the same person
    assert med["still"]["sharpness"] == 1.0 and med["still"]["lip_colour_de"] == 0.0
    assert 0.3 < med["model"]["sharpness"] < 1.5 and med["model"]["lip_colour_de"] < 30
    assert res["look"]["least_sharp"][0] == "02_biden.jpg" and "every photo (model)" in run.stdout
    pair = res["pairs"][0]
    assert pair["model"]["frames"] == 125 and pair["model"]["faces_found"] == 125


def test_eval_needs_both_folders(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "speech2vid", "eval", "--photos", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "--photos DIR and --speech DIR together" in run.stderr
