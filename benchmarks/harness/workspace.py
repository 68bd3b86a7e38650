"""The benchmark's workspace: copies of the app, fresh or shared caches, and the environment every
timed command runs in.

Everything lives in one temporary directory (``bench-*.tmp`` under benchmarks/results/ by default:
the disk releases are built on, and ignored by git), removed at the end.

The environment is the caller's, less what a normal build host does not have: this machine sets
``PYTHONDONTWRITEBYTECODE`` (it would skip the .pyc writes a normal host pays for) and points pip
at local mirrors (``PIP_FIND_LINKS``, a pip.conf with extra indexes), so pip gets no config file
and every tool downloads from PyPI, as uv (which reads no pip.conf) already does.
"""
from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "hello"
RESULTS = REPO / "benchmarks" / "results"
# Removed from every timed command's environment (see the module docstring).
UNSET = ("PYTHONDONTWRITEBYTECODE", "PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_INDEX_URL",
         "PIP_CONSTRAINT", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "TWELVE_ENV")
SECRET = "bench-" + "k" * 70  # SECRET_KEY_BASE for the app under test (not a real secret)
COPY_IGNORE = shutil.ignore_patterns("_build", "__pycache__", "node_modules", "*.egg-info",
                                     "dist", "build")


@dataclass(frozen=True)
class App:
    """The app every tool packages."""

    name: str           # release name and import package
    source: Path        # the project to copy
    app_ref: str        # gunicorn's "module:callable()"
    migrate: str        # the code `bin/NAME eval` runs to migrate
    edit: str           # the source file an incremental build changes (relative path)
    assets: bool        # has an assets.deploy alias (esbuild + twelve digest)


HELLO = App("hello", EXAMPLE, "hello.web:create_app()", "hello.release.migrate()",
            "src/hello/web.py", assets=True)
# Issue 15's size targets are on this app: Flask, SQLAlchemy on SQLite, gunicorn, WhiteNoise and
# nothing else (hello also ships granian, waitress and psycopg for the server matrix).
REFERENCE = App("reference", REPO / "benchmarks" / "reference", "reference.web:create_app()",
                "reference.release.migrate()", "src/reference/web.py", assets=False)


class Workspace:
    def __init__(self, parent: Path | None = None, keep: bool = False) -> None:
        self.app: App = HELLO  # the app under test; the smoke test sets the tiny one
        self.keep = keep
        parent = parent or RESULTS
        parent.mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix="bench-", suffix=".tmp", dir=parent))
        self.counter = 0

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc) -> None:
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def fresh(self, label: str) -> Path:
        """A new empty directory, never used before in this run."""
        self.counter += 1
        path = self.path("fresh", f"{label}-{self.counter}")
        path.mkdir(parents=True)
        return path

    def copy_app(self, variant: str, *, steps: list[str] | None = None,
                 strip: bool | None = None, optimize: int | None = None) -> Path:
        """A copy of the prepared app (assets built) under ``variant``, its [tool.twelve]
        steps, strip and optimize set as asked."""
        dest = self.path("apps", variant)
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(self.path("apps", "prepared"), dest, symlinks=True)
        set_twelve_keys(dest / "pyproject.toml", steps=steps, strip=strip, optimize=optimize)
        return dest

    def prepare(self, env: dict, log) -> Path:
        """The app once, with its assets built (the peers have no assets step: they package
        the built files, as twelve's release does)."""
        dest = self.path("apps", "prepared")
        shutil.copytree(self.app.source, dest, ignore=COPY_IGNORE)
        if self.app.assets:
            modules = self.app.source / "node_modules"
            if modules.is_dir():
                (dest / "node_modules").symlink_to(modules)
            log("* building the app's assets once (twelve run assets.deploy)")
            run([sys.executable, "-m", "twelve", "run", "assets.deploy"], cwd=dest, env=env)
        return dest


def set_twelve_keys(pyproject: Path, *, steps: list[str] | None, strip: bool | None,
                    optimize: int | None = None) -> None:
    """Rewrite ``steps``, ``strip`` and ``optimize`` in [tool.twelve] (added when absent; one
    given as None is left out)."""
    lines = pyproject.read_text().splitlines()
    start = lines.index("[tool.twelve]")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")),
               len(lines))
    body = [ln for ln in lines[start + 1:end]
            if not ln.replace(" ", "").startswith(("steps=", "strip=", "optimize="))]
    if steps is not None:
        body.insert(0, "steps = [" + ", ".join(f'"{s}"' for s in steps) + "]")
    if strip is not None:
        body.insert(0, f"strip = {'true' if strip else 'false'}")
    if optimize is not None:
        body.insert(0, f"optimize = {optimize}")
    pyproject.write_text("\n".join(lines[:start + 1] + body + lines[end:]) + "\n")


