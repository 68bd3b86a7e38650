"""Benchmark of the ``tar`` step alone, on a release that is already built: the standard
library's single gzip stream (what the step did before), then twelve's step cold (no index)
and warm (the index of the cold one), with wall and CPU seconds, size and blocks reused.

    python benchmarks/tar_step.py examples/hello/_build/prod/rel/hello
    python benchmarks/tar_step.py RELEASE_ROOT --rounds 3 --json

Wall times depend on the other load of the machine; CPU seconds less so. The three tarballs'
contents are the same; cold and warm are byte-identical (checked).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import tarfile
import tempfile
import time
from pathlib import Path

from twelve.builder import archive, parallel_gzip
from twelve.builder.release import Release

EPOCH = 315532800


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def single_stream(root: Path, version: str, dest: Path) -> Path:
    with dest.open("wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                          compresslevel=archive.GZIP_LEVEL) as z, \
            tarfile.open(fileobj=z, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in archive.tar_entries(root, version):
            archive._add(tar, name, path, EPOCH)
    return dest


def tar_step(release: Release) -> tuple[Path, tuple[int, int]]:
    counts = []
    real = parallel_gzip.ParallelGzipWriter.close

    def close(self):
        real(self)
        counts.append((self.reused, self.compressed))

    parallel_gzip.ParallelGzipWriter.close = close
    try:
        archive.write_tarball(release, EPOCH)
        return archive.publish_tarball(release), counts[-1]
    finally:
        parallel_gzip.ParallelGzipWriter.close = real


def measure(root: Path, scratch: Path, rounds: int) -> dict:
    version = (root / "releases" / "CURRENT").read_text().strip()
    rows: dict[str, list] = {"gzip module (single stream)": [], "twelve cold": [],
                             "twelve warm": []}
    for n in range(rounds):
        path, wall, cpu = timed(lambda: single_stream(root, version, scratch / f"single{n}"))
        rows["gzip module (single stream)"].append((wall, cpu, path.stat().st_size, None))
        rel = Release(project=None, name=root.name, version=version, env="prod",
                      root=scratch / f"r{n}" / "_build" / "prod" / "rel" / root.name,
                      staging=root)
        digests = []
        for kind in ("twelve cold", "twelve warm"):
            (path, blocks), wall, cpu = timed(lambda: tar_step(rel))
            rows[kind].append((wall, cpu, path.stat().st_size, blocks))
            digests.append(path.read_bytes())
        assert digests[0] == digests[1], "cold and warm tarballs differ"
    return {kind: {"wall_s": min(r[0] for r in runs), "cpu_s": min(r[1] for r in runs),
                   "bytes": runs[0][2], "reused_compressed": runs[0][3]}
            for kind, runs in rows.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="a built release (…/_build/prod/rel/NAME)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="twelve-tar-step-") as scratch:
        results = measure(args.root.resolve(), Path(scratch), args.rounds)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"tar step on {args.root} ({os.cpu_count()} cores, best of {args.rounds}):")
    for kind, r in results.items():
        blocks = "" if r["reused_compressed"] is None else \
            " — blocks reused {}, compressed {}".format(*r["reused_compressed"])
        print(f"  {kind:<28} {r['wall_s']:6.2f} s wall {r['cpu_s']:6.2f} s cpu "
              f"{r['bytes'] / 1e6:7.2f} MB{blocks}")


if __name__ == "__main__":
    main()
