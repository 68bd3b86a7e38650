"""The OCI image of the release (``twelve image``, docs/containers.md), as a row of the Size
table: its layers unpacked (bytes of regular files, file count) and compressed (what a
registry stores and a node pulls: the gzip layers and the config), and how long
``twelve image`` took on the release already built.

Also runnable alone on the example, which prints the row as JSON:

    .venv/bin/python benchmarks/harness/measure_image.py examples/hello
"""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

LABEL = "twelve image (OCI, no base image)"


def image_row(name: str, app_dir: Path, version: str = "0.1.0") -> dict:
    """``twelve image`` on the prod release in ``app_dir``; the Size table's row for it."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "twelve", "image"], cwd=app_dir, check=True,
                   env=dict(os.environ, TWELVE_ENV="prod"), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    layout = app_dir / "_build" / "prod" / f"{name}-{version}.oci"
    return layout_row(layout, seconds)


def layout_row(layout: Path, seconds: float | None = None) -> dict:
    """The row of an OCI layout: unpacked bytes and files of its layers, compressed size."""
    blobs = layout / "blobs" / "sha256"
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((blobs / index["manifests"][0]["digest"][7:]).read_text())
    unpacked = files = 0
    for layer in manifest["layers"]:
        with gzip.open(blobs / layer["digest"][7:]) as raw, tarfile.open(fileobj=raw) as tar:
            for member in tar:
                if member.isfile():
                    unpacked, files = unpacked + member.size, files + 1
    compressed = sum(layer["size"] for layer in manifest["layers"]) + manifest["config"]["size"]
    note = (f"{len(manifest['layers'])} layers; compressed = the layers a registry stores; "
            "glibc, /bin/sh and CA certificates included")
    return {"label": LABEL, "bytes": unpacked, "files": files, "targz": compressed,
            "needs_python": False, "note": note, "tar_seconds": seconds}


if __name__ == "__main__":
    project = Path(sys.argv[1] if len(sys.argv) > 1 else "examples/hello").resolve()
    print(json.dumps(image_row(project.name, project), indent=2))
