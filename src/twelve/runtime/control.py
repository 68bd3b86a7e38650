"""The control channel of a running node: a Unix socket, never a TCP port.

Security, in the order a connection meets it:
1. the socket lives in a 0700 directory under RELEASE_TMP (``run/``), so only its owner can reach it;
2. the peer's uid (SO_PEERCRED) must be the node's own or root;
3. a mutual HMAC-SHA256 challenge keyed by the COOKIE: each side proves it knows the cookie over
   the other's fresh nonce, so the cookie never crosses the socket and a proof cannot be replayed.
Frames are a 4-byte big-endian length and a UTF-8 JSON object, at most ``MAX_FRAME`` bytes. A
malformed, oversized, slow or hostile client loses only its own connection: the handshake is
bounded in time, connections are bounded in number, and every error ends in ``close()``.
"""
from __future__ import annotations

import hmac
import json
import os
import secrets
import socket
import struct
import threading
from hashlib import sha256
from pathlib import Path

from twelve.runtime.errors import NOT_RUNNING, TwelveError

PROTOCOL = 1
MAX_FRAME = 1 << 20          # bytes; a request larger than this is an attack or a mistake
HANDSHAKE_TIMEOUT = 5.0      # seconds an unauthenticated peer may take
MAX_CONNECTIONS = 32         # concurrent; more are closed at once
SOCKET_PATH_MAX = 100        # sun_path holds 108 bytes; longer paths go through /proc/self/fd


class ControlError(TwelveError):
    """The control channel refused or failed; ``exit_code`` says how the command ends."""


class NotRunning(ControlError):
    exit_code = NOT_RUNNING


class ProtocolError(Exception):
    """A peer broke the protocol: its connection is closed, nothing else happens."""


# -- paths and the cookie ---------------------------------------------------------------------

def run_dir(tmp: Path) -> Path:
    return tmp / "run"


def socket_path(tmp: Path, process: str) -> Path:
    return run_dir(tmp) / f"{process}.sock"


def make_run_dir(tmp: Path) -> Path:
    path = run_dir(tmp)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)  # also when it existed with other modes
    return path


def read_cookie(root: Path, environ: dict) -> bytes:
    """RELEASE_COOKIE, else systemd's credential `cookie` (LoadCredential=), else the file."""
    cookie = environ.get("RELEASE_COOKIE")
    if cookie:
        return cookie.encode()
    credentials = environ.get("CREDENTIALS_DIRECTORY")
    if credentials and os.path.isfile(os.path.join(credentials, "cookie")):
        return Path(credentials, "cookie").read_bytes().strip()
    path = root / "releases" / "COOKIE"
    try:
        return path.read_bytes().strip()
    except PermissionError:
        raise ControlError(f"cannot read {path}: permission denied",
                           hint="Run as the user the release belongs to, or set "
                                "RELEASE_COOKIE.") from None
    except FileNotFoundError:
        raise ControlError(f"{path} is missing", hint="Rebuild the release, or set "
                                                      "RELEASE_COOKIE.") from None


def _proof(cookie: bytes, role: bytes, theirs: str, mine: str) -> str:
    return hmac.new(cookie, role + bytes.fromhex(theirs) + bytes.fromhex(mine), sha256).hexdigest()


# -- framing ----------------------------------------------------------------------------------

def send(sock: socket.socket, message: dict) -> None:
    data = json.dumps(message, separators=(",", ":")).encode()
    sock.sendall(struct.pack(">I", len(data)) + data)


def recv(sock: socket.socket, limit: int = MAX_FRAME) -> dict | None:
    """One frame; None on a clean end of stream before a frame began."""
    head = _recv_exact(sock, 4, eof_ok=True)
    if head is None:
        return None
    (length,) = struct.unpack(">I", head)
    if length > limit:
        raise ProtocolError(f"frame of {length} bytes exceeds the limit of {limit}")
    try:
        message = json.loads(_recv_exact(sock, length))
    except (UnicodeDecodeError, ValueError) as e:
        raise ProtocolError(f"malformed frame: {e}") from None
    if not isinstance(message, dict):
        raise ProtocolError("a frame must hold a JSON object")
    return message


def _recv_exact(sock: socket.socket, n: int, eof_ok: bool = False) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 16))
        if not chunk:
            if eof_ok and got == 0:
                return None
            raise ProtocolError("connection closed in the middle of a frame")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


