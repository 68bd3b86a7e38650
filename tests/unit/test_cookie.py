"""The control cookie: made by the node at first boot in its private run dir, never shipped;
found by node and clients in the same order; refused, without showing it, when unsafe."""
from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from twelve.runtime.control import channel, cookie
from twelve.runtime.errors import CONFIG, NOT_RUNNING


@pytest.fixture
def tmp(tmp_path):
    """A RELEASE_TMP whose run/ the node has made, as acquire_lock does before the cookie."""
    channel.make_run_dir(tmp_path)
    return tmp_path


def test_the_node_makes_a_private_cookie_once_and_keeps_it(tmp):
    made = cookie.node_cookie(tmp, {})
    path = tmp / "run" / "COOKIE"
    st = path.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o400, os.geteuid())
    assert len(made) == 64 and path.read_bytes() == made + b"\n"
    assert cookie.node_cookie(tmp, {}) == made, "a second boot reuses it"
    assert sorted(p.name for p in (tmp / "run").iterdir()) == ["COOKIE"], "no scratch left"


def test_a_second_maker_never_replaces_the_first(tmp):
    """Two process types booting at once: the first link wins, the other reads that one."""
    first = cookie.node_cookie(tmp, {})
    cookie._make(tmp / "run" / "COOKIE")
    assert cookie.node_cookie(tmp, {}) == first
    assert sorted(p.name for p in (tmp / "run").iterdir()) == ["COOKIE"]


def test_the_cookie_is_never_readable_by_others_while_it_is_written(tmp, monkeypatch):
    """The scratch file is 0400 from its creation, whatever the umask."""
    seen = []
    real_link = os.link

    def spy(src, dst):
        seen.append(stat.S_IMODE(os.stat(src).st_mode))
        return real_link(src, dst)

    monkeypatch.setattr(os, "link", spy)
    old = os.umask(0)
    try:
        cookie.node_cookie(tmp, {})
    finally:
        os.umask(old)
    assert seen == [0o400]


def test_sources_in_order_for_node_and_client(tmp):
    (tmp / "run" / "web.sock").touch()
    path = tmp / "run" / "COOKIE"
    path.write_text("from-the-file-0123\n")
    path.chmod(0o400)
    credentials = tmp / "creds"
    credentials.mkdir()
    (credentials / "cookie").write_text("from-the-credential\n")
    both = {"CREDENTIALS_DIRECTORY": str(credentials), "RELEASE_COOKIE": " from-the-env-0123\n"}
    for find in (lambda env: cookie.node_cookie(tmp, env),
                 lambda env: cookie.client_cookie(tmp, env, "web", "hello")):
        assert find({}) == b"from-the-file-0123"
        assert find({"CREDENTIALS_DIRECTORY": str(credentials)}) == b"from-the-credential"
        assert find(both) == b"from-the-env-0123", "every source is stripped, the variable too"
        undecodable = "cookie-\udcff-" + "x" * 20  # environment bytes that are no UTF-8
        assert find({"RELEASE_COOKIE": undecodable}) == b"cookie-\xff-" + b"x" * 20


def test_a_given_cookie_leaves_no_file(tmp):
    cookie.node_cookie(tmp, {"RELEASE_COOKIE": "x" * 32})
    assert not (tmp / "run" / "COOKIE").exists()


def test_a_client_never_makes_one(tmp):
    with pytest.raises(channel.NotRunning, match="hello is not running") as e:
        cookie.client_cookie(tmp, {}, "web", "hello")
    assert e.value.exit_code == NOT_RUNNING
    assert not (tmp / "run" / "COOKIE").exists()


def test_a_node_given_its_cookie_tells_the_client_to_give_it_too(tmp):
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(tmp / "run" / "web.sock"))
    try:
        with pytest.raises(cookie.CookieError, match="hello is running, but there is no "
                                                     "cookie in ") as e:
            cookie.client_cookie(tmp, {}, "web", "hello")
    finally:
        listener.close()
    assert "RELEASE_COOKIE" in e.value.hint and e.value.exit_code == CONFIG


@pytest.mark.parametrize("source", ["file", "credential", "env"])
@pytest.mark.parametrize("value", ["", "  \n", "sh0rt"])
def test_empty_or_short_cookies_are_refused(tmp, source, value):
    path = tmp / "run" / "COOKIE"
    path.write_text(value if source == "file" else "x" * 64)
    path.chmod(0o400)
    environ = {}
    if source == "credential":
        (tmp / "creds").mkdir()
        (tmp / "creds" / "cookie").write_text(value)
        environ["CREDENTIALS_DIRECTORY"] = str(tmp / "creds")
    if source == "env":
        environ["RELEASE_COOKIE"] = value
    with pytest.raises(cookie.CookieError, match="the cookie from .* is (empty|5 bytes)") as e:
        cookie.node_cookie(tmp, environ)
    assert e.value.exit_code == CONFIG
    assert ("gen.secret" if source == "env" else "rm ") in e.value.hint
    assert "sh0rt" not in e.value.render(), "never the value"


