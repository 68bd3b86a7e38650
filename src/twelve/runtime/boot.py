"""Boot of a release: what bin/NAME execs. Isolates sys.path, dispatches the command
(``commands``, which reads the release through ``release``), and renders every ``TwelveError``
once, as a message and an exit code. Nothing imports this module back: it is the entry.
"""
from __future__ import annotations

import os
import sys

from twelve.runtime.errors import TwelveError


def isolate_sys_path(lib: str) -> None:
    """Keep lib/ and the standard library only: no site-packages of a system interpreter
    (include_python = false) may shadow or add to the release's locked dependencies."""
    sys.path[:] = [p for p in sys.path
                   if p == lib or not (p.endswith("site-packages") or p.endswith("dist-packages"))]


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    isolate_sys_path(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.realpath(__file__)))))  # lib/ of lib/twelve/runtime/boot.py
    from twelve.runtime import commands
    from twelve.runtime.process import notify

    try:
        code = commands.dispatch(argv, dict(os.environ))
    except TwelveError as e:
        sys.stdout.flush()
        print(e.render(), file=sys.stderr)
        code = e.exit_code
        notify.report_to_daemon(f"exit {code}\n{e.render()}\n")
    except KeyboardInterrupt:
        code = 130
    except BaseException as e:
        if not isinstance(e, SystemExit):
            import traceback
            notify.report_to_daemon(f"exit 1\n{traceback.format_exc()}")
        raise
    notify.report_to_daemon(f"exit {code}\nthe node exited with {code} before it was ready\n")
    from twelve.runtime.process.pids import exit_now
    exit_now(code if isinstance(code, int) else 0)
