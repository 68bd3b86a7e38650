"""The release as an OCI image, for real: examples/hello built with the ``image`` step, looked
at with skopeo, run by podman on a read-only root, pushed to a real registry on loopback, and
run from `twelve gen.k8s`'s manifests with `podman kube play`. One release for the module."""
from __future__ import annotations

import base64
import gzip
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest

from conftest import EXAMPLES, SECRET, copy_project, free_port, get, twelve, wait_http

pytestmark = pytest.mark.slow

TOOLS = ("podman", "skopeo", "docker-registry")
COOKIE = "container-test-cookie-" + "c" * 20
CONTAINERS_CONF = "[containers]\ndefault_ulimits = []\n[engine]\nruntime = \"runc\"\n"
RUN_FLAGS = ["--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit",
             "nproc=1024:1024"]


def _missing() -> str | None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"needs {', '.join(missing)} (scripts/system-deps installs them)"
    return None


@pytest.fixture(scope="module")
def podman_env(tmp_path_factory):
    reason = _missing()
    if reason:
        pytest.skip(reason)
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    env = dict(os.environ, CONTAINERS_CONF=str(conf))
    probe = subprocess.run(["podman", "info"], env=env, capture_output=True, text=True,
                           timeout=120)
    if probe.returncode != 0:
        pytest.skip(f"podman cannot run here: {probe.stderr.strip()[:200]}")
    return env


def podman(env, *args, check=True, timeout=180):
    proc = subprocess.run(["podman", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {proc.returncode}\n{proc.stderr}")
    return proc


EPOCH = "1700000000"  # SOURCE_DATE_EPOCH: `twelve digest` (the assets step) stamps it too


def build(project: Path) -> None:
    twelve("release", "--overwrite", cwd=project,
           env={"TWELVE_ENV": "prod", "SECRET_KEY_BASE": SECRET, "SOURCE_DATE_EPOCH": EPOCH})


@pytest.fixture(scope="module")
def project(tmp_path_factory, podman_env) -> Path:
    """examples/hello with steps = [..., "assemble", "image"], built with SECRET_KEY_BASE set
    in the build's environment (it must not reach the image)."""
    root = copy_project(EXAMPLES / "hello", tmp_path_factory.mktemp("image") / "hello")
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    assert 'steps = ["assets.deploy", "assemble"]' in text
    pyproject.write_text(text.replace('steps = ["assets.deploy", "assemble"]',
                                      'steps = ["assets.deploy", "assemble", "image"]'))
    build(root)
    return root


def layout(project: Path) -> Path:
    return project / "_build" / "prod" / "hello-0.1.0.oci"


def manifest(project: Path) -> tuple[str, dict]:
    index = json.loads((layout(project) / "index.json").read_text())
    digest = index["manifests"][0]["digest"]
    blob = layout(project) / "blobs" / "sha256" / digest.removeprefix("sha256:")
    return digest, json.loads(blob.read_text())


def skopeo_inspect(reference: str, *extra: str) -> dict:
    proc = subprocess.run(["skopeo", "inspect", *extra, reference], capture_output=True,
                          text=True, timeout=120, check=True)
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def loaded(project, podman_env):
    """The image in podman's storage under a name of this test run; removed afterwards."""
    name = f"localhost/twelve-test-hello-{os.getpid()}:0.1.0"
    subprocess.run(["skopeo", "copy", "-q", f"oci:{layout(project)}:0.1.0",
                    f"containers-storage:{name}"], env=podman_env, check=True, timeout=300,
                   capture_output=True)
    yield name
    podman(podman_env, "rmi", "-f", name, check=False)


def test_skopeo_shows_layers_user_entrypoint_and_annotations(project):
    reference = f"oci:{layout(project)}:0.1.0"
    config = skopeo_inspect(reference, "--config")
    assert config["config"]["User"] == "65532:65532"
    assert config["config"]["Entrypoint"] == ["/app/bin/hello"]
    assert config["config"]["Cmd"] == ["start"]
    assert config["config"]["StopSignal"] == "SIGTERM"
    assert config["config"]["ExposedPorts"] == {"4000/tcp": {}}
    assert config["config"]["WorkingDir"] == "/app"
    assert {"PORT=4000", "RELEASE_TMP=/tmp"} <= set(config["config"]["Env"])
    assert config["created"] == "2023-11-14T22:13:20Z"  # SOURCE_DATE_EPOCH
    inspected = skopeo_inspect(reference)
    assert len(inspected["Layers"]) == 4
    assert inspected["Labels"]["org.opencontainers.image.version"] == "0.1.0"
    digest, data = manifest(project)
    assert inspected["Digest"] == digest
    annotations = data["annotations"]
    assert annotations["org.opencontainers.image.title"] == "hello"
    assert annotations["dev.twelve.sbom.path"] == "/app/releases/0.1.0/sbom.cdx.json"
    sbom = project / "_build/prod/rel/hello/releases/0.1.0/sbom.cdx.json"
    assert annotations["dev.twelve.sbom.digest"] == \
        "sha256:" + __import__("hashlib").sha256(sbom.read_bytes()).hexdigest()
    archive = project / "_build" / "prod" / "hello-0.1.0.oci.tar"
    assert skopeo_inspect(f"oci-archive:{archive}:0.1.0")["Digest"] == digest


def layer_members(project: Path) -> list[tuple[str, bytes]]:
    _, data = manifest(project)
    found = []
    for layer in data["layers"]:
        blob = layout(project) / "blobs" / "sha256" / layer["digest"].removeprefix("sha256:")
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob.read_bytes()))) as tar:
            for member in tar:
                content = tar.extractfile(member).read() if member.isfile() else b""
                found.append((member.name, content))
    return found