def edit_source(app_dir: Path, app: App, n: int) -> None:
    """The incremental change: one line appended to one source file of the app."""
    with (app_dir / app.edit).open("a") as f:
        f.write(f"\n# benchmark edit {n}\n")


def clean_environ(caches: dict[str, Path] | None = None, **extra: str) -> dict:
    """The environment of a timed command: see the module docstring; ``caches`` maps
    variables (UV_CACHE_DIR, PIP_CACHE_DIR, XDG_CACHE_HOME, PEX_ROOT...) to directories."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.update({k: str(v) for k, v in (caches or {}).items()})
    env.update(extra)
    return env


def cache_dirs(base: Path) -> dict[str, Path]:
    """Every cache a build may use, under ``base``: empty for a cold build, shared for warm."""
    dirs = {"UV_CACHE_DIR": base / "uv", "PIP_CACHE_DIR": base / "pip",
            "XDG_CACHE_HOME": base / "xdg", "PEX_ROOT": base / "pex"}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    return dirs


def run(argv: list[str], *, cwd: Path, env: dict, timeout: float = 900) -> str:
    """Run a command; on failure raise with the end of its output."""
    proc = subprocess.run(argv, cwd=cwd, env=env, text=True, capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} exited {proc.returncode} in {cwd}:\n"
                           + (proc.stdout + proc.stderr)[-3000:])
    return proc.stdout


def uv_binary() -> str:
    from uv import find_uv_bin
    return find_uv_bin()


def export_requirements(app_dir: Path, out: Path, env: dict) -> Path:
    """The app's locked third-party requirements (no hashes: pip gets the app as a path),
    so every peer installs exactly the versions twelve's release ships."""
    if (app_dir / "uv.lock").is_file():
        argv = [uv_binary(), "export", "--locked", "--no-dev", "--no-emit-project",
                "--no-hashes", "--no-header", "--format", "requirements-txt", "-o", str(out),
                "--quiet"]
    else:
        argv = [uv_binary(), "pip", "compile", "pyproject.toml", "--no-header", "--quiet",
                "-o", str(out)]
    run(argv, cwd=app_dir, env=env)
    return out


def write_runtime_wheel(dest: Path) -> Path:
    """``twelve/__init__.py`` and ``twelve/runtime/`` as a wheel without dependencies: what a
    twelve release ships of twelve, for the peers (the app imports ``twelve``)."""
    import twelve

    source = Path(twelve.__file__).parent
    files = [("twelve/__init__.py", (source / "__init__.py").read_bytes())]
    for path in sorted((source / "runtime").rglob("*.py")):
        files.append((f"twelve/{path.relative_to(source).as_posix()}", path.read_bytes()))
    info = f"twelve-{twelve.__version__}.dist-info"
    files.append((f"{info}/METADATA", f"Metadata-Version: 2.1\nName: twelve\n"
                                      f"Version: {twelve.__version__}\n".encode()))
    files.append((f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: twelve-bench\n"
                                   b"Root-Is-Purelib: true\nTag: py3-none-any\n"))
    record = "".join(f"{name},sha256={_b64sha(data)},{len(data)}\n" for name, data in files)
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / f"twelve-{twelve.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files:
            archive.writestr(name, data)
        archive.writestr(f"{info}/RECORD", record + f"{info}/RECORD,,\n")
    return wheel


def _b64sha(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def tree_size(path: Path) -> tuple[int, int]:
    """(bytes, files) of a file or directory: regular files' sizes; symlinks not followed."""
    if path.is_file():
        return path.stat().st_size, 1
    total = count = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            st = os.lstat(os.path.join(dirpath, name))
            if not os.path.islink(os.path.join(dirpath, name)):
                total += st.st_size
            count += 1
    return total, count


def base_python() -> str:
    """The interpreter twelve bundles (the base of the venv it runs in): every peer uses it."""
    return getattr(sys, "_base_executable", sys.executable)
