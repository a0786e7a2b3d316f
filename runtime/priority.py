"""Ask the OS to run this process's threads ahead of others (``live.nice``): the live loop shares the CPU
with a kiosk's browser or speech recogniser, and a frame that waits for a core arrives late.

Linux keeps a nice value per thread, so every thread that exists now (the loop, the engine's worker,
ONNX Runtime's pool, the sinks) is set, and threads started later inherit it from their creator. Going
below 0 needs CAP_SYS_NICE (root, or ``setcap cap_sys_nice+ep`` on the interpreter, or a systemd unit's
``Nice=``); without it nothing changes and :func:`raise_priority` says so.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("speech2vid.runtime.priority")


def raise_priority(nice: int) -> bool:
    """Set every thread of this process to ``nice`` (-20..19; 0 leaves them alone); True when it took."""
    if nice == 0 or not hasattr(os, "setpriority"):
        return False
    tasks = Path("/proc/self/task")
    tids = [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [0]
    try:
        for tid in tids:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
    except PermissionError:
        log.info(
            "live: running at normal priority (live.nice %d needs CAP_SYS_NICE: run as a systemd unit with "
            "Nice=%d, or set live.nice: 0 to silence this)",
            nice,
            nice,
        )
        return False
    except ProcessLookupError:  # a thread ended meanwhile: the others are set
        pass
    log.info("live: threads at nice %d", nice)
    return True
