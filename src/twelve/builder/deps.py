"""Dependencies: locked requirements → the release's ``lib/``, through uv.

uv is a dependency of twelve (its wheel ships the binary), never something the user installs.
The requirements are always pinned with hashes: exported from ``uv.lock`` when the project has
one, otherwise resolved from ``[project].dependencies`` for the release's interpreter. The app
itself is built as a wheel (PEP 517) and installed like any other package, so the release never
points back into the source tree.
"""
from __future__ import annotations

import functools
import hashlib
import os
import re
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

from twelve.builder import progress
from twelve.errors import BuildError
from twelve.project import Project, normalise

# twelve's runtime is copied into every release on its own; the builder (with uv inside) never is.
EXCLUDED = frozenset({"twelve"})


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    hashes: tuple[str, ...]  # "sha256:…" as pinned by the lock (the app: of its wheel)
    license: str | None = None


@functools.cache
def uv_binary() -> str:
    """Where uv is, found once (finding it reads sysconfig)."""
    from uv import find_uv_bin
    return find_uv_bin()


def uv_environ() -> dict:
    env = dict(os.environ, UV_PYTHON_DOWNLOADS="never", UV_NO_PROGRESS="1")
    env.pop("VIRTUAL_ENV", None)  # uv must use the interpreter we name, not the builder's venv
    return env


def run_uv(args: list[str], *, what: str, fix: str, cwd: Path | None = None) -> str:
    """Run uv; on failure raise one BuildError carrying uv's own explanation."""
    proc = subprocess.run([uv_binary(), *args], cwd=cwd, env=uv_environ(), text=True,
                          capture_output=True)
    if proc.returncode != 0:
        raise uv_failure(what, fix, proc.returncode, proc.stderr or proc.stdout)
    return proc.stdout


def uv_failure(what: str, fix: str, returncode: int, output: str) -> BuildError:
    detail = output.strip()
    if "os error 28" in detail or "No space left on device" in detail:
        fix = "The disk is full: free some space and build again (the previous release is " \
              "unchanged)."
    return BuildError(f"{what} failed (uv exited with {returncode}):\n"
                      f"{_indent(detail[-4000:])}", hint=fix)


def lock_requirements(project: Project, python: Path, out: Path) -> LockCheck | None:
    """Write pinned, hashed requirements to ``out``. From uv.lock, exported as it is
    (``--frozen``) while ``LockCheck`` checks it against pyproject.toml in its own process:
    returned, for the caller to ``finish()`` before the requirements count as final.

    From uv.lock, the same packages are also exported beside ``out`` as ``PYLOCK`` (PEP 751),
    which names each wheel's URL and hash: ``install_requirements`` installs from it without
    asking the index where each file is (15 requests for the example, ~0.5 s of a cold build
    when the machine is busy); both install the same files (a test compares the trees)."""
    groups = [arg for group in project.groups for arg in ("--group", group)]
    check, exports = None, []
    try:
        if project.lock_file is not None:
            check = LockCheck(project)
            export = ["export", "--frozen", "--no-dev", *groups, "--no-emit-project",
                      "--project", str(project.root), "--quiet"]
            exports = [  # both at once: each is ~20 ms of uv, more on a busy machine
                LockExport(project, [*export, "--no-header", "--format", "requirements-txt",
                                     "-o", str(out)]),
                LockExport(project, [*export, *(f"--no-emit-package={name}"
                                                for name in sorted(EXCLUDED)),
                                     "--format", "pylock.toml", "-o", str(out.with_name(PYLOCK))])]
            for running in exports:
                running.finish()
        else:
            run_uv(["pip", "compile", str(project.root / "pyproject.toml"), *groups,
                    "--generate-hashes", "--python", str(python), "--no-header", "--quiet",
                    "-o", str(out)],
                   what="resolving [project].dependencies"
                        + "".join(f" and group {g}" for g in project.groups),
                   cwd=project.root,
                   fix="Check the requirement names and versions in [project].dependencies "
                       "and the dependency groups (or add a uv.lock with `uv lock`).")
    except BuildError:
        for running in exports:
            running.cancel()
        if check is not None:
            check.finish()   # a stale lock explains a failed export best
        raise
    except BaseException:
        for running in [*exports, *([check] if check is not None else [])]:
            running.cancel()
        raise
    out.write_text(_without_excluded(out.read_text()))
    return check


