"""The release's CycloneDX SBOM: valid against the schema cyclonedx-python-lib ships, complete
and deterministic."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from twelve.builder import sbom
from twelve.builder.deps import Package
from twelve.builder.interpreter import Interpreter
from twelve.builder.release import Release

PACKAGES = [
    Package("Flask", "3.1.3", ("sha256:" + "a" * 64,), "BSD-3-Clause"),
    Package("SQLAlchemy", "2.1.9", ("sha256:" + "b" * 64, "sha256:" + "c" * 64), "MIT"),
    Package("dual", "1.0", ("sha256:" + "d" * 64,), "Apache-2.0 OR MIT"),
    Package("odd_name.pkg", "2.0", (), "Copyright Someone, all rights reserved"),
    Package("hello", "0.1.0", ("sha256:" + "e" * 64,), None),
]
INFO = Interpreter(version="3.11.7", executable="bin/python3.11",
                   soabi="cpython-311-x86_64-linux-gnu", platform="linux-x86_64",
                   vendored=("libz.so.1", "libssl.so.3"))


def staging_release(tmp_path: Path) -> Release:
    staging = tmp_path / "staging"
    (staging / "releases" / "0.1.0").mkdir(parents=True)
    (staging / "python" / "lib").mkdir(parents=True)
    for soname in INFO.vendored:
        (staging / "python" / "lib" / soname).write_bytes(soname.encode())
    return Release(project=None, name="hello", version="0.1.0", env="prod",
                   root=tmp_path / "rel" / "hello", staging=staging)


def write(tmp_path: Path, info=INFO, packages=PACKAGES, epoch=1_700_000_000) -> dict:
    release = staging_release(tmp_path)
    path = sbom.write_sbom(release, info, "3.11.7", packages, epoch)
    assert path == release.version_dir / "sbom.cdx.json"
    text = path.read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    return json.loads(text)


def test_valid_cyclonedx_with_every_package_and_the_interpreter(tmp_path):
    doc = write(tmp_path)
    assert (doc["bomFormat"], doc["specVersion"]) == ("CycloneDX", "1.6")
    assert doc["metadata"]["component"] == {"bom-ref": "release:hello", "name": "hello",
                                            "type": "application", "version": "0.1.0"}
    by_name = {c["name"]: c for c in doc["components"]}
    assert set(by_name) == {"Flask", "SQLAlchemy", "dual", "odd_name.pkg", "hello",
                            "twelve.runtime", "cpython"}
    flask = by_name["Flask"]
    assert (flask["version"], flask["purl"]) == ("3.1.3", "pkg:pypi/flask@3.1.3")
    assert flask["hashes"] == [{"alg": "SHA-256", "content": "a" * 64}]
    assert by_name["odd_name.pkg"]["purl"] == "pkg:pypi/odd-name-pkg@2.0"
    assert len(by_name["SQLAlchemy"]["hashes"]) == 2
    python = by_name["cpython"]
    assert (python["type"], python["version"], python["purl"]) == \
        ("platform", "3.11.7", "pkg:generic/cpython@3.11.7")
    assert [c["name"] for c in python["components"]] == ["libssl.so.3", "libz.so.1"]
    assert all(c["hashes"][0]["alg"] == "SHA-256" for c in python["components"])


def test_licences_become_ids_expressions_or_names(tmp_path):
    by_name = {c["name"]: c.get("licenses") for c in write(tmp_path)["components"]}
    assert by_name["Flask"] == [{"license": {"id": "BSD-3-Clause"}}]
    assert by_name["dual"] == [{"expression": "Apache-2.0 OR MIT"}]
    assert by_name["odd_name.pkg"] == [
        {"license": {"name": "Copyright Someone, all rights reserved"}}]
    assert by_name["hello"] is None


def test_deterministic_serial_from_content_and_timestamp_from_source_date_epoch(tmp_path):
    first = write(tmp_path / "a")
    assert first == write(tmp_path / "b")
    assert first["serialNumber"].startswith("urn:uuid:")
    assert first["metadata"]["timestamp"] == "2023-11-14T22:13:20+00:00"
    other = write(tmp_path / "c", packages=PACKAGES[:-1])
    assert other["serialNumber"] != first["serialNumber"]
    assert "timestamp" not in write(tmp_path / "d", epoch=None)["metadata"]


def test_an_interpreter_that_is_not_bundled_is_still_listed(tmp_path):
    doc = write(tmp_path, info=None)
    python = next(c for c in doc["components"] if c["name"] == "cpython")
    assert "not bundled" in python["description"] and "components" not in python


@pytest.mark.parametrize("pinned", ["md5:abc", "", "sha256:"])
def test_hashes_the_schema_cannot_hold_are_left_out(tmp_path, pinned):
    doc = write(tmp_path, packages=[Package("x", "1", (pinned,), None)])
    assert "hashes" not in next(c for c in doc["components"] if c["name"] == "x")


UV_LOCK = """\
version = 1

