"""The control channel's cookie: where a node and its clients find it, and how a node makes one.

The release carries no cookie: a secret inside the artifact would be shared by every host that
runs it and by everyone who can read the tarball, and would make two builds differ. The node
and its clients (``rpc``, ``remote``, ``stop``, ``restart``) look in the same order:

1. ``RELEASE_COOKIE``, stripped of surrounding whitespace;
2. systemd's credential ``cookie`` (``LoadCredential=cookie:...``, read from
   ``$CREDENTIALS_DIRECTORY/cookie``);
3. ``COOKIE`` in the node's private run directory (``$RELEASE_TMP/run/``, 0700, the node's
   user). The node makes it at its first boot and keeps it while it exists, so a rebuild, a
   restart or a second process type reuses it. Clients only read it: a client that finds
   neither the file nor the node's socket reports the node as not running.

The file is written so that nobody else can read it even for an instant: it is created 0400
under a private temporary name (O_EXCL) and linked to its final name, which fails rather than
replaces when another process of the same release made one first (that one wins, and both
use it). A file that is too short, readable by others, or owned by another user is refused
with one error that names the fix and never shows the value.
"""
from __future__ import annotations

import os
import stat

from twelve.runtime.control.channel import ControlError, NotRunning, run_dir, socket_path
from twelve.runtime.errors import CONFIG

COOKIE_FILE = "COOKIE"
COOKIE_MODE = 0o400
COOKIE_BYTES = 48            # 64 URL-safe characters
COOKIE_MIN_BYTES = 16        # an empty or short cookie would make the HMAC challenge a formality

TOO_SHORT = "the cookie from {source} is {problem}"
TOO_SHORT_HINT = (f"Use at least {COOKIE_MIN_BYTES} random characters, e.g. "
                  "RELEASE_COOKIE=$(twelve gen.secret 64).")
TOO_SHORT_FILE_HINT = ("Remove it (rm {path}) and start the node again: it writes a new one of "
                       f"{COOKIE_BYTES} random bytes.")
UNREADABLE = "cannot read the cookie {path}: {error}"
UNREADABLE_HINT = ("Run as the node's user (or root) with the node's RELEASE_TMP, or set "
                   "RELEASE_COOKIE.")
NOT_PRIVATE = "the cookie {path} has mode {mode:04o}: other users may read it"
NOT_PRIVATE_HINT = ("Make a new one: stop the node, rm {path}, start it again (it writes a new "
                    "0400 cookie). If nobody else could have read it: chmod 400 {path}.")
FOREIGN = "the cookie {path} belongs to uid {uid}, not to this user (uid {me})"
FOREIGN_HINT = ("Run as the node's user (uid {uid}), or remove it (rm {path}) and start the "
                "node again for a cookie of its own.")
NOT_A_FILE = "the cookie {path} is not a regular file"
NOT_A_FILE_HINT = "Remove it (rm -r {path}); the node writes a new one at its next boot."
CANNOT_WRITE = "cannot write the cookie {path}: {error}"
CANNOT_WRITE_HINT = ("The node writes it under RELEASE_TMP, which must be writable by the node's "
                     "user (and not full); or give the cookie with RELEASE_COOKIE.")
GIVEN_ELSEWHERE = "{name} is running, but there is no cookie in {path}"
GIVEN_ELSEWHERE_HINT = ("The node was given its cookie (RELEASE_COOKIE or a systemd credential): "
                        "set RELEASE_COOKIE to the same value.")


class CookieError(ControlError):
    """The cookie cannot be used as it is: a setting to fix, not a node to retry."""

    exit_code = CONFIG


def cookie_path(tmp: str) -> str:
    return os.path.join(run_dir(tmp), COOKIE_FILE)


def node_cookie(tmp: str, environ) -> bytes:
    """The node's cookie: given (RELEASE_COOKIE, credential), else the run dir's, made if
    missing. The run dir exists already (the node's lock lives there)."""
    given = _given(environ)
    if given is not None:
        return given
    path = cookie_path(tmp)
    if not _exists(path):
        _make(path)
    return _read_file(path)


