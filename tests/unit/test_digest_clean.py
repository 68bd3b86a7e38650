"""twelve digest.clean: the latest stays, plus N older versions and anything younger than AGE;
--all removes every digested and compressed file and the manifest."""
from __future__ import annotations

import json

import pytest

from twelve.assets import manifest
from twelve.assets.digest import digest_directory

NOW = 63_900_000_000
HOUR = 3600


def version(root, n, *, logical="app.css", mtime):
    """An older digested version of app.css written by hand, with its siblings."""
    name = f"app-{n:032x}.css"
    for suffix in ("", ".gz", ".br"):
        (root / f"{name}{suffix}").write_text(f"v{n}")
    return name, {"logical_path": logical, "mtime": mtime, "size": 2, "digest": f"{n:032x}",
                  "sha512": "x"}


@pytest.fixture
def versions(tmp_path):
    """app.css: the latest (1 s old) and five older versions, 1 h to 5 h old (v1 the oldest)."""
    root = tmp_path / "static"
    root.mkdir()
    (root / "app.css").write_text("latest")
    digests = {}
    for n in range(1, 6):
        name, entry = version(root, n, mtime=NOW - (6 - n) * HOUR)
        digests[name] = entry
    latest_name, entry = version(root, 9, mtime=NOW - 1)
    digests[latest_name] = entry
    (root / "app.css.gz").write_text("latest gz")
    (root / "cache_manifest.json").write_text(json.dumps(
        {"version": 1, "latest": {"app.css": latest_name}, "digests": digests}))
    return root


def remaining(root):
    return sorted(json.loads((root / "cache_manifest.json").read_text())["digests"])


def v(n):
    return f"app-{n:032x}.css"


def test_keeps_the_latest_and_the_n_newest_older_versions(versions):
    result = manifest.clean(versions, keep=2, age=0, current=NOW)
    assert sorted(result.removed) == [v(1), v(2), v(3)]
    assert result.files == 9, "each removed version with its .gz and .br"
    assert remaining(versions) == [v(4), v(5), v(9)]
    for n in (1, 2, 3):
        assert not list(versions.glob(f"{v(n)}*"))
    for n in (4, 5, 9):
        assert {p.name for p in versions.glob(f"{v(n)}*")} == {v(n), v(n) + ".gz", v(n) + ".br"}
    assert (versions / "app.css").exists() and (versions / "app.css.gz").exists()


def test_keeps_versions_younger_than_the_age_limit_whatever_their_rank(versions):
    # v2..v5 are at most 4 hours old: an age limit of 4 h keeps them even with keep=0.
    manifest.clean(versions, keep=0, age=4 * HOUR, current=NOW)
    assert remaining(versions) == [v(2), v(3), v(4), v(5), v(9)]


def test_the_latest_is_never_removed_even_if_its_mtime_is_old(versions):
    data = json.loads((versions / "cache_manifest.json").read_text())
    data["digests"][v(9)]["mtime"] = NOW - 100 * HOUR
    (versions / "cache_manifest.json").write_text(json.dumps(data))
    manifest.clean(versions, keep=0, age=0, current=NOW)
    assert remaining(versions) == [v(9)]
    assert (versions / v(9)).exists()


def test_versions_are_counted_per_logical_path(versions):
    data = json.loads((versions / "cache_manifest.json").read_text())
    name, entry = version(versions, 20, logical="other.css", mtime=NOW - 50 * HOUR)
    data["digests"][name] = entry
    (versions / "cache_manifest.json").write_text(json.dumps(data))
    manifest.clean(versions, keep=1, age=0, current=NOW)
    assert remaining(versions) == [v(5), v(9), v(20)], "other.css's only old version is kept"


def test_nothing_to_clean_leaves_the_manifest_alone(versions):
    before = (versions / "cache_manifest.json").read_bytes()
    assert manifest.clean(versions, keep=10, age=0, current=NOW).removed == ()
    assert (versions / "cache_manifest.json").read_bytes() == before


def test_all_removes_every_digest_sibling_and_the_manifest(tmp_path):
    root = tmp_path / "static"
    (root / "css").mkdir(parents=True)
    (root / "css/app.css").write_text(".a{color:red}")
    (root / "logo.png").write_bytes(b"\x89PNG")
    digest_directory(root, mtime=NOW)
    (root / "css/app.css").write_text(".a{color:blue}")
    digest_directory(root, mtime=NOW + 1)
    result = manifest.clean_all(root)
    assert len(result.removed) == 3, "both versions of app.css and the logo"
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == [
        "css/app.css", "logo.png"]


def test_clean_with_the_real_clock_keeps_fresh_digests(tmp_path):
    root = tmp_path / "static"
    root.mkdir()
    (root / "a.txt").write_text("one")
    digest_directory(root)
    (root / "a.txt").write_text("two")
    digest_directory(root)
    assert len(manifest.clean(root, keep=0, age=3600).removed) == 0, "younger than an hour"
    assert len(manifest.clean(root, keep=0, age=0, current=manifest.now() + 10).removed) == 1
