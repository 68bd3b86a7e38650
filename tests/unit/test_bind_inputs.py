"""The variables the node reads when it binds and reports readiness (LISTEN_FDS, the inherited
listener, WATCHDOG_USEC), and a HOST that reaches the bind: each is accepted or exit 78, never
a traceback. Property-tested with what os.environ can hold (see test_config_inputs).
"""
from __future__ import annotations

import os

import pytest
from hypothesis import given

from test_config_inputs import PROPERTY, environ_text
from twelve.runtime.config.env import ConfigError
from twelve.runtime.errors import CONFIG
from twelve.runtime.process import listen, notify


def test_a_host_that_slips_past_the_config_is_exit_78_at_bind_time():
    with pytest.raises(ConfigError) as caught:
        listen.bind("x" * 100_000, 4000)
    assert caught.value.exit_code == CONFIG and len(caught.value.render()) < 300


@PROPERTY
@given(text=environ_text)
def test_listen_fds_is_a_number_or_exit_78(text):
    if not text or text.isascii() and text.strip().isdigit():
        return  # unset, or a number: socket activation takes fd 3, which is pytest's here
    environ = {"LISTEN_FDS": text, "LISTEN_PID": str(os.getpid())}
    with pytest.raises(ConfigError) as caught:
        listen.activated(environ)
    assert "LISTEN_FDS" in caught.value.message and "LISTEN_FDS" not in environ


@pytest.mark.parametrize("text", ["٣", "1_0", "9" * 5000, "-1", "+1"])
def test_listen_fds_that_int_would_misread_is_exit_78(text):
    with pytest.raises(ConfigError, match="is not a number of file descriptors"):
        listen.activated({"LISTEN_FDS": text, "LISTEN_PID": str(os.getpid())})


@PROPERTY
@given(text=environ_text)
def test_an_inherited_listener_that_is_not_one_is_exit_78(text):
    if text.isascii() and text.isdigit():
        return  # a number names an fd of pytest's: not ours to wrap
    with pytest.raises(ConfigError, match=listen.INHERITED_FD):
        listen.inherited({listen.INHERITED_FD: text})


def test_an_inherited_fd_that_is_no_socket_is_exit_78(tmp_path):
    fd = os.open(tmp_path / "file", os.O_CREAT | os.O_RDWR)
    try:
        with pytest.raises(ConfigError, match=listen.INHERITED_FD):
            listen.inherited({listen.INHERITED_FD: str(fd)})
    finally:
        os.close(fd)


@pytest.mark.parametrize("usec", ["0", "-5", "9" * 30, "abc", "9" * 5000])
def test_a_watchdog_interval_that_is_no_interval_starts_no_watchdog(usec, monkeypatch):
    monkeypatch.setattr(notify, "_watchdog", None)
    notify.start_watchdog({"WATCHDOG_USEC": usec, "NOTIFY_SOCKET": "@none"})
    assert notify._watchdog is None


def test_a_passed_fd_that_is_no_listening_socket_is_exit_78(tmp_path):
    """LISTEN_FDS=1 with fd 3 a file: a misconfigured unit, so systemd must not restart it."""
    saved = os.dup(listen.SD_LISTEN_FDS_START)  # fd 3 is pytest's here: put it back after
    try:
        fd = os.open(tmp_path / "file", os.O_CREAT | os.O_RDWR)
        os.dup2(fd, listen.SD_LISTEN_FDS_START)
        os.close(fd)
        with pytest.raises(ConfigError, match="is not a listening socket"):
            listen.activated({"LISTEN_FDS": "1", "LISTEN_PID": str(os.getpid())})
    finally:
        os.dup2(saved, listen.SD_LISTEN_FDS_START)
        os.close(saved)


@pytest.mark.parametrize("value", ["abc", "٣", "1_0", "9" * 50, "987654"])
def test_a_lock_fd_that_is_no_open_descriptor_is_exit_78(monkeypatch, value):
    from twelve.runtime.process import node

    monkeypatch.setenv(node.LOCK_FD, value)
    with pytest.raises(ConfigError, match="TWELVE_LOCK_FD does not name an open file") as info:
        node.acquire_lock(None, "web")
    assert info.value.exit_code == 78
