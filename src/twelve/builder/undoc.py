"""Docstrings taken out of compiled code, and nothing else: what ``python -OO`` does to
docstrings, without what it also does (``assert`` statements and ``if __debug__:`` blocks
removed). A default release (``strip = true``) ships the standard library this way. Not the
locked packages: some read their own docstrings and guard them with an ``assert`` that only
``-OO`` removes as well (SQLAlchemy, numpy); ``optimize = 2`` compiles them as ``-OO`` does.

It works on the code objects compile() returns, not on the syntax tree: rewriting the tree and
compiling it again costs ~3x a compile, this ~15%. What it relies on, true of CPython 3.11 to
3.13 (tests/unit/test_undoc.py runs it in each one the machine has):

- A function's docstring is ``co_consts[0]``, which no instruction loads; a function without
  one has None there. Every other constant is loaded by some instruction: the compiler drops
  unused ones but the first. So a str at ``co_consts[0]`` that no instruction loads is the
  docstring; replacing it by None is exactly the function compiled without it.
- A module's or a class body's docstring is stored to ``__doc__`` by its first statement, after
  the preamble the compiler writes (``__module__``, ``__qualname__``...). Storing None there is
  what a class or module without a docstring has. An explicit ``__doc__ = "..."`` written as
  the first statement is the same code, so it goes too.

This file is also run as it is by the interpreter being packaged (``stdlib.ZIP_SCRIPT``,
through ``script``), so it imports nothing from twelve.
"""
import dis
import types

_HASCONST = bytes(dis.hasconst)
_LOAD_CONST = dis.opmap["LOAD_CONST"]
_STORE_NAME = dis.opmap["STORE_NAME"]
_EXTENDED_ARG = dis.opmap["EXTENDED_ARG"]
_PREFIX_OPS = {dis.opmap[name] for name in
               ("RESUME", "NOP", "MAKE_CELL", "COPY_FREE_VARS", "SETUP_ANNOTATIONS")
               if name in dis.opmap}
_PREAMBLE = {"__module__", "__qualname__", "__firstlineno__", "__type_params__"}
_NEWLOCALS = 0x2   # inspect.CO_NEWLOCALS: a function's code (not a module's or class body's)


def undoc(code: types.CodeType) -> types.CodeType:
    """``code`` and every code object within it without their docstrings."""
    consts = list(code.co_consts)
    raw = code.co_code
    for i, const in enumerate(consts):
        if isinstance(const, types.CodeType):
            consts[i] = undoc(const)
    if code.co_flags & _NEWLOCALS:
        if consts and isinstance(consts[0], str) and not _loads(raw, 0):
            consts[0] = None
    elif "__doc__" in code.co_names:
        at = _docstring_load(code)
        if at >= 0:
            index = raw[at + 1]
            if _loads(raw, index) == 1:
                consts[index] = None
            else:   # the same text is loaded elsewhere too: load a None instead
                none = next((i for i, c in enumerate(consts) if c is None), len(consts))
                if none < 256:   # an index the one-byte argument can hold
                    if none == len(consts):
                        consts.append(None)
                    raw = raw[:at + 1] + bytes((none,)) + raw[at + 2:]
    if consts == list(code.co_consts) and raw == code.co_code:
        return code
    return code.replace(co_consts=tuple(consts), co_code=raw)


def _loads(raw: bytes, index: int) -> int:
    """How many instructions of ``raw`` load constant ``index`` (< 256, no EXTENDED_ARG)."""
    count = 0
    for op in _HASCONST:
        pattern = bytes((op, index))
        at = raw.find(pattern)
        while at != -1:
            if at % 2 == 0 and (at == 0 or raw[at - 2] != _EXTENDED_ARG):
                count += 1
            at = raw.find(pattern, at + 1)
    return count


def _docstring_load(code: types.CodeType) -> int:
    """The offset of the LOAD_CONST whose str the first statement of a module or class body
    stores to ``__doc__``, or -1."""
    raw, names = code.co_code, code.co_names
    at = 0
    while at + 3 < len(raw):
        op, following = raw[at], raw[at + 2]
        if op in _PREFIX_OPS:   # none of them has inline cache entries
            at += 2
        elif op != _EXTENDED_ARG and following == _STORE_NAME and \
                names[raw[at + 3]] in _PREAMBLE:
            at += 4
        elif op == _LOAD_CONST and following == _STORE_NAME and \
                names[raw[at + 3]] == "__doc__" and isinstance(code.co_consts[raw[at + 1]], str):
            return at
        else:
            return -1
    return -1


def script(body: str) -> str:
    """A script for the interpreter being packaged: this file (``undoc`` defined), then
    ``body``."""
    with open(__file__, encoding="utf-8") as f:
        return f.read() + body
