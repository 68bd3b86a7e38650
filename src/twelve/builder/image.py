"""The ``image`` step and ``twelve image``: the release as an OCI image, with no daemon.

Writes ``_build/<env>/NAME-VSN.oci/`` (an OCI image layout: ``oci-layout``, ``index.json``
tagged VSN, ``blobs/sha256/…``) and ``_build/<env>/NAME-VSN.oci.tar`` (the same layout as an
``oci-archive``), beside the release tarball, from the release directory alone: no Docker,
buildah or podman. There is no base image; the layers, ordered by how often they change, are

1. base: glibc, ``/bin/sh``, ``/etc/passwd``/``group``, ``/tmp``, CA certificates
   (``image_base``);
2. ``/app/python/``: the interpreter;
3. ``/app/lib/`` without the app: the locked third-party packages;
4. everything else of the release: the app's own files in ``lib/`` (its dist-info's RECORD,
   and their ``.pyc``), ``lib/twelve`` (the runtime), ``bin/``, ``releases/VSN`` (config,
   release.json, the SBOM), the overlays.

so a code-only change gives a new top layer and the same digests below it. The release's
``releases/COOKIE`` (a secret) and ``tmp/`` never go into a layer; ``secret_guard`` has already
kept ``env.secret`` values out of the release itself.

Reproducible: members sorted, each directory before its contents; mtime ``SOURCE_DATE_EPOCH``
(else ``archive.DEFAULT_EPOCH``); owner and group 0 with no names (the app user can read its
code but not change it), modes as in the release; GNU tar headers (no pax records, so no
access or change times); gzip with no name and mtime 0; JSON with sorted keys. Two builds of
the same release give the same manifest digest.

The SBOM (``releases/VSN/sbom.cdx.json``, CycloneDX) is a file of the top layer, and the
manifest's annotations name it by path and sha256 (``dev.twelve.sbom.*``): annotations travel
through every registry and ``skopeo copy``, while OCI referrers need a registry with the 1.1
referrers API (distribution 2.8 has none).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import platform
import shutil
import stat
import subprocess
import tarfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from twelve.builder import archive
from twelve.builder.image_base import APP_UID, CA_BUNDLE, HOME, Entry, base_entries
from twelve.builder.release import Release
from twelve.errors import BuildError
from twelve.project import normalise

APP_DIR = "app"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
                 "s390x": "s390x", "riscv64": "riscv64"}
LAYERS = ("base: glibc, /bin/sh, /etc/passwd, /tmp, CA certificates",
          "the interpreter: /app/python", "the locked packages: /app/lib",
          "the app, its config and the launcher")
NO_RELEASE = "no release at {path} to make an image of"
NO_RELEASE_HINT = "Build it first: TWELVE_ENV=prod twelve release (or pass --path)."
NO_INTERPRETER = ("the release at {path} has no python/ (include_python = false): an image "
                  "without a base image needs the bundled interpreter")
NO_INTERPRETER_HINT = ("Set include_python = true in [tool.twelve] (the default) and rebuild, "
                       "or build the image with a Dockerfile on python:X.Y-slim (twelve "
                       "gen.docker).")
UNKNOWN_ARCH = "cannot name the image's architecture: this machine is {machine}"


@dataclass(frozen=True)
class Image:
    layout: Path
    archive: Path
    manifest_digest: str
    layer_digests: tuple[str, ...]
    size: int  # the compressed layers and the config, as a registry stores them


def layout_path(release: Release) -> Path:
    """``_build/<env>/NAME-VSN.oci``: beside the release tarball."""
    return archive.tarball_path(release).with_name(f"{release.name}-{release.version}.oci")


def archive_path(release: Release) -> Path:
    return layout_path(release).with_name(layout_path(release).name + ".tar")


def _pending(path: Path) -> Path:
    return path.with_name(f".{path.name}.staging-{os.getpid()}")


def write_image(release: Release, release_dir: Path, *, epoch: int, log) -> Image:
    """Write the image of the release at ``release_dir`` as pending files beside their final
    names (``publish_image`` renames them into place)."""
    if not (release_dir / "python").is_dir():
        raise BuildError(NO_INTERPRETER.format(path=release_dir), hint=NO_INTERPRETER_HINT)
    layout, tarball = _pending(layout_path(release)), _pending(archive_path(release))
    discard_pending_image(release)
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    layers = []
    for title, entries in zip(LAYERS, layer_entries(release, release_dir)):
        layers.append(write_layer(entries, blobs, epoch))
        log(f"  layer {layers[-1].digest[7:19]} {_mib(layers[-1].size)} {title}")
    config = image_config(release, layers, epoch)
    config_blob = write_blob(blobs, _json(config))
    manifest = {"schemaVersion": 2, "mediaType": MEDIA_MANIFEST,
                "config": _descriptor(MEDIA_CONFIG, config_blob),
                "layers": [_descriptor(MEDIA_LAYER, (layer.digest, layer.size))
                           for layer in layers],
                "annotations": annotations(release, release_dir, epoch)}
    manifest_blob = write_blob(blobs, _json(manifest))
    index = {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [
        {**_descriptor(MEDIA_MANIFEST, manifest_blob),
         "annotations": {"org.opencontainers.image.ref.name": release.version}}]}
    (layout / "index.json").write_bytes(_json(index))
    (layout / "oci-layout").write_bytes(_json({"imageLayoutVersion": "1.0.0"}))
    write_archive(layout, tarball, epoch)
    size = sum(layer.size for layer in layers) + config_blob[1]
    return Image(layout, tarball, manifest_blob[0], tuple(layer.digest for layer in layers),
                 size)


def publish_image(release: Release) -> Image | None:
    """Rename the pending layout and archive into place, if the build wrote them."""
    final, pending = layout_path(release), _pending(layout_path(release))
    if not pending.exists():
        return None
    shutil.rmtree(final, ignore_errors=True)
    os.replace(pending, final)
    os.replace(_pending(archive_path(release)), archive_path(release))
    return final


def discard_pending_image(release: Release) -> None:
    shutil.rmtree(_pending(layout_path(release)), ignore_errors=True)
    _pending(archive_path(release)).unlink(missing_ok=True)


def image_existing(release: Release, log) -> Image:
    """``twelve image``: the image of the release already built at ``release.root``."""
    if not (release.root / "releases" / release.version / "release.json").is_file():
        raise BuildError(NO_RELEASE.format(path=release.display_root), hint=NO_RELEASE_HINT)
    epoch = archive.source_date_epoch(os.environ)
    try:
        image = write_image(release, release.root, epoch=epoch, log=log)
        publish_image(release)
    finally:
        discard_pending_image(release)
    return replace(image, layout=layout_path(release), archive=archive_path(release))


# -- what goes into which layer ------------------------------------------------------------

def layer_entries(release: Release, release_dir: Path) -> list[list[Entry]]:
    """The members of the four layers, each sorted with its parent directories."""
    app_names = app_top_names(release_dir / "lib", release.project.dist_name)
    python, packages, rest = [], [], []
    for name, path in archive.tar_entries(release_dir, release.version):
        if name == "releases/COOKIE":
            continue  # a secret: the node gets its cookie from RELEASE_COOKIE or first boot
        entry = _release_entry(f"{APP_DIR}/{name}", path)
        if name == "python" or name.startswith("python/"):
            python.append(entry)
        elif name == "lib" or (name.startswith("lib/") and not _is_app(name[4:], app_names)):
            packages.append(entry)
        else:
            rest.append(entry)
    return [with_parents(entries, release_dir)
            for entries in (base_entries(release_dir), python, packages, rest)]


def app_top_names(lib: Path, dist_name: str) -> set[str]:
    """The top-level names in ``lib/`` that belong to the app or to twelve's runtime: the
    first part of every path in the app's RECORD, and ``twelve``, ``twelve_boot.py``."""
    names = {"twelve", "twelve_boot.py"}
    wanted = normalise(dist_name)
    for dist_info in lib.glob("*.dist-info"):
        if normalise(dist_info.name.removesuffix(".dist-info").rsplit("-", 1)[0]) != wanted:
            continue
        names.add(dist_info.name)
        record = dist_info / "RECORD"
        if record.is_file():
            for line in record.read_text(encoding="utf-8").splitlines():
                top = line.split(",", 1)[0].split("/", 1)[0]
                if top and top != "..":
                    names.add(top)
    return names


