"""The manifest's view of a release tree (assemble.file_manifest, and verify's rule for the
directories it lists as ``{"dir": true}``), on a tree made for it: one walk must say what the
rule says."""
from __future__ import annotations

import hashlib
import os

from twelve.builder import assemble
from twelve.runtime import verify


def make_tree(root):
    for rel in ["bin/hello", "lib/a/b/c.py", "lib/a/empty_sibling/.keep", "releases/CURRENT",
                "releases/0.1.0/env.sh", "releases/0.1.0/release.json",
                "releases/0.0.9/env.sh", "tmp/run/pid"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    for rel in ["lib/empty", "lib/nested/deeper/empty", "releases/0.1.0/static/empty",
                "releases/0.0.9/empty", "tmp/empty", "overlay/only_a_link_inside"]:
        (root / rel).mkdir(parents=True)
    (root / "overlay/only_a_link_inside/to_lib").symlink_to("../../lib")
    (root / "lib/a/link.py").symlink_to("b/c.py")


def test_empty_directories_are_the_covered_ones_holding_nothing_covered(tmp_path):
    make_tree(tmp_path)
    assert verify.empty_directories(tmp_path, "0.1.0") == [
        "lib/empty", "lib/nested/deeper/empty", "releases/0.1.0/static/empty"]


def test_the_manifest_lists_every_covered_file_link_and_empty_directory(tmp_path):
    make_tree(tmp_path)
    files = assemble.file_manifest(tmp_path, "0.1.0")
    digest = hashlib.sha256(b"lib/a/b/c.py").hexdigest()
    assert files["lib/a/b/c.py"] == {"sha256": digest, "mode": "0644"}
    assert files["lib/a/link.py"] == {"link": "b/c.py"}
    assert files["overlay/only_a_link_inside/to_lib"] == {"link": "../../lib"}
    assert files["lib/empty"] == {"dir": True}
    assert sorted(files) == sorted([
        "bin/hello", "lib/a/b/c.py", "lib/a/empty_sibling/.keep", "lib/a/link.py",
        "releases/CURRENT", "releases/0.1.0/env.sh", "overlay/only_a_link_inside/to_lib",
        "lib/empty", "lib/nested/deeper/empty", "releases/0.1.0/static/empty"])
    st = os.stat(tmp_path / "bin/hello")
    known = {(st.st_dev, st.st_ino): "0" * 64}   # a file linked out of a cache: not hashed
    assert assemble.file_manifest(tmp_path, "0.1.0", known)["bin/hello"]["sha256"] == "0" * 64