class UvProcess:
    """A uv command in its own process (and process group) while the build goes on, its
    output in a file (not a pipe: nothing can block on it): ``finish()`` waits and raises
    ``uv_failure`` if it failed, ``cancel()`` stops it and whatever it started."""

    WHAT = FIX = ""

    def __init__(self, args: list[str], cwd: Path, what: str) -> None:
        self.what = what
        self.output = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([uv_binary(), *args], cwd=cwd, env=uv_environ(),
                                     text=True, stdin=subprocess.DEVNULL, stdout=self.output,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def finish(self) -> str:
        returncode = self.proc.wait()
        self.output.seek(0)
        text = self.output.read()
        self.output.close()
        if returncode != 0:
            raise uv_failure(self.what, self.FIX, returncode, text)
        return text

    def cancel(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)  # uv and what it started (a build backend)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=5)
                break
            except subprocess.TimeoutExpired:
                continue
        self.proc.wait()
        self.output.close()


class LockCheck(UvProcess):
    """``uv lock --check`` (what ``uv export --locked`` checks before it exports: uv.lock
    still matches every pyproject.toml), while the build goes on. It resolves, which may
    read the index: ~0.15 s, more with an empty cache, off the build's path. ``finish()``
    raises if the lock is stale."""

    WHAT = "checking that uv.lock is up to date"
    FIX = "If uv.lock is out of date with pyproject.toml, run `uv lock` and commit it."

    def __init__(self, project: Project) -> None:
        super().__init__(["lock", "--check", "--project", str(project.root)], project.root,
                         self.WHAT)


class LockExport(UvProcess):
    """``uv export`` of uv.lock as it is (``--frozen``)."""

    FIX = LockCheck.FIX

    def __init__(self, project: Project, args: list[str]) -> None:
        super().__init__(args, project.root, "exporting uv.lock")


PYLOCK = "pylock.toml"   # uv reads a PEP 751 lock by this name (or pylock.NAME.toml)
INSTALL_WHAT = "installing the locked dependencies"
INSTALL_FIX = "Check that every pinned version exists for this platform and Python."


def install_requirements(requirements: Path, lib: Path, python: Path) -> None:
    """``uv pip install --target lib`` of ``requirements``, or of the ``PYLOCK`` beside it
    (``lock_requirements``); under a build's ``Progress``, uv's own lines (downloads and
    counts) become its status while the install runs.

    Files are hard links to uv's cache (uv copies when it is on another file system), not
    copies: ~0.3 s of CPU for the example's packages. Safe for the reason the dependency
    cache's links are (``depcache``): uv never writes into an unpacked wheel of its cache,
    and nothing twelve does to ``lib`` writes into a file in place: it adds files, removes
    them, replaces them by rename, and only changes modes."""
    count = len(parse_requirements(requirements.read_text()))
    if not count:
        return
    pylock = requirements.with_name(PYLOCK)   # lock_requirements' export of the same lock
    source = pylock if pylock.is_file() else requirements
    args = ["pip", "install", "--target", str(lib), "--python", str(python), "--no-deps",
            "--require-hashes", "--link-mode", "hardlink", "-r", str(source)]
    watching = progress.current()
    if watching is None:
        run_uv([*args, "--quiet"], what=INSTALL_WHAT, fix=INSTALL_FIX)
        return
    proc = subprocess.Popen([uv_binary(), *args], env=uv_environ(), text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    output = watching.watch(f"installing {count} locked package{'s' if count != 1 else ''}",
                            proc, show_output=False, parse=progress.uv_install_status)
    if proc.returncode != 0:
        raise uv_failure(INSTALL_WHAT, INSTALL_FIX, proc.returncode, output)


class AppWheelBuild(UvProcess):
    """The app's wheel, built by `uv build` in its own process while the build goes on:
    ``result()`` waits for it, ``cancel()`` stops it (an interrupted or failed build must not
    wait for a backend)."""

    WHAT = "building {name} as a wheel"
    FIX = ("Fix what the build backend says above (`uv build --wheel` must work). A project "
           "with no package of its own needs no [build-system] (or set "
           "tool.twelve.package = false).")

    def __init__(self, project: Project, python: Path, out_dir: Path,
                 environment: Path | None = None) -> None:
        """``environment``: a virtualenv that holds the build requirements (made once,
        ``layers.build_environment``), used as is; else uv makes an isolated one."""
        self.name, self.out_dir = project.dist_name, out_dir
        isolation = ["--python", str(python)] if environment is None else [
            "--no-build-isolation", "--python", str(environment / "bin" / "python")]
        # No --quiet: it would hide the backend's own error lines, which a failure shows.
        super().__init__(["build", "--wheel", "--out-dir", str(out_dir), *isolation,
                          str(project.root)], project.root, self.WHAT.format(name=self.name))

    def raise_if_failed(self) -> None:
        """Report a failed build now rather than after the dependencies are installed."""
        if self.proc.poll() not in (None, 0):
            self.result()

    def result(self) -> Path:
        self.finish()
        wheels = sorted(self.out_dir.glob("*.whl"))
        if len(wheels) != 1:
            raise BuildError(f"building {self.name} produced {len(wheels)} wheels, "
                             "expected one")
        return wheels[0]


def install_wheel(wheel: Path, lib: Path, python: Path) -> None:
    run_uv(["pip", "install", "--target", str(lib), "--python", str(python), "--no-deps",
            "--link-mode", "copy", "--quiet", str(wheel)],
           what=f"installing {wheel.name}", fix="Check the wheel built from the project.")


def parse_requirements(text: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Pinned requirements text → {normalised name: (version, hashes)}."""
    pinned = {}
    for line in _logical_lines(text):
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", line)
        if match:
            hashes = tuple(re.findall(r"--hash=(\S+)", line))
            pinned[normalise(match.group(1))] = (match.group(2), hashes)
    return pinned


def installed_packages(lib: Path, requirements: str,
                       app_wheel: Path | None) -> list[Package]:
    """Every distribution in ``lib``, with the hashes it was pinned to."""
    pinned = parse_requirements(requirements)
    app_hash, app_name = None, None
    if app_wheel is not None:  # None: the project has no package of its own
        app_hash = "sha256:" + hashlib.sha256(app_wheel.read_bytes()).hexdigest()
        app_name = normalise(app_wheel.name.split("-", 1)[0])
    packages = []
    for meta in sorted(lib.glob("*.dist-info/METADATA")):
        headers = HeaderParser().parsestr(meta.read_text(encoding="utf-8", errors="replace"))
        name, version = headers["Name"], headers["Version"]
        key = normalise(name)
        hashes = (app_hash,) if key == app_name else pinned.get(key, ("", ()))[1]
        license_ = (headers.get("License-Expression") or _short(headers.get("License"))
                    or _classifier_license(headers.get_all("Classifier") or []))
        packages.append(Package(name, version, hashes, license_))
    return packages


def remove_scripts(lib: Path) -> None:
    """Console scripts installed by --target name the build's interpreter: never shipped."""
    import shutil

    shutil.rmtree(lib / "bin", ignore_errors=True)


def wheel_files(lib: Path, wheel: Path) -> list[Path]:
    """The files a wheel installed into ``lib``, from its dist-info's RECORD."""
    import csv

    name, version = wheel.name.split("-")[:2]
    record = lib / f"{name}-{version}.dist-info" / "RECORD"
    if not record.is_file():
        return []
    with record.open(newline="", encoding="utf-8") as f:
        return [lib / row[0] for row in csv.reader(f) if row and ".." not in row[0]]


def _logical_lines(text: str) -> list[str]:
    joined = re.sub(r"\\\n", " ", text)
    return [ln.strip() for ln in joined.splitlines() if ln.strip() and not ln.startswith("#")]


def _without_excluded(text: str) -> str:
    kept = []
    for line in _logical_lines(text):
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if match and normalise(match.group(1)) in EXCLUDED:
            continue
        kept.append(line)
    return "\n".join(kept) + "\n"


def _classifier_license(classifiers: list[str]) -> str | None:
    """"License :: OSI Approved :: BSD License" → "BSD License" (older metadata has only this)."""
    found = [c.rsplit("::", 1)[-1].strip() for c in classifiers if c.startswith("License ::")]
    return found[0] if found else None


def _short(text: str | None) -> str | None:
    if not text:
        return None
    first = text.strip().splitlines()[0]
    return first if len(first) <= 80 else None


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


# -- strip = true: what the locked packages ship that a server never reads ---------------------

# Directories and files left out of every package that keep_sources does not name. Headers
# stay: cffi, numba and pythran compile against them at run time.
UNUSED_DIRS = ("tests",)     # test suites, imported by no package's own code
UNUSED_SUFFIXES = (".pyi", ".pyx", ".pxd", ".pxi")   # type stubs, Cython sources and headers


def kept_files(lib: Path, keep: tuple[str, ...]) -> set[Path]:
    """The files of the distributions named in ``keep_sources``, from their RECORDs."""
    import csv

    kept: set[Path] = set()
    for record in lib.glob("*.dist-info/RECORD"):
        if normalise(record.parent.name.split("-", 1)[0]) not in keep:
            continue
        with record.open(newline="", encoding="utf-8") as f:
            kept.update((lib / row[0]).resolve() for row in csv.reader(f)
                        if row and ".." not in row[0])
    return kept


def remove_unused(lib: Path, kept: set[Path]) -> None:
    """Leave out ``UNUSED_DIRS`` and ``UNUSED_SUFFIXES`` of every package not kept."""
    import shutil

    for dirpath, dirnames, filenames in os.walk(lib):
        here = Path(dirpath)
        for name in [d for d in dirnames if d in UNUSED_DIRS]:
            tree = here / name
            if not (kept and any(p.resolve() in kept for p in tree.rglob("*"))):
                shutil.rmtree(tree)
                dirnames.remove(name)
        for name in filenames:
            path = here / name
            if path.suffix in UNUSED_SUFFIXES and path.resolve() not in kept:
                path.unlink()


def compile_stripped(stage: Path, python: Path, kept: set[Path], optimize: int = 0) -> str:
    """Byte-compile ``stage/lib``: each module not kept as a .pyc beside it (legacy layout,
    which import finds without a source, at any -O of the interpreter that imports it) under
    -X no_debug_ranges at the ``optimize`` level, its source removed; kept modules as usual
    (__pycache__, column tables, sources). Returns compileall's complaints.

    no_debug_ranges: the column tables only place the ^^^ under a traceback's source line,
    and a module without a source has none to show; without them a .pyc is ~7% smaller and
    compresses ~25% better."""
    sources = sorted(p for p in (stage / "lib").rglob("*.py"))
    stripped = [p for p in sources if p.resolve() not in kept]
    complaints = [_compileall(stage, python, stripped, ["-X", "no_debug_ranges"],
                              ["-b", *(["-o", str(optimize)] if optimize else [])]),
                  _compileall(stage, python, [p for p in sources if p.resolve() in kept],
                              [], [])]
    for source in stripped:
        if source.with_suffix(".pyc").is_file():
            source.unlink()
    return "\n".join(c for c in complaints if c)


def _compileall(stage: Path, python: Path, files: list[Path], options: list[str],
                legacy: list[str]) -> str:
    """compileall over ``files``, split across the machine's cores: compileall compiles a
    list of files (``-i``) one by one in one process (its ``-j`` only spreads a directory's),
    and a .pyc depends on its own source alone, so the split changes no byte."""
    from concurrent.futures import ThreadPoolExecutor

    if not files:
        return ""
    workers = max(1, min(os.cpu_count() or 1, len(files) // 50 or 1))
    procs = [subprocess.Popen(
        [str(python), "-E", "-s", *options, "-m", "compileall", "-q", "-s", str(stage),
         *legacy, "--invalidation-mode", "unchecked-hash", "-i", "-"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")}) for _ in range(workers)]
    # Interleaved slices of the sorted list: each worker gets a share of every package.
    with ThreadPoolExecutor(workers) as pool:
        outputs = list(pool.map(lambda i: procs[i].communicate(
            "\n".join(str(p) for p in files[i::workers])), range(workers)))
    for proc, (out, err) in zip(procs, outputs):
        if proc.returncode not in (0, 1):
            raise BuildError(f"byte-compiling lib/ failed (exit {proc.returncode}):\n"
                             + (err or out)[-2000:])
    return "\n".join((out + err).strip() for out, err in outputs if (out + err).strip())
