"""Which installed interpreter a release is built for and bundles (``[tool.twelve] python``).

Without ``python``, the release is built for the base installation twelve itself runs on
(``sys._base_executable``: never the venv). ``python = "3.12"`` picks an installed CPython 3.12,
found in this order: uv-managed Pythons (under ``uv python dir``; never downloaded), pyenv's (``$PYENV_ROOT/versions/*/bin/python3.12``), then ``python3.12`` on
PATH. ``python = "/path/to/python3.12"`` names one (relative to the project root).

The chosen interpreter is *probed* once (``probe``: run with ``-I`` to print what the build
needs: version, SOABI, platform, standard library and ``lib-dynload`` paths), so the
preparation of ``python/`` (``twelve.builder.interpreter``), dependency resolution (uv
``--python``), byte-compilation and the module-reference check never read the builder's own
``sys``/``sysconfig``. (The builder's own installation, the default, runs the same probe code
in-process: no interpreter started for it.)

``check_requires_python`` runs first in a build, before any step or resolution: when
``[project] requires-python`` excludes the chosen interpreter, the build fails at once naming the
interpreters installed (version and path) and how to get another. That failure is a
``BuildError`` (exit 1): pyproject.toml is valid, the machine lacks a fitting interpreter. A
``requires-python`` that is not a version specifier is a ``ProjectError`` (exit 2).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from twelve.errors import BuildError, ProjectError

if TYPE_CHECKING:   # packaging is imported where requires-python is checked: interpreter.py,
    from packaging.specifiers import SpecifierSet   # which needs only probe, stays stdlib-only

VERSION = re.compile(r"^3\.\d+$")   # what python = "X.Y" looks like
EXECUTABLE = re.compile(r"python3\.\d+")
DEFAULT_WHY = "the interpreter twelve runs on (the default: no [tool.twelve] python)"
CHOSEN_WHY = "chosen by [tool.twelve] python = \"{value}\""
EXCLUDED = "requires-python = \"{spec}\" excludes Python {version} at {exe}, {why}"
BAD_SPEC = "[project] requires-python = \"{spec}\" is not a version specifier: {error}"
BAD_SPEC_HINT = 'Write it as PEP 440 specifiers, e.g. requires-python = ">=3.11".'
NOT_INSTALLED = "no Python {version} is installed ([tool.twelve] python = \"{version}\")"
NOT_RUNNABLE = "[tool.twelve] python = \"{value}\": {exe} {problem}"
FOUND = "Installed interpreters:\n{rows}"
NONE_FOUND = "No interpreter was found in uv's managed Pythons, pyenv's versions or on PATH."
PICK_HINT = ('Build for one that fits with [tool.twelve] python = "{short}" (in '
             "pyproject.toml), or install another: `uv python install X.Y`, then "
             'python = "X.Y".')
INSTALL_HINT = ("Install one: `uv python install {version}` (or `pyenv install {version}`), "
                'then set [tool.twelve] python = "{version}"; or point python at an '
                "interpreter's path.")
PATH_HINT = ('Point [tool.twelve] python at a CPython executable (e.g. "/usr/bin/python3.12"),'
             ' or name a version: python = "3.12".')
# Printed by the probed interpreter; -I: no environment, no user site, no current directory.
PROBE = r"""
import json, os, sys, sysconfig
base = {"base": sys.base_prefix, "installed_base": sys.base_prefix,
        "platbase": sys.base_exec_prefix, "installed_platbase": sys.base_exec_prefix}
