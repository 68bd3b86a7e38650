"""The OCI image's pure parts: the step's rules, which layer a release file goes to, and
reproducible layer bytes (the real image is built and run in tests/integration/test_image.py)."""
from __future__ import annotations

import gzip
import io
import tarfile
import textwrap

import pytest

from twelve.builder import image
from twelve.builder.image_base import Entry
from twelve.errors import ProjectError
from twelve.project import load_project

GOOD = """
[project]
name = "hello"
version = "0.1.0"
dependencies = ["Flask>=3", "gunicorn"]

[tool.twelve]
app = "hello.web:app"
"""


@pytest.mark.parametrize("steps", ['["assemble", "image"]', '["assemble", "image", "tar"]',
                                   '["assemble", "tar", "image"]'])
def test_image_may_follow_assemble_and_tar(tmp_path, steps):
    (tmp_path / "pyproject.toml").write_text(GOOD + f"steps = {steps}\n")
    assert "image" in load_project(tmp_path).steps


@pytest.mark.parametrize("steps, message", [
    ('["image", "assemble"]', '"image" must come after "assemble" in the steps'),
    ('["assemble", "image", "image"]', 'the steps may contain "image" at most once'),
    ('["assemble", "image", "x.steps:sign"]',
     "\"image\" must be the last step: 'x.steps:sign' after it would change the release but "
     "not its image"),
])
def test_image_step_rules(tmp_path, steps, message):
    (tmp_path / "pyproject.toml").write_text(GOOD + f"steps = {steps}\n")
    with pytest.raises(ProjectError) as info:
        load_project(tmp_path)
    assert message in info.value.render()


def test_app_files_are_told_from_locked_packages(tmp_path):
    lib = tmp_path / "lib"
    dist_info = lib / "hello-0.1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "RECORD").write_text(textwrap.dedent("""\
        hello/__init__.py,sha256=x,1
        hello/web.py,sha256=x,1
        hello_extra.py,sha256=x,1
        hello-0.1.0.dist-info/RECORD,,
    """))
    names = image.app_top_names(lib, "Hello")
    for relative in ("hello/web.py", "hello-0.1.0.dist-info/RECORD", "hello_extra.py",
                     "__pycache__/hello_extra.cpython-311.pyc", "twelve/runtime/boot.py",
                     "__pycache__/twelve_boot.cpython-311.pyc"):
        assert image._is_app(relative, names), relative
    for relative in ("flask/app.py", "flask-3.0.0.dist-info/RECORD", "six.py",
                     "__pycache__/six.cpython-311.pyc", "hellox/__init__.py"):
        assert not image._is_app(relative, names), relative


def test_layers_are_reproducible_and_hold_no_times_or_owners(tmp_path):
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    source = tmp_path / "file.txt"
    source.write_text("hello")
    entries = image.with_parents([Entry("app/x", "file", 0o755, path=source),
                                  Entry("tmp", "dir", 0o1777)], tmp_path)
    first = image.write_layer(entries, blobs, 315532800)
    source.touch()  # a new mtime on disk must not show
    second = image.write_layer(entries, blobs, 315532800)
    assert first == second
    raw = gzip.decompress((blobs / first.digest.removeprefix("sha256:")).read_bytes())
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["app", "app/x", "tmp"]
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == \
        {(0, 0, "", "", 315532800)}
    assert all(not m.pax_headers for m in members)
    assert members[-1].mode == 0o1777


def test_the_benchmark_row_counts_an_image_layout(tmp_path):
    """benchmarks/harness/measure_image.py on a tiny layout: unpacked bytes, files, and the
    compressed size a registry stores."""
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from harness.measure_image import layout_row

    blobs = tmp_path / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    source = tmp_path / "file.txt"
    source.write_bytes(b"x" * 1000)
    layer = image.write_layer([Entry("app", "dir"), Entry("app/x", "file", 0o644, path=source)],
                              blobs, 315532800)
    config = image.write_blob(blobs, b"{}")
    manifest = image.write_blob(blobs, json.dumps({
        "config": {"digest": config[0], "size": config[1]},
        "layers": [{"digest": layer.digest, "size": layer.size}]}).encode())
    (tmp_path / "index.json").write_text(json.dumps({"manifests": [{"digest": manifest[0]}]}))
    row = layout_row(tmp_path, 1.5)
    assert (row["bytes"], row["files"], row["targz"]) == (1000, 1, layer.size + 2)


def test_a_release_without_its_interpreter_or_without_a_build_is_refused(tmp_path):
    from twelve.builder.release import make_release
    from twelve.errors import BuildError

    (tmp_path / "pyproject.toml").write_text(GOOD + "include_python = false\n")
    release = make_release(load_project(tmp_path), name=None, version=None, env="prod",
                           path=None)
    with pytest.raises(BuildError) as info:
        image.image_existing(release, log=print)
    assert "no release at" in info.value.render()
    (release.root / "releases" / "0.1.0").mkdir(parents=True)
    (release.root / "releases" / "0.1.0" / "release.json").write_text("{}")
    with pytest.raises(BuildError) as info:
        image.image_existing(release, log=print)
    assert "has no python/ (include_python = false)" in info.value.render()
    assert not image.layout_path(release).exists()
