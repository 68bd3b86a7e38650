"""Rewriting asset references to digested names: ``url(...)`` in CSS and ``sourceMappingURL``
comments in CSS and JavaScript.

Pure functions over bytes. A reference is rewritten only when it points at a file of the same
digest run; ``data:``, ``http(s):`` and every other scheme, protocol-relative ``//host`` URLs,
fragment-only ``#id`` references and paths that leave the static directory are left exactly as
written. Query strings and fragments are kept; only the file name changes, so a relative URL
stays relative (``../images/logo.svg`` → ``../images/logo-<md5>.svg``) and a root URL stays a
root URL under the prefix the directory is served at (``/static/images/logo-<md5>.svg``).
"""
from __future__ import annotations

import posixpath
import re
from typing import Callable
from urllib.parse import quote, unquote

# Lookup: a logical path ("images/logo.svg") → its digested path, or None to leave it alone.
Lookup = Callable[[str], "str | None"]

CSS_URL = re.compile(rb"""(?P<open>url\(\s*)(?:"(?P<dq>[^"\n]*)"|'(?P<sq>[^'\n]*)'|"""
                     rb"""(?P<bare>[^'"\s()]+))(?P<close>\s*\))""", re.IGNORECASE)
# Only at the start of a line, as tools write it: a string in minified code that merely
# contains "sourceMappingURL=" is not a source map comment.
JS_SOURCE_MAP = re.compile(rb"(?m)^(?P<open>[ \t]*//[#@][ \t]*sourceMappingURL=)(?P<url>\S+)")
CSS_SOURCE_MAP = re.compile(rb"(?P<open>/\*[#@][ \t]*sourceMappingURL=)(?P<url>[^\s*]+)")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
SPLIT_SUFFIX = re.compile(r"^(?P<path>[^?#]*)(?P<suffix>.*)$", re.DOTALL)

CSS_EXTENSIONS = (".css",)
JS_EXTENSIONS = (".js", ".mjs", ".cjs")


def rewrites(logical: str) -> bool:
    """Whether the file at this logical path may refer to other files by name."""
    return logical.lower().endswith(CSS_EXTENSIONS + JS_EXTENSIONS)


def rewrite(content: bytes, logical: str, lookup: Lookup, prefix: str) -> bytes:
    """``content`` of the file at ``logical`` with every reference ``lookup`` knows digested."""
    if logical.lower().endswith(CSS_EXTENSIONS):
        content = CSS_URL.sub(lambda m: _css_url(m, logical, lookup, prefix), content)
        return CSS_SOURCE_MAP.sub(lambda m: _source_map(m, logical, lookup, prefix), content)
    if logical.lower().endswith(JS_EXTENSIONS):
        return JS_SOURCE_MAP.sub(lambda m: _source_map(m, logical, lookup, prefix), content)
    return content


def references(content: bytes, logical: str, prefix: str) -> list[str]:
    """The logical paths the file refers to (whether or not they exist), in order."""
    found: list[str] = []

    def note(target: str) -> None:
        found.append(target)
        return None

    rewrite(content, logical, note, prefix)
    return found


def digested_url(url: str, logical: str, lookup: Lookup, prefix: str) -> str | None:
    """The digested form of ``url`` written in the file ``logical``, or None to keep it."""
    if not url or url.startswith(("#", "//")) or SCHEME.match(url):
        return None
    parts = SPLIT_SUFFIX.match(url)
    path, suffix = parts["path"], parts["suffix"]
    target = _target(unquote(path), logical, prefix)
    if target is None:
        return None
    digested = lookup(target)
    if digested is None:
        return None
    name = posixpath.basename(digested)
    if "%" in posixpath.basename(path):
        name = quote(name)
    return path[: len(path) - len(posixpath.basename(path))] + name + suffix


def _target(path: str, logical: str, prefix: str) -> str | None:
    """The logical path a URL path points at, or None when it leaves the static directory."""
    if not path or path.endswith("/"):
        return None
    if path.startswith("/"):
        root = "/" + prefix.strip("/") + "/" if prefix.strip("/") else "/"
        if not path.startswith(root):
            return None
        relative = path[len(root):]
    else:
        relative = posixpath.join(posixpath.dirname(logical), path)
    target = posixpath.normpath(relative)
    if target in (".", "..") or target.startswith("../") or target.startswith("/"):
        return None
    return target


def _css_url(match: re.Match, logical: str, lookup: Lookup, prefix: str) -> bytes:
    for group in ("dq", "sq", "bare"):
        raw = match[group]
        if raw is not None:
            break
    url = raw.decode("utf-8", "surrogateescape")
    new = digested_url(url.strip(), logical, lookup, prefix)
    if new is None:
        return match[0]
    quote_char = {"dq": b'"', "sq": b"'", "bare": b""}[group]
    return (match["open"] + quote_char + new.encode("utf-8", "surrogateescape") + quote_char
            + match["close"])


def _source_map(match: re.Match, logical: str, lookup: Lookup, prefix: str) -> bytes:
    url = match["url"].decode("utf-8", "surrogateescape")
    new = digested_url(url, logical, lookup, prefix)
    if new is None:
        return match[0]
    return match["open"] + new.encode("utf-8", "surrogateescape")
