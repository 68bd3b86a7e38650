"""The control channel of a running node: a Unix socket, never a TCP port.

Security, in the order a connection meets it:
1. the socket lives in a 0700 directory under RELEASE_TMP (``run/``), so only its owner can reach it;
2. the peer's uid (SO_PEERCRED) must be the node's own or root;
3. a mutual HMAC-SHA256 challenge keyed by the cookie (``cookie.py``: never part of the release):
   each side proves it knows the cookie over the other's fresh nonce, so the cookie never
   crosses the socket and a proof cannot be replayed.
Frames are a 4-byte big-endian length and a UTF-8 JSON object, at most ``MAX_FRAME`` bytes. A
malformed, oversized, slow or hostile client loses only its own connection: the whole handshake
has one deadline, and every error ends in ``close()``.

Capacity: everyone entitled to the channel is served, sooner or later, never refused. At most
``MAX_CONNECTIONS`` are served at once; more wait in the listen backlog. A connection is *idle*
until its first request arrives: during the handshake and then for at most ``REQUEST_TIMEOUT``.
When every slot is taken, the oldest idle connection (older than ``EVICT_AFTER``) makes room for
the newcomer: it is told ``BUSY`` and closed, before its request ran, and clients retry a busy
node with backoff for up to ``BUSY_RETRY_FOR``. So idle connections, authenticated or not, can
never lock out `stop`; what runs long (rpc, consoles) is bounded by the session, below
``MAX_CONNECTIONS``, which keeps room for the quick requests.
"""
from __future__ import annotations

import _socket  # the client's socket: socket.py converts its constants to enums on import
import os
import stat
import struct
import time
from _operator import _compare_digest  # hmac.compare_digest, without importing hmac

from twelve.runtime import jsonc
from twelve.runtime.errors import NOT_RUNNING, TwelveError

try:
    from _sha2 import sha256 as _sha256  # CPython ≥ 3.12: built in, no OpenSSL
except ImportError:
    try:
        from _sha256 import sha256 as _sha256  # CPython 3.11
    except ImportError:
        from hashlib import sha256 as _sha256

PROTOCOL = 1
MAX_FRAME = 1 << 20          # bytes; a request larger than this is an attack or a mistake
HANDSHAKE_TIMEOUT = 5.0      # seconds an unauthenticated peer may take, for the whole handshake
MAX_CONNECTIONS = 32         # served at once; more wait in the backlog, idle ones are evicted
BACKLOG = 256                # connections waiting to be accepted (the kernel may cap it lower)
REQUEST_TIMEOUT = 10.0       # seconds an authenticated connection may wait to send its request
EVICT_AFTER = 1.0            # seconds an idle connection is safe from eviction for a newcomer
BUSY_RETRY_FOR = 30.0        # seconds a client retries a busy node, with backoff
SOCKET_PATH_MAX = 100        # sun_path holds 108 bytes; longer paths go through /proc/self/fd
NONCE_HEX = 64               # 32 random bytes, as hex

BUSY = "the node is busy: every control connection is in use; try again in a moment"
BUSY_HINT = ("{name} stayed busy for {seconds:.0f} s: are many rpc or remote sessions "
             "running at once?")
IDLE = f"no request within {REQUEST_TIMEOUT:.0f} s of connecting; closing the connection"
RUN_DIR_FOREIGN = "{path} belongs to uid {uid}, not to this node's user (uid {me})"
RUN_DIR_FOREIGN_HINT = ("Remove it (as root: rm -r {path}) or set RELEASE_TMP to a directory of "
                        "your own, e.g. RELEASE_TMP=/run/{me_name}.")
RUN_DIR_NOT_DIR = "{path} is not a directory (a symlink or a file)"
RUN_DIR_NOT_DIR_HINT = "Remove it ({path}); the node creates it as a 0700 directory."
LINK_REFUSED = "{path} is a symlink (or cannot be opened safely): {error}"
LINK_REFUSED_HINT = "Remove it; the node writes its own files under {parent}."


class ControlError(TwelveError):
    """The control channel refused or failed; ``exit_code`` says how the command ends."""


class NotRunning(ControlError):
    exit_code = NOT_RUNNING


class ProtocolError(Exception):
    """A peer broke the protocol: its connection is closed, nothing else happens."""


class Busy(Exception):
    """The node turned this connection away before its request ran: try again."""