# -- the server side --------------------------------------------------------------------------

def peer_uid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


class ControlServer:
    """Accepts connections in a daemon thread and gives each authenticated one to ``handle``."""

    def __init__(self, path: Path, cookie: bytes, handle, info) -> None:
        self.path, self.cookie, self.handle, self.info = path, cookie, handle, info
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.sock = _bind_unix(path)
        self.sock.listen(64)
        self.thread = threading.Thread(target=self._accept_loop, name="twelve-control",
                                       daemon=True)

    def start(self) -> "ControlServer":
        self.thread.start()
        return self

    def close(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        self.sock.close()

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            if not self.slots.acquire(blocking=False):
                conn.close()
                continue
            threading.Thread(target=self._serve, args=(conn,), name="twelve-control-conn",
                             daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn:
                if self._authenticate(conn):
                    conn.settimeout(None)
                    self.handle(conn)
        except (OSError, ProtocolError, ValueError):
            pass  # the peer loses its own connection, nothing else
        finally:
            self.slots.release()

    def _authenticate(self, conn: socket.socket) -> bool:
        conn.settimeout(HANDSHAKE_TIMEOUT)
        uid = peer_uid(conn)
        if uid not in (os.getuid(), 0):
            send(conn, {"error": "permission denied: connect as the node's own user"})
            return False
        nonce = secrets.token_hex(32)
        send(conn, {"twelve": PROTOCOL, "nonce": nonce})
        answer = recv(conn, limit=4096) or {}
        theirs, proof = answer.get("nonce"), answer.get("proof")
        if not (isinstance(theirs, str) and isinstance(proof, str) and len(theirs) == 64):
            raise ProtocolError("bad handshake")
        try:
            expected = _proof(self.cookie, b"client", nonce, theirs)
        except ValueError:
            raise ProtocolError("bad nonce") from None
        if not hmac.compare_digest(expected, proof):
            send(conn, {"error": "authentication failed"})
            return False
        send(conn, {"ok": True, "proof": _proof(self.cookie, b"server", theirs, nonce),
                    **self.info()})
        return True


def _bind_unix(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    old_umask = os.umask(0o177)  # the socket file itself is 0600
    try:
        with _short_path(path) as short:
            sock.bind(short)
    finally:
        os.umask(old_umask)
    return sock


class _short_path:
    """AF_UNIX paths are limited to ~107 bytes; reach deep ones through /proc/self/fd/N/."""

    def __init__(self, path: Path) -> None:
        self.path, self.fd = path, None

    def __enter__(self) -> str:
        text = str(self.path)
        if len(text.encode()) <= SOCKET_PATH_MAX:
            return text
        self.fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        return f"/proc/self/fd/{self.fd}/{self.path.name}"

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)


# -- the client side --------------------------------------------------------------------------

def connect(path: Path, cookie: bytes, *, name: str, timeout: float = 10.0):
    """An authenticated connection and the node's info, or NotRunning / ControlError."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        with _short_path(path) as short:
            sock.connect(short)
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        raise NotRunning(f"{name} is not running") from None
    except PermissionError:
        sock.close()
        raise ControlError(f"permission denied on {path}",
                           hint="Run as the user the release runs as.") from None
    try:
        return sock, _handshake(sock, cookie)
    except (OSError, ProtocolError) as e:
        sock.close()
        raise ControlError(f"the control channel of {name} failed: {e}") from None
    except ControlError:
        sock.close()
        raise


def _handshake(sock: socket.socket, cookie: bytes) -> dict:
    hello = recv(sock) or {}
    if "error" in hello:
        raise ControlError(hello["error"])
    if hello.get("twelve") != PROTOCOL or not isinstance(hello.get("nonce"), str):
        raise ProtocolError("not a twelve control socket (or another protocol version)")
    mine = secrets.token_hex(32)
    send(sock, {"nonce": mine, "proof": _proof(cookie, b"client", hello["nonce"], mine)})
    answer = recv(sock) or {}
    if answer.get("error") == "authentication failed" or not answer.get("ok"):
        raise ControlError("authentication failed",
                           hint="The cookie does not match the running node's: check "
                                "RELEASE_COOKIE and releases/COOKIE.")
    expected = _proof(cookie, b"server", mine, hello["nonce"])
    if not hmac.compare_digest(expected, str(answer.get("proof"))):
        raise ControlError("authentication failed: the node did not prove it knows the cookie")
    return answer
