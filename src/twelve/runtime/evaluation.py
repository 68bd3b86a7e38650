"""Running a line of code the way `bin/NAME eval` and `rpc` promise: modules named in the code
are imported for it (``hello.release.migrate()`` works without ``import hello.release``, as
``Hello.Release.migrate()`` does in a mix release), and the value of a final expression is
returned so the caller can print its repr, like the REPL.
"""
from __future__ import annotations

import _ast as ast  # the node classes, without ast.py and what it imports (eval starts faster)
import builtins
import sys

_MISSING = object()


def autoimport(tree: ast.AST, namespace: dict) -> None:
    """Import the modules behind dotted names the code reads but never binds.

    Only dotted names (``os.getpid``) are considered: a bare unknown name stays a NameError
    rather than importing a module of that name for its side effects.
    """
    bound = _bound_names(tree)
    for chain in _dotted_loads(tree):
        root = chain[0]
        if root in bound or hasattr(builtins, root):
            continue
        if root not in namespace:
            try:
                namespace[root] = _import(root)
            except ImportError:
                continue  # not a module: the NameError, if any, will say so
        for depth in range(2, len(chain) + 1):
            try:
                _import(".".join(chain[:depth]))
            except ImportError:
                break


def _import(name: str):
    """importlib.import_module for an absolute name, without importing importlib (and warnings
    with it) into every eval."""
    __import__(name)
    return sys.modules[name]


def run(code: str, namespace: dict, filename: str = "<eval>"):
    """Execute ``code``; return the value of its last statement if that is an expression."""
    tree = parse(code, filename)
    autoimport(tree, namespace)
    last = tree.body[-1] if tree.body else None
    if isinstance(last, ast.Expr):
        tree.body.pop()
        exec(compile(tree, filename, "exec"), namespace)
        return eval(compile(ast.Expression(last.value), filename, "eval"), namespace)
    exec(compile(tree, filename, "exec"), namespace)
    return _MISSING


def parse(code: str, filename: str) -> ast.Module:
    return compile(code, filename, "exec", ast.PyCF_ONLY_AST)  # what ast.parse does


def _walk(tree: ast.AST):
    """Every node of the tree (ast.walk's order does not matter here)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for field in node._fields:
            value = getattr(node, field, None)
            if isinstance(value, ast.AST):
                todo.append(value)
            elif isinstance(value, list):
                todo.extend(item for item in value if isinstance(item, ast.AST))


def format_user_traceback(exc: BaseException, filename: str) -> str:
    """The traceback from the user's code (``filename``) on: twelve's frames are noise."""
    import traceback

    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))


def has_value(result) -> bool:
    return result is not _MISSING and result is not None


def _dotted_loads(tree: ast.AST):
    for node in _walk(tree):
        if isinstance(node, ast.Attribute):
            chain = []
            inner = node
            while isinstance(inner, ast.Attribute):
                chain.append(inner.attr)
                inner = inner.value
            if isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Load):
                yield [inner.id, *reversed(chain)]


def _bound_names(tree: ast.AST) -> set[str]:
    names = set()
    for node in _walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names