def client_cookie(tmp: str, environ, process: str, name: str) -> bytes:
    """The cookie a client proves to the node: given, else the run dir's; no file and no
    socket means no node has booted there (NotRunning)."""
    given = _given(environ)
    if given is not None:
        return given
    path = cookie_path(tmp)
    if not _exists(path):
        if os.path.lexists(socket_path(tmp, process)):
            raise CookieError(GIVEN_ELSEWHERE.format(name=name, path=path),
                              hint=GIVEN_ELSEWHERE_HINT)
        raise NotRunning(f"{name} is not running")
    return _read_file(path)


def _given(environ) -> bytes | None:
    if "RELEASE_COOKIE" in environ:  # surrogates: the bytes the environment holds
        return _checked("RELEASE_COOKIE", os.fsencode(environ["RELEASE_COOKIE"].strip()), None)
    credentials = environ.get("CREDENTIALS_DIRECTORY")
    if credentials and os.path.isfile(os.path.join(credentials, "cookie")):
        path = os.path.join(credentials, "cookie")
        try:
            with open(path, "rb") as f:
                return _checked(path, f.read().strip(), path)
        except OSError as e:
            raise CookieError(UNREADABLE.format(path=path, error=e.strerror),
                              hint=UNREADABLE_HINT) from None
    return None


def _exists(path: str) -> bool:
    try:
        os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError as e:  # run/ of another user: say so, not "not running"
        raise CookieError(UNREADABLE.format(path=path, error=e.strerror),
                          hint=UNREADABLE_HINT) from None
    return True


def _make(path: str) -> None:
    """Write a new cookie: 0400 from its creation, complete before it has its name."""
    import secrets  # only the node makes a cookie; its clients start faster without

    scratch = os.path.join(os.path.dirname(path),
                           f".{COOKIE_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                     | os.O_CLOEXEC, COOKIE_MODE)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(COOKIE_BYTES) + "\n")
                f.flush()
                os.fsync(f.fileno())
            _publish(scratch, path)
        finally:
            if os.path.lexists(scratch):
                os.unlink(scratch)
    except OSError as e:
        raise CookieError(CANNOT_WRITE.format(path=path, error=e.strerror),
                          hint=CANNOT_WRITE_HINT) from None


def _publish(scratch: str, path: str) -> None:
    try:
        os.link(scratch, path)  # unlike rename, never replaces: a concurrent first boot wins
    except FileExistsError:
        pass
    except OSError:  # a file system without hard links: rename, if the name is still free
        if not os.path.lexists(path):
            os.rename(scratch, path)


def _read_file(path: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as e:
        if os.path.islink(path):
            raise CookieError(NOT_A_FILE.format(path=path),
                              hint=NOT_A_FILE_HINT.format(path=path)) from None
        raise CookieError(UNREADABLE.format(path=path, error=e.strerror),
                          hint=UNREADABLE_HINT) from None
    try:
        _check_file(path, os.fstat(fd))
        with os.fdopen(fd, "rb", closefd=False) as f:
            return _checked(path, f.read().strip(), path)
    finally:
        os.close(fd)


def _check_file(path: str, st: os.stat_result) -> None:
    me = os.geteuid()
    if not stat.S_ISREG(st.st_mode):
        raise CookieError(NOT_A_FILE.format(path=path), hint=NOT_A_FILE_HINT.format(path=path))
    if st.st_uid != me and me != 0:  # root may ask any node, as the socket allows
        raise CookieError(FOREIGN.format(path=path, uid=st.st_uid, me=me),
                          hint=FOREIGN_HINT.format(path=path, uid=st.st_uid))
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise CookieError(NOT_PRIVATE.format(path=path, mode=stat.S_IMODE(st.st_mode)),
                          hint=NOT_PRIVATE_HINT.format(path=path))


def _checked(source: str, cookie: bytes, path: str | None) -> bytes:
    if len(cookie) < COOKIE_MIN_BYTES:
        problem = "empty" if not cookie else \
            f"{len(cookie)} bytes long, shorter than {COOKIE_MIN_BYTES}"
        raise CookieError(TOO_SHORT.format(source=source, problem=problem),
                          hint=TOO_SHORT_FILE_HINT.format(path=path) if path else TOO_SHORT_HINT)
    return cookie
