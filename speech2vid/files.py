"""File helpers shared by the stages that write artefacts others trust: content hashes and atomic writes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterator


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (engines and weights are tens of MB)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def partial_path(path: Path, suffix: str = "") -> Path:
    """The temporary name a writer uses beside ``path``: hidden, and tagged with this process's id so that
    two writers never share one and a dead writer's leftovers can be told apart (``.<name>.partial-<pid>``)."""
    return path.with_name(f".{path.name}.partial-{os.getpid()}{suffix}")


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends normally it is renamed to ``path``
    (atomic on one file system), otherwise deleted. A reader never sees half a file under ``path``.

    ``suffix`` is appended to the temporary name for writers that pick a format by extension.
    """
    path = Path(path)
    tmp = partial_path(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON through a temporary file and a rename, so a reader never sees half a manifest."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")


PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
SPEECH_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".opus")


def files_in(folder: str | os.PathLike[str], suffixes: tuple[str, ...], what: str, option: str) -> list[Path]:
    """The files of ``folder`` (not below it) with one of ``suffixes``, sorted; a one-line
    :class:`~speech2vid.errors.UserError` naming ``option`` when it is not a folder or holds none."""
    from speech2vid.errors import UserError

    d = Path(folder).expanduser()
    if not d.is_dir():
        raise UserError(f"{option} {d} is not a folder: pass a folder of {what}")
    files = sorted(p for p in d.iterdir() if p.suffix.lower() in suffixes)
    if not files:
        raise UserError(f"no {what} ({', '.join(suffixes)}) in {d}")
    return files
