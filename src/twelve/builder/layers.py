"""The release's own parts of ``lib/``, built once per content and copied into every rebuild.

A rebuild with nothing changed must cost little more than hashing its inputs, and still give
the very bytes a clean build gives. So each part of ``lib/`` that is not a locked dependency
(those are ``depcache``'s, linked) is made once per *content* into a cache entry, and every
build copies the entry into its staging tree:

- **the app** (``app/<key>/``): its wheel (``uv build``), installed into an empty ``lib/``,
  normalised (``archive.normalise_lib``), byte-compiled with root-relative paths (and with
  ``strip``, its ELF files stripped). The key is a hash of every file of the project a build
  backend may read (``project_digest``: all of them but the outputs, VCS data, virtualenvs,
  ``node_modules`` and bytecode caches), the interpreter's ABI, ``strip``, SOURCE_DATE_EPOCH
  (the backend stamps the wheel with it), uv's identity and ``FORMAT``. One edited ``.py``
  gives another key: the wheel is built again, the dependencies are only linked.
- **twelve's runtime** (``runtime/<key>/``): ``lib/twelve`` and ``lib/twelve_boot.py``,
  byte-compiled; the key hashes the runtime's files, the interpreter and ``FORMAT``.
- **small text results** (``memo/<kind>/<key>``): ``uv export`` of the lock (keyed by the
  lock and every ``pyproject.toml``/``uv.toml`` of the project) and the SBOM (keyed by all it
  says): both deterministic functions of their key, written once, read back.

Why a rebuild stays identical: each entry is a pure function of what its key hashes, built in
a temporary sibling and renamed into place when complete, never written again; what a clean
build computes, a rebuild copies (``copy_entry``: a step after ``assemble`` may write into the
app's files in place, which must not reach the cache).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Callable

from twelve.builder import archive, assemble, depcache, deps, elf
from twelve.errors import BuildError

FORMAT = 1  # bump when what an entry holds, or how it is made, changes
Log = Callable[[str], None]

# Never inputs of a wheel: twelve's outputs, version control, environments, caches.
NOT_SOURCES = frozenset({"_build", ".git", ".hg", ".svn", ".venv", "node_modules",
                         "__pycache__", ".tox", ".nox", ".mypy_cache", ".pytest_cache",
                         ".ruff_cache"})
LOCK_INPUTS = frozenset({"pyproject.toml", "uv.toml", "uv.lock"})


def project_digest(root: Path, outputs: Path | None = None) -> dict[str, str]:
    """relative path → sha256 of every file of the project a build backend may read (and
    "-> target" for symlinks); ``outputs`` (the release's directory) is left out too."""
    found: dict[str, str] = {}
    skip_dir = str(outputs.parent) if outputs is not None else None
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in NOT_SOURCES
                             and os.path.join(dirpath, d) != skip_dir)
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                found[rel] = "-> " + os.readlink(path)
            elif name.endswith((".pyc", ".pyo")):
                continue
            else:
                found[rel] = assemble.sha256_file(Path(path))
    return found


