"""``twelve digest``: fingerprint a static directory, as Phoenix's ``phx.digest`` does.

For every file ``css/app.css`` of the directory it writes ``css/app-<md5>.css`` (the md5 of the
bytes written, so a name always matches its content), gzip and — when the ``brotli`` package
is installed — brotli siblings of compressible files, and records both names in
``cache_manifest.json`` (see ``twelve.assets.manifest``). CSS and JavaScript are written with
their references to other files of the run digested (``twelve.assets.rewrite``); the original
files stay as they are.

It is idempotent: digested files, compressed siblings and the manifest are never taken as
input, a digested file that already exists is not written again, and re-digesting keeps the
manifest entries of older versions still on disk. Files are read, hashed, written and
compressed in parallel threads (hashing, zlib and brotli release the GIL); only rewriting
references, which needs the digests of the files referred to, runs in one thread, in
dependency order.
"""
from __future__ import annotations

import base64
import hashlib
import os
import posixpath
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from twelve.assets import compress, manifest, rewrite
from twelve.errors import BuildError
# One declaration for the builder and the runtime: the URL prefix, and name-<32 hex>.ext, what
# phx.digest writes and what is never digested again.
from twelve.runtime.static import DEFAULT_PREFIX, DIGESTED_NAME

NO_DIRECTORY = "the static directory {path} does not exist"
NO_DIRECTORY_HINT = ("Build the assets first (e.g. `twelve run assets.deploy`), or name the "
                     "directory: twelve digest DIR (default: tool.twelve.static_dir).")
NOT_A_DIRECTORY = "{path} is not a directory"


@dataclass(frozen=True)
class Asset:
    """One file of the run: what it was, and what its digested copy holds."""

    logical: str        # path relative to the directory, with "/" ("css/app.css")
    original: bytes
    content: bytes      # the digested copy's bytes: references rewritten
    digest: str         # md5 of content, hex
    sha512: str         # sha512 of content, base64 (for Subresource Integrity)

    @property
    def digested(self) -> str:
        root, ext = posixpath.splitext(self.logical)
        return f"{root}-{self.digest}{ext}"

    def entry(self, mtime: int) -> dict:
        return {"logical_path": self.logical, "mtime": mtime, "size": len(self.content),
                "digest": self.digest, "sha512": self.sha512}


@dataclass(frozen=True)
class Report:
    directory: Path
    output: Path
    files: int                  # files digested
    written: int                # files written (digested copies, siblings, originals copied)
    encodings: tuple[str, ...]  # "gzip", "br"
    manifest: Path


def make_asset(logical: str, original: bytes, content: bytes | None = None) -> Asset:
    content = original if content is None else content
    return Asset(logical, original, content, hashlib.md5(content).hexdigest(),
                 base64.b64encode(hashlib.sha512(content).digest()).decode())


def digest_directory(directory: Path, output: Path | None = None, *,
                     prefix: str = DEFAULT_PREFIX, compressed: bool = True,
                     jobs: int | None = None, mtime: int | None = None) -> Report:
    """Digest every file of ``directory`` into ``output`` (default: in place).

    ``prefix`` is the URL the directory is served at, to resolve root URLs (``/static/x.png``)
    in CSS; ``compressed=False`` writes no compressed siblings; ``jobs`` threads (default: one
    per CPU; 1 runs everything in the calling thread); ``mtime`` overrides the clock."""
    directory, output = Path(directory), Path(output or directory)
    if not directory.exists():
        raise BuildError(NO_DIRECTORY.format(path=directory), hint=NO_DIRECTORY_HINT)
    if not directory.is_dir():
        raise BuildError(NOT_A_DIRECTORY.format(path=directory), hint=NO_DIRECTORY_HINT)
    output.mkdir(parents=True, exist_ok=True)
    old = manifest.load(output)
    logicals = list_sources(directory, skip=output)
    encodings = compress.encodings(compressed)
    for parent in sorted({posixpath.dirname(name) for name in logicals}):
        (output / parent).mkdir(parents=True, exist_ok=True)

    def digest_plain(logical: str) -> tuple[Asset, int]:
        asset = make_asset(logical, (directory / logical).read_bytes())
        return asset, write_asset(asset, directory, output, encodings)

    plain = [name for name in logicals if not rewrite.rewrites(name)]
    referring = [name for name in logicals if rewrite.rewrites(name)]
    with _runner(jobs) as run:
        done = run(digest_plain, plain)
        assets = {asset.logical: asset for asset, _ in done}
        written = sum(count for _, count in done)
        originals = dict(zip(referring, run(lambda n: (directory / n).read_bytes(), referring)))
        resolve_references(originals, assets, prefix)
        written += sum(run(lambda n: write_asset(assets[n], directory, output, encodings),
                           referring))
    path = manifest.save(output, updated_manifest(old, assets.values(), output,
                                                  manifest.now() if mtime is None else mtime))
    return Report(directory, output, len(assets), written, tuple(e.name for e in encodings),
                  path)


