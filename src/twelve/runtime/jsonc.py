"""JSON for the control channel and the release's manifest, on CPython's ``_json`` alone.

The json package imports re, and re imports enum, functools and collections: from a release
whose standard library is a zip, that costs an ``rpc`` more than the rest of its client does.
``_json`` is the C code json itself runs on. ``dumps`` gives the text of
``json.dumps(value, separators=(",", ":"))`` and ``loads`` the value of ``json.loads(text)``,
errors included as ValueError (tests/unit/test_jsonc.py holds them to it); where ``_json`` is
missing (not CPython), they are json's own.
"""
from __future__ import annotations

WHITESPACE = " \t\n\r"  # JSON's, no more: json.loads refuses the rest of str.isspace()

try:
    import _json
except ImportError:  # pragma: no cover - CPython always has it
    _json = None


class _Context:
    """What _json's scanner reads from json.JSONDecoder: json.loads's defaults."""

    strict = True
    object_hook = object_pairs_hook = None
    parse_float, parse_int, parse_constant = float, int, float  # NaN, Infinity, -Infinity


def _unserializable(value):
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps(value) -> str:
    """Compact JSON, ASCII-only, NaN allowed: json.dumps(value, separators=(",", ":"))."""
    if _json is None:  # pragma: no cover
        import json
        return json.dumps(value, separators=(",", ":"))
    encode = _json.make_encoder({}, _unserializable, _json.encode_basestring_ascii, None,
                                ":", ",", False, False, True)
    return "".join(encode(value, 0))


def loads(text: str | bytes):
    """The value of one JSON document; ValueError (UnicodeDecodeError for bytes that are not
    UTF-8) for anything else."""
    if _json is None:  # pragma: no cover
        import json
        return json.loads(text)
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8")
    start = len(text) - len(text.lstrip(WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration as e:
        raise ValueError(f"Expecting value: char {e.value}") from None
    if text[end:].strip(WHITESPACE):
        raise ValueError(f"Extra data: char {end}")
    return value


_scan = _json.make_scanner(_Context()) if _json is not None else None
