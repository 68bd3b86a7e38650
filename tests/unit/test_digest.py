"""twelve digest: names, compressed siblings, reference rewriting, the manifest, idempotence."""
from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import sys

import pytest

from twelve.assets import compress, manifest
from twelve.assets.digest import digest_directory, list_sources
from twelve.errors import BuildError

MD5 = r"[0-9a-f]{32}"
NOW = 63_900_000_000  # a manifest mtime (gregorian seconds), injected for stable tests

APP_CSS = """\
@import url("theme.css");
.rel { background: url(../images/bg.png) no-repeat; }
.dq { background: url("../images/logo.svg"); }
.sq { background: url( '../images/logo.svg' ); }
.root { background: url(/static/images/logo.svg); }
.query { background: url("../images/logo.svg?v=3#shape"); }
.font { src: url(../fonts/icon.woff2?#iefix) format("woff2"); }
.data { background: url("data:image/svg+xml;utf8,<svg xmlns='x'/>"); }
.http { background: url(http://example.com/a.png); }
.https { background: url('https://example.com/images/logo.svg'); }
.proto { background: url(//cdn.example.com/images/logo.svg); }
.frag { filter: url(#blur); }
.missing { background: url(../images/missing.png); }
.outside { background: url(../../secret.png); }
.other-root { background: url(/images/logo.svg); }
/*# sourceMappingURL=app.css.map */
"""
APP_CSS_DIGESTED = """\
@import url("theme-{theme}.css");
.rel {{ background: url(../images/bg-{bg}.png) no-repeat; }}
.dq {{ background: url("../images/logo-{logo}.svg"); }}
.sq {{ background: url( '../images/logo-{logo}.svg' ); }}
.root {{ background: url(/static/images/logo-{logo}.svg); }}
.query {{ background: url("../images/logo-{logo}.svg?v=3#shape"); }}
.font {{ src: url(../fonts/icon-{font}.woff2?#iefix) format("woff2"); }}
.data {{ background: url("data:image/svg+xml;utf8,<svg xmlns='x'/>"); }}
.http {{ background: url(http://example.com/a.png); }}
.https {{ background: url('https://example.com/images/logo.svg'); }}
.proto {{ background: url(//cdn.example.com/images/logo.svg); }}
.frag {{ filter: url(#blur); }}
.missing {{ background: url(../images/missing.png); }}
.outside {{ background: url(../../secret.png); }}
.other-root {{ background: url(/images/logo.svg); }}
/*# sourceMappingURL=app.css-{cssmap}.map */
"""
APP_JS = """\
const marker = "//# sourceMappingURL=not-a-comment.js.map";
console.log(marker);
//# sourceMappingURL=app.js.map
"""
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def make_tree(root):
    files = {
        "css/app.css": APP_CSS.encode(),
        "css/theme.css": b".theme { color: #4b2c83; }\n",
        "css/app.css.map": b'{"version":3,"file":"app.css","sources":["../../assets/app.css"]}',
        "js/app.js": APP_JS.encode(),
        "js/app.js.map": b'{"version":3,"file":"app.js","sources":["../../assets/app.js"]}',
        "js/inline.js": b"x();\n//# sourceMappingURL=data:application/json;base64,e30=\n",
        "images/bg.png": PNG,
        "images/logo.svg": b'<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>\n',
        "images/photo.jpg": b"\xff\xd8\xff\xe0" + b"jpeg" * 100,
        "fonts/icon.woff2": b"wOF2" + b"\0" * 200,
        "robots.txt": b"User-agent: *\n" * 20,
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def names(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def load(root):
    return json.loads((root / "cache_manifest.json").read_text())


def md5(data):
    return hashlib.md5(data).hexdigest()


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "static"
    make_tree(root)
    return root


def test_every_file_gets_a_digested_copy_named_by_its_md5(tree):
    report = digest_directory(tree, mtime=NOW)
    data = load(tree)
    assert report.files == 11 and data["version"] == 1
    assert set(data["latest"]) == set(list_sources(tree))
    for logical, digested in data["latest"].items():
        root, ext = logical.rsplit(".", 1) if "." in logical.rsplit("/", 1)[-1] else (logical, "")
        assert re.fullmatch(re.escape(root) + f"-{MD5}" + re.escape("." + ext), digested)
        assert md5((tree / digested).read_bytes()) == digested[len(root) + 1:][:32]
    # phx.digest's naming of a file with two extensions: the last one stays the extension.
    assert re.fullmatch(f"js/app.js-{MD5}.map", data["latest"]["js/app.js.map"])


def test_manifest_digest_sha512_and_size_match_the_bytes(tree):
    digest_directory(tree, mtime=NOW)
    data = load(tree)
    assert len(data["digests"]) == 11
    for digested, entry in data["digests"].items():
        content = (tree / digested).read_bytes()
        assert entry["digest"] == md5(content)
        assert entry["sha512"] == base64.b64encode(hashlib.sha512(content).digest()).decode()
        assert entry["size"] == len(content)
        assert entry["mtime"] == NOW
        assert data["latest"][entry["logical_path"]] == digested


def test_css_urls_are_rewritten_and_everything_else_is_left_alone(tree):
    digest_directory(tree, mtime=NOW)
    latest = load(tree)["latest"]

    def digest_of(logical):
        return re.search(MD5, latest[logical]).group(0)

    expected = APP_CSS_DIGESTED.format(
        theme=digest_of("css/theme.css"), bg=digest_of("images/bg.png"),
        logo=digest_of("images/logo.svg"), font=digest_of("fonts/icon.woff2"),
        cssmap=digest_of("css/app.css.map"))
    assert (tree / latest["css/app.css"]).read_text() == expected
    assert (tree / "css/app.css").read_text() == APP_CSS, "the original is never changed"


def test_root_urls_follow_the_prefix(tmp_path):
    root = tmp_path / "static"
    (root / "img").mkdir(parents=True)
    (root / "img/a.png").write_bytes(PNG)
    (root / "app.css").write_text(".a{background:url(/img/a.png)}"
                                  ".b{background:url(/static/img/a.png)}")
    digest_directory(root, prefix="/", mtime=NOW)
    latest = load(root)["latest"]
    css = (root / latest["app.css"]).read_text()
    assert css == (f".a{{background:url(/{latest['img/a.png']})}}"
                   ".b{background:url(/static/img/a.png)}")


def test_percent_encoded_names_are_found_and_stay_encoded(tmp_path):
    root = tmp_path / "static"
    root.mkdir()
    (root / "my logo.png").write_bytes(PNG)
    (root / "app.css").write_text(".a{background:url(my%20logo.png)}")
    digest_directory(root, mtime=NOW)
    latest = load(root)["latest"]
    digest = re.search(MD5, latest["my logo.png"]).group(0)
    assert (root / latest["app.css"]).read_text() == f".a{{background:url(my%20logo-{digest}.png)}}"


def test_source_map_comments_point_at_digested_maps(tree):
    digest_directory(tree, mtime=NOW)
    latest = load(tree)["latest"]
    js = (tree / latest["js/app.js"]).read_text()
    map_name = latest["js/app.js.map"].rsplit("/", 1)[1]
    assert js.endswith(f"//# sourceMappingURL={map_name}\n")
    assert '"//# sourceMappingURL=not-a-comment.js.map"' in js, "only real comments"
    assert (tree / "js/app.js").read_text() == APP_JS
    inline = (tree / latest["js/inline.js"]).read_bytes()
    assert inline == (tree / "js/inline.js").read_bytes(), "data: source maps stay inline"
    # The map's "file" is informational; rewriting it would make its name not match its bytes.
    assert (tree / latest["js/app.js.map"]).read_bytes() == (tree / "js/app.js.map").read_bytes()


def test_only_compressible_types_get_gzip_siblings_and_they_are_deterministic(tree):
    digest_directory(tree, mtime=NOW)
    latest = load(tree)["latest"]
    for logical, digested in latest.items():
        wanted = logical.rsplit(".", 1)[1] in {"css", "js", "map", "svg", "txt"}
        for name in (logical, digested):
            sibling = tree / f"{name}.gz"
            assert sibling.exists() == wanted, name
            if wanted:
                packed = sibling.read_bytes()
                assert gzip.decompress(packed) == (tree / name).read_bytes()
                assert packed[4:8] == b"\0\0\0\0", "no timestamp in the gzip header"
                assert not packed[3] & 0x08, "no file name in the gzip header"
                assert packed == compress.GZIP.compress((tree / name).read_bytes())
    assert not list(tree.rglob("*.png.gz")) and not list(tree.rglob("*.woff2.gz"))
    assert not list(tree.rglob("*.jpg.gz"))


def test_brotli_siblings_when_brotli_is_installed(tree):
    brotli = pytest.importorskip("brotli")
    digest_directory(tree, mtime=NOW)
    latest = load(tree)["latest"]
    css = tree / latest["css/app.css"]
    assert brotli.decompress(css.with_name(css.name + ".br").read_bytes()) == css.read_bytes()
    assert (tree / "css/app.css.br").exists()
    assert not list(tree.rglob("*.png.br"))


def test_no_brotli_siblings_without_the_package(tree, monkeypatch):
    monkeypatch.setitem(sys.modules, "brotli", None)  # import brotli now fails
    report = digest_directory(tree, mtime=NOW)
    assert report.encodings == ("gzip",)
    assert not list(tree.rglob("*.br"))
    assert list(tree.rglob("*.gz"))


def test_digesting_again_changes_nothing(tree):
    digest_directory(tree, mtime=NOW)
    before = {name: (tree / name).read_bytes() for name in names(tree)}
    report = digest_directory(tree, mtime=NOW)
    assert report.written == 0 and report.files == 11
    assert {name: (tree / name).read_bytes() for name in names(tree)} == before
    assert not [n for n in names(tree) if n.endswith((".gz.gz", ".br.gz", ".gz.br"))]
    assert not [n for n in names(tree) if re.search(f"-{MD5}.*-{MD5}", n)], "no digest of a digest"


def test_redigest_after_a_change_keeps_the_old_entries(tree):
    digest_directory(tree, mtime=NOW)
    old = load(tree)
    (tree / "images/logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>\n')
    digest_directory(tree, mtime=NOW + 60)
    new = load(tree)
    old_logo, new_logo = old["latest"]["images/logo.svg"], new["latest"]["images/logo.svg"]
    assert old_logo != new_logo and (tree / old_logo).exists() and (tree / new_logo).exists()
    assert new["digests"][old_logo] == old["digests"][old_logo], "old entry kept, mtime too"
    assert new["digests"][new_logo]["mtime"] == NOW + 60
    # The stylesheet refers to the logo, so it has a new name too (its bytes changed).
    assert new["latest"]["css/app.css"] != old["latest"]["css/app.css"]
    assert new_logo.rsplit("/", 1)[1] in (tree / new["latest"]["css/app.css"]).read_text()
    assert len(new["digests"]) == 11 + 2


def test_entries_of_deleted_files_leave_the_manifest(tree):
    digest_directory(tree, mtime=NOW)
    digested = load(tree)["latest"]["robots.txt"]
    (tree / digested).unlink()
    (tree / "robots.txt").unlink()
    digest_directory(tree, mtime=NOW)
    data = load(tree)
    assert "robots.txt" not in data["latest"] and digested not in data["digests"]


def test_output_directory_gets_originals_digests_and_manifest(tree, tmp_path):
    before = names(tree)
    out = tmp_path / "public"
    digest_directory(tree, out, mtime=NOW)
    assert names(tree) == before, "the input is left alone"
    data = load(out)
    for logical, digested in data["latest"].items():
        assert (out / logical).read_bytes() == (tree / logical).read_bytes()
        assert (out / digested).exists()
    assert (out / "css/app.css.gz").exists()
    assert digest_directory(tree, out, mtime=NOW).written == 0


def test_no_compile_writes_no_siblings_and_removes_stale_ones(tree):
    digest_directory(tree, mtime=NOW)
    (tree / "css/theme.css").write_text(".theme { color: red; }\n")
    report = digest_directory(tree, compressed=False, mtime=NOW)
    assert report.encodings == ()
    assert not (tree / "css/theme.css.gz").exists(), "a stale sibling would serve old bytes"
    new_theme = load(tree)["latest"]["css/theme.css"]
    assert not (tree / f"{new_theme}.gz").exists()


def test_parallel_and_serial_runs_write_the_same_files(tmp_path):
    trees = []
    for jobs in (1, 4):
        root = tmp_path / f"jobs{jobs}"
        make_tree(root)
        digest_directory(root, jobs=jobs, mtime=NOW)
        trees.append({n: (root / n).read_bytes() for n in names(root)})
    assert trees[0] == trees[1]


def test_a_reference_cycle_still_gives_names_that_match_bytes(tmp_path):
    root = tmp_path / "static"
    root.mkdir()
    (root / "a.css").write_text('@import url("b.css");\n.a{}')
    (root / "b.css").write_text('@import url("a.css");\n.b{}')
    digest_directory(root, mtime=NOW)
    data = load(root)
    a, b = ((root / data["latest"][name]).read_text() for name in ("a.css", "b.css"))
    assert data["latest"]["b.css"] in a and 'url("a.css")' in b
    for digested, entry in data["digests"].items():
        assert entry["digest"] == md5((root / digested).read_bytes())


def test_an_output_nested_in_the_input_is_not_digested_again(tree):
    digest_directory(tree, tree / "public", mtime=NOW)
    data = digest_directory(tree, tree / "public", mtime=NOW)
    assert data.files == 11
    assert not [n for n in load(tree / "public")["latest"] if n.startswith("public/")]


def test_missing_directory_and_broken_manifests_are_reported(tmp_path):
    with pytest.raises(BuildError, match="static directory .*nope does not exist"):
        digest_directory(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(BuildError, match="is not a directory"):
        digest_directory(tmp_path / "file")
    root = tmp_path / "static"
    root.mkdir()
    (root / "cache_manifest.json").write_text("{broken")
    with pytest.raises(BuildError, match="not a cache manifest twelve can read") as e:
        digest_directory(root)
    assert "Delete it and run `twelve digest` again" in e.value.render()
    (root / "cache_manifest.json").write_text(json.dumps(
        {"version": 1, "latest": {}, "digests": {"../../etc/passwd": {
            "logical_path": "x", "mtime": 1}}}))
    with pytest.raises(BuildError, match="is outside it"):
        manifest.load(root)
