"""The tarball's gzip stream: one valid gzip member, the same bytes whatever the thread count,
and a warm tar step that copies unchanged blocks from the last tarball yet writes the bytes a
cold one would."""
from __future__ import annotations

import gzip
import io
import os
import random
import tarfile
import zlib
from pathlib import Path

import pytest

from twelve.builder import archive, parallel_gzip
from twelve.builder.parallel_gzip import ParallelGzipWriter, Previous
from twelve.builder.release import Release


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """Blocks 16 times smaller: the same cuts on a tree 16 times smaller, quickly."""
    monkeypatch.setattr(parallel_gzip, "MIN_BLOCK", parallel_gzip.MIN_BLOCK // 16)
    monkeypatch.setattr(parallel_gzip, "MAX_BLOCK", parallel_gzip.MAX_BLOCK // 16)


def make_tree(root: Path) -> None:
    """~800 KB in 300 files, compressible like code, and one file bigger than two blocks."""
    rng = random.Random(7)
    words = [bytes(rng.choices(b"abcdefghij_ ()=:\n", k=rng.randint(2, 9))) for _ in range(500)]
    for n in range(300):
        path = root / "lib" / f"pkg{n // 30:02d}" / f"mod{n:03d}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b" ".join(rng.choices(words, k=400)))
    (root / "lib" / "big.so").write_bytes(rng.randbytes(parallel_gzip.MAX_BLOCK * 2 + 12345))
    (root / "releases" / "1.0").mkdir(parents=True)
    (root / "releases" / "CURRENT").write_text("1.0\n")


@pytest.fixture
def tree(tmp_path):
    staging = tmp_path / "staging"
    make_tree(staging)
    return staging


def release(tmp_path: Path, tag: str, staging: Path) -> Release:
    root = tmp_path / tag / "_build" / "prod" / "rel" / "app"
    return Release(project=None, name="app", version="1.0", env="prod", root=root,
                   staging=staging)


def tar_step(rel: Release) -> bytes:
    archive.write_tarball(rel, 1_700_000_000)
    archive.publish_tarball(rel)
    return archive.tarball_path(rel).read_bytes()


def test_the_stream_is_one_gzip_member_whatever_the_thread_count(tree):
    outputs = []
    for workers in (1, 2, 5):
        raw = io.BytesIO()
        with ParallelGzipWriter(raw, 6, workers=workers) as z, \
                tarfile.open(fileobj=z, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, path in archive.tar_entries(tree, "1.0"):
                z.member(name)
                archive._add(tar, name, path, 0)
        assert z.compressed > 4, "cut into blocks, compressed side by side"
        outputs.append(raw.getvalue())
    assert outputs[0] == outputs[1] == outputs[2]
    data = outputs[0]
    d = zlib.decompressobj(31)
    d.decompress(data)
    assert d.eof and d.unused_data == b"", "a single gzip member, CRC and length checked"
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        big = tar.extractfile("lib/big.so").read()
    assert big == (tree / "lib" / "big.so").read_bytes()


def test_a_warm_tar_step_reuses_blocks_and_writes_the_cold_bytes(tmp_path, tree):
    warm = release(tmp_path, "warm", tree)
    cold_first = tar_step(warm)
    assert archive.index_path(warm).is_file()
    assert tar_step(warm) == cold_first
    module = tree / "lib" / "pkg05" / "mod150.py"
    module.write_bytes(module.read_bytes() + b"\n# changed\n")
    spy = []
    real = ParallelGzipWriter.close

    def close(self):
        real(self)
        spy.append((self.reused, self.compressed))

    try:
        ParallelGzipWriter.close = close
        changed = tar_step(warm)
    finally:
        ParallelGzipWriter.close = real
    [(reused, compressed)] = spy
    assert compressed <= 3 < reused, "only the blocks around the change are compressed again"
    assert changed == tar_step(release(tmp_path, "cold", tree)), "same bytes as a cold build"
    assert changed != cold_first


def test_an_index_is_trusted_only_for_the_tarball_it_describes(tmp_path, tree):
    rel = release(tmp_path, "a", tree)
    tar_step(rel)
    index = archive.index_path(rel)
    assert Previous.load(index, archive.GZIP_LEVEL) is not None
    assert Previous.load(index, 9) is None, "another level compresses to other bytes"
    tarball = archive.tarball_path(rel)
    os.utime(tarball, ns=(0, 0))
    assert Previous.load(index, archive.GZIP_LEVEL) is None, "the tarball was replaced"
    index.write_text("{not json")
    assert Previous.load(index, archive.GZIP_LEVEL) is None


def test_a_failed_tar_step_leaves_the_index_of_the_last_tarball(tmp_path, tree):
    rel = release(tmp_path, "a", tree)
    tar_step(rel)
    index = archive.index_path(rel).read_bytes()
    archive.write_tarball(rel, 0)
    archive.discard_pending_tarball(rel)
    assert archive.index_path(rel).read_bytes() == index
    assert sorted(p.name for p in archive.tarball_path(rel).parent.iterdir()) == \
        [".app.tar-index.json", "app-1.0.tar.gz"]
