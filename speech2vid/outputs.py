"""The one rule for every file the product writes: ``-o``, ``--stats``, ``--json``, ``--strip``, ``--plot``,
``file://`` sinks and cache files.

1. A path that is one of the run's inputs is refused, compared by inode (a relative path, a symlink or a
   hard link to the input is the same file).
2. A path that exists and is not a regular file (a folder, device, FIFO or socket) is refused: the
   writers rename a finished temporary file onto their path, which would replace ``/dev/null`` or a FIFO
   with a plain file. Nothing here documents streaming to such a path.
3. Two outputs of one run that name the same file are refused.
4. Every writer writes through a temporary file in the same folder and renames it when complete
   (:func:`speech2vid.files.atomic_path`).
5. An OS error while writing (a full disk, a quota, a read-only or vanished folder) is one line naming
   the path and the cause (:func:`write_failed`); the temporary file is removed, and what the run wrote
   to its other outputs is kept.

Checks run before any slow work, so a bad path costs nothing.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Iterable, Sequence

from speech2vid.errors import OutputError


class WriteFailed(OutputError, OSError):
    """Writing an output failed at the OS level. An :class:`OSError` too, so callers that handle OS
    errors (an unwritable cache) still do; the CLI prints it as one line."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): not the same file
        return False


def check_output(
    path: str | os.PathLike[str],
    *,
    what: str,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    suffixes: Sequence[str] = (),
) -> Path:
    """``path`` (``~`` expanded) when the run may write it; else an :class:`OutputError` naming ``what``
    (the option, e.g. ``--stats``) and how to fix it.

    ``inputs``: the run's input files (None entries are skipped). ``suffixes``: the endings allowed (lower
    case, with the dot), for writers that pick a format by the name.
    """
    p = Path(path).expanduser()
    if not str(path):
        raise OutputError(f"{what}: the path is empty: give a file name")
    if suffixes and p.suffix.lower() not in suffixes:
        raise OutputError(f"{what} {p} must end in {' or '.join(suffixes)}")
    try:
        mode = p.stat().st_mode  # follows a symlink: what a rename would replace is the link, what it names matters
    except FileNotFoundError:
        mode = None
    except OSError as exc:  # a path through a file (a/b where a is a file), a loop of links, no permission
        raise OutputError(f"{what} {p} cannot be written ({_cause(exc)}): give another path") from None
    if mode is not None and not stat.S_ISREG(mode):
        raise OutputError(
            f"{what} {p} is {_kind(mode)}, not a regular file: give a file path; "
            "outputs are written to a temporary file and renamed, which would replace it"
        )
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{what} folder {parent} does not exist: create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{what} folder {parent} is not writable: give a path in a folder you can write")
    if mode is not None:
        for given in inputs:
            if given is not None and _same_file(p, Path(given).expanduser()):
                raise OutputError(
                    f"{what} {p} is also an input ({given}): it would be overwritten; write to another file"
                )
    _try_create(p, what)
    return p


def _try_create(path: Path, what: str) -> None:
    """Create and remove the temporary file the writer will use: a folder that looks writable may not take
    a file (/proc, a read-only mount, a full inode table), and that should be known before the slow work."""
    from speech2vid.files import partial_path

    tmp = partial_path(path, ".probe")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise OutputError(
            f"{what} {path} cannot be written ({_cause(exc)}): give a path in a folder you can write"
        ) from None
    os.close(fd)
    try:
        os.unlink(tmp)
    except OSError:
        pass


def check_distinct(outputs: Sequence[tuple[str, Path | None]]) -> None:
    """Refuse two outputs of one run that name the same file: ``outputs`` are (option, path) pairs as
    :func:`check_output` returned them (None entries are skipped)."""
    seen: list[tuple[str, Path]] = []
    for what, path in outputs:
        if path is None:
            continue
        key = Path(os.path.abspath(path))
        for other_what, other in seen:
            if Path(os.path.abspath(other)) == key or _same_file(other, key) or _same_parent_name(other, key):
                raise OutputError(f"{what} and {other_what} both name {path}: give each output its own file")
        seen.append((what, path))


def _same_parent_name(a: Path, b: Path) -> bool:
    """The same name in the same folder reached two ways (``./x.mp4`` and ``dir/../x.mp4``, symlinked folders)."""
    return a.name == b.name and _same_file(
        a.parent if str(a.parent) else Path("."), b.parent if str(b.parent) else Path(".")
    )


# OS errors that mean "this output cannot be written", as opposed to a bug or a missing input.
WRITE_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EFBIG,
        errno.EROFS,
        errno.EIO,
        errno.EACCES,
        errno.EPERM,
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.ENXIO,
        errno.ESTALE,
    }
)


def _cause(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    if exc.errno == errno.EDQUOT:
        return "disk quota exceeded"
    if exc.errno == errno.EFBIG:
        return "file too large for this file system or the process's file size limit"
    return exc.strerror or exc.__class__.__name__


def write_failed(path: str | os.PathLike[str], exc: OSError) -> WriteFailed:
    """The one-line error for an OS error while writing ``path``."""
    full = exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    return WriteFailed(
        f"cannot write {Path(path)}: {_cause(exc)}; nothing was left under that name: "
        f"{'free some space or ' if full else ''}give another path"
    )


def is_write_error(exc: BaseException) -> bool:
    """``exc`` is an OS error a writer turns into :func:`write_failed` (disk full, read-only, ...)."""
    return isinstance(exc, OSError) and not isinstance(exc, OutputError) and exc.errno in WRITE_ERRNOS
