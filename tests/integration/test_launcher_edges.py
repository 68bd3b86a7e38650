"""bin/NAME at the edges: how CURRENT was written, how the script was reached, what the
caller's environment holds — each gets the release running or one clear error."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import free_port, release_env

pytestmark = pytest.mark.slow


@pytest.fixture
def sandbox(hello_release, tmp_path):
    """The example's release with its own releases/ (tests write into it); lib/ and python/
    are links to the built one. Every process started from it is killed after the test,
    wherever its pid file went."""
    root = tmp_path / "rel"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(hello_release / "bin" / "hello", root / "bin" / "hello")
    for name in ("lib", "python"):
        (root / name).symlink_to(hello_release / name)
    shutil.copytree(hello_release / "releases", root / "releases")
    yield root
    for pid in started_from(root):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def started_from(root: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(root).encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def run(argv: list, env: dict, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], env=env, text=True, capture_output=True,
                          timeout=60, **kw)


def test_current_without_a_final_newline_still_names_the_version(sandbox, tmp_path):
    (sandbox / "releases" / "CURRENT").write_text("0.1.0")  # printf 0.1.0 > CURRENT
    proc = run([sandbox / "bin/hello", "version"], release_env(tmp_path))
    assert (proc.returncode, proc.stdout) == (0, "hello 0.1.0\n")
    proc = run([sandbox / "bin/hello", "eval", "print(1 + 1)"], release_env(tmp_path))
    assert (proc.returncode, proc.stdout) == (0, "2\n"), proc.stderr


def test_an_empty_current_or_an_unknown_version_is_one_clear_error(sandbox, tmp_path):
    (sandbox / "releases" / "CURRENT").write_text("")
    proc = run([sandbox / "bin/hello", "eval", "1"], release_env(tmp_path))
    assert proc.returncode == 1
    assert "releases/CURRENT is missing or empty" in proc.stderr
    (sandbox / "releases" / "CURRENT").write_text("0.1.0\n")
    proc = run([sandbox / "bin/hello", "eval", "1"], release_env(tmp_path, RELEASE_VSN="9.9.9"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "no version '9.9.9'" in proc.stderr and "(it has: 0.1.0)" in proc.stderr


def test_symlinks_through_a_symlinked_directory_and_a_bare_script_name(sandbox, tmp_path):
    links = tmp_path / "links"
    links.mkdir()
    (links / "hello").symlink_to(os.path.relpath(sandbox / "bin" / "hello", links))
    (tmp_path / "deep").mkdir()
    (tmp_path / "deep" / "L2").symlink_to(links)  # a directory link: its .. is not links/..
    show_root = "import os; print(os.environ['RELEASE_ROOT'])"
    via_dir = run([tmp_path / "deep" / "L2" / "hello", "eval", show_root], release_env(tmp_path))
    assert (via_dir.returncode, via_dir.stdout.strip()) == (0, str(sandbox)), via_dir.stderr
    bare = run(["sh", "hello", "eval", show_root], release_env(tmp_path), cwd=links)
    assert (bare.returncode, bare.stdout.strip()) == (0, str(sandbox)), bare.stderr


def test_a_relative_release_tmp_is_the_callers(sandbox, tmp_path):
    """`daemon` leaves the working directory: RELEASE_TMP=rt must still mean ./rt."""
    port = free_port()
    env = release_env(tmp_path, PORT=str(port), RELEASE_TMP="rt")
    hello = sandbox / "bin" / "hello"
    assert run([hello, "daemon"], env, cwd=tmp_path).returncode == 0
    pid = run([hello, "pid"], env, cwd=tmp_path)
    assert pid.returncode == 0, pid.stderr
    assert (tmp_path / "rt" / "run" / "web.pid").read_text().strip() == pid.stdout.strip()
    assert run([hello, "stop"], env, cwd=tmp_path).returncode == 0


def test_the_callers_pythonpath_reaches_neither_the_node_nor_its_children(sandbox, tmp_path):
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "sitecustomize.py").write_text("print('EVIL')\n")
    code = ("import os, subprocess, sys; print(os.environ.get('PYTHONPATH')); "
            "subprocess.run([sys.executable, '-c', 'print(\"child\")'])")
    proc = run([sandbox / "bin/hello", "eval", code],
               release_env(tmp_path, PYTHONPATH=str(evil), PYTHONHOME=str(evil)))
    assert (proc.returncode, proc.stdout) == (0, "None\nchild\n"), proc.stderr


def test_socket_activation_variables_that_make_no_sense_are_refused(sandbox, tmp_path):
    hello = sandbox / "bin" / "hello"
    env = release_env(tmp_path, PORT=str(free_port()), LISTEN_FDS="abc")
    # LISTEN_PID must name the very process: the shell execs the launcher, which execs python
    proc = run(["sh", "-c", 'LISTEN_PID=$$ exec "$0" start', hello], env)
    # A unit that passes them wrongly is misconfigured: 78, so systemd does not restart it.
    assert proc.returncode == 78 and "Traceback" not in proc.stderr
    assert "LISTEN_FDS='abc' is not a number" in proc.stderr
    env["LISTEN_FDS"] = "1"
    proc = run(["sh", "-c", 'LISTEN_PID=$$ exec "$0" start 3</etc/hostname', hello], env)
    assert proc.returncode == 78 and "file descriptor 3 is not a listening socket" in proc.stderr


def test_a_host_that_is_no_address_here_is_a_configuration_error(sandbox, tmp_path):
    # 192.0.2.1 (TEST-NET) is on no interface here: the bind says so. "not a host!" cannot be
    # an address at all: the config evaluation says so, in its list of problems.
    for host, said in (("192.0.2.1", "Set HOST to an address of this machine"),
                       ("not a host!", "  HOST   not an IP address or host name: 'not a host!'")):
        proc = run([sandbox / "bin/hello", "start"],
                   release_env(tmp_path, PORT=str(free_port()), HOST=host))
        assert proc.returncode == 78, (host, proc.stderr)
        assert said in proc.stderr
