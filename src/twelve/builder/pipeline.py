"""`twelve release`: project → Release → steps → a release directory, atomically.

Everything is validated before any I/O; the release is assembled in a staging sibling and
swapped into place only when complete, so a failed build (bad config, unresolvable dependency,
full disk) leaves the previous release byte-for-byte as it was and no half-written directory.
"""
from __future__ import annotations

import contextlib
import contextvars
import errno
import importlib
import json
import os
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Callable

import twelve
from twelve import aliases, django_settings
from twelve.builder import (archive, assemble, depcache, deps, elf, image, interpreter,
                            layers, progress, pythons, references, sbom, secret_guard)
from twelve.builder.release import Release
from twelve.errors import BuildError, TwelveError
from twelve.project import Project
from twelve.runtime.config import store as runtime_config

Log = Callable[[str], None]

NO_PACKAGE = ("* no package of its own to build ({why}): lib/ holds the locked dependencies, "
              "and app names a module of one of them")


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "twelve"


def build(release: Release, *, log: Log, overwrite: bool, confirm: Callable[[str], bool],
          quiet: bool = False) -> Release:
    """Run every step of the release; return the release as built. Long work reports through
    a ``Progress`` (progress.py), and the last line says what each step cost."""
    watching = progress.Progress(log, quiet=quiet)
    with progress.using(watching):
        release = _build(release, log=watching.show, overwrite=overwrite, confirm=confirm,
                         quiet=quiet)
    watching.show(watching.summary())
    return release


def _build(release: Release, *, log: Log, overwrite: bool, confirm: Callable[[str], bool],
           quiet: bool) -> Release:
    release = replace(release, python=choose_python(release.project))
    check_overwrite(release, overwrite, confirm)
    log(f"* assembling {release.name}-{release.version} on TWELVE_ENV={release.env}")
    if release.env == "prod":
        warn_debug_settings(release, log)
    release = replace(release, build_config=evaluate_build_config(release, log))
    secret_guard.check_build_config(release, log)  # before any I/O: a literal secret costs nothing
    release.root.parent.mkdir(parents=True, exist_ok=True)
    assemble.remove_stale_staging(release)
    release = replace(release, staging=assemble.staging_dir(release))
    try:
        assembled = unsealed = False  # unsealed: a step may have changed files since
        for step in release.project.steps:
            if step in ("tar", "image") and unsealed:
                release, unsealed = reseal(release, log), False
            with _phase(step):
                release = run_step(step, release, log, quiet)
            if step == "assemble":
                assembled = True
            elif step not in ("tar", "image") and assembled:
                unsealed = True
        if unsealed:
            release = reseal(release, log)
        assemble.swap_into_place(release)
        archive.publish_tarball(release)
        image.publish_image(release)
    except OSError as e:
        raise _os_error(e, release) from None
    finally:
        archive.discard_pending_tarball(release)
        image.discard_pending_image(release)
        if release.staging.exists():
            shutil.rmtree(release.staging, ignore_errors=True)
    return replace(release, staging=None)


def choose_python(project: Project) -> pythons.Python:
    """The interpreter the release is built for, checked against requires-python before any
    step runs or anything is resolved."""
    chosen = pythons.choose(project.python, project.root, cache_root() / "pythons")
    pythons.check_requires_python(project.requires_python, chosen, project.python)
    return chosen


def warn_debug_settings(release: Release, log: Log) -> None:
    # A prod release whose Django settings default to DEBUG = True serves tracebacks to anyone.
    warning = django_settings.debug_warning(release.project.root, release.project.app_module)
    if warning:
        log(warning)


def check_overwrite(release: Release, overwrite: bool,
                    confirm: Callable[[str], bool]) -> None:
    existing = release.root / "releases" / release.version
    if overwrite or not existing.exists():
        return
    question = f"Release {release.name}-{release.version} already exists. Overwrite?"
    if not confirm(question):
        raise BuildError(f"release {release.name}-{release.version} already exists at "
                         f"{release.display_root}; not overwritten",
                         hint="Pass --overwrite to replace it, or --version to build another.")


def evaluate_build_config(release: Release, log: Log) -> dict:
    config_dir = release.project.config_dir
    files = [p for p in (config_dir / "config.py", config_dir / f"{release.env}.py")
             if p.is_file()]
    if files:
        log(f"* evaluating build config ({', '.join(_rel(p, release) for p in files)})")
    return runtime_config.evaluate_build_config(config_dir, release.env, dict(os.environ))