def test_no_layer_holds_the_cookie_or_a_secret_of_the_build(project):
    members = layer_members(project)
    names = {name for name, _ in members}
    assert "app/bin/hello" in names and "etc/passwd" in names and "tmp" in names
    assert not [name for name in names if name.endswith("releases/COOKIE")]
    cookie = project / "_build/prod/rel/hello/releases/COOKIE"
    secrets = [SECRET.encode()] + ([cookie.read_bytes().strip()] if cookie.exists() else [])
    for name, content in members:
        for secret in secrets:
            assert secret not in content, name


def test_container_on_a_read_only_root_serves_answers_rpc_and_drains(loaded, podman_env):
    name, port = f"twelve-test-{os.getpid()}", free_port()
    try:
        podman(podman_env, "run", "-d", "--name", name, *RUN_FLAGS, "--read-only",
               "--tmpfs", "/tmp", "-p", f"127.0.0.1:{port}:4000",
               "-e", f"SECRET_KEY_BASE={SECRET}", "-e", f"RELEASE_COOKIE={COOKIE}", loaded)
        wait_http(f"http://127.0.0.1:{port}/", timeout=60)
        assert get(f"http://127.0.0.1:{port}/")[0] == 200
        rpc = podman(podman_env, "exec", name, "bin/hello", "rpc", "1 + 1")
        assert rpc.stdout.strip() == "2"
        slow: dict = {}
        thread = threading.Thread(target=lambda: slow.update(
            result=get(f"http://127.0.0.1:{port}/slow?seconds=3")))
        thread.start()
        time.sleep(1)  # the request is in flight
        started = time.monotonic()
        podman(podman_env, "stop", "-t", "30", name, timeout=120)
        thread.join(timeout=30)
        assert time.monotonic() - started < 30  # SIGTERM drained it, no SIGKILL at 30 s
        assert slow["result"][0] == 200
        state = podman(podman_env, "inspect", name, "--format", "{{.State.ExitCode}}")
        assert state.stdout.strip() == "0"
    finally:
        podman(podman_env, "rm", "-f", name, check=False)


