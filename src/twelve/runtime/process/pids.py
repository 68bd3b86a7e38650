"""Facts about other processes, by pid: alive or not, and waiting for one to be gone.
Used by the control commands (stop), by the builder (leftovers of killed builds) and by the boot
deadline (the workers of a node it ends)."""
from __future__ import annotations

import os
import sys
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


def exit_now(code: int) -> None:
    """Exit like sys.exit, without the interpreter's module teardown, which costs a server with
    its app loaded a good part of a second: atexit handlers still run (logging flushes, error
    reporters send what they hold), stdio is flushed. With other non-daemon threads still
    running, a normal exit waits for them as Python would."""
    threading = sys.modules.get("threading")  # never imported: no other thread runs
    if threading is not None and any(t is not threading.main_thread() and t.is_alive()
                                     and not t.daemon for t in threading.enumerate()):
        sys.exit(code)
    import atexit

    atexit._run_exitfuncs()
    flush_and_exit(code)


def flush_stdio() -> None:
    """Flush stdout and stderr; a closed or broken one is skipped."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def flush_and_exit(code: int) -> None:
    """os._exit(code) once stdout and stderr are flushed."""
    flush_stdio()
    os._exit(code)


def children(pid: int) -> list[int]:
    """The pids of the processes whose parent is ``pid``, from /proc (Linux; none elsewhere)."""
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            found.append(int(entry))
    return found
