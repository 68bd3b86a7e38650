"""The machine and the versions of every tool, as the results file records them."""
from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from pathlib import Path

from harness.workspace import REPO, uv_binary


def machine() -> dict:
    return {"nproc": os.cpu_count(), "memory_gib": round(_meminfo_kb("MemTotal") / 2**20, 1),
            "cpu": _cpu_model(), "kernel": platform.release(), "os": _os_name(),
            "python": platform.python_version()}


def versions(tools_bin: Path | None, requirements: Path | None) -> dict:
    found = {"twelve": twelve_version(),
             "uv": _version([uv_binary(), "--version"]),
             "python (bundled, and every peer's)": platform.python_version()}
    for name, argv in (("pip", ["pip", "--version"]), ("pyinstaller", ["pyinstaller", "--version"]),
                       ("pex", ["pex", "--version"]), ("shiv", ["shiv", "--version"])):
        exe = tools_bin / argv[0] if tools_bin else None
        found[name] = _version([str(exe), *argv[1:]]) if exe and exe.exists() else "not installed"
    found["wrk"] = _version(["wrk", "--version"]) or "not installed"
    try:
        import matplotlib
        found["matplotlib"] = matplotlib.__version__
    except ImportError:
        found["matplotlib"] = "not installed"
    if requirements is not None and requirements.is_file():
        pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", requirements.read_text(), re.M))
        for name in ("gunicorn", "flask", "sqlalchemy"):
            if name in pins:
                found[f"{name} (the app's lock)"] = pins[name]
    return found


def twelve_version() -> str:
    import twelve
    return f"{twelve.__version__} ({_git_revision()}; src/twelve digest {_source_digest()})"


def _version(argv: list[str]) -> str:
    """The first version-looking word a tool prints about itself."""
    match = re.search(r"\d+(?:\.\d+)+\S*", _first_line(argv))
    return match.group(0) if match else ""


def _first_line(argv: list[str]) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    text = (proc.stdout or proc.stderr).strip().splitlines()
    return re.sub(r"\s+", " ", text[0]).strip() if text else ""


def _git_revision() -> str:
    rev = _first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]) or "unknown"
    dirty = subprocess.run(["git", "-C", str(REPO), "diff", "--quiet", "HEAD", "--", "src"],
                           capture_output=True).returncode
    return rev + (" with uncommitted changes" if dirty else "")


def _source_digest() -> str:
    """A digest of src/twelve as it is now: tells whether it changed during a run."""
    import hashlib
    digest = hashlib.sha256()
    for path in sorted((REPO / "src" / "twelve").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:10]


def _meminfo_kb(field: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _os_name() -> str:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return sys.platform
    match = re.search(r'^PRETTY_NAME="?([^"\n]*)', text, re.M)
    return match.group(1) if match else sys.platform
