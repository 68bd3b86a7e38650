"""How the build reports an OSError: one message naming the problem, the previous release
said to be unchanged (the full-disk build itself: tests/integration/test_build_failures.py)."""
from __future__ import annotations

import errno
import shutil
from types import SimpleNamespace

from twelve.builder.pipeline import _os_error

RELEASE = SimpleNamespace(display_root="_build/prod/rel/hello")


def test_a_full_disk_names_the_file_and_keeps_the_previous_release():
    err = _os_error(OSError(errno.ENOSPC, "No space left on device", "/b/lib/x.py"), RELEASE)
    assert err.message == "no space left on the device while building (/b/lib/x.py)"
    assert "_build/prod/rel/hello is unchanged" in err.hint


def test_copytrees_list_of_failures_is_one_message():
    """shutil.copytree raises shutil.Error (an OSError without errno) listing every file."""
    failures = [(f"/src/{i}.py", f"/b/lib/{i}.py", f"[Errno 28] No space left on device: "
                 f"'/b/lib/{i}.py'") for i in range(50)]
    err = _os_error(shutil.Error(failures), RELEASE)
    assert err.message == "no space left on the device while building (/b/lib/0.py)"


def test_another_copytree_failure_keeps_its_reason():
    err = _os_error(shutil.Error([("/s/a", "/b/a", "[Errno 13] Permission denied: '/b/a'")]),
                    RELEASE)
    assert err.message == "[Errno 13] Permission denied: '/b/a' (/b/a)"


def test_uv_running_out_of_disk_gets_the_disk_full_hint_not_its_usual_one():
    from twelve.builder.deps import uv_failure

    err = uv_failure("exporting uv.lock", "If uv.lock is out of date, run `uv lock`.", 2,
                     "error: failed to write to file: No space left on device (os error 28)")
    assert "The disk is full" in err.hint and "uv lock" not in err.hint
    usual = uv_failure("exporting uv.lock", "run `uv lock`", 2, "error: lock is stale")
    assert usual.hint == "run `uv lock`"
