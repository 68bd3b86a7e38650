"""The running system: daemon, pid, rpc, remote, stop, restart and the control channel's
security, against the example's real release, real processes and real HTTP."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import Release, get, tree_digest, wait_http
from twelve.runtime.process.pids import alive

pytestmark = pytest.mark.slow


@pytest.fixture
def own_release(hello_release, tmp_path):
    """A private copy of the release, for tests that change it."""
    root = tmp_path / "copy" / "hello"
    shutil.copytree(hello_release, root, symlinks=True)
    release = Release(root, tmp_path)
    release("eval", "hello.release.migrate()", check=True)
    yield release
    release.cleanup()


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout
    return [int(p) for p in out.split()]


def test_daemon_pid_rpc(rel):
    pid = rel.daemon()
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    assert b"twelve_boot.py\0start\0web" in cmdline, "pid is the live node itself"
    assert get(rel.url("/"))[0] == 200
    assert rel("rpc", "1 + 1", check=True).stdout == "2\n"
    assert rel("rpc", "import os; print(os.getpid())", check=True).stdout == f"{pid}\n"
    failing = rel("rpc", 'raise ValueError("x")')
    assert failing.returncode == 1 and "ValueError: x" in failing.stderr
    # rpc reaches the app's state: modules named in the code are imported for it.
    assert rel("rpc", "hello.db.metadata.tables['counters'].name", check=True).stdout == \
        "'counters'\n"
    # The app imported before the workers fork is frozen out of the collector (gc.freeze), so
    # their collections do not copy the pages they share with the node.
    assert int(rel("rpc", "import gc; gc.get_freeze_count()", check=True).stdout) > 10_000
    assert rel("stop").returncode == 0 and rel("stop").stdout == ""
    assert not alive(pid)


def test_remote_with_piped_input(rel):
    rel.daemon()
    script = "x = 40\nx + 2\nfor i in range(2):\n    print('line', i)\n\nprint(undefined)\n"
    proc = rel("remote", input=script)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["42", "line 0", "line 1"]
    assert "NameError: name 'undefined' is not defined" in proc.stderr
    assert get(rel.url("/"))[0] == 200, "the node keeps serving after the session"


@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_remote_interactive_session(rel, sigint):
    """Started with SIGINT ignored too (as by a non-interactive shell's `&`): Ctrl-C still
    cancels the input."""
    pexpect = pytest.importorskip("pexpect")
    rel.daemon()
    disposition = signal.SIG_DFL if sigint == "default" else signal.SIG_IGN
    child = pexpect.spawn(str(rel.root / "bin" / "hello"), ["remote"], env=rel.env,
                          encoding="utf-8", timeout=15, dimensions=(40, 120),
                          preexec_fn=lambda: signal.signal(signal.SIGINT, disposition))
    try:
        child.expect(">>> ")
        child.sendline("import hello.db")
        child.expect(">>> ")
        child.send("hello.db.metad\t")          # completion of a name in the node
        child.expect("metadata")
        child.sendline(".tables['counters'].name")
        child.expect("'counters'")
        child.expect(">>> ")
        child.sendline("for i in range(3):")      # a multi-line statement
        child.expect(r"\.\.\. ")
        child.send("\x03")                        # Ctrl-C cancels the current input only
        child.expect("KeyboardInterrupt")
        child.expect(">>> ")
        child.sendline("6 * 7")
        child.expect("42")
        assert get(rel.url("/"))[0] == 200
        child.sendeof()                           # Ctrl-D detaches
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert get(rel.url("/"))[0] == 200, "detaching does not stop the node"


def test_app_output_and_sessions_do_not_mix(rel, tmp_path):
    rel.daemon()
    log = Path(rel.env["RELEASE_TMP"]) / "log" / "hello.log"
    proc = rel("rpc", "print('from-the-session'); import logging; "
                      "logging.getLogger('hello').warning('from-the-app-log')")
    assert "from-the-session" in proc.stdout and "from-the-app-log" not in proc.stdout
    rel("stop", check=True)
    text = log.read_text()
    assert "from-the-app-log" in text and "from-the-session" not in text


def test_wrong_cookie_is_refused(rel):
    rel.daemon()
    # rpc, not pid: the launcher answers pid from the lock without the channel (test_pid.py)
    proc = rel("rpc", "1 + 1", RELEASE_COOKIE="not-the-cookie-of-this-node")
    assert proc.returncode == 1 and "authentication failed" in proc.stderr
    run_dir = Path(rel.env["RELEASE_TMP"]) / "run"
    assert oct(run_dir.stat().st_mode & 0o777) == "0o700"
    assert oct((run_dir / "web.sock").stat().st_mode & 0o777) == "0o600"


NOBODY_CLIENT = """
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("connect:", e.strerror); raise SystemExit
head = s.recv(4)
print(json.loads(s.recv(struct.unpack('>I', head)[0])) if head else "closed")
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runuser"), reason="needs root")
def test_another_uid_is_refused(hello_release, tmp_path):
    shared = Path(os.environ.get("TMPDIR", "/tmp")) / f"twelve-uid-{os.getpid()}"
    shared.mkdir(mode=0o755)
    release = Release(hello_release, tmp_path, RELEASE_TMP=str(shared))
    try:
        release.daemon()
        sock = shared / "run" / "web.sock"
        nobody = ["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-c", NOBODY_CLIENT,
                  str(sock)]
        # The 0700 directory keeps other users away from the socket altogether...
        blocked = subprocess.run(nobody, capture_output=True, text=True)
        assert "connect: Permission denied" in blocked.stdout, blocked.stderr
        # ...and with the directory opened up, SO_PEERCRED refuses them before any handshake.
        os.chmod(shared / "run", 0o755)
        os.chmod(sock, 0o666)
        refused = subprocess.run(nobody, capture_output=True, text=True)
        assert "permission denied: connect as the node's own user" in refused.stdout
        assert release("pid").returncode == 0
        release("stop", check=True)
    finally:
        release.cleanup()
        shutil.rmtree(shared, ignore_errors=True)


def test_restart_under_load_refuses_nothing_and_rereads_config(own_release):
    rel = own_release
    pid = rel.daemon()
    runtime_py = rel.root / "releases" / "0.1.0" / "runtime.py"
    runtime_py.write_text(runtime_py.read_text() + '\nconfig("hello", greeting="Restarted")\n')
    failures, successes, stop = [], [0], threading.Event()

    def hammer() -> None:
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(rel.url("/visits"), timeout=20) as r:
                    assert r.status == 200
                successes[0] += 1
            except Exception as e:  # noqa: BLE001 - every failure counts
                failures.append(repr(e))

    clients = [threading.Thread(target=hammer) for _ in range(8)]
    for c in clients:
        c.start()
    try:
        time.sleep(0.5)
        before = successes[0]
        assert rel("restart").returncode == 0
        time.sleep(0.5)
    finally:
        stop.set()
        for c in clients:
            c.join()
    assert failures == []
    assert successes[0] > before > 0
    assert int(rel("pid", check=True).stdout) == pid, "restart keeps the node's pid"
    assert b"Restarted from a twelve release" in get(rel.url("/"))[1]


def test_sigterm_drains_slow_requests(rel):
    rel.env["WEB_CONCURRENCY"] = "2"
    pid = rel.daemon()
    results = []

    def slow() -> None:
        results.append(get(rel.url("/slow?seconds=1.5")))

    threads = [threading.Thread(target=slow) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    os.kill(pid, 15)
    for t in threads:
        t.join()
    assert [r[0] for r in results] == [200, 200]
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)
    log = (Path(rel.env["RELEASE_TMP"]) / "log" / "hello.log").read_text()
    assert "Shutting down: Master" in log


def test_stop_start_errors_and_stale_files(rel):
    assert rel("stop").returncode == 3
    pid = rel.daemon()
    again = rel("daemon")
    assert again.returncode == 1 and f"already running (pid {pid})" in again.stderr
    workers = children(pid)
    os.kill(pid, 9)
    deadline = time.monotonic() + 5
    while (alive(pid) or any(alive(w) for w in workers)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(alive(w) for w in workers), "workers die with the node"
    assert rel("pid").returncode == 3
    new = rel.daemon()
    assert new != pid and get(rel.url("/"))[0] == 200
    rel("stop", check=True)
    missing = rel("daemon", SECRET_KEY_BASE="")
    assert missing.returncode == 78
    assert "SECRET_KEY_BASE" in missing.stderr and "missing" in missing.stderr
    assert rel("pid").returncode == 3


def test_daemon_log_rotation(rel):
    rel.env.update(TWELVE_LOG_MAX_BYTES="1500", TWELVE_LOG_FILES="2", TWELVE_ACCESS_LOG="true")
    rel.daemon()
    for _ in range(60):
        assert get(rel.url("/visits"))[0] == 200
    rel("stop", check=True)
    log_dir = Path(rel.env["RELEASE_TMP"]) / "log"
    files = sorted(p.name for p in log_dir.iterdir())
    assert files == ["hello.log", "hello.log.1", "hello.log.2"], files
    assert all((log_dir / f).stat().st_size <= 1500 for f in files)


def test_process_types(rel):
    web = rel.daemon()
    worker = rel.daemon("worker")
    assert worker != web
    assert rel("rpc", "--process", "worker", "import hello.worker; hello.worker.__name__",
               check=True).stdout == "'hello.worker'\n"
    assert rel("stop", "worker").returncode == 0
    assert not alive(worker) and alive(web)
    assert rel("pid", "worker").returncode == 3
    unknown = rel("start", "nosuch")
    assert unknown.returncode == 1 and "unknown process type 'nosuch'" in unknown.stderr
    rel("stop", check=True)


def test_sd_notify_and_watchdog(rel, tmp_path, nodes):
    notify_path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify_path))
    listener.settimeout(15)
    env = dict(rel.env, NOTIFY_SOCKET=str(notify_path), WATCHDOG_USEC="200000")
    node = nodes([str(rel.root / "bin" / "hello"), "start"], env, rel.port)
    messages = []
    while not any("READY=1" in m for m in messages):
        messages.append(listener.recv(4096).decode())
    assert get(rel.url("/"))[0] == 200
    while not any("WATCHDOG=1" in m for m in messages):
        messages.append(listener.recv(4096).decode())
    assert node.terminate() == 0
    rest = []
    listener.settimeout(2)
    try:
        while True:
            rest.append(listener.recv(4096).decode())
    except socket.timeout:
        pass
    assert any("STOPPING=1" in m for m in rest)
    listener.close()


