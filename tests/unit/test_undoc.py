"""twelve.builder.undoc: docstrings out of compiled code, nothing else changed. Checked by
running the code both ways, and over whole standard library packages against the docstrings
the syntax tree has."""
from __future__ import annotations

import ast
import json
import sys
import textwrap
import types
from pathlib import Path

import pytest

from twelve.builder.undoc import script, undoc

SAMPLE = textwrap.dedent('''
    """The module's docstring."""
    from __future__ import annotations
    import asyncio

    CONSTANT: int = 3

    def plain(x):
        """A function's docstring."""
        assert x > 0, "x must be positive"
        return [c * 2 for c in "ab"] + [x]

    def only_a_docstring():
        """Nothing else."""

    def shares_its_text():
        """same text"""
        return "same text"

    def no_docstring():
        return "returns a str first"

    async def coroutine():
        """An async docstring."""
        return 1

    def generator():
        """A generator's docstring."""
        yield "first"

    def outer():
        """Outer."""
        def inner():
            """Inner."""
            return "inner"
        return inner

    class Plain:
        """A class docstring."""
        attribute = "A class docstring."

        def method(self):
            """A method docstring."""
            return __class__.__name__

        @property
        def prop(self):
            """A property's docstring."""
            return "prop"

    class OnlyDoc:
        """Only a docstring."""

    class Explicit:
        __doc__ = "an explicit __doc__ as the first statement is the same code"

    class Later:
        x = 1
        __doc__ = "assigned after another statement: kept"

    lam = lambda: "a lambda's first constant"
''')

FUNCTIONS = ("plain", "only_a_docstring", "no_docstring", "coroutine", "generator", "outer")


def run(code: types.CodeType) -> dict:
    namespace: dict = {"__name__": "sample"}
    exec(code, namespace)
    return namespace


@pytest.fixture(scope="module")
def both():
    code = compile(SAMPLE, "sample.py", "exec", dont_inherit=True)
    return run(code), run(undoc(code))


def test_every_docstring_is_gone(both):
    _, new = both
    assert new["__doc__"] is None
    for name in FUNCTIONS:
        assert new[name].__doc__ is None, name
    assert new["outer"]().__doc__ is None
    assert new["Plain"].__doc__ is None and new["Plain"].method.__doc__ is None
    assert new["Plain"].prop.__doc__ is None
    assert new["OnlyDoc"].__doc__ is None and "__doc__" in vars(new["OnlyDoc"])
    assert new["Explicit"].__doc__ is None


def test_everything_else_behaves_the_same(both):
    old, new = both
    assert new["plain"](2) == old["plain"](2) == ["aa", "bb", 2]
    with pytest.raises(AssertionError, match="x must be positive"):   # asserts stay
        new["plain"](-1)
    assert new["only_a_docstring"]() is None
    assert new["no_docstring"]() == "returns a str first"
    assert new["outer"]()() == "inner"
    assert list(new["generator"]()) == ["first"]
    assert new["Plain"]().method() == "Plain" and new["Plain"]().prop == "prop"
    assert new["Plain"].attribute == "A class docstring."   # same text as the docstring
    assert new["Later"].__doc__ == "assigned after another statement: kept"
    assert new["lam"]() == "a lambda's first constant"
    assert new["__annotations__"] == {"CONSTANT": "int"}
    assert new["CONSTANT"] == 3


def test_a_docstring_whose_text_the_function_also_loads_is_kept(both):
    # One constant serves both: taking it would change what the function returns.
    old, new = both
    assert new["shares_its_text"]() == "same text"
    assert new["shares_its_text"].__doc__ == old["shares_its_text"].__doc__ == "same text"


def test_code_without_docstrings_is_returned_as_it_is():
    code = compile("def f():\n    return 'x'\nclass C:\n    y = 'z'\n", "m.py", "exec")
    assert undoc(code) is code


STDLIB = Path(json.__file__).parent.parent


