"""``releases/VSN/sbom.cdx.json``: the release's software bill of materials, CycloneDX 1.6 JSON.

The subject (``metadata.component``) is the release, an application. Its components are every
distribution installed in ``lib/`` (name, version, ``pkg:pypi`` purl, the hash of the file
installed, the licence its metadata declares), twelve's runtime (copied into ``lib/twelve``), and
the interpreter: a ``platform`` component ``cpython`` with, when it is bundled, the shared
libraries vendored into ``python/lib`` as sub-components hashed from the release's own files.

Built with cyclonedx-python-lib, which knows the schema and the SPDX licence list (an SPDX id
becomes ``license.id``, an expression ``expression``, anything else ``license.name``). The
document is deterministic so the tarball stays reproducible: the serial number is a UUIDv5 of
the document itself, the timestamp is SOURCE_DATE_EPOCH when it is set and absent otherwise.
"""
from __future__ import annotations

import hashlib
import itertools
import tomllib
import uuid
from dataclasses import asdict, replace
from datetime import datetime, timezone
from email.parser import HeaderParser
from pathlib import Path

import twelve
from twelve.builder import layers
from twelve.builder.deps import Package, normalise
from twelve.builder.interpreter import Interpreter
from twelve.builder.release import Release

FILE_NAME = "sbom.cdx.json"
SPEC_VERSION = "1.6"
# Names the serial numbers of twelve's SBOMs: uuid5(SERIAL_NAMESPACE, the SBOM's content).
SERIAL_NAMESPACE = uuid.UUID("5b1d1c57-3f0e-4a42-9d1e-7c2f6a0e1d12")
PYTHON_REF = "python"


def write_sbom(release: Release, info: Interpreter | None, python_version: str,
               packages: list[Package], epoch: int | None, cache: Path | None = None) -> Path:
    """Write the SBOM into releases/VSN of the staging release; return its path. With a
    ``cache``, a document made before from the same inputs (``inputs``) is written again
    rather than made anew: it is a pure function of them. The app's own wheel changes with
    every edit of its code, so the document is remembered with a stand-in for that one hash,
    which is then written in (and the serial number, a digest of the document, made anew):
    an edit does not pay for rendering the whole document again."""
    path = release.version_dir / FILE_NAME
    if cache is None:
        text = render(make_bom(release, info, python_version, packages, epoch))
    else:
        own = _own_wheel(release, packages)
        if own is not None:
            packages = [replace(p, hashes=(STAND_IN,)) if p is own else p for p in packages]
        key = layers.key_of(inputs(release, info, python_version, packages, epoch))
        text = layers.recall(cache, "sbom", key)
        if text is None:
            text = render(make_bom(release, info, python_version, packages, epoch))
            layers.remember(cache, "sbom", key, text)
        if own is not None:
            text = _with_serial(text.replace(_content(STAND_IN), _content(own.hashes[0])))
    path.write_text(text, encoding="utf-8")
    return path


# Stands for the app's wheel hash in a remembered document: a digest no file has.
STAND_IN = "sha256:" + hashlib.sha256(b"twelve: the app's own wheel").hexdigest()


def _own_wheel(release: Release, packages: list[Package]) -> Package | None:
    """The app's own distribution, hashed by its one wheel (not a locked package)."""
    own = [p for p in packages if normalise(p.name) == normalise(release.name)]
    return own[0] if len(own) == 1 and len(own[0].hashes) == 1 else None


def _content(pinned: str) -> str:
    return '"content": "' + pinned.partition(":")[2] + '"'


_SERIAL = '"serialNumber": "urn:uuid:'


def _with_serial(text: str) -> str:
    """The document with its serial number: a UUIDv5 of the document as written with the nil
    serial number (so the number names the content, and the same content the same number)."""
    start = text.index(_SERIAL) + len(_SERIAL)
    end = text.index('"', start)
    draft = text[:start] + str(uuid.UUID(int=0)) + text[end:]
    serial = uuid.uuid5(SERIAL_NAMESPACE, draft.removesuffix("\n"))
    return text[:start] + str(serial) + text[end:]


def render(bom) -> str:
    """The document, its serial number naming its content (``_with_serial``): written once
    with the nil serial number, which is then replaced."""
    from cyclonedx.output.json import JsonV1Dot6

    bom.serial_number = uuid.UUID(int=0)
    return _with_serial(JsonV1Dot6(bom).output_as_string(indent=2) + "\n")


def inputs(release: Release, info: Interpreter | None, python_version: str,
           packages: list[Package], epoch: int | None) -> dict:
    """Everything ``make_bom`` reads: the release, the packages, the lock, the tags of the
    wheels installed, the vendored libraries, and the versions of twelve and of the library
    that writes the document."""
    from importlib.metadata import version

    lock = getattr(release.project, "lock_file", None)
    lib = release.staging / "lib"
    vendored = release.staging / "python" / "lib"
    return {
        "release": [release.name, release.version], "twelve": twelve.__version__,
        "cyclonedx": version("cyclonedx-python-lib"), "python": python_version,
        "info": asdict(info) if info is not None else None, "epoch": epoch,
        "packages": [asdict(p) for p in packages],
        "lock": _digest(lock) if lock is not None else None,
        "wheels": {p.parent.name: p.read_text(errors="replace")
                   for p in sorted(lib.glob("*.dist-info/WHEEL"))},
        "vendored": {name: _digest(vendored / name) for name in sorted(info.vendored)}
        if info is not None else {},
    }


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def make_bom(release: Release, info: Interpreter | None, python_version: str,
             packages: list[Package], epoch: int | None):
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType

    subject = Component(type=ComponentType.APPLICATION, name=release.name,
                        version=release.version, bom_ref=f"release:{release.name}")
    installed = installed_wheel_hashes(getattr(release.project, "lock_file", None),
                                       release.staging / "lib")
    components = [_package(p, installed.get((normalise(p.name), p.version)))
                  for p in packages] + [_runtime(), _python(release, info, python_version)]
    bom = Bom()
    bom.metadata.component = subject
    bom.metadata.timestamp = (datetime.fromtimestamp(epoch, timezone.utc)
                              if epoch is not None else None)
    bom.metadata.tools.components.add(
        Component(type=ComponentType.APPLICATION, name="twelve", version=twelve.__version__))
    for component in components:
        bom.components.add(component)
    bom.register_dependency(subject, components)
    return bom


