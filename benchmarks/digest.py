"""Benchmark of `twelve digest`: files per second on a generated static tree, parallel against a
single-threaded baseline measured in the same run (so the ratio is what to compare across
machines, not the absolute numbers).

    python benchmarks/digest.py                 # 5,000 files, human-readable
    python benchmarks/digest.py --files 200 --json

The tree is generated from a fixed seed: stylesheets referring to images and fonts, scripts with
source maps, SVG, JSON and text (compressible), PNG-like and woff2-like binaries (not). Each
run digests a fresh copy, so neither benefits from the other's output.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from twelve.assets import compress
from twelve.assets.digest import digest_directory

RESULTS = Path(__file__).resolve().parent / "results"
WORDS = ("display", "flex", "grid", "margin", "padding", "color", "background", "border",
         "button", "header", "footer", "nav", "card", "item", "active", "hidden", "primary")


def generate_tree(root: Path, count: int, seed: int = 12) -> int:
    """``count`` files under ``root``; returns their total size in bytes."""
    rng = random.Random(seed)
    images = [f"images/img{i}.png" for i in range(max(1, count // 5))]
    total = 0
    for index in range(count):
        kind = rng.choices(("css", "js", "png", "svg", "json", "woff2", "txt"),
                           weights=(25, 20, 20, 10, 10, 5, 10))[0]
        if kind == "png" and index < len(images):
            name = images[index]
        else:
            name = f"{kind}/{index // 500}/f{index}.{kind}"
        data = _content(kind, index, rng, images)
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        total += len(data)
    return total


def _content(kind: str, index: int, rng: random.Random, images: list[str]) -> bytes:
    def words(n: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(n))

    if kind == "css":
        rules = [f".{rng.choice(WORDS)}-{i} {{ {words(6)}: {rng.randint(0, 999)}px; "
                 f"background: url(../../{rng.choice(images)}); }}" for i in range(40)]
        return "\n".join(rules).encode()
    if kind == "js":
        body = "\n".join(f"export function f{i}() {{ return '{words(8)}'; }}" for i in range(60))
        return f"{body}\n//# sourceMappingURL=f{index}.js.map\n".encode()
    if kind in ("png", "woff2"):
        return rng.randbytes(rng.randint(1_000, 20_000))
    if kind == "svg":
        circles = "".join(f'<circle cx="{rng.randint(0, 99)}" r="{rng.randint(1, 9)}"/>'
                          for _ in range(80))
        return f'<svg xmlns="http://www.w3.org/2000/svg">{circles}</svg>'.encode()
    if kind == "json":
        return json.dumps({f"k{i}": words(5) for i in range(120)}).encode()
    return (words(400) + "\n").encode()


def measure(template: Path, work: Path, jobs: int | None, compressed: bool) -> dict:
    tree = work / f"jobs-{jobs or 'all'}"
    shutil.copytree(template, tree)
    started = time.perf_counter()
    report = digest_directory(tree, jobs=jobs, compressed=compressed)
    seconds = time.perf_counter() - started
    return {"jobs": jobs or os.cpu_count() or 1, "files": report.files, "seconds": seconds,
            "files_per_second": report.files / seconds if seconds else float("inf")}


def run(count: int, jobs: int | None, compressed: bool, where: Path) -> dict:
    where.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="digest-", suffix=".tmp", dir=where) as tmp:
        template = Path(tmp) / "template"
        size = generate_tree(template, count)
        baseline = measure(template, Path(tmp), 1, compressed)
        parallel = measure(template, Path(tmp), jobs, compressed)
    encodings = [e.name for e in compress.encodings(compressed)]
    return {"benchmark": "digest", "files": count, "bytes": size, "encodings": encodings,
            "cpus": os.cpu_count(), "baseline": baseline, "parallel": parallel,
            "speedup": baseline["seconds"] / parallel["seconds"] if parallel["seconds"] else 0.0}


def render(result: dict) -> str:
    rows = [f"twelve digest: {result['files']} files ({result['bytes'] / 1e6:.1f} MB), "
            f"{'+'.join(result['encodings']) or 'no compression'}, {result['cpus']} CPUs"]
    for label, key in (("single-threaded", "baseline"), ("parallel", "parallel")):
        measured = result[key]
        title = f"{label} (jobs={measured['jobs']})"
        rows.append(f"  {title:<28} {measured['files']} files in {measured['seconds']:6.2f} s"
                    f" → {measured['files_per_second']:8.1f} files/s")
    rows.append(f"  speed-up: {result['speedup']:.2f}×")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=5000, help="files to generate (5000)")
    parser.add_argument("--jobs", type=int, help="threads of the parallel run (one per CPU)")
    parser.add_argument("--no-compile", dest="compressed", action="store_false",
                        help="no compressed siblings (measures fingerprinting alone)")
    parser.add_argument("--dir", type=Path, default=RESULTS,
                        help="where to generate the trees (default: benchmarks/results; the "
                             "file system matters: digest creates five files per input)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.files < 1:
        parser.error("--files must be 1 or more")
    result = run(args.files, args.jobs, args.compressed, args.dir)
    print(json.dumps(result) if args.json else render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