@pytest.mark.parametrize("mode", [0o440, 0o404, 0o644, 0o600 | 0o004])
def test_a_cookie_others_may_read_is_refused(tmp, mode):
    path = tmp / "run" / "COOKIE"
    path.write_text("s3cr3t-" * 8)
    path.chmod(mode)
    for find in (lambda: cookie.node_cookie(tmp, {}),
                 lambda: cookie.client_cookie(tmp, {}, "web", "hello")):
        with pytest.raises(cookie.CookieError, match=f"has mode {mode:04o}: other users") as e:
            find()
        assert f"rm {path}" in e.value.hint and "chmod 400" in e.value.hint
        assert "s3cr3t" not in e.value.render()


def test_an_owner_only_writable_cookie_is_accepted(tmp):
    path = tmp / "run" / "COOKIE"
    path.write_text("x" * 64)
    path.chmod(0o600)
    assert cookie.node_cookie(tmp, {}) == b"x" * 64


@pytest.mark.parametrize("kind", ["symlink", "directory"])
def test_a_cookie_that_is_no_regular_file_is_refused(tmp, kind):
    path = tmp / "run" / "COOKIE"
    if kind == "symlink":
        target = tmp / "elsewhere"
        target.write_text("x" * 64)
        target.chmod(0o400)
        path.symlink_to(target)
    else:
        path.mkdir()
    with pytest.raises(cookie.CookieError, match="is not a regular file") as e:
        cookie.node_cookie(tmp, {})
    assert f"rm -r {path}" in e.value.hint


def test_a_file_system_without_hard_links_still_gets_a_cookie(tmp, monkeypatch):
    def no_links(src, dst):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    made = cookie.node_cookie(tmp, {})
    assert len(made) == 64 and oct((tmp / "run" / "COOKIE").stat().st_mode & 0o777) == "0o400"
    assert sorted(p.name for p in (tmp / "run").iterdir()) == ["COOKIE"]


AS_NOBODY = """\
import os, sys
from pathlib import Path
from twelve.runtime.control import cookie
import secrets  # imported when a cookie is made; nobody may not read this venv's stdlib
os.setgid(65534); os.setuid(65534)
try:
    if sys.argv[2] == "node":
        cookie.node_cookie(Path(sys.argv[1]), {})
    else:
        cookie.client_cookie(Path(sys.argv[1]), {}, "web", "hello")
except cookie.CookieError as e:
    print(e.render()); sys.exit(e.exit_code)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
@pytest.mark.parametrize("owner", ["root", "root-readable", "nobody"])
def test_a_cookie_of_another_user_is_refused(owner):
    """As nobody: root's cookie is another user's (unreadable, or refused if it were
    readable); nobody's own is used."""
    shared = Path(tempfile.mkdtemp(prefix="twelve-cookie-"))  # pytest's tmp is root's only
    try:
        shared.chmod(0o755)
        run = shared / "run"
        run.mkdir(mode=0o700)
        (run / "COOKIE").write_text("s3cr3t-" * 8)
        (run / "COOKIE").chmod(0o400)
        if owner == "nobody":
            os.chown(run, 65534, 65534)
            os.chown(run / "COOKIE", 65534, 65534)
        if owner == "root-readable":
            run.chmod(0o711)
            (run / "COOKIE").chmod(0o444)
        src = Path(cookie.__file__).parents[3]
        proc = subprocess.run([sys.executable, "-c", AS_NOBODY, str(shared), "client"],
                              text=True,
                              capture_output=True, env={"PYTHONPATH": str(src)}, timeout=60)
    finally:
        subprocess.run(["rm", "-rf", str(shared)], check=True)
    if owner == "nobody":
        assert (proc.returncode, proc.stdout) == (0, ""), proc.stderr
        return
    assert proc.returncode == CONFIG, proc.stderr
    expected = ("cannot read the cookie" if owner == "root" else
                "belongs to uid 0, not to this user (uid 65534)")
    assert expected in proc.stdout
    assert "s3cr3t" not in proc.stdout + proc.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_a_run_dir_the_node_cannot_write_is_one_clear_error():
    """As nobody, in its own run/ made read-only: exit 78 naming RELEASE_TMP, no traceback."""
    shared = Path(tempfile.mkdtemp(prefix="twelve-cookie-"))
    try:
        shared.chmod(0o755)
        run = shared / "run"
        run.mkdir(mode=0o500)
        os.chown(run, 65534, 65534)
        src = Path(cookie.__file__).parents[3]
        proc = subprocess.run([sys.executable, "-c", AS_NOBODY, str(shared), "node"],
                              text=True, capture_output=True, env={"PYTHONPATH": str(src)},
                              timeout=60)
        assert not list(run.iterdir()), "no scratch file left"
    finally:
        subprocess.run(["rm", "-rf", str(shared)], check=True)
    assert proc.returncode == CONFIG, proc.stderr
    assert f"cannot write the cookie {run}/COOKIE: Permission denied" in proc.stdout
    assert "RELEASE_TMP" in proc.stdout and "Traceback" not in proc.stderr
