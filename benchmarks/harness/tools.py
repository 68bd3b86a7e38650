"""How each tool builds the app and serves it: twelve, PyInstaller (onedir), pex, shiv and a
plain venv + pip. One class per tool, all with the same three methods.

A build is the command sequence a CI job runs, timed as a whole and phase by phase. Every peer
installs the same locked requirements (exported from the app's uv.lock), the app from its
source directory (its PEP 517 build, as twelve's) and twelve's runtime as a wheel (the app
imports ``twelve``); all use the interpreter twelve bundles. Before a build the peer's previous
output is removed (untimed) — a CI job starts from a checkout — except for twelve, which keeps
its previous release as ``twelve release --overwrite`` does (it reuses nothing from it), and
for ``PyInstaller (kept)``, which keeps its workpath and installed dependencies:
PyInstaller's own incremental mode.

Serving: every tool runs gunicorn with the same worker count on 127.0.0.1; the peers run
gunicorn's command line in the app's directory (the app reads ./config in development mode,
TWELVE_ENV=prod); twelve runs ``bin/NAME start`` with PORT, HOST and WEB_CONCURRENCY.
"""
from __future__ import annotations

import shutil
import sys
import time
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from harness.workspace import App, base_python, tree_size

ENTRY = '''"""gunicorn's command line, frozen by PyInstaller."""
import sys

from gunicorn.app.wsgiapp import run

sys.exit(run())
'''
# What PyInstaller cannot see by following imports: gunicorn loads its worker and logger
# classes by name, twelve.runtime its server adapter and WhiteNoise lazily, SQLAlchemy its
# dialects. (A missing one only warns, so the tiny app can share the list.)
PYINSTALLER_COLLECT = ("--collect-submodules", "twelve", "--collect-submodules", "gunicorn",
                       "--collect-submodules", "whitenoise",
                       "--hidden-import", "sqlalchemy.dialects.sqlite")