paths = sysconfig.get_paths(vars=base)
dynload = [p for p in sys.path if os.path.basename(p) == "lib-dynload" and os.path.isdir(p)]
print(json.dumps({
    "executable": os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable),
    "implementation": sys.implementation.name, "cache_tag": sys.implementation.cache_tag,
    "version": sys.version.split()[0], "full_version": sys.version,
    "short_version": sysconfig.get_python_version(),
    "soabi": sysconfig.get_config_var("SOABI") or "", "platform": sysconfig.get_platform(),
    "stdlib": paths["stdlib"], "platstdlib": paths["platstdlib"],
    "lib_dynload": dynload[0] if dynload else os.path.join(paths["platstdlib"], "lib-dynload"),
    "builtins": sorted(sys.builtin_module_names),
}))
"""


@dataclass(frozen=True)
class Python:
    """An installed CPython, as it describes itself (its base installation, never a venv)."""

    executable: Path      # the real file, symlinks resolved
    version: str          # "3.12.1"
    full_version: str     # its sys.version
    short_version: str    # "3.12"
    soabi: str            # "cpython-312-x86_64-linux-gnu"
    platform: str         # "linux-x86_64"
    cache_tag: str        # "cpython-312": the .pyc name tag
    stdlib: Path
    platstdlib: Path
    lib_dynload: Path
    builtins: tuple[str, ...] = ()   # sys.builtin_module_names: modules with no file

    @property
    def lib_name(self) -> str:
        return f"python{self.short_version}"


def probe(executable: str | Path, cache: Path | None = None) -> Python:
    """Run ``executable`` once and return what it says about itself; BuildError if it cannot
    run or is not CPython. ``cache``: a directory where what it said is kept, by its real path,
    size and mtime (and this probe), so that a rebuild does not start it again (~40 ms)."""
    kept = _kept(cache, executable)
    if kept is not None:
        try:
            return _described(json.loads(kept.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # not kept yet (or unreadable): run it
    return _probed(executable, kept)


def _kept(cache: Path | None, executable: str | Path) -> Path | None:
    if cache is None:
        return None
    try:
        st = os.stat(executable)
    except OSError:
        return None
    key = hashlib.sha256(json.dumps([os.path.realpath(executable), st.st_size,
                                     st.st_mtime_ns, PROBE]).encode()).hexdigest()[:32]
    return cache / f"{key}.json"


def _probed(executable: str | Path, kept: Path | None) -> Python:
    if _is_running(executable):
        return _kept_as(kept, _self_described())
    try:
        proc = subprocess.run([str(executable), "-I", "-c", PROBE], capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL, env={})
        data = json.loads(proc.stdout) if proc.returncode == 0 else None
    except (OSError, ValueError, subprocess.TimeoutExpired) as e:
        raise BuildError(f"{executable} cannot be run: {e}", hint=PATH_HINT) from None
    if data is None:
        raise BuildError(f"{executable} failed (exit {proc.returncode}): "
                         f"{(proc.stderr or proc.stdout).strip()[-500:]}", hint=PATH_HINT)
    if data["implementation"] != "cpython":
        raise BuildError(f"{executable} is {data['implementation']}, not CPython",
                         hint=PATH_HINT)
    return _kept_as(kept, data)


def _kept_as(kept: Path | None, data: dict) -> Python:
    if kept is not None:
        kept.parent.mkdir(parents=True, exist_ok=True)
        scratch = kept.with_name(f".{kept.name}.{os.getpid()}")
        scratch.write_text(json.dumps(data))
        os.replace(scratch, kept)  # whole or not at all
    return _described(data)


def _is_running(executable: str | Path) -> bool:
    """Whether ``executable`` is the installation this process runs on (a venv's base)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return sys.implementation.name == "cpython" and \
        os.path.realpath(executable) == os.path.realpath(base)


def _self_described() -> dict:
    """What ``PROBE`` prints, from this process: the very code, its output captured (the
    builder's own interpreter is the default one to bundle; ~40 ms of every cold build's
    start saved). A venv changes none of it: PROBE reads the base installation."""
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(PROBE, "<twelve probe>", "exec"), {"__name__": "__twelve_probe__"})
    return json.loads(printed.getvalue())


def _described(data: dict) -> Python:
    return Python(executable=Path(data["executable"]), version=data["version"],
                  full_version=data["full_version"], short_version=data["short_version"],
                  soabi=data["soabi"], platform=data["platform"], cache_tag=data["cache_tag"],
                  stdlib=Path(data["stdlib"]), platstdlib=Path(data["platstdlib"]),
                  lib_dynload=Path(data["lib_dynload"]), builtins=tuple(data["builtins"]))


def builder_python(cache: Path | None = None) -> Python:
    """The base installation twelve runs on: the default."""
    return probe(getattr(sys, "_base_executable", None) or sys.executable, cache)


def choose(value: str | None, root: Path, cache: Path | None = None) -> Python:
    """The interpreter ``[tool.twelve] python`` names (None: the builder's own); ``cache``:
    see ``probe``."""
    if value is None:
        return builder_python(cache)
    if VERSION.match(value):
        for candidate in candidates(value):
            found = _identify(candidate)
            if found is not None and _short(found[0]) == value:
                return probe(found[1], cache)
        raise BuildError(NOT_INSTALLED.format(version=value) + "\n" + found_table(),
                         hint=INSTALL_HINT.format(version=value))
    exe = (root / os.path.expanduser(value)).resolve()
    if not exe.is_file() or not os.access(exe, os.X_OK):
        problem = "is not an executable file" if exe.exists() else "does not exist"
        raise BuildError(NOT_RUNNABLE.format(value=value, exe=exe, problem=problem) + "\n"
                         + found_table(), hint=PATH_HINT)
    return probe(exe, cache)


