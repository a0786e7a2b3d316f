"""The bundled default weights make a real photo talk, as a viewer would judge it.

``speech2vid generate`` (defaults: bundled ``lite`` weights, ONNX Runtime, the photo at full resolution)
renders a real photo with a closed mouth (the Face Research Lab London Set, CC BY 4.0, an evaluation
photo never used in training; data/README.md) speaking a real recording (LJ Speech, public domain;
docs/data.md) with a second of silence before and after. (A closed mouth is what a kiosk photo should
have; photos with a toothy grin, like the bundled sample, still open and close visibly, but dlib reads
their teeth as an open gap in silence: README, "Default weights", has every evaluation photo.) The video is decoded and measured with dlib's own pretrained
68-point landmarks and face-recognition model (evaluation/visible.py), which nobody here trained: the
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
from speech2vid.evaluation.visible import Instruments, LipScore, decode_video, frame_loudness, score, write_wav
from speech2vid.faces import read_photo

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
    run = subprocess.run([sys.executable, "-m", "speech2vid", "-q", "generate", "--face", str(PHOTO),
                          "--audio", str(wav), "-o", str(out)], capture_output=True, text=True, timeout=900)  # fmt: skip
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