def run_step(step: str, release: Release, log: Log, quiet: bool = False) -> Release:
    if step == "assemble":
        return assemble_release(release, log)
    if step == "tar":
        log(f"* writing {_rel(archive.tarball_path(release), release)}")
        archive.write_tarball(release, archive.source_date_epoch(os.environ))
        return release
    if step == "image":
        log(f"* writing the OCI image {_rel(image.layout_path(release), release)}")
        image.write_image(release, release.staging, log=log,
                          epoch=archive.source_date_epoch(os.environ))
        return release
    if step in release.project.aliases:
        aliases.run_alias(release.project, step, log=log, quiet=quiet)
        return release
    module_name, func_name = step.split(":")
    log(f"* running step {step}")
    try:
        func = getattr(_import_from_project(module_name, release.project.root), func_name)
    except (ImportError, AttributeError) as e:
        raise BuildError(f"step {step!r} cannot be loaded: {e}",
                         hint="Step modules are imported from the project's root (and its "
                              "src/), e.g. release_steps.py beside pyproject.toml.") from None
    try:
        with _heartbeat(f"step {step}"):
            result = func(release)
    except (TwelveError, KeyboardInterrupt, OSError):
        raise  # already explained, or a full disk: reported by build()
    except Exception as e:  # noqa: BLE001 - the project's own code: one message, no traceback
        where = _step_line(e)
        raise BuildError(f"step {step!r} failed{where}: {type(e).__name__}: {e}",
                         hint="Fix the step (run it alone to see the whole traceback); the "
                              "previous release is unchanged.") from None
    if not isinstance(result, Release):
        raise BuildError(f"step {step!r} returned {type(result).__name__}, not the release",
                         hint="A step receives the release and must return it "
                              "(use dataclasses.replace to change it).")
    return result


def _heartbeat(what: str):
    watching = progress.current()
    return watching.heartbeat(what) if watching is not None else contextlib.nullcontext()


def _phase(name: str):
    watching = progress.current()
    return watching.phase(name) if watching is not None else contextlib.nullcontext()