[[package]]
name = "markupsafe"
version = "3.0.4"
sdist = { url = "https://example.invalid/markupsafe-3.0.4.tar.gz", hash = "sha256:%s" }
wheels = [
    { url = "https://example.invalid/markupsafe-3.0.4-cp311-cp311-macosx_11_0_arm64.whl", hash = "sha256:%s" },
    { url = "https://example.invalid/markupsafe-3.0.4-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl", hash = "sha256:%s" },
]
""" % ("1" * 64, "2" * 64, "3" * 64)


def test_the_installed_wheel_is_hashed_not_every_file_of_the_version(tmp_path):
    release = staging_release(tmp_path)
    lock = tmp_path / "uv.lock"
    lock.write_text(UV_LOCK)
    wheel = release.staging / "lib" / "markupsafe-3.0.4.dist-info" / "WHEEL"
    wheel.parent.mkdir(parents=True)
    wheel.write_text("Wheel-Version: 1.0\nTag: cp311-cp311-manylinux_2_17_x86_64\n"
                     "Tag: cp311-cp311-manylinux2014_x86_64\n")
    release = dataclasses.replace(release, project=SimpleNamespace(lock_file=lock))
    pinned = tuple(f"sha256:{d * 64}" for d in "123")
    packages = [Package("MarkupSafe", "3.0.4", pinned, None), Package("other", "1.0", pinned[:2])]
    sbom.write_sbom(release, INFO, "3.11.7", packages, None)
    doc = json.loads((release.version_dir / "sbom.cdx.json").read_text())
    hashes = {c["name"]: [h["content"] for h in c.get("hashes", [])] for c in doc["components"]}
    assert hashes["MarkupSafe"] == ["3" * 64]
    assert hashes["other"] == ["1" * 64, "2" * 64], "not in uv.lock: every pinned hash"


def test_a_remembered_document_gives_what_a_fresh_render_gives(tmp_path):
    """With a cache the app's own wheel hash is written into a remembered document: byte for
    byte the document rendered from scratch, for each new hash of the app."""
    cache = tmp_path / "cache"
    for n, digit in enumerate("4567"):
        app = Package("hello", "0.1.0", (f"sha256:{digit * 64}",), None)
        packages = [p for p in PACKAGES if p.name != "hello"] + [app]
        fresh = staging_release(tmp_path / f"fresh{n}")
        sbom.write_sbom(fresh, INFO, "3.11.7", packages, None)
        cached = staging_release(tmp_path / f"cached{n}")
        sbom.write_sbom(cached, INFO, "3.11.7", packages, None, cache)
        expected = (fresh.version_dir / "sbom.cdx.json").read_text()
        assert (cached.version_dir / "sbom.cdx.json").read_text() == expected
        assert f'"content": "{digit * 64}"' in expected
    assert len(list((cache / "memo" / "sbom").iterdir())) == 1, "one for every app hash"
