"""The control protocol fuzzed against a running node: random bytes, truncated frames, huge
length prefixes and bursts of concurrent junk connections, bounded in count and time. The node
must answer `pid` and serve HTTP afterwards. The junk clients' own threads must not raise: an
exception in one fails the test (the filterwarnings mark), as it would hide a lost poke."""
from __future__ import annotations

import json
import socket
import struct
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import Release, get

pytestmark = pytest.mark.slow  # a junk client's thread that raises fails it (pyproject.toml)

CONNECT_PATIENCE = 60.0  # seconds a junk client waits for room in the node's listen backlog

frames = st.one_of(
    st.binary(max_size=512),                                              # random bytes
    st.builds(lambda n, body: struct.pack(">I", n) + body,                # truncated frames
              st.integers(0, 4096), st.binary(max_size=64)),
    st.builds(lambda n: struct.pack(">I", n), st.integers(1 << 20, (1 << 32) - 1)),  # huge
    st.builds(lambda obj: (lambda d: struct.pack(">I", len(d)) + d)(json.dumps(obj).encode()),
              st.dictionaries(st.sampled_from(["nonce", "proof", "op", "line"]),
                              st.one_of(st.text(max_size=70), st.integers(), st.none()))),
)


def poke(path: Path, payload: bytes) -> None:
    """Send payload after the node's greeting, as a hostile client would; the node may drop the
    connection at any point (that is its answer), but the payload must reach it."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(30)  # past the node's own handshake deadline (5 s): it answers or drops us
        connect(s, path)
        try:
            s.recv(4096)
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)  # a truncated frame ends here: the node sees EOF
            s.recv(4096)
        except ConnectionError:
            pass  # reset or broken pipe: the node closed a hostile or surplus peer


def connect(s: socket.socket, path: Path) -> None:
    # A socket with a timeout is non-blocking, and connect() on a Unix socket whose listen
    # backlog is full then fails at once with EAGAIN (BlockingIOError) where a blocking one
    # would wait: a burst of junk fills the backlog faster than a busy node accepts. Wait for
    # room, as a blocking client would, within a bound.
    deadline = time.monotonic() + CONNECT_PATIENCE
    while True:
        try:
            return s.connect(str(path))
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@pytest.fixture(scope="module")
def node(hello_release, tmp_path_factory):
    rel = Release(hello_release, tmp_path_factory.mktemp("fuzz"))
    rel("eval", "hello.release.migrate()", check=True)
    rel.daemon()
    yield rel
    rel("stop")
    rel.cleanup()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=frames)
def test_fuzzed_frames(node, payload):
    poke(Path(node.env["RELEASE_TMP"]) / "run" / "web.sock", payload)


def test_the_node_survives(node):
    sock = Path(node.env["RELEASE_TMP"]) / "run" / "web.sock"
    junk = [threading.Thread(target=poke, args=(sock, b"\x00" * n)) for n in range(100)]
    for t in junk:
        t.start()
    for t in junk:
        t.join()
    assert int(node("pid", check=True).stdout) in node.pids
    assert get(node.url("/"))[0] == 200