def _is_app(relative: str, app_names: set[str]) -> bool:
    top, _, rest = relative.partition("/")
    if top == "__pycache__" and rest:  # lib/__pycache__/twelve_boot.cpython-311.pyc
        module = rest.split(".", 1)[0]
        return module in app_names or f"{module}.py" in app_names
    return top in app_names


def _release_entry(name: str, path: Path) -> Entry:
    st = path.lstat()
    mode = stat.S_IMODE(st.st_mode) & archive.MODE_MASK
    if stat.S_ISLNK(st.st_mode):
        return Entry(name, "symlink", 0o777, link=os.readlink(path))
    if stat.S_ISDIR(st.st_mode):
        return Entry(name, "dir", mode)
    if stat.S_ISREG(st.st_mode):
        return Entry(name, "file", mode, path=path)
    raise BuildError(archive.NOT_ARCHIVABLE.format(path=name))


def with_parents(entries: list[Entry], release_dir: Path) -> list[Entry]:
    """``entries`` sorted (a directory before its contents), with every missing parent
    directory added: a layer must not depend on another to create its directories."""
    named = {entry.name: entry for entry in entries}
    for name in list(named):
        parts = name.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            named.setdefault(parent, Entry(parent, "dir", _dir_mode(parent, release_dir)))
    return [named[name] for name in sorted(named, key=lambda n: n.split("/"))]


