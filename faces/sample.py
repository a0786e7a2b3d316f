"""Where the bundled demo photo lives."""

from __future__ import annotations

from pathlib import Path

SAMPLE_FACE_FILE = "sample_face.png"  # in the speech2vid.assets package


def sample_face_path() -> Path:
    """Path of the bundled sample face (NASA portrait of Eileen Collins, public domain)."""
    import speech2vid.assets

    return Path(speech2vid.assets.__file__).resolve().parent / SAMPLE_FACE_FILE
