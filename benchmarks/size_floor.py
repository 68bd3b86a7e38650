"""How small a built release gets with the size levers twelve does not take (docs/releases.md,
"Size"), applied one after another to a copy of it: the release's bytes and its .tar.gz.

    python benchmarks/size_floor.py benchmarks/reference/_build/prod/rel/reference
    python benchmarks/size_floor.py RELEASE_ROOT --json

Build the release with `optimize = 2` first to measure every lever at once (issue 15 asks
whether the reference app can reach 35 MB and a 12 MB .tar.gz). The rows, cumulative:

1. the release as built;
2. `strip --strip-unneeded` on libpython and the standard library's extension modules (not
   taken: native backtraces lose the names of static functions);
3. the CJK codecs and curses left out (not taken: decoding Shift-JIS or GB2312 fails at run
   time; curses apps fail to import);
4. OpenSSL left out as well (libssl, libcrypto, `_ssl`, `_hashlib`): this one breaks real
   apps (no `ssl`, no TLS to a database, no `hashlib.scrypt`, Werkzeug's default password
   hash); measured to show that only it closes the gap.

The .tar.gz is the tar step's archive, one gzip stream at twelve's level (as
benchmarks/tar_step.py's baseline). Needs binutils' `strip`.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.workspace import tree_size  # noqa: E402
from tar_step import single_stream  # noqa: E402

CJK_AND_CURSES = re.compile(r"(_codecs_(cn|hk|iso2022|jp|kr|tw)|_curses(_panel)?)\..*so$"
                            r"|lib(ncursesw|panelw)\.so(\.\d+)*$")
OPENSSL = re.compile(r"(_ssl|_hashlib)\..*so$|lib(ssl|crypto)\.so(\.\d+)*$")


def _interpreter_elves(root: Path) -> list[Path]:
    """libpython and the standard library's extension modules of a release's python/."""
    lib = root / "python" / "lib"
    return sorted([*lib.glob("libpython*.so*"), *lib.glob("python3*/lib-dynload/*.so")])


def _strip_unneeded(root: Path) -> None:
    files = [p for p in _interpreter_elves(root) if not p.is_symlink()]
    if files:
        subprocess.run(["strip", "--strip-unneeded", *map(str, files)], check=True)


def _remove(pattern: re.Pattern):
    def apply(root: Path) -> None:
        for path in sorted((root / "python").rglob("*")):
            if pattern.search(path.name) and (path.is_file() or path.is_symlink()):
                path.unlink()
    return apply


LEVERS = [
    ("as built", None),
    ("+ strip --strip-unneeded (libpython, lib-dynload)", _strip_unneeded),
    ("+ CJK codecs and curses left out", _remove(CJK_AND_CURSES)),
    ("+ OpenSSL left out (breaks apps)", _remove(OPENSSL)),
]


def measure(root: Path, scratch: Path) -> list[dict]:
    version = (root / "releases" / "CURRENT").read_text().strip()
    copy = scratch / root.name
    shutil.copytree(root, copy, symlinks=True)
    rows = []
    for n, (label, lever) in enumerate(LEVERS):
        if lever is not None:
            lever(copy)
        size, files = tree_size(copy)
        targz = single_stream(copy, version, scratch / f"{n}.tar.gz").stat().st_size
        rows.append({"lever": label, "bytes": size, "files": files, "targz": targz})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="a built release (…/_build/prod/rel/NAME)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if shutil.which("strip") is None:
        sys.exit("size_floor: needs binutils' strip (apt-get install binutils)")
    with tempfile.TemporaryDirectory(prefix="twelve-size-floor-") as scratch:
        rows = measure(args.root.resolve(), Path(scratch))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{args.root}, each row on top of the one before:")
    for row in rows:
        print(f"  {row['lever']:<52} {row['bytes'] / 1e6:6.1f} MB   "
              f".tar.gz {row['targz'] / 1e6:5.1f} MB")


if __name__ == "__main__":
    main()