def _dir_mode(name: str, release_dir: Path) -> int:
    if name.startswith(APP_DIR + "/"):
        return stat.S_IMODE((release_dir / name[len(APP_DIR) + 1:]).stat().st_mode) & 0o755
    return 0o755


# -- writing blobs ------------------------------------------------------------------------

class _Digesting:
    """A write-only stream that hashes and counts what passes through to ``inner`` (tarfile
    and gzip need only write, tell and flush)."""

    def __init__(self, inner=None) -> None:
        self.inner, self.sha256, self.size = inner, hashlib.sha256(), 0

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        if self.inner is not None:
            self.inner.flush()

    def write(self, data) -> int:
        self.sha256.update(data)
        self.size += len(data)
        if self.inner is not None:
            self.inner.write(data)
        return len(data)


@dataclass(frozen=True)
class Layer:
    digest: str   # of the gzip blob
    size: int
    diff_id: str  # of the uncompressed tar


def write_layer(entries: list[Entry], blobs: Path, epoch: int) -> Layer:
    scratch = blobs / f".layer-{os.getpid()}"
    with scratch.open("wb") as raw:
        compressed_stream = _Digesting(raw)
        with gzip.GzipFile(filename="", mode="wb", fileobj=compressed_stream, mtime=0,
                           compresslevel=archive.GZIP_LEVEL) as compressed:
            tar_stream = _Digesting(compressed)
            with tarfile.open(fileobj=tar_stream, mode="w", format=tarfile.GNU_FORMAT) as tar:
                for entry in entries:
                    _add(tar, entry, epoch)
    digest = compressed_stream.sha256.hexdigest()
    os.replace(scratch, blobs / digest)
    return Layer(f"sha256:{digest}", compressed_stream.size,
                 f"sha256:{tar_stream.sha256.hexdigest()}")


def _add(tar: tarfile.TarFile, entry: Entry, epoch: int) -> None:
    info = tarfile.TarInfo(entry.name)
    info.mtime, info.uid, info.gid, info.uname, info.gname = epoch, 0, 0, "", ""
    info.mode = entry.mode
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    elif entry.kind in ("symlink", "hardlink"):
        info.type = tarfile.SYMTYPE if entry.kind == "symlink" else tarfile.LNKTYPE
        info.linkname = entry.link
        tar.addfile(info)
    elif entry.data is not None:
        info.size = len(entry.data)
        tar.addfile(info, io.BytesIO(entry.data))
    else:
        info.size = entry.path.stat().st_size
        with entry.path.open("rb") as f:
            tar.addfile(info, f)