@pytest.mark.skipif(not shutil.which("systemd-socket-activate"), reason="needs systemd")
def test_systemd_socket_activation(rel, nodes):
    env = dict(rel.env, PORT="1")  # never bound: the socket comes from systemd
    passed = [f"--setenv={k}={v}" for k, v in env.items()]  # it gives the child no other env
    argv = ["systemd-socket-activate", "-l", f"127.0.0.1:{rel.port}", *passed,
            str(rel.root / "bin" / "hello"), "start"]
    node = nodes(argv, env, rel.port)
    time.sleep(0.2)
    status, body, _ = get(rel.url("/"))  # the first connection starts the node
    assert status == 200 and b"twelve release" in body
    assert node.terminate() == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a read-only bind mount")
def test_read_only_release_root(own_release, tmp_path):
    rel = own_release
    before = tree_digest(rel.root)
    script = (f"mount --bind {rel.root} {rel.root} && mount -o remount,bind,ro {rel.root} && "
              f"B={rel.root}/bin/hello && $B daemon && $B pid && $B rpc '1 + 1' && "
              f"touch {rel.root}/probe 2>/dev/null && echo WRITABLE; $B stop")
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                          env=rel.env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split()
    assert lines[1] == "2" and "WRITABLE" not in lines
    assert tree_digest(rel.root) == before, "nothing is written inside the release"