def _step_line(exc: BaseException) -> str:
    """" at FILE:LINE" of the innermost frame of the step's traceback, or ""."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return f" at {tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb is not None else ""


def _import_from_project(name: str, root: Path):
    """Step modules live in the project, which the twelve command is not run from."""
    added = [str(p) for p in (root, root / "src") if p.is_dir() and str(p) not in sys.path]
    sys.path[:0] = added
    try:
        return importlib.import_module(name)
    finally:
        for path in added:
            sys.path.remove(path)


def assemble_release(release: Release, log: Log) -> Release:
    project, staging = release.project, release.staging
    archive.source_date_epoch(os.environ)  # a bad SOURCE_DATE_EPOCH fails before any work
    assemble.start_staging(release)
    # The bundled interpreter is prepared (the first time: seconds, mostly other programs)
    # while the dependencies install: they are installed and compiled by the interpreter it
    # is a copy of (release.python), the same compiler, so the bytes are the same.
    # twelve's runtime, compiled once per twelve and interpreter (runtime_entry), meanwhile too.
    builder, python_id, known = release.python.executable, _python_id(release), {}
    background = ThreadPoolExecutor(2, thread_name_prefix="twelve-python")
    bundling = background.submit(contextvars.copy_context().run, install_interpreter,
                                 release, log)
    runtime = background.submit(layers.runtime_entry, cache_root(), str(builder), python_id)
    try:
        lib = staging / "lib"
        with _phase("dependencies"), \
                tempfile.TemporaryDirectory(prefix="twelve-builder-") as work:
            packages, app_files = install_dependencies(release, builder, python_id, lib,
                                                       Path(work), known, log)
        with _phase("runtime"):
            layers.copy_entry(runtime.result(), lib)
        with _phase("python"):
            python, info, bundled = bundling.result()
    finally:
        background.shutdown(wait=True)  # on an error too: they write into staging, the cache
    known.update(bundled)
    launcher_python = os.path.relpath(python, staging) if project.include_python else "python3"
    assemble.write_launcher(release, launcher_python)
    assemble.write_version_dir(release)
    for overlay in assemble.copy_overlays(release):
        log(f"* copying overlay {_rel(overlay, release)}")
    references.check_references(release, app_files)
    with _phase("checks"):
        log("* checking shared libraries")  # python/ and the locked packages: once, cached
        elf.check_dependency_libraries(lib, files=[p for p in app_files if p.is_file()])
        log("* writing sbom.cdx.json and release.json")
        write_release_json(release, info, packages, known)
        log("* checking that no secret is in the release")
        secret_guard.check_release(release, python, os.environ, log)
    return release


def reseal(release: Release, log: Log) -> Release:
    """After steps that ran after assemble: the manifest covers what they changed, and the
    secret guard sees what they added."""
    log("* updating release.json for the steps after assemble")
    data = json.loads((release.version_dir / "release.json").read_text())
    # Every file hashed again (no known hashes): a step may even have written into a file
    # linked from a cache.
    write_manifest(release, data)
    python = (release.staging / data["python"]["executable"]
              if data["python"]["bundled"] else release.python.executable)
    secret_guard.check_build_config(release, lambda line: None)  # a step may have changed it
    secret_guard.check_release(release, str(python), os.environ, log)
    return release


def install_interpreter(release: Release, log: Log):
    """Link the prepared interpreter into python/; return the interpreter to build with, its
    description and the known hashes of its files."""
    if not release.project.include_python:
        return str(release.python.executable), None, {}
    with _heartbeat("preparing the interpreter"):
        prepared, info = interpreter.prepare_interpreter(cache_root() / "python",
                                                         release.python, log=log)
    log(f"* copying python {info.version}")
    known = interpreter.copy_interpreter(prepared, release.staging / "python",
                                         strip=release.project.strip,
                                         keep_stdlib=release.project.keep_stdlib)
    return str(release.staging / "python" / info.executable), info, known


def install_dependencies(release: Release, python: Path, python_id: str, lib: Path,
                         work: Path, known: dict,
                         log: Log) -> tuple[list[deps.Package], list[Path]]:
    """Link the locked packages out of the dependency cache, and the app out of its own
    (``layers.AppEntry``: when its sources changed, the wheel builds in its own process while
    the packages are linked); return every package and the files the app's wheel installed."""
    project = release.project
    sources = layers.project_digest(project.root, release.root)
    if not project.package:
        log(NO_PACKAGE.format(why="tool.twelve.package = false" if project.build_backend
                              else "no [build-system] in pyproject.toml"))
        pinned = link_locked_packages(release, python, python_id, lib, work, known, log,
                                      sources, before_install=lambda: None)
        return deps.installed_packages(lib, pinned, None), []
    app = layers.AppEntry(cache_root(), project, python, python_id, project.strip, sources,
                          Path(release.python.executable))
    if not app.cached:
        log(f"* building {project.dist_name} {project.version} as a wheel (alongside)")
    try:
        pinned = link_locked_packages(release, python, python_id, lib, work, known, log,
                                      sources, before_install=app.raise_if_failed)
        with _heartbeat(f"building {project.dist_name} as a wheel"):
            entry = app.result(log)
    except BaseException:
        app.cancel()
        raise
    log(f"* copying {project.dist_name} {project.version}"
        + (" (unchanged since it was built)" if app.cached else ""))
    layers.copy_entry(entry, lib)
    wheel = layers.app_wheel(entry)
    return deps.installed_packages(lib, pinned, wheel), layers.app_files(entry, lib)


def link_locked_packages(release: Release, python: Path, python_id: str, lib: Path,
                         work: Path, known: dict, log: Log, sources: dict[str, str],
                         before_install: Callable[[], None]) -> str:
    """Resolve the lock (once per lock: ``export_lock``), prepare its packages in the cache
    (once) and link them into lib/; return the pinned requirements."""
    project = release.project
    requirements = work / "requirements.txt"
    source = "uv.lock" if project.lock_file else "[project].dependencies"
    groups = "".join(f" + group {group}" for group in project.groups)
    log(f"* resolving dependencies from {source}{groups}")
    lock = export_lock(project, python, requirements, sources)
    try:
        pinned = requirements.read_text()
        before_install()
        entry = depcache.prepared_lib(cache_root() / "deps", requirements, python, python_id,
                                      project.strip, log, keep=project.keep_sources,
                                      optimize=project.optimize)
    except TwelveError:
        lock.confirm()   # a stale lock explains a failed install best
        raise
    except BaseException:
        lock.cancel()
        raise
    lock.confirm()
    log(f"* linking {len(deps.parse_requirements(pinned))} locked packages")
    depcache.link_tree(entry / "lib", lib)
    known.update(depcache.known_hashes(entry))
    return pinned


