"""Bundled sample inputs for the demo and the tests (provenance and licences in README.md here)."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def sample_face() -> Path:
    """A portrait photo (NASA, astronaut Eileen Collins, public domain, via scikit-image)."""
    return _HERE / "sample_face.png"


def sample_speech() -> Path:
    """About five seconds of synthetic English speech (espeak-ng), 16 kHz mono WAV."""
    return _HERE / "sample_speech.wav"
