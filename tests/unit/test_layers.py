"""What keys a rebuild's cache entries (twelve.builder.layers): the project's inputs, and
nothing that a build writes or that no backend reads."""
from __future__ import annotations

import os

from twelve.builder import depcache, layers


def make_project(root):
    (root / "src" / "app").mkdir(parents=True)
    (root / "src" / "app" / "__init__.py").write_text("X = 1\n")
    (root / "pyproject.toml").write_text("[project]\nname = 'app'\n")
    return root


def test_the_digest_covers_sources_and_leaves_out_outputs_and_caches(tmp_path):
    root = make_project(tmp_path / "app")
    before = layers.project_digest(root, root / "_build" / "prod" / "rel" / "app")
    assert set(before) == {"pyproject.toml", os.path.join("src", "app", "__init__.py")}
    for rel in ("_build/prod/rel/app/lib/x.py", "node_modules/esbuild/bin",
                "src/app/__pycache__/x.cpython-311.pyc", ".git/HEAD", ".venv/bin/python",
                "src/app/stale.pyc"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("written by a tool, read by no backend")
    assert layers.project_digest(root, root / "_build" / "prod" / "rel" / "app") == before


def test_the_digest_changes_with_any_source_a_backend_may_read(tmp_path):
    root = make_project(tmp_path / "app")
    first = layers.project_digest(root)
    (root / "src" / "app" / "__init__.py").write_text("X = 2\n")
    edited = layers.project_digest(root)
    (root / "src" / "app" / "new.py").write_text("")
    added = layers.project_digest(root)
    (root / "src" / "app" / "link.py").symlink_to("new.py")
    linked = layers.project_digest(root)
    assert len({layers.key_of(d) for d in (first, edited, added, linked)}) == 4


def test_a_release_outside_the_default_place_is_left_out_too(tmp_path):
    root = make_project(tmp_path / "app")
    before = layers.project_digest(root, root / "out" / "app")
    (root / "out" / ".app.staging-1").mkdir(parents=True)
    (root / "out" / ".app.staging-1" / "f").write_text("")
    assert layers.project_digest(root, root / "out" / "app") == before


def test_text_is_remembered_whole_per_kind_and_key(tmp_path):
    assert layers.recall(tmp_path, "export", "k") is None
    layers.remember(tmp_path, "export", "k", "flask==3\n")
    assert layers.recall(tmp_path, "export", "k") == "flask==3\n"
    assert layers.recall(tmp_path, "sbom", "k") is None
    assert [p.name for p in (tmp_path / "memo" / "export").iterdir()] == ["k"]


def test_linking_over_a_file_replaces_it_and_leaves_the_original_untouched(tmp_path):
    cached, other = tmp_path / "entry", tmp_path / "other"
    (cached / "pkg").mkdir(parents=True)
    (cached / "pkg" / "mod.py").write_text("new")
    (other / "pkg").mkdir(parents=True)
    (other / "pkg" / "mod.py").write_text("old, linked from another cache")
    dest = tmp_path / "lib"
    depcache.link_tree(other, dest)
    depcache.link_tree(cached, dest, replace=True)
    assert (dest / "pkg" / "mod.py").read_text() == "new"
    assert (other / "pkg" / "mod.py").read_text() == "old, linked from another cache"
