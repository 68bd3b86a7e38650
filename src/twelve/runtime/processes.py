"""Facts about other processes, by pid: alive or not, and waiting for one to be gone.
Used by the control commands (stop) and by the builder (leftovers of killed builds)."""
from __future__ import annotations

import os
import time


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (signal 0 tells, /proc/PID/stat
    tells apart a zombie, which `kill -0` still finds)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def wait_gone(pid: int, timeout: float) -> bool:
    """Poll until the process is gone (it is not our child, so no waitpid)."""
    deadline = time.monotonic() + timeout
    delay = 0.002
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    return False


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False