# -- paths ---------------------------------------------------------------------------------

# Paths are str here: pathlib (with the fnmatch, re, urllib.parse and ipaddress it imports)
# would be most of what a control command's client imports.

def run_dir(tmp: str) -> str:
    return os.path.join(tmp, "run")


def socket_path(tmp: str, process: str) -> str:
    return os.path.join(run_dir(tmp), f"{process}.sock")


def make_run_dir(tmp: str) -> str:
    """run/: a real directory of this node's own user, mode 0700, or one clear error."""
    path = run_dir(tmp)
    try:
        os.makedirs(path, mode=0o700)
    except FileExistsError:
        pass
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except (NotADirectoryError, OSError) as e:
        _refuse_run_dir(path, e)
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid():
            _refuse_foreign(path, st.st_uid)
        if stat.S_IMODE(st.st_mode) != 0o700:
            os.fchmod(fd, 0o700)  # also when it existed with other modes
    finally:
        os.close(fd)
    return path


def _refuse_run_dir(path: str, error: OSError):
    try:
        st = os.lstat(path)
    except OSError:
        raise ControlError(f"cannot open {path}: {error.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        if st.st_uid != os.geteuid():
            _refuse_foreign(path, st.st_uid)
        raise ControlError(f"cannot open {path}: {error.strerror}",
                           hint=f"Give it back to its owner: chmod 700 {path}") from None
    raise ControlError(RUN_DIR_NOT_DIR.format(path=path),
                       hint=RUN_DIR_NOT_DIR_HINT.format(path=path)) from None


def _refuse_foreign(path: str, uid: int):
    import pwd

    me = os.geteuid()
    try:
        me_name = pwd.getpwuid(me).pw_name
    except KeyError:
        me_name = str(me)
    raise ControlError(RUN_DIR_FOREIGN.format(path=path, uid=uid, me=me),
                       hint=RUN_DIR_FOREIGN_HINT.format(path=path, me_name=me_name)) from None


def open_private(path: str, flags: int) -> int:
    """A 0600 file in run/, created if needed, never through a symlink."""
    try:
        return os.open(path, flags | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as e:
        raise ControlError(LINK_REFUSED.format(path=path, error=e.strerror),
                           hint=LINK_REFUSED_HINT.format(parent=os.path.dirname(path))) from None


def _proof(cookie: bytes, role: bytes, theirs: str, mine: str) -> str:
    return hmac_sha256(cookie, role + bytes.fromhex(theirs) + bytes.fromhex(mine))


def hmac_sha256(key: bytes, message: bytes) -> str:
    """HMAC-SHA256 (RFC 2104) on CPython's own SHA-256: the hmac and hashlib modules load
    OpenSSL's libcrypto, milliseconds of every rpc for three short digests."""
    if len(key) > _BLOCK:
        key = _sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner = _sha256(bytes(k ^ 0x36 for k in key) + message).digest()
    return _sha256(bytes(k ^ 0x5C for k in key) + inner).hexdigest()


_BLOCK = 64  # SHA-256's block size


# -- framing ----------------------------------------------------------------------------------

def send(sock: socket.socket, message: dict) -> None:
    data = jsonc.dumps(message).encode()
    sock.sendall(struct.pack(">I", len(data)) + data)


def recv(sock: socket.socket, limit: int = MAX_FRAME,
         deadline: float | None = None) -> dict | None:
    """One frame; None on a clean end of stream before a frame began. With a deadline
    (time.monotonic()), the whole frame must have arrived by then, however it trickles in."""
    head = _recv_exact(sock, 4, eof_ok=True, deadline=deadline)
    if head is None:
        return None
    (length,) = struct.unpack(">I", head)
    if length > limit:
        raise ProtocolError(f"frame of {length} bytes exceeds the limit of {limit}")
    try:
        message = jsonc.loads(_recv_exact(sock, length, deadline=deadline))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ProtocolError(f"malformed frame: {type(e).__name__}") from None
    if not isinstance(message, dict):
        raise ProtocolError("a frame must hold a JSON object")
    return message


def _recv_exact(sock: socket.socket, n: int, eof_ok: bool = False,
                deadline: float | None = None) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProtocolError("the peer took too long")
            sock.settimeout(remaining)
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
    import socket

    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


class _Peer:
    """One accepted connection: idle (evictable) until its request is claimed."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.since = sock, time.monotonic()
        self.idle, self.evicted = True, False


class ControlServer:
    """Accepts connections in a daemon thread and gives each authenticated one's first request
    to ``handle(conn, request)``."""

    def __init__(self, path: str, cookie: bytes, handle, info) -> None:
        self.path, self.cookie, self.handle, self.info = path, cookie, handle, info
        import threading  # the node's side only: a client starts faster without

        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.peers: set[_Peer] = set()
        self.lock = threading.Lock()
        self.sock = _bind_unix(path)
        self.sock.listen(BACKLOG)
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
        import threading

        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            self._make_room()
            peer = _Peer(conn)
            with self.lock:
                self.peers.add(peer)
            threading.Thread(target=self._serve, args=(peer,), name="twelve-control-conn",
                             daemon=True).start()

    def _make_room(self) -> None:
        """Take a slot: wait for one, evicting the oldest idle connection while all are taken."""
        while not self.slots.acquire(blocking=False):
            self._evict_oldest_idle()
            if self.slots.acquire(timeout=EVICT_AFTER / 4):
                return

    def _evict_oldest_idle(self) -> None:
        old = time.monotonic() - EVICT_AFTER
        with self.lock:
            idle = [p for p in self.peers if p.idle and not p.evicted and p.since <= old]
            if not idle:
                return
            victim = min(idle, key=lambda p: p.since)
            victim.evicted = True
        try:
            victim.sock.shutdown(_socket.SHUT_RD)  # wakes its thread; it can still say BUSY
        except OSError:
            pass

    def _serve(self, peer: _Peer) -> None:
        conn = peer.sock
        try:
            request = self._authenticate(conn) and self._await_request(conn)
            if request and self._claim(peer):
                conn.settimeout(None)
                self.handle(conn, request)
        except (OSError, ProtocolError, ValueError, RecursionError):
            pass  # the peer loses its own connection, nothing else
        finally:
            if peer.evicted:
                _say(conn, {"error": BUSY, "busy": True})
            conn.close()
            with self.lock:
                self.peers.discard(peer)
            self.slots.release()

    def _claim(self, peer: _Peer) -> bool:
        """The request may run, unless the connection was evicted before it arrived."""
        with self.lock:
            peer.idle = False
            return not peer.evicted

    def _await_request(self, conn: socket.socket) -> dict | None:
        deadline = time.monotonic() + REQUEST_TIMEOUT
        try:
            return recv(conn, deadline=deadline)
        except (ProtocolError, TimeoutError):
            if time.monotonic() >= deadline:
                _say(conn, {"error": IDLE})
            raise

    def _authenticate(self, conn: socket.socket) -> bool:
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT
        conn.settimeout(HANDSHAKE_TIMEOUT)
        uid = peer_uid(conn)
        if uid not in (os.getuid(), 0):
            send(conn, {"error": "permission denied: connect as the node's own user"})
            return False
        nonce = os.urandom(32).hex()  # as secrets.token_hex, without importing it
        send(conn, {"twelve": PROTOCOL, "nonce": nonce})
        answer = recv(conn, limit=4096, deadline=deadline) or {}
        theirs, proof = answer.get("nonce"), answer.get("proof")
        if not (_is_hex(theirs, NONCE_HEX) and _is_hex(proof, 64)):
            raise ProtocolError("bad handshake")
        expected = _proof(self.cookie, b"client", nonce, theirs)
        if not _compare_digest(expected.encode(), proof.encode()):
            send(conn, {"error": "authentication failed"})
            return False
        send(conn, {"ok": True, "proof": _proof(self.cookie, b"server", theirs, nonce),
                    **self.info()})
        return True


def _is_hex(value, length: int) -> bool:
    """A lowercase hex string of that length: all a nonce or a proof may be."""
    return (isinstance(value, str) and len(value) == length
            and all(c in "0123456789abcdef" for c in value))


def _say(conn: socket.socket, message: dict) -> None:
    """A last word before closing, if the peer's buffer takes it at once."""
    try:
        conn.setblocking(False)
        send(conn, message)
    except OSError:
        pass


def _bind_unix(path: str) -> socket.socket:
    import socket  # the node's side

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

    def __init__(self, path: str) -> None:
        self.path, self.fd = path, None

    def __enter__(self) -> str:
        text = os.fspath(self.path)
        if len(os.fsencode(text)) <= SOCKET_PATH_MAX:
            return text
        parent, name = os.path.split(text)
        self.fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
        return f"/proc/self/fd/{self.fd}/{name}"

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)


# -- the client side --------------------------------------------------------------------------

def call(path: str, cookie: bytes, request: dict, *, name: str, limit: int = MAX_FRAME,
         timeout: float = 10.0) -> tuple[socket.socket, dict, dict | None]:
    """Connect, send ``request`` and read the first frame of the answer: (sock, info, frame;
    None if the node closed instead). A busy node is asked again, as in ``connect``."""
    def attempt():
        sock, info = _connect_once(path, cookie, name, timeout)
        try:
            try:
                send(sock, request)
            except OSError:
                pass  # evicted: its BUSY may be waiting to be read
            first = recv(sock, limit=limit)
        except (OSError, ProtocolError) as e:
            sock.close()
            raise ControlError(f"the control channel of {name} failed: {e}") from None
        if first is not None and first.get("busy"):
            sock.close()
            raise Busy()
        return sock, info, first
    return _retry_busy(attempt, name)


def connect(path: str, cookie: bytes, *, name: str, timeout: float = 10.0):
    """An authenticated connection and the node's info, or NotRunning / ControlError. A busy
    node is asked again, with backoff, for up to BUSY_RETRY_FOR seconds."""
    return _retry_busy(lambda: _connect_once(path, cookie, name, timeout), name)


def _retry_busy(attempt, name: str):
    deadline, delay = time.monotonic() + BUSY_RETRY_FOR, 0.02
    while True:
        try:
            return attempt()
        except Busy:
            if time.monotonic() + delay > deadline:
                raise ControlError(BUSY, hint=BUSY_HINT.format(name=name,
                                                               seconds=BUSY_RETRY_FOR)) from None
            time.sleep(delay * (0.5 + os.urandom(1)[0] / 255))  # jitter spreads a herd out
            delay = min(delay * 2, 1.0)


class _ClientSocket(_socket.socket):
    """A client's Unix socket, on _socket alone: socket.py costs every rpc the conversion of
    its constants to enums."""
    __slots__ = ()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _connect_once(path: str, cookie: bytes, name: str, timeout: float):
    sock = _ClientSocket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        with _short_path(path) as short:
            sock.connect(short)
    except BlockingIOError:
        # With a timeout the socket is non-blocking, and connect() to a Unix socket whose
        # backlog is full fails at once with EAGAIN where a blocking one would wait: the node
        # is busy, and connect() asks again with backoff like for any busy answer.
        sock.close()
        raise Busy() from None
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        raise NotRunning(f"{name} is not running") from None
    except PermissionError:
        sock.close()
        raise ControlError(f"permission denied on {path}",
                           hint="Run as the user the release runs as.") from None
    try:
        return sock, _handshake(sock, cookie)
    except (BrokenPipeError, ConnectionResetError):
        sock.close()
        raise Busy() from None  # evicted mid-handshake: the node closed its reading end
    except (OSError, ProtocolError) as e:
        sock.close()
        raise ControlError(f"the control channel of {name} failed: {e}") from None
    except (ControlError, Busy):
        sock.close()
        raise


def _handshake(sock: socket.socket, cookie: bytes) -> dict:
    hello = recv(sock) or {}
    if hello.get("busy"):
        raise Busy()
    if "error" in hello:
        raise ControlError(str(hello["error"]))
    if hello.get("twelve") != PROTOCOL or not _is_hex(hello.get("nonce"), NONCE_HEX):
        raise ProtocolError("not a twelve control socket (or another protocol version)")
    mine = os.urandom(32).hex()
    send(sock, {"nonce": mine, "proof": _proof(cookie, b"client", hello["nonce"], mine)})
    answer = recv(sock) or {}
    if answer.get("busy"):
        raise Busy()
    if answer.get("error") == "authentication failed" or not answer.get("ok"):
        raise ControlError("authentication failed",
                           hint="The cookie does not match the running node's: check "
                                "RELEASE_COOKIE and RELEASE_TMP (run/COOKIE).")
    expected = _proof(cookie, b"server", mine, hello["nonce"])
    proof = answer.get("proof")
    if not (_is_hex(proof, 64) and _compare_digest(expected.encode(), proof.encode())):
        raise ControlError("authentication failed: the node did not prove it knows the cookie")
    return answer