@pytest.mark.parametrize("package", ["json", "email", "asyncio", "collections", "importlib"])
def test_on_the_standard_library_it_takes_what_the_syntax_tree_calls_docstrings(package):
    """Each module compiled both ways: the constants that differ are exactly its docstrings
    (ast.get_docstring), each now None, and names, line tables and instructions are equal
    except where a class body's __doc__ store loads another constant."""
    for path in sorted((STDLIB / package).rglob("*.py")):
        source = path.read_bytes()
        tree = compile(source, str(path), "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
        docstrings = sum(
            1 for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                 ast.AsyncFunctionDef))
            and ast.get_docstring(node, clean=False) is not None)
        code = compile(tree, str(path), "exec", dont_inherit=True)
        assert _removed(code, undoc(code)) == docstrings, path


def _removed(old: types.CodeType, new: types.CodeType) -> int:
    assert (old.co_names, old.co_linetable, old.co_flags) == \
        (new.co_names, new.co_linetable, new.co_flags)
    count = int(old.co_code != new.co_code)
    assert new.co_consts[len(old.co_consts):] in ((), (None,))   # a None to load instead
    for a, b in zip(old.co_consts, new.co_consts):
        if isinstance(a, types.CodeType):
            count += _removed(a, b)
        elif type(a) is not type(b) or a != b:
            assert isinstance(a, str) and b is None, (a, b)
            count += 1
    return count


def test_the_script_runs_undoc_in_another_interpreter(tmp_path):
    """The builder prepends this module to scripts run by the interpreter it packages."""
    import subprocess

    body = ("code = undoc(compile('def f():\\n    \"doc\"\\n    return 1\\n', 'm', 'exec'))\n"
            "ns = {}\nexec(code, ns)\nprint(ns['f'].__doc__, ns['f']())\n")
    out = subprocess.run([sys.executable, "-I", "-c", script(body)], capture_output=True,
                         text=True, check=True, cwd=tmp_path).stdout
    assert out.split() == ["None", "1"]


# The sample run by each other CPython this machine has (the bytecode undoc reads differs
# between versions): the docstrings each finds, before and after.
REPORT = f"""
SAMPLE = {SAMPLE!r}
import json
def docs(ns):
    out = {{"module": ns["__doc__"], "Plain": ns["Plain"].__doc__,
           "method": ns["Plain"].method.__doc__, "inner": ns["outer"]().__doc__,
           "OnlyDoc": ns["OnlyDoc"].__doc__, "shares": ns["shares_its_text"].__doc__,
           "Later": ns["Later"].__doc__}}
    out.update({{name: ns[name].__doc__ for name in {FUNCTIONS!r}}})
    out["returns"] = [ns["plain"](2), ns["shares_its_text"](), ns["outer"]()(),
                      ns["Plain"].attribute, ns["lam"]()]
    return out
code = compile(SAMPLE, "sample.py", "exec", dont_inherit=True)
results = []
for c in (code, undoc(code)):
    ns = {{"__name__": "sample"}}
    exec(c, ns)
    results.append(docs(ns))
print(json.dumps(results))
"""


def other_pythons() -> list[Path]:
    from twelve.builder import pythons

    found = {}
    for path in pythons.candidates("3.1[2-9]"):
        version = path.name.removeprefix("python")
        found.setdefault(version, path)
    return list(found.values())


@pytest.mark.parametrize("python", other_pythons() or [None], ids=lambda p: p and p.name)
def test_undoc_in_every_other_cpython_here(python):
    if python is None:
        pytest.skip("no CPython 3.12 or later on this machine (uv's, pyenv's or on PATH)")
    import subprocess

    out = subprocess.run([str(python), "-I", "-c", script(REPORT)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    before, after = json.loads(out.stdout)
    kept = {"shares": "same text", "Later": "assigned after another statement: kept",
            "returns": before["returns"]}
    assert after == {key: kept.get(key) for key in before}
    assert before["Plain"] == "A class docstring." and before["plain"] == "A function's docstring."
