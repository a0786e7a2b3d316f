"""File helpers shared by the stages that write artefacts others trust: content hashes and atomic writes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pwd
import socket
from pathlib import Path
from typing import Any, Iterator


def user_path(path: str | os.PathLike[str]) -> Path:
    """``path`` with a leading ``~`` expanded as the XDG base directory spec says: the cache
    (``~/.cache/...``) under ``$XDG_CACHE_HOME`` when that is an absolute path, else under ``$HOME``;
    an empty or unset ``HOME`` falls back to the account's home in the password database (Python's
    ``expanduser`` would make ``/.cache`` of it, a folder at the file system's root)."""
    from speech2vid.errors import UserError

    text = os.fspath(path)
    if text != "~" and not text.startswith("~/"):
        return Path(text).expanduser()  # ~user/... or no tilde at all
    rest = text[2:]
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg) and (rest == ".cache" or rest.startswith(".cache/")):
        return Path(xdg, rest[len(".cache") :].lstrip("/"))
    home = os.environ.get("HOME", "")
    if not os.path.isabs(home):
        try:
            home = pwd.getpwuid(os.getuid()).pw_dir
        except KeyError:  # no account entry (some containers): nowhere sensible to put it
            home = ""
    if not os.path.isabs(home):
        raise UserError(
            f"cannot place {text}: HOME is not set and this user has no home folder; set HOME, or give "
            "an absolute path (e.g. --cache-dir /var/cache/speech2vid)"
        )
    return Path(home, rest)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (engines and weights are tens of MB)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def partial_path(path: Path, suffix: str = "") -> Path:
    """The temporary name a writer uses beside ``path``: hidden, and tagged with this host and process id so
    that two writers never share one, and a dead writer's leftovers can be told apart from those of a
    writer on another machine sharing the folder (``.<name>.partial-<host>-<pid>``)."""
    return path.with_name(f".{path.name}.partial-{host_tag()}-{os.getpid()}{suffix}")


def host_tag() -> str:
    """This machine's name as it goes into partial names: letters, digits and ``_`` only (a process id is
    only meaningful on the host that issued it)."""
    name = socket.gethostname() or "localhost"
    return "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in name)[:64]


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends normally it is renamed to ``path``
    (atomic on one file system), otherwise deleted. A reader never sees half a file under ``path``.

    ``suffix`` is appended to the temporary name for writers that pick a format by extension. An OS error
    while writing (:func:`speech2vid.outputs.is_write_error`) becomes one line naming ``path``.
    """
    from speech2vid.outputs import is_write_error, write_failed

    path = Path(path)
    tmp = partial_path(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        if is_write_error(exc):  # a full disk, a quota, a read-only folder: one line naming the path
            raise write_failed(path, exc) from None
        raise
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:  # the folder vanished or went read-only: nothing more can be done here
            pass


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON through a temporary file and a rename, so a reader never sees half a manifest."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")


PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
SPEECH_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".opus")
VIDEO_SUFFIXES = (
    ".mp4",
    ".mov",
    ".mkv",
    ".avi",
    ".webm",
    ".m4v",
    ".mpg",
    ".mpeg",
    ".flv",
    ".ts",
)  # inputs: FFmpeg reads them


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