def test_push_to_a_registry_and_pull_back_with_the_same_digest(project, tmp_path):
    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: "
                      f"{tmp_path / 'data'}\nhttp:\n  addr: 127.0.0.1:{port}\n")
    registry = subprocess.Popen(["docker-registry", "serve", str(config)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/v2/", timeout=30, proc=registry)
        remote = f"docker://127.0.0.1:{port}/hello:0.1.0"
        subprocess.run(["skopeo", "copy", "-q", "--dest-tls-verify=false",
                        f"oci:{layout(project)}:0.1.0", remote], check=True, timeout=300)
        digest, _ = manifest(project)
        assert skopeo_inspect(remote, "--tls-verify=false")["Digest"] == digest
        back = tmp_path / "back"
        subprocess.run(["skopeo", "copy", "-q", "--src-tls-verify=false", remote,
                        f"oci:{back}:0.1.0"], check=True, timeout=300)
        assert skopeo_inspect(f"oci:{back}:0.1.0")["Digest"] == digest
    finally:
        registry.send_signal(signal.SIGTERM)
        try:
            registry.wait(timeout=15)
        except subprocess.TimeoutExpired:
            registry.kill()
            registry.wait()


def test_gen_k8s_validates_and_podman_kube_play_serves_it(project, loaded, podman_env,
                                                          tmp_path):
    import yaml

    twelve("gen.k8s", "--force", "--image", loaded, cwd=project, env={"TWELVE_ENV": "prod"})
    manifests = project / "rel" / "k8s" / "hello.yaml"
    check = subprocess.run([str(Path(os.sys.executable).parent / "kubernetes-validate"),
                            "--strict", str(manifests)], capture_output=True, text=True,
                           timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr
    docs = list(yaml.safe_load_all(manifests.read_text()))
    assert {d["kind"] for d in docs} == {"ConfigMap", "Secret", "Deployment", "Service"}
    web = next(d for d in docs if d["metadata"]["name"] == "hello-web")
    pod = web["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["terminationGracePeriodSeconds"] > 30
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    secret = next(d for d in docs if d["kind"] == "Secret")
    assert set(secret["stringData"].values()) == {""}  # a template: no values
    # podman 4.3 reads a Secret from its own store, as a JSON map of base64 values.
    port, suffix = free_port(), os.getpid()
    values = {"SECRET_KEY_BASE": SECRET, "RELEASE_COOKIE": COOKIE}
    secret_file = tmp_path / "secret.json"
    secret_file.write_text(json.dumps({k: base64.b64encode(v.encode()).decode()
                                       for k, v in values.items()}))
    for doc in docs:  # names of this run, a loopback port
        doc["metadata"]["name"] += f"-{suffix}"
    web["spec"]["template"]["spec"]["containers"][0]["ports"][0].update(
        hostPort=port, hostIP="127.0.0.1")
    for source in container["envFrom"]:
        for ref in source.values():
            ref["name"] += f"-{suffix}"
    play = tmp_path / "play.yaml"
    play.write_text(yaml.safe_dump_all([d for d in docs if d["kind"] == "ConfigMap"] + [web]))
    secret_name = f"hello-secrets-{suffix}"
    try:
        podman(podman_env, "secret", "create", secret_name, str(secret_file))
        podman(podman_env, "kube", "play", str(play), timeout=300)
        wait_http(f"http://127.0.0.1:{port}/", timeout=60)
        assert get(f"http://127.0.0.1:{port}/")[0] == 200
    finally:
        podman(podman_env, "kube", "down", str(play), check=False)
        podman(podman_env, "secret", "rm", secret_name, check=False)


def test_same_inputs_same_digest_and_a_code_change_only_changes_the_top_layer(project):
    """Last: it rebuilds the module's release (and leaves it as it was)."""
    digest, first = manifest(project)
    again = twelve("image", cwd=project, env={"TWELVE_ENV": "prod", "SOURCE_DATE_EPOCH": EPOCH})
    assert digest in again.stdout
    web = project / "src" / "hello" / "web.py"
    original = web.read_text()
    web.write_text(original + "\n# a code-only change\n")
    try:
        build(project)
        _, changed = manifest(project)
    finally:
        web.write_text(original)
    lower = [layer["digest"] for layer in first["layers"]]
    assert [layer["digest"] for layer in changed["layers"]][:3] == lower[:3]
    assert changed["layers"][3]["digest"] != lower[3]
    build(project)  # a second clean build of the same inputs
    assert manifest(project)[0] == digest