def test_start_repl(rel):
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(str(rel.root / "bin" / "hello"), ["start_repl"], env=rel.env,
                          encoding="utf-8", timeout=20)
    try:
        child.expect(">>> ")
        wait_http(rel.url("/"), 20)
        child.sendline("import os; os.getpid() == %d" % child.pid)
        child.expect("True")
        child.sendeof()  # leaving the REPL stops the node
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0


def test_daemon_repl_then_remote(rel):
    rel("daemon_repl", check=True)
    rel.pids.add(int(rel("pid", check=True).stdout))
    assert rel("remote", input="1 + 2\n", check=True).stdout == "3\n"
    rel("stop", check=True)


def test_restart_follows_a_switched_current_symlink(hello_release, tmp_path):
    """Upgrades by symlink: `restart` re-execs bin/hello as it was invoked, through `current`."""
    versions = tmp_path / "versions"
    for name, greeting in (("a", "Version A"), ("b", "Version B")):
        shutil.copytree(hello_release, versions / name / "hello", symlinks=True)
        runtime_py = versions / name / "hello" / "releases" / "0.1.0" / "runtime.py"
        runtime_py.write_text(runtime_py.read_text() + f'\nconfig("hello", greeting="{greeting}")\n')
    current = tmp_path / "current"
    current.symlink_to(versions / "a" / "hello")
    rel = Release(current, tmp_path)
    rel.bin_override = current / "bin" / "hello"
    try:
        pid = rel.daemon()
        assert b"Version A" in get(rel.url("/"))[1]
        switched = tmp_path / "current.new"
        switched.symlink_to(versions / "b" / "hello")
        os.replace(switched, current)
        assert rel("restart").returncode == 0
        assert b"Version B" in get(rel.url("/"))[1]
        assert int(rel("pid", check=True).stdout) == pid
        rel("stop", check=True)
    finally:
        rel.cleanup()