def candidates(version: str = "3.*") -> list[Path]:
    """Executables that may be a CPython ``version`` ("3.12", or "3.*" for any), in order of
    preference: uv-managed, pyenv's, PATH's. Not yet run: ``installed`` probes them."""
    found = [*_uv_managed(version), *_pyenv(version), *_on_path(version)]
    # python3.X only: not python3.X-config, python3.X-gdb.py, nor 3.7's python3.7m
    return list(dict.fromkeys(p for p in found if EXECUTABLE.fullmatch(p.name)))


def _uv_managed(version: str) -> list[Path]:
    """uv's own installs (`uv python install`), where `uv python dir` says: asking `uv python
    list` instead takes seconds, as it inspects every Python on PATH too."""
    from twelve.builder.deps import uv_binary, uv_environ

    try:
        proc = subprocess.run([uv_binary(), "python", "dir"], capture_output=True, text=True,
                              env=uv_environ(), timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return []
    root = Path(proc.stdout.strip()) if proc.returncode == 0 else None
    return sorted(root.glob(f"cpython-*/bin/python{version}"), key=_newest_first) if root else []


def _pyenv(version: str) -> list[Path]:
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    return sorted(root.glob(f"versions/*/bin/python{version}"), key=_newest_first)


def _on_path(version: str) -> list[Path]:
    found = []
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if directory and "shims" not in Path(directory).parts:   # pyenv shims: seen above
            found += sorted(Path(directory).glob(f"python{version}"), key=_newest_first)
    return found


def _newest_first(path: Path) -> tuple:
    return tuple(-int(n) for n in re.findall(r"\d+", str(path))[-2:])


def _identify(executable: Path) -> tuple[str, Path] | None:
    """(version, real base executable) of a candidate, quickly (-S: no site), or None when it
    does not run."""
    script = ("import os, sys; print(sys.version.split()[0]); print(os.path.realpath("
              "getattr(sys, '_base_executable', None) or sys.executable))")
    try:
        proc = subprocess.run([str(executable), "-I", "-S", "-c", script], capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL, env={})
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = proc.stdout.split("\n")
    return (lines[0], Path(lines[1])) if proc.returncode == 0 and len(lines) > 2 else None


def installed() -> list[tuple[str, Path]]:
    """(version, executable) of every CPython found, one per installation, the builder's own
    first."""
    seen: dict[Path, str] = {}
    for exe in [Path(getattr(sys, "_base_executable", None) or sys.executable), *candidates()]:
        found = _identify(exe)
        if found is not None:
            seen.setdefault(found[1], found[0])
    return [(version, exe) for exe, version in seen.items()]


def found_table(pythons: list[tuple[str, Path]] | None = None,
                spec: SpecifierSet | None = None) -> str:
    """The installed interpreters, one per line: version, path, and whether ``spec`` allows it."""
    pythons = installed() if pythons is None else pythons
    if not pythons:
        return NONE_FOUND
    rows = [f"  {version:<9} {exe}" + ("   (fits)" if spec is not None
                                        and _fits(spec, version) else "")
            for version, exe in pythons]
    return FOUND.format(rows="\n".join(rows))


def check_requires_python(spec: str | None, python: Python, chosen: str | None) -> None:
    """Fail unless ``[project] requires-python`` allows ``python``."""
    if spec is None:
        return
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        specifiers = SpecifierSet(spec)
    except InvalidSpecifier as e:
        raise ProjectError(BAD_SPEC.format(spec=spec, error=e), hint=BAD_SPEC_HINT) from None
    if _fits(specifiers, python.version):
        return
    why = CHOSEN_WHY.format(value=chosen) if chosen else DEFAULT_WHY
    pythons = installed()
    fitting = [version for version, _ in pythons if _fits(specifiers, version)]
    hint = (PICK_HINT.format(short=_short(fitting[0])) if fitting
            else INSTALL_HINT.format(version="X.Y"))
    raise BuildError(EXCLUDED.format(spec=spec, version=python.version, exe=python.executable,
                                     why=why) + "\n" + found_table(pythons, specifiers),
                     hint=hint)


def _fits(specifiers: SpecifierSet, version: str) -> bool:
    return specifiers.contains(version, prereleases=True)


def _short(version: str) -> str:
    return ".".join(version.split(".")[:2])