@dataclass
class Build:
    seconds: float
    phases: list[tuple[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Context:
    app: App
    requirements: Path
    runtime_wheel: Path
    tools_bin: Path | None      # benchmarks/.venv/bin: pip, pyinstaller, pex, shiv

    def tool(self, name: str) -> str | None:
        if self.tools_bin is not None and (self.tools_bin / name).exists():
            return str(self.tools_bin / name)
        return None

    def pip(self) -> list[str]:
        found = self.tool("pip")
        return [found] if found else [sys.executable, "-m", "pip"]


def run_phases(steps: list[tuple[str, list[str], dict]], cwd: Path) -> Build:
    """Run (name, argv, env) steps in order; time each and the whole."""
    phases, started = [], time.perf_counter()
    for name, argv, env in steps:
        began = time.perf_counter()
        proc = subprocess.run(argv, cwd=cwd, env=env, text=True, capture_output=True,
                              stdin=subprocess.DEVNULL, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"{name}: {' '.join(argv)} exited {proc.returncode}:\n"
                               + (proc.stdout + proc.stderr)[-3000:])
        phases.append((name, time.perf_counter() - began))
    return Build(time.perf_counter() - started, phases)


def gunicorn_args(app: App, port: int, workers: int) -> list[str]:
    return ["-w", str(workers), "--no-control-socket", "-b", f"127.0.0.1:{port}", app.app_ref]


class Twelve:
    key, label, needs_python = "twelve", "twelve", False

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def build(self, app_dir: Path, out: Path, env: dict) -> Build:
        """``twelve release``, its phases timed from the lines it prints as they come."""
        env = dict(env, TWELVE_ENV="prod")
        argv = [sys.executable, "-m", "twelve", "release", "--overwrite"]
        started = time.perf_counter()
        marks: list[tuple[str, float]] = [("start twelve, read the project", started)]
        proc = subprocess.Popen(argv, cwd=app_dir, env=env, text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("* ") or line.startswith("preparing the bundled"):
                marks.append((_phase_name(line), time.perf_counter()))
        ended = time.perf_counter()
        if proc.wait() != 0:
            raise RuntimeError(f"twelve release exited {proc.returncode} in {app_dir}:\n"
                               + "".join(lines)[-3000:])
        bounds = [t for _, t in marks[1:]] + [ended]
        phases = [(name, bound - t) for (name, t), bound in zip(marks, bounds)]
        return Build(ended - started, phases)

    def artifact(self, app_dir: Path, out: Path) -> Path:
        return app_dir / "_build" / "prod" / "rel" / self.ctx.app.name

    def tarball(self, app_dir: Path) -> Path:
        return app_dir / "_build" / "prod" / f"{self.ctx.app.name}-0.1.0.tar.gz"


def _phase_name(line: str) -> str:
    text = line.strip().lstrip("* ").strip()
    if text.startswith("preparing the bundled"):
        return "prepare the interpreter (once per cache)"
    if text.startswith("writing") and text.endswith(".tar.gz"):
        return "writing the .tar.gz (tar step)"
    words = [w for w in text.split() if not any(c.isdigit() for c in w)]
    return " ".join(words).split(" (")[0]


class PyInstaller:
    key, label, needs_python = "pyinstaller", "PyInstaller (onedir)", False

    def __init__(self, ctx: Context, kept: bool = False) -> None:
        self.ctx, self.kept = ctx, kept
        if kept:
            self.key, self.label = "pyinstaller_kept", "PyInstaller (workpath kept)"

    def build(self, app_dir: Path, out: Path, env: dict, strip: bool = False) -> Build:
        site, name = out / "site", self.ctx.app.name
        if not self.kept:
            for sub in ("site", "work", "dist", "dist-strip"):
                shutil.rmtree(out / sub, ignore_errors=True)
        entry = out / "entry" / "serve.py"
        entry.parent.mkdir(parents=True, exist_ok=True)
        entry.write_text(ENTRY)
        steps = []
        if not site.is_dir():
            steps.append(("pip install --target (dependencies)",
                          [*self.ctx.pip(), "install", "--quiet", "--target", str(site), "-r",
                           str(self.ctx.requirements), str(self.ctx.runtime_wheel)], env))
        frozen_env = dict(env, PYTHONPATH=f"{site}:{app_dir / 'src'}")
        argv = [self.ctx.tool("pyinstaller"), "--noconfirm", "--log-level", "ERROR", "--onedir",
                "--name", name, "--distpath", str(out / ("dist-strip" if strip else "dist")),
                "--workpath", str(out / "work"), "--specpath", str(out), "--collect-all", name,
                *PYINSTALLER_COLLECT, *(["--strip"] if strip else []), str(entry)]
        steps.append(("pyinstaller", argv, frozen_env))
        return run_phases(steps, out)

    def artifact(self, app_dir: Path, out: Path, strip: bool = False) -> Path:
        return out / ("dist-strip" if strip else "dist") / self.ctx.app.name

    def serve(self, app_dir: Path, out: Path, port: int, workers: int) -> tuple[list[str], dict]:
        exe = self.artifact(app_dir, out) / self.ctx.app.name
        return [str(exe), *gunicorn_args(self.ctx.app, port, workers)], {}


class Pex:
    key, label, needs_python = "pex", "pex", True

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def build(self, app_dir: Path, out: Path, env: dict) -> Build:
        target = self.artifact(app_dir, out)
        target.unlink(missing_ok=True)
        argv = [self.ctx.tool("pex"), "-r", str(self.ctx.requirements), str(app_dir),
                str(self.ctx.runtime_wheel), "-c", "gunicorn", "-o", str(target)]
        return run_phases([("pex", argv, env)], out)

    def artifact(self, app_dir: Path, out: Path) -> Path:
        return out / f"{self.ctx.app.name}.pex"

    def serve(self, app_dir: Path, out: Path, port: int, workers: int) -> tuple[list[str], dict]:
        return ([base_python(), str(self.artifact(app_dir, out)),
                 *gunicorn_args(self.ctx.app, port, workers)], {"PEX_ROOT": str(out / "root")})


class Shiv:
    key, label, needs_python = "shiv", "shiv", True

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def build(self, app_dir: Path, out: Path, env: dict) -> Build:
        target = self.artifact(app_dir, out)
        target.unlink(missing_ok=True)
        argv = [self.ctx.tool("shiv"), "--quiet", "-r", str(self.ctx.requirements), str(app_dir),
                str(self.ctx.runtime_wheel), "-c", "gunicorn", "-o", str(target)]
        return run_phases([("shiv", argv, env)], out)

    def artifact(self, app_dir: Path, out: Path) -> Path:
        return out / f"{self.ctx.app.name}.pyz"

    def serve(self, app_dir: Path, out: Path, port: int, workers: int) -> tuple[list[str], dict]:
        return ([base_python(), str(self.artifact(app_dir, out)),
                 *gunicorn_args(self.ctx.app, port, workers)], {"SHIV_ROOT": str(out / "root")})


class Venv:
    """The baseline: ``python -m venv`` and pip; its gunicorn is the bare server."""

    key, label, needs_python = "venv", "venv + pip (bare gunicorn)", True

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def build(self, app_dir: Path, out: Path, env: dict) -> Build:
        venv = self.artifact(app_dir, out)
        shutil.rmtree(venv, ignore_errors=True)
        return run_phases([
            ("python -m venv", [base_python(), "-m", "venv", "--without-pip", str(venv)], env),
            ("pip install", [*self.ctx.pip(), "--python", str(venv / "bin" / "python"),
                             "install", "--quiet", "-r", str(self.ctx.requirements),
                             str(app_dir), str(self.ctx.runtime_wheel)], env),
        ], out)

    def artifact(self, app_dir: Path, out: Path) -> Path:
        return out / "venv"

    def serve(self, app_dir: Path, out: Path, port: int, workers: int) -> tuple[list[str], dict]:
        gunicorn = self.artifact(app_dir, out) / "bin" / "gunicorn"
        return [str(gunicorn), *gunicorn_args(self.ctx.app, port, workers)], {}

    def python(self, app_dir: Path, out: Path) -> str:
        return str(self.artifact(app_dir, out) / "bin" / "python")


PEER_CLASSES = {"pyinstaller": PyInstaller, "pex": Pex, "shiv": Shiv, "venv": Venv}
REQUIRED_TOOL = {"pyinstaller": "pyinstaller", "pex": "pex", "shiv": "shiv", "venv": None}


def missing_tool(ctx: Context, peer: str) -> str | None:
    """Why ``peer`` cannot run here, or None."""
    needed = REQUIRED_TOOL[peer]
    if needed and ctx.tool(needed) is None:
        return (f"{needed} is not installed in benchmarks/.venv (`make bench-quick` or "
                f"`make bench` installs it)")
    return None


def size_of(path: Path) -> tuple[int, int]:
    return tree_size(path)
