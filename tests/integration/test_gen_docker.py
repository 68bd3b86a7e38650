"""gen.docker without a Docker engine: the Dockerfile is read by BuildKit's own parser, its
build stage's `twelve release` command is run as written (with /release under tmp), and the
runtime stage's ENV, CMD, HEALTHCHECK and STOPSIGNAL drive the release it built: the node
serves, the health check passes while it does and fails once it is gone, and the stop signal
drains it to exit 0."""
from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import EXAMPLES, SECRET, copy_project, free_port, twelve

pytestmark = pytest.mark.slow
dockerfile = pytest.importorskip("dockerfile")


def stage(commands, name: str) -> list:
    found, current = {}, None
    for command in commands:
        if command.cmd == "FROM":
            current = command.value[-1]
            found[current] = []
        if current:
            found[current].append(command)
    return found[name]


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """The example with its Dockerfile, and the release its build stage built."""
    tmp = tmp_path_factory.mktemp("docker")
    project = copy_project(EXAMPLES / "hello", tmp / "hello")
    twelve("gen.docker", cwd=project)
    commands = dockerfile.parse_file(str(project / "Dockerfile"))
    build = stage(commands, "build")
    release_root = tmp / "release"
    [run] = [c for c in build if c.cmd == "RUN" and "twelve release" in c.value[0]]
    script = re.sub(r"(?<![\w/])/release\b", str(release_root), run.value[0])
    bin_dir = os.path.dirname(sys.executable)  # where `pip install twelve` put the command
    proc = subprocess.run(["sh", "-ec", script], cwd=project, text=True, capture_output=True,
                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return stage(commands, "runtime"), release_root


def container_env(runtime, tmp: Path, port: int) -> dict:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp)}
    for command in runtime:
        if command.cmd == "ENV":
            pairs = command.value
            env.update(zip(pairs[::2], pairs[1::2]))
    env.update(STATE_DIRECTORY=str(tmp / "state"), RELEASE_TMP=str(tmp / "tmp"),
               PORT=str(port), SECRET_KEY_BASE=SECRET)  # docker run -e ...
    return env


def in_container(argv, release_root: Path) -> list[str]:
    return [arg.replace("/app/", f"{release_root}/") for arg in argv]


def test_build_stage_built_a_release_without_a_secret(image):
    """No cookie in the image: the node makes its own in RELEASE_TMP at first boot."""
    _runtime, release_root = image
    assert (release_root / "bin/hello").is_file()
    assert not (release_root / "releases/COOKIE").exists()


def test_runtime_stage_serves_passes_health_checks_and_stops_on_its_signal(image, tmp_path):
    runtime, release_root = image
    port = free_port()
    env = container_env(runtime, tmp_path, port)
    assert env["STATE_DIRECTORY"] and env["RELEASE_TMP"].startswith(str(tmp_path))
    [cmd] = [c for c in runtime if c.cmd == "CMD"]
    [health] = [c for c in runtime if c.cmd == "HEALTHCHECK"]
    [stopsignal] = [c for c in runtime if c.cmd == "STOPSIGNAL"]
    check = in_container(health.value[1:], release_root)

    def healthy() -> int:
        return subprocess.run(check, env=env, capture_output=True, timeout=10).returncode

    node = subprocess.Popen(in_container(cmd.value, release_root), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        for _ in range(300):
            if healthy() == 0 or node.poll() is not None:
                break
        assert node.poll() is None, node.stdout.read()
        assert healthy() == 0
        node.send_signal(getattr(signal, stopsignal.value[0]))
        assert node.wait(45) == 0, "docker stop: the node drains and exits 0"
        assert healthy() != 0, "nothing listens: unhealthy"
    finally:
        if node.poll() is None:
            os.killpg(node.pid, signal.SIGKILL)
            node.wait(10)


def test_the_build_context_leaves_builds_and_secrets_out(image, tmp_path):
    project = copy_project(EXAMPLES / "hello", tmp_path / "hello")
    twelve("gen.docker", cwd=project)
    ignored = (project / ".dockerignore").read_text().splitlines()
    assert {"_build", ".venv", ".git", "*.env", ".env"} <= set(ignored)
    print("\nbuild stage:", shlex.join(["docker", "build", "-t", "hello", str(project)]))
