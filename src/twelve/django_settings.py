"""A Django project's settings modules, read from its source: neither Django nor the settings
are imported (the build machine may lack Django, and importing settings evaluates the runtime
config, which may need secrets a build must not have).

Owns three questions, for ``twelve gen.release`` and ``twelve release``:

* ``default_settings``: the module a file (``manage.py``, ``wsgi.py``, ``asgi.py``) defaults
  ``DJANGO_SETTINGS_MODULE`` to, from its ``os.environ.setdefault(...)`` line.
* ``split_package`` and ``production_modules``: whether those settings are one module of a
  settings *package* (``settings/{base,dev,production}.py``, as Wagtail's and
  cookiecutter-django's templates lay it out; manage.py then names the development module),
  and which of its modules is for production (``production`` or ``prod``; anything else, e.g.
  ``staging`` alone, is not guessed).
* ``debug_is_true``: whether a settings module ends up with ``DEBUG = True`` as a literal,
  following ``from .base import *``; a value read from the config is not judged.

Modules are found under the project's root and its ``src/``.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

PRODUCTION = ("production", "prod")
# Module names of split settings besides production's: what tells a settings package apart.
SPLIT_NAMES = frozenset(("base", "common", "defaults", "dev", "development", "local", "prod",
                         "production", "staging", "test", "testing", "ci"))
DEFAULT_SETTINGS = re.compile(
    r"""DJANGO_SETTINGS_MODULE['"]\s*,\s*['"]([A-Za-z_][\w.]*)['"]""")
MAX_STAR_IMPORTS = 10  # `from .base import *` chains followed; a cycle stops earlier


def roots(project_root: Path) -> tuple[Path, ...]:
    return (project_root / "src", project_root)


def default_settings(path: Path) -> str | None:
    """The settings module ``path`` passes to ``os.environ.setdefault``, if it does."""
    if not path.is_file():
        return None
    match = DEFAULT_SETTINGS.search(path.read_text(errors="replace"))
    return match.group(1) if match else None


def module_file(search: tuple[Path, ...], dotted: str) -> Path | None:
    """The source file of the module ``dotted`` (a package's ``__init__.py``), or None."""
    for root in search:
        base = root.joinpath(*dotted.split("."))
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def split_package(search: tuple[Path, ...], settings: str) -> str | None:
    """The settings package ``settings`` belongs to (or is), when the settings are split."""
    own = module_file(search, settings)
    if own is not None and own.name == "__init__.py" and _modules_of(own.parent):
        return settings
    parent, _, leaf = settings.rpartition(".")
    parent_file = module_file(search, parent) if parent else None
    if parent_file is None or parent_file.name != "__init__.py":
        return None
    if leaf in SPLIT_NAMES or parent.rpartition(".")[2] == "settings":
        return parent
    return None


def package_modules(search: tuple[Path, ...], package: str) -> list[str]:
    """The dotted names of the modules of a settings package, sorted."""
    init = module_file(search, package)
    return [f"{package}.{name}" for name in _modules_of(init.parent)] if init else []


def production_modules(modules: list[str]) -> list[str]:
    return [m for m in modules if m.rpartition(".")[2] in PRODUCTION]


def _modules_of(directory: Path) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.py") if p.stem != "__init__")


def debug_is_true(search: tuple[Path, ...], settings: str) -> bool:
    """Whether ``settings`` assigns ``DEBUG = True`` last, its star imports included."""
    return _debug_value(search, settings, MAX_STAR_IMPORTS) is True


def _debug_value(search: tuple[Path, ...], dotted: str, depth: int):
    path = module_file(search, dotted)
    if path is None or depth == 0:
        return None
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError):
        return None
    package = dotted if path.name == "__init__.py" else dotted.rpartition(".")[0]
    value = None
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            imported = _absolute(node, package)
            found = _debug_value(search, imported, depth - 1) if imported else None
            value = found if found is not None else value
        elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "DEBUG" for t in node.targets):
            value = node.value.value if isinstance(node.value, ast.Constant) else "computed"
    return value


def _absolute(node: ast.ImportFrom, package: str) -> str | None:
    if not node.level:
        return node.module
    parts = package.split(".")
    if node.level - 1 >= len(parts):
        return None
    base = parts[:len(parts) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


DEBUG_AT_BUILD = ("  warning: {file} defaults DJANGO_SETTINGS_MODULE to {settings}, which set "
                  "DEBUG = True: the prod release serves with DEBUG on unless "
                  "DJANGO_SETTINGS_MODULE names other settings at boot (docs/django.md, "
                  "\"Split settings\")")


def debug_warning(project_root: Path, app_module: str) -> str | None:
    """The build's warning when the app module defaults to settings with ``DEBUG = True``."""
    search = roots(project_root)
    app_file = module_file(search, app_module)
    settings = default_settings(app_file) if app_file else None
    if settings is None or not debug_is_true(search, settings):
        return None
    return DEBUG_AT_BUILD.format(file=app_file.relative_to(project_root).as_posix(),
                                 settings=settings)
