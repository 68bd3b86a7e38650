"""The modules the project names — ``app`` (or each entry of its table) and every process type's
``module:function`` — must exist in the release, or the build fails before it is published.

The check is an import-system lookup in the staging release, never an import: no code of the
app runs at build time (importing it could need the runtime config, a database, secrets). Each
part of a dotted name is found as the release's import system would find it: in ``lib/`` (the
entry of ``sys.path`` that ``lib/twelve_boot.py`` gives the release), then in the standard
library, with regular packages, namespace packages, sourceless ``.pyc`` (``strip = true``) and
extension modules. A package's ``__init__`` is never executed, so a module that only a
package's ``__init__`` would create at import time (rare) is reported as missing.

The attribute after the colon is not checked: only running the module can tell.
"""
from __future__ import annotations

import difflib
import os
import sys
import zipimport
from importlib.machinery import (BYTECODE_SUFFIXES, EXTENSION_SUFFIXES, SOURCE_SUFFIXES,
                                 ExtensionFileLoader, FileFinder, SourceFileLoader,
                                 SourcelessFileLoader)
from pathlib import Path

from twelve.builder import interpreter
from twelve.builder.release import Release
from twelve.errors import BuildError

MISSING = "{key} = {ref!r}: no module {module!r} in the release"
MISSING_HINT = ("The module must be in the project's own package or in a dependency: check the "
                "spelling, and that the build backend includes the package in the wheel (e.g. "
                "[tool.hatch.build.targets.wheel] packages = [\"src/PKG\"]).{known} The previous "
                "release is unchanged.")
DID_YOU_MEAN = " Did you mean {name}?"
OWN_MODULES = " The project's wheel holds: {names}."

_LOADERS = ((ExtensionFileLoader, EXTENSION_SUFFIXES), (SourceFileLoader, SOURCE_SUFFIXES),
            (SourcelessFileLoader, BYTECODE_SUFFIXES))


def project_references(release: Release) -> list[tuple[str, str]]:
    """(pyproject key, "module:attr") for every reference the release will import."""
    project = release.project
    refs = ([(f"tool.twelve.app.{kind}", ref) for kind, ref in sorted(project.apps.items())]
            or [("tool.twelve.app", project.app)])
    refs += [(f"tool.twelve.processes.{name}", ref)
             for name, ref in sorted(project.processes.items()) if ref != "server"]
    return refs


def check_references(release: Release, app_files: list[Path]) -> None:
    """Fail unless every module the project names is in the staging release."""
    lib = release.staging / "lib"
    search = [str(lib), *_stdlib_paths(release)]
    builtins = release.python.builtins if release.python else sys.builtin_module_names
    for key, ref in project_references(release):
        module = ref.split(":", 1)[0].strip()
        if not module_exists(module, search, builtins):
            raise BuildError(MISSING.format(key=key, ref=ref, module=module),
                             hint=MISSING_HINT.format(known=_known(module, lib, app_files)))


def module_exists(name: str, search: list[str],
                  builtins: tuple[str, ...] = tuple(sys.builtin_module_names)) -> bool:
    """Whether ``import name`` would find a module along ``search`` (or among the release
    interpreter's ``builtins``), found without running any code: each parent package's
    ``__path__`` is where its next part is looked up."""
    parts = name.split(".")
    if not all(part.isidentifier() for part in parts):
        return False
    if parts[0] in builtins:
        return len(parts) == 1
    for depth in range(len(parts)):
        fullname = ".".join(parts[:depth + 1])
        found, portions = None, []
        for entry in search:
            spec = _finder(entry).find_spec(fullname)
            if spec is None:
                continue
            if spec.loader is not None:
                found = spec
                break
            portions += spec.submodule_search_locations or []  # a namespace package's part
        if found is None and not portions:
            return False
        search = list(found.submodule_search_locations or []) if found else portions
        if depth < len(parts) - 1 and not search:
            return False  # a plain module has no submodules
    return True


def _finder(entry: str):
    """A zip on the path (the stdlib's pythonXY.zip, strip = true) is searched as import does."""
    if ".zip" in entry and not os.path.isdir(entry):
        try:
            return zipimport.zipimporter(entry)
        except zipimport.ZipImportError:
            pass
    return FileFinder(entry, *_LOADERS)


def _stdlib_paths(release: Release) -> list[str]:
    """The standard library the release imports from: the bundled one (as pruned), else the
    one of the interpreter it is built for, which the target's must match."""
    source = release.python or interpreter.find_source()
    bundled = release.staging / "python" / "lib" / source.lib_name
    if bundled.is_dir():
        zipped = bundled.parent / (source.lib_name.replace(".", "") + ".zip")
        return [str(zipped), str(bundled), str(bundled / "lib-dynload")]
    return [str(p) for p in dict.fromkeys([source.stdlib, source.platstdlib, source.lib_dynload])]


def _known(module: str, lib: Path, app_files: list[Path]) -> str:
    """A did-you-mean among the app wheel's modules, or the list of them."""
    own = sorted({_module_name(path, lib) for path in app_files} - {None})
    if not own:
        return ""
    close = difflib.get_close_matches(module, own, n=1, cutoff=0.6)
    if close:
        return DID_YOU_MEAN.format(name=close[0])
    return OWN_MODULES.format(names=", ".join(own[:12]) + (", ..." if len(own) > 12 else ""))


def _module_name(path: Path, lib: Path) -> str | None:
    """``hello/web.py`` → ``hello.web``; ``hello/__init__.py`` → ``hello``; else None."""
    try:
        rel = path.relative_to(lib)
    except ValueError:
        return None
    if rel.suffix not in (".py", ".pyc") or "__pycache__" in rel.parts or ".dist-info" in str(rel):
        return None
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts) if parts and all(p.isidentifier() for p in parts) else None