def write_blob(blobs: Path, data: bytes) -> tuple[str, int]:
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    return f"sha256:{digest}", len(data)


def write_archive(layout: Path, tarball: Path, epoch: int) -> None:
    """The layout as an ``oci-archive`` (a plain tar: the blobs are compressed already)."""
    with tarfile.open(tarball, "w", format=tarfile.GNU_FORMAT) as tar:
        for name, path in archive.tar_entries(layout, ""):
            entry = _release_entry(name, path)
            _add(tar, entry, epoch)


def _descriptor(media_type: str, blob: tuple[str, int]) -> dict:
    return {"mediaType": media_type, "digest": blob[0], "size": blob[1]}


def _json(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _mib(size: int) -> str:
    return f"{size / 1048576:6.1f} MiB"


# -- the image's configuration ------------------------------------------------------------

def image_config(release: Release, layers: list[Layer], epoch: int) -> dict:
    port = default_port()
    created = _timestamp(epoch)
    return {
        "created": created, "architecture": architecture(), "os": "linux",
        "config": {
            "User": f"{APP_UID}:{APP_UID}",
            "Entrypoint": [f"/{APP_DIR}/bin/{release.name}"], "Cmd": ["start"],
            "ExposedPorts": {f"{port}/tcp": {}}, "StopSignal": "SIGTERM",
            "WorkingDir": f"/{APP_DIR}",
            "Env": [f"PATH=/{APP_DIR}/bin:/bin", f"PORT={port}", "RELEASE_TMP=/tmp",
                    f"HOME={HOME}", f"SSL_CERT_FILE=/{CA_BUNDLE}"],
            "Labels": annotations(release, None, epoch, labels=True),
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created": created, "created_by": f"twelve image: {title}"}
                    for title in LAYERS],
    }


def default_port() -> int:
    from twelve.runtime.config.server import SETTINGS
    return next(setting.default for setting in SETTINGS if setting.variable == "PORT")


def annotations(release: Release, release_dir: Path | None, epoch: int, *,
                labels: bool = False) -> dict[str, str]:
    """The OCI annotations (also the config's labels, which ``skopeo inspect`` shows)."""
    prefix = "org.opencontainers.image."
    values = {prefix + "title": release.name, prefix + "version": release.version,
              prefix + "created": _timestamp(epoch)}
    revision, source = git_facts(release.project.root)
    if revision:
        values[prefix + "revision"] = revision
    if source:
        values[prefix + "source"] = source
    if not labels and release_dir is not None:
        sbom = release_dir / "releases" / release.version / "sbom.cdx.json"
        if sbom.is_file():
            values["dev.twelve.sbom.path"] = f"/{APP_DIR}/releases/{release.version}/sbom.cdx.json"
            values["dev.twelve.sbom.digest"] = "sha256:" + hashlib.sha256(
                sbom.read_bytes()).hexdigest()
            values["dev.twelve.sbom.mediaType"] = "application/vnd.cyclonedx+json"
    return values


def git_facts(root: Path) -> tuple[str | None, str | None]:
    """The commit the project is at and its origin's URL, when it is a git checkout."""
    def git(*args: str) -> str | None:
        try:
            result = subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                                    text=True, check=False, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return result.stdout.strip() or None if result.returncode == 0 else None
    if git("rev-parse", "--show-toplevel") is None:
        return None, None
    return git("rev-parse", "HEAD"), git("config", "--get", "remote.origin.url")


def architecture() -> str:
    machine = platform.machine()
    if machine not in ARCHITECTURES:
        raise BuildError(UNKNOWN_ARCH.format(machine=machine))
    return ARCHITECTURES[machine]


def _timestamp(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