def list_sources(directory: Path, skip: Path | None = None) -> list[str]:
    """Logical paths of the files to digest, sorted: not digested files, compressed siblings,
    manifests, our temporary files, nor an output directory nested inside the input."""
    root = os.path.realpath(directory)
    skip_dir = os.path.realpath(skip) if skip is not None else root
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if skip_dir == root
                             or os.path.realpath(os.path.join(dirpath, d)) != skip_dir)
        for name in sorted(filenames):
            if (DIGESTED_NAME.search(name) or compress.is_compressed_sibling(name)
                    or name == manifest.MANIFEST_NAME or manifest.TMP_MARK in name):
                continue
            path = os.path.join(dirpath, name)
            if os.path.isfile(path):
                found.append(os.path.relpath(path, root).replace(os.sep, "/"))
    return found


def resolve_references(originals: dict[str, bytes], assets: dict[str, Asset],
                       prefix: str) -> None:
    """Digest the files that refer to others (CSS, JS) after what they refer to, adding them to
    ``assets``. In a cycle (a.css imports b.css imports a.css) the reference that closes it
    keeps its logical name: the names of both could not otherwise match their bytes."""
    active: set[str] = set()

    def visit(logical: str) -> Asset:
        if logical in assets:
            return assets[logical]
        active.add(logical)

        def lookup(target: str) -> str | None:
            if target in active or (target not in assets and target not in originals):
                return None
            return visit(target).digested

        content = rewrite.rewrite(originals[logical], logical, lookup, prefix)
        active.discard(logical)
        assets[logical] = make_asset(logical, originals[logical], content)
        return assets[logical]

    for logical in sorted(originals):
        visit(logical)


def write_asset(asset: Asset, directory: Path, output: Path,
                encodings: tuple[compress.Encoding, ...]) -> int:
    """Write the digested copy (if new), the original (when digesting into another
    directory) and the compressed siblings of both; return how many files were written."""
    written = write_if_missing(output / asset.digested, asset.content)
    original = output / asset.logical
    if output.resolve() != directory.resolve():
        written += write_if_changed(original, asset.original)
    if not compress.compressible(asset.logical):
        return written
    for encoding in encodings:
        digested_sibling = Path(f"{output / asset.digested}{encoding.suffix}")
        packed = None
        if not digested_sibling.exists():
            packed = encoding.compress(asset.content)
            manifest.write_atomically(digested_sibling, packed)
            written += 1
        if asset.original == asset.content:
            packed = packed if packed is not None else digested_sibling.read_bytes()
        else:
            packed = encoding.compress(asset.original)
        written += write_if_changed(Path(f"{original}{encoding.suffix}"), packed)
    # A sibling of the original from an earlier run (with brotli, or without --no-compile)
    # would now be stale: a server would send the old content for the logical path.
    made = {encoding.suffix for encoding in encodings}
    for suffix in compress.COMPRESSED_SUFFIXES:
        if suffix not in made:
            Path(f"{original}{suffix}").unlink(missing_ok=True)
    return written


def write_if_missing(path: Path, data: bytes) -> int:
    # A digested name is its content's md5: an existing file already holds these bytes.
    if path.exists():
        return 0
    manifest.write_atomically(path, data)
    return 1


def write_if_changed(path: Path, data: bytes) -> int:
    try:
        if path.read_bytes() == data:
            return 0
    except FileNotFoundError:
        pass
    manifest.write_atomically(path, data)
    return 1


def updated_manifest(old: manifest.Manifest, assets, output: Path,
                     mtime: int) -> manifest.Manifest:
    """Phoenix's rule: ``latest`` is this run; ``digests`` keeps the older versions whose files
    still exist (with their own mtime) and adds this run's (with ``mtime``)."""
    digests = {name: entry for name, entry in old.digests.items() if (output / name).is_file()}
    latest = {}
    for asset in sorted(assets, key=lambda a: a.logical):
        latest[asset.logical] = asset.digested
        digests[asset.digested] = asset.entry(mtime)
    return manifest.Manifest(latest=latest, digests=digests)


@contextmanager
def _runner(jobs: int | None) -> Iterator[Callable]:
    """``run(fn, items) -> list`` in order: in this thread for one job, else in a pool."""
    jobs = jobs or os.cpu_count() or 1
    if jobs == 1:
        yield lambda fn, items: [fn(item) for item in items]
        return
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="twelve-digest") as pool:
        yield lambda fn, items: list(pool.map(fn, items))

