"""Leftovers of writers that died: hidden ``.<name>.partial-<host>-<pid>[.ext]`` files whose process is gone.

Every writer of a file others trust writes to such a temporary name and renames it when complete; an
error, Ctrl-C or SIGTERM deletes it. Only SIGKILL (or a power cut) leaves one behind, so the next run
into the same folder removes those whose writer no longer exists. A live process id, even of another
user's process, keeps its file: that writer may still be working. A file named for another host is
never touched: on a shared or network folder its process id means nothing here, and its writer may be
running there.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from speech2vid.files import host_tag

log = logging.getLogger("speech2vid.partials")

# ".<name>.partial-<host>-<pid>" with an optional extension, the names sinks and atomic writers use
# (speech2vid.files.partial_path).
_PARTIAL = re.compile(r"^\..+\.partial-(?P<host>[A-Za-z0-9_]{1,64})-(?P<pid>[0-9]{1,10})(?:\.[A-Za-z0-9]{1,8})?$")


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host exists (any user's)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # exists, owned by someone else; or not a pid at all
        return True
    return True


def remove_stale_partials(folder: Path) -> list[Path]:
    """Delete the temporary files of dead writers in ``folder`` (not recursive); returns what was removed."""
    removed: list[Path] = []
    here = host_tag()
    try:
        entries = list(os.scandir(folder))
    except OSError:  # an unreadable folder: the writer's own checks report it
        return removed
    for entry in entries:
        match = _PARTIAL.match(entry.name)
        if (
            match is None
            or match["host"] != here
            or not entry.is_file(follow_symlinks=False)
            or process_alive(int(match["pid"]))
        ):
            continue
        try:
            os.unlink(entry.path)
        except OSError:  # another run removed it first, or the folder is read-only: nothing to do
            continue
        removed.append(Path(entry.path))
        log.info("removed %s, left by a run that was killed (process %s)", entry.path, match["pid"])
    return removed


# A build's staging folder (engine.cache.staging): ".build.partial-<host>-<pid>-<random>".
_STAGING = re.compile(r"^\.build\.partial-(?P<host>[A-Za-z0-9_]{1,64})-(?P<pid>[0-9]{1,10})-[A-Za-z0-9_]+$")


def remove_stale_staging(folder: Path) -> list[Path]:
    """Delete the staging folders in ``folder`` of this host's builds that were killed (SIGKILL, power cut):
    nothing reads an engine from them, but they hold tens of MB."""
    import shutil

    removed: list[Path] = []
    here = host_tag()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _STAGING.match(entry.name)
        if (
            match is None
            or match["host"] != here
            or not entry.is_dir(follow_symlinks=False)
            or process_alive(int(match["pid"]))
        ):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
        log.info("removed %s, left by a build that was killed (process %s)", entry.path, match["pid"])
    return removed