def installed_wheel_hashes(lock_file: Path | None, lib: Path) -> dict[tuple[str, str], str]:
    """(name, version) → the lock's hash of the very wheel installed in ``lib``, found by its
    tags (``*.dist-info/WHEEL``) among the wheels uv.lock lists. The exported requirements
    pin every file of a version, one per platform; only uv.lock says which file is which."""
    if lock_file is None or not lock_file.is_file():
        return {}
    locked = {}
    for package in tomllib.loads(lock_file.read_text(encoding="utf-8")).get("package", []):
        for wheel in package.get("wheels", []):
            filename = (wheel.get("url") or wheel.get("path") or "").rsplit("/", 1)[-1]
            key = (normalise(package.get("name", "")), package.get("version"), _tags(filename))
            locked[key] = wheel.get("hash")
    found = {}
    for wheel_file in sorted(lib.glob("*.dist-info/WHEEL")):
        name, _, version = wheel_file.parent.name[:-len(".dist-info")].rpartition("-")
        tags = frozenset(HeaderParser().parsestr(wheel_file.read_text()).get_all("Tag") or [])
        digest = locked.get((normalise(name), version, tags))
        if digest:
            found[(normalise(name), version)] = digest
    return found


def _tags(filename: str) -> frozenset[str]:
    """The tags a wheel's file name stands for (compressed tag sets expanded)."""
    parts = filename.removesuffix(".whl").split("-")
    if len(parts) < 5:
        return frozenset()
    python, abi, platform = parts[-3:]
    return frozenset("-".join(t) for t in itertools.product(
        python.split("."), abi.split("."), platform.split(".")))


def _package(package: Package, installed_hash: str | None):
    from cyclonedx.model.component import Component, ComponentType
    from packageurl import PackageURL

    purl = PackageURL("pypi", name=normalise(package.name), version=package.version)
    licenses = [_license(package.license)] if package.license else []
    pinned = [installed_hash] if installed_hash else sorted(set(package.hashes))
    hashes = [_hash(h) for h in pinned]
    return Component(type=ComponentType.LIBRARY, name=package.name, version=package.version,
                     purl=purl, bom_ref=str(purl), licenses=licenses,
                     hashes=[h for h in hashes if h is not None])


def _runtime():
    from cyclonedx.model.component import Component, ComponentType

    return Component(type=ComponentType.LIBRARY, name="twelve.runtime",
                     version=twelve.__version__, bom_ref="lib/twelve",
                     description="twelve's runtime (standard library only), copied into lib/")


def _python(release: Release, info: Interpreter | None, version: str):
    from cyclonedx.model.component import Component, ComponentType
    from packageurl import PackageURL

    purl = PackageURL("generic", name="cpython", version=version)
    if info is None:
        return Component(type=ComponentType.PLATFORM, name="cpython", version=version,
                         purl=purl, bom_ref=PYTHON_REF,
                         description="not bundled: python3 from the target's PATH, the same "
                                     "X.Y version")
    vendored = [_vendored(release.staging / "python" / "lib" / soname)
                for soname in sorted(info.vendored)]
    return Component(type=ComponentType.PLATFORM, name="cpython", version=version, purl=purl,
                     bom_ref=PYTHON_REF, components=vendored,
                     description=f"bundled in python/ ({info.platform}, {info.soabi})")


def _vendored(path: Path):
    from cyclonedx.model import HashAlgorithm, HashType
    from cyclonedx.model.component import Component, ComponentType

    hashes = []
    if path.is_file():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        hashes.append(HashType(alg=HashAlgorithm.SHA_256, content=digest))
    return Component(type=ComponentType.LIBRARY, name=path.name, bom_ref=f"python/lib/{path.name}",
                     hashes=hashes, description="shared library vendored with the interpreter")


def _hash(pinned: str):
    """"sha256:HEX" (as pinned by the lock) → a CycloneDX hash; None for other algorithms."""
    from cyclonedx.model import HashAlgorithm, HashType

    algorithm, _, digest = pinned.partition(":")
    alg = {"sha256": HashAlgorithm.SHA_256, "sha384": HashAlgorithm.SHA_384,
           "sha512": HashAlgorithm.SHA_512}.get(algorithm)
    return HashType(alg=alg, content=digest) if alg and digest else None


def _license(text: str):
    try:
        from cyclonedx.contrib.license.factories import LicenseFactory
    except ImportError:  # cyclonedx-python-lib < 11.5
        from cyclonedx.factory.license import LicenseFactory
    return LicenseFactory().make_from_string(text)