def key_of(material: object) -> str:
    text = json.dumps({"format": FORMAT, "material": material}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def uv_identity() -> list:
    """uv's path, size and mtime: another uv may export or build differently."""
    path = deps.uv_binary()
    st = os.stat(path)
    return [path, st.st_size, st.st_mtime_ns]


# -- text results --------------------------------------------------------------------------------

def recall(cache: Path, kind: str, key: str) -> str | None:
    try:
        return (cache / "memo" / kind / key).read_text(encoding="utf-8")
    except OSError:
        return None


def remember(cache: Path, kind: str, key: str, text: str) -> None:
    """Store ``text`` whole or not at all (a concurrent build writes the same text)."""
    folder = cache / "memo" / kind
    folder.mkdir(parents=True, exist_ok=True)
    scratch = folder / f".{key}.{os.getpid()}"
    try:
        scratch.write_text(text, encoding="utf-8")
        os.replace(scratch, folder / key)
    finally:
        scratch.unlink(missing_ok=True)


# -- entries -------------------------------------------------------------------------------------

def _publish(stage: Path, entry: Path) -> Path:
    archive.normalise_modes(stage)
    depcache.write_hashes(stage)
    try:
        os.rename(stage, entry)
    except OSError:
        if not (entry / depcache.HASHES).is_file():  # not a concurrent build that won
            raise
    return entry


def _stage(cache: Path, entry: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    depcache.remove_abandoned(cache)
    stage = cache / f".tmp-{os.getpid()}-{entry.name}"
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "lib").mkdir(parents=True)
    return stage


def runtime_entry(cache: Path, python: str, python_id: str) -> Path:
    """The cache entry holding ``lib/twelve`` and ``lib/twelve_boot.py``, compiled."""
    runtime = {rel: digest for rel, digest in
               project_digest(assemble.RUNTIME_SRC / "runtime").items()}
    key = key_of({"runtime": runtime, "init": assemble.sha256_file(
        assemble.RUNTIME_SRC / "__init__.py"), "boot": assemble.BOOT_ENTRY,
        "python": python_id})
    entry = cache / "runtime" / key
    if (entry / depcache.HASHES).is_file():
        return entry
    stage = _stage(cache / "runtime", entry)
    try:
        lib = stage / "lib"
        assemble.copy_runtime(lib)
        _compile(stage, python, [lib / "twelve", lib / "twelve_boot.py"], lambda line: None)
        return _publish(stage, entry)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


class AppEntry:
    """The app's cache entry: found at once, or made by a wheel build that runs in its own
    process while the build links the dependencies (``result()`` waits and installs it).

    Starting that build may first make its build environment (``build_environment``: the
    first time, uv installs the backend from the index), so it starts in a thread: the
    locked packages' install does not wait for it."""

    def __init__(self, cache: Path, project, python: Path, python_id: str, strip: bool,
                 sources: dict[str, str], host: Path) -> None:
        self.python, self.strip, self.project = python, strip, project
        self.entry = cache / "app" / key_of({
            "sources": sources, "python": python_id, "strip": strip, "uv": uv_identity(),
            "epoch": os.environ.get("SOURCE_DATE_EPOCH")})
        self.building = self.stage = self.environment = self._starting = None
        self._cancelled, self._error = False, None
        if not (self.entry / depcache.HASHES).is_file():
            self.stage = _stage(cache / "app", self.entry)
            self._starting = threading.Thread(target=self._start, args=(cache, host),
                                              name="twelve-app-wheel", daemon=True)
            self._starting.start()

    def _start(self, cache: Path, host: Path) -> None:
        try:
            self.environment = build_environment(cache, self.project, host)
            if not self._cancelled:
                self.building = deps.AppWheelBuild(self.project, self.python,
                                                   self.stage / "wheel", self.environment)
        except BaseException as e:  # noqa: BLE001 - raised again by _started, in the build
            self._error = e

    def _started(self) -> None:
        """Wait until the wheel build has started; raise what stopped it from starting."""
        if self._starting is not None:
            self._starting.join()
            self._starting = None
        if self._error is not None:
            raise self._error

    @property
    def cached(self) -> bool:
        return self.stage is None

    def raise_if_failed(self) -> None:
        """Report a wheel build that already failed; never waits for one still starting."""
        if self._starting is not None and self._starting.is_alive():
            return
        self._started()
        if self.building is not None and self.environment is None:
            self.building.raise_if_failed()  # else result() tries an isolated build first

    def _wheel(self) -> Path:
        try:
            return self.building.result()
        except BuildError:
            if self.environment is None:
                raise
        # A backend may ask for more than requires at build time (get_requires_for_build_wheel),
        # which only uv's isolated build installs: it also gives the error worth showing.
        shutil.rmtree(self.stage / "wheel", ignore_errors=True)
        self.building = deps.AppWheelBuild(self.project, self.python, self.stage / "wheel")
        return self.building.result()

    def result(self, log: Log) -> Path:
        if self.cached:
            return self.entry
        try:
            self._started()
            wheel = self._wheel()
            log(f"* installing {wheel.name}")
            lib = self.stage / "lib"
            deps.install_wheel(wheel, lib, self.python)
            deps.remove_scripts(lib)
            archive.normalise_lib(lib)
            files = deps.wheel_files(lib, wheel)
            _compile(self.stage, str(self.python), files, log)
            if self.strip:
                elf.strip_debug_info([p for p in files if p.is_file() and elf.is_elf(p)], log)
            return _publish(self.stage, self.entry)
        finally:
            shutil.rmtree(self.stage, ignore_errors=True)

    def cancel(self) -> None:
        if self.cached:
            return
        self._cancelled = True
        if self._starting is not None:
            self._starting.join()  # its uv commands are bounded, and get the terminal's ^C
        if self.building is not None:
            self.building.cancel()
        shutil.rmtree(self.stage, ignore_errors=True)


def build_environment(cache: Path, project, host: Path) -> Path | None:
    """A virtualenv of ``host`` (the interpreter the release bundles a copy of) holding the
    project's ``[build-system].requires``, made once per requirements, interpreter and uv, so
    that a changed app builds its wheel without uv making an isolated environment each time
    (the same backend versions give the same wheel). None when the project cannot use one (no
    requires, an in-tree backend) or when making it fails: uv's isolated build then runs, and
    says what is wrong."""
    if project.build_requires is None:
        return None
    st = os.stat(host)
    env = cache / "build-env" / key_of({"requires": list(project.build_requires),
                                        "python": [str(host), st.st_size, st.st_mtime_ns],
                                        "uv": uv_identity()})
    if (env / READY).is_file():
        return env
    (cache / "build-env").mkdir(parents=True, exist_ok=True)
    depcache.remove_abandoned(cache / "build-env")
    stage = cache / "build-env" / f".tmp-{os.getpid()}-{env.name}"
    shutil.rmtree(stage, ignore_errors=True)
    try:
        made = _make_environment(stage, host, project.build_requires)
        if made:
            (stage / READY).write_text("")
            try:
                os.rename(stage, env)  # a venv runs from any path: its python is a symlink
            except OSError:
                if not (env / READY).is_file():
                    return None
        return env if made else None
    finally:
        shutil.rmtree(stage, ignore_errors=True)


READY = ".twelve-ready"  # marker: the environment is complete


def _make_environment(stage: Path, host: Path, requires: tuple[str, ...]) -> bool:
    import subprocess

    commands = [[deps.uv_binary(), "venv", "--quiet", "--python", str(host), str(stage)]]
    if requires:
        commands.append([deps.uv_binary(), "pip", "install", "--quiet", "--python",
                         str(stage / "bin" / "python"), *requires])
    return all(subprocess.run(command, env=deps.uv_environ(), capture_output=True,
                              stdin=subprocess.DEVNULL).returncode == 0
               for command in commands)


def app_wheel(entry: Path) -> Path:
    return next((entry / "wheel").glob("*.whl"))


def app_files(entry: Path, lib: Path) -> list[Path]:
    """The files the app's wheel installed, at their place in ``lib``."""
    return [lib / p.relative_to(entry / "lib") for p in deps.wheel_files(entry / "lib",
                                                                        app_wheel(entry))]


def _compile(stage: Path, python: str, paths: list[Path], log: Log) -> None:
    """As a build compiles lib/: hash-based .pyc, paths relative to the release's root."""
    sources = [p for p in paths if p.is_dir() or p.suffix == ".py"]
    complaints = assemble.byte_compile(stage, python, paths=sources)
    if complaints:
        log("  warning: some files could not be byte-compiled (they stay as source):\n"
            + "\n".join("    " + line for line in complaints.splitlines()[:10]))


def copy_entry(entry: Path, lib: Path) -> None:
    """Copy an entry's ``lib/`` into the release's, over what is there (as an install would).
    Copied, not linked: these are the files a step after ``assemble`` may write into in
    place (the app's own, twelve's runtime), and a few hundred small files cost milliseconds
    (the manifest hashes them again); the cache entry must stay as it was made."""
    depcache.link_tree(entry / "lib", lib, replace=True, copy=True)