def export_lock(project: Project, python: Path, out: Path,
                sources: dict[str, str]) -> PendingLock:
    """The pinned requirements of uv.lock, exported once per lock, pyproject.toml files and
    uv; without a lock, resolved on every build (the index may have changed). The export is
    final once ``confirm()`` of what it returns passed: it waits for the lock's check
    (``deps.LockCheck``, which runs while the packages install), raises if the lock is
    stale, and only then remembers the export."""
    if project.lock_file is None or project.lock_file.parent != project.root:
        return PendingLock(deps.lock_requirements(project, python, out))
    key = layers.key_of({"inputs": {rel: digest for rel, digest in sources.items()
                                    if Path(rel).name in layers.LOCK_INPUTS},
                         "groups": list(project.groups), "uv": layers.uv_identity()})
    remembered = layers.recall(cache_root(), "export", key)
    if remembered is not None:
        out.write_text(remembered)
        return PendingLock(None)
    return PendingLock(deps.lock_requirements(project, python, out),
                       lambda: layers.remember(cache_root(), "export", key, out.read_text()))


class PendingLock:
    """An exported lock whose check (``deps.LockCheck``, None when there is none to wait for)
    may still be running; ``then`` runs once it passed."""

    def __init__(self, check: deps.LockCheck | None,
                 then: Callable[[], None] = lambda: None) -> None:
        self.check, self.then = check, then

    def confirm(self) -> None:
        if self.check is not None:
            self.check.finish()
        self.then()

    def cancel(self) -> None:
        if self.check is not None:
            self.check.cancel()


def _python_id(release: Release) -> str:
    """What the compiled caches are keyed by: the bundled interpreter's description (that of
    the interpreter it copies), or the named interpreter's exact build."""
    chosen = release.python
    return (f"{chosen.version}-{chosen.soabi}-{chosen.platform}"
            if release.project.include_python else f"{chosen.full_version}-{chosen.soabi}")


def write_release_json(release: Release, info: interpreter.Interpreter | None,
                       packages: list[deps.Package], known: dict | None = None) -> None:
    project = release.project
    data = {
        "name": release.name, "version": release.version, "env": release.env,
        "app": project.app, "apps": project.apps, "server": project.server,
        "processes": dict(sorted(project.processes.items())),
        "twelve": twelve.__version__,
        "python": {
            "bundled": project.include_python,
            "version": info.version if info else release.python.version,
            "executable": f"python/{info.executable}" if info else "python3",
            "soabi": info.soabi if info else None,
            "platform": info.platform if info else None,
            "vendored": list(info.vendored) if info else [],
        },
        "requires_python": release.python.short_version,
        "packages": [{"name": p.name, "version": p.version, "hashes": list(p.hashes),
                      "license": p.license} for p in packages],
    }
    sbom.write_sbom(release, info, data["python"]["version"], packages,
                    archive.source_date_epoch(os.environ, default=None), cache_root())
    write_manifest(release, data, known)


def write_manifest(release: Release, data: dict, known: dict | None = None) -> None:
    """release.json, with the sha256 and mode of every file of the release as it is now."""
    archive.normalise_modes(release.staging)  # the umask must not show in the manifest
    data["files"] = assemble.file_manifest(release.staging, release.version, known)
    assemble.write_json(release.version_dir / "release.json", data)


def _os_error(e: OSError, release: Release) -> BuildError:
    if isinstance(e, shutil.Error) and e.args and isinstance(e.args[0], list) and e.args[0]:
        # copytree's list of (src, dst, reason): the first reason stands for all of them
        _, dest, reason = e.args[0][0]
        errno_ = errno.ENOSPC if "No space left" in str(reason) else None
        e = OSError(errno_, str(reason), dest)
    where = f" ({e.filename})" if e.filename else ""
    if e.errno == errno.ENOSPC:
        return BuildError(f"no space left on the device while building{where}",
                          hint=f"Free some space and build again; the previous release at "
                               f"{release.display_root} is unchanged.")
    return BuildError(f"{e.strerror or e}{where}",
                      hint=f"The previous release at {release.display_root} is unchanged.")


def _rel(path: Path, release: Release) -> str:
    try:
        return str(path.relative_to(release.project.root))
    except ValueError:
        return str(path)
