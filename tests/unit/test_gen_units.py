"""gen.systemd and gen.docker without a release: options, the units' and the Dockerfile's
content, the EnvironmentFile template. (Verified by systemd-analyze and run in
tests/integration/test_gen_systemd.py and test_gen_docker.py.)"""
from __future__ import annotations

import configparser
import json
import sys

import pytest

from conftest import twelve
from test_gen import write_project

RUNTIME_PY = """\
from pathlib import Path
from twelve import config, config_env, env

state = env.path("STATE_DIRECTORY", default=Path("/home/someone/.local/state/shop"))
config("shop", database_url=env.url("DATABASE_URL", default=f"sqlite:///{state}/shop.db"))
config("shop", tmp=env.path("RELEASE_TMP", default="/tmp"))
if config_env() == "prod":
    config("shop", secret_key_base=env.secret("SECRET_KEY_BASE", min_length=64))
    config("shop", mail=env.str("MAIL_FROM", help="the From: of mails"))
"""


def unit(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str
    parser.read_string(text)
    return parser


@pytest.fixture
def shop(tmp_path):
    root = write_project(tmp_path / "shop")
    (root / "config").mkdir()
    (root / "config/runtime.py").write_text(RUNTIME_PY)
    return root


# -- gen.systemd --------------------------------------------------------------------------------

def test_unit_defaults(shop):
    proc = twelve("gen.systemd", cwd=shop)
    assert [l for l in proc.stdout.splitlines() if l.startswith("* ")] == [
        "* environment template from config/runtime.py (TWELVE_ENV=prod); build the release "
        "first (_build/prod/rel/shop) to take it from the release itself",
        "* creating rel/systemd/shop.service", "* creating rel/systemd/shop.env"]
    text = (shop / "rel/systemd/shop.service").read_text()
    service = unit(text)["Service"]
    assert service["Type"] == "notify"
    assert service["ExecStart"] == "/opt/shop/bin/shop start"
    assert service["ExecReload"] == "/opt/shop/bin/shop restart"
    assert service["Restart"] == "on-failure" and service["RestartPreventExitStatus"] == "78"
    assert service["User"] == "shop" and service["EnvironmentFile"] == "/etc/shop/shop.env"
    assert service["StateDirectory"] == "shop" and service["RuntimeDirectory"] == "shop"
    assert "Environment=RELEASE_TMP=/run/shop" in text
    assert service["ProtectSystem"] == "strict" and service["NoNewPrivileges"] == "yes"
    assert service["CapabilityBoundingSet"] == ""
    assert "WatchdogSec" not in service and "Requires" not in unit(text)["Unit"]
    assert "RuntimeDirectoryPreserve" not in service, "one process type: removed on stop"
    assert not (shop / "rel/systemd/shop.socket").exists()
    assert "useradd --system" in proc.stdout and "systemctl enable --now shop" in proc.stdout


def test_unit_options(shop):
    twelve("gen.systemd", "--release-root", "/srv/shop/current/", "--user", "web",
           "--socket", "127.0.0.1:8080", "--watchdog", "20", cwd=shop)
    text = (shop / "rel/systemd/shop.service").read_text()
    service = unit(text)["Service"]
    assert service["ExecStart"] == "/srv/shop/current/bin/shop start"
    assert service["User"] == "web" and service["Group"] == "web"
    assert service["WatchdogSec"] == "20"
    assert "Requires=shop.socket\nAfter=shop.socket" in text
    socket = unit((shop / "rel/systemd/shop.socket").read_text())["Socket"]
    assert socket["ListenStream"] == "127.0.0.1:8080" and socket["FileDescriptorName"] == "web"


def test_a_unit_per_process_type_sharing_the_runtime_directory(tmp_path):
    root = write_project(tmp_path / "shop", extra='[tool.twelve.processes]\n'
                                                  'worker = "shop.jobs:main"\n')
    proc = twelve("gen.systemd", "--socket", cwd=root)
    assert "systemctl enable --now shop.socket shop.service shop-worker.service" in proc.stdout
    web = (root / "rel/systemd/shop.service").read_text()
    worker = (root / "rel/systemd/shop-worker.service").read_text()
    assert unit(worker)["Service"]["ExecStart"] == "/opt/shop/bin/shop start worker"
    assert unit(worker)["Service"]["ExecReload"] == "/opt/shop/bin/shop restart worker"
    assert "Requires=shop.socket" in web and "shop.socket" not in worker
    for text in (web, worker):
        assert "RuntimeDirectory=shop\n" in text and "RuntimeDirectoryPreserve=yes" in text


def test_socket_defaults_to_port_4000(shop):
    twelve("gen.systemd", "--socket", cwd=shop)
    socket = unit((shop / "rel/systemd/shop.socket").read_text())["Socket"]
    assert socket["ListenStream"] == "4000"


@pytest.mark.parametrize("args, message", [
    (["--release-root", "opt/shop"], "must be an absolute path"),
    (["--release-root", "/opt/my shop"], "must be an absolute path"),
    (["--release-root", "/opt/100%"], "must be an absolute path"),
    (["--release-root", "/opt/../etc"], "must be an absolute path"),
    (["--user", "root"], "every privilege"),
    (["--user", "Web User"], "is not a valid user name"),
    (["--socket", "http://x"], "is not a port or ADDRESS:PORT"),
    (["--socket", "70000"], "is not a port or ADDRESS:PORT"),
    (["--watchdog", "0"], "must be a number of seconds"),
])
def test_unit_options_are_checked_before_writing(shop, args, message):
    proc = twelve("gen.systemd", *args, cwd=shop, check=False)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert not (shop / "rel/systemd").exists()


def test_env_template_is_the_units_environment(shop):
    # The build machine's environment never reaches the template: not even a secret set there.
    twelve("gen.systemd", cwd=shop, env={"SECRET_KEY_BASE": "leaked-" + "x" * 64,
                                         "STATE_DIRECTORY": "/home/builder/state"})
    path = shop / "rel/systemd/shop.env"
    text = path.read_text()
    assert "leaked" not in text and "/home/" not in text
    assert path.stat().st_mode & 0o777 == 0o600
    assert "DATABASE_URL=sqlite:////var/lib/shop/shop.db\n" in text
    assert "#SECRET_KEY_BASE=\n" in text and "#MAIL_FROM=\n" in text
    assert "# STATE_DIRECTORY: set by shop.service (StateDirectory=shop)" in text
    assert "# RELEASE_TMP: set by shop.service (Environment=RELEASE_TMP)" in text
    assert "PORT=4000\n" in text
    # What systemd would read: only uncommented NAME=value lines, none the unit manages.
    assigned = [l.split("=", 1)[0] for l in text.splitlines() if l and not l.startswith("#")]
    assert assigned == ["DATABASE_URL", "PORT", "HOST", "WEB_CONCURRENCY", "TWELVE_ACCESS_LOG",
                        "TWELVE_BOOT_TIMEOUT", "TWELVE_WORKER_TIMEOUT"]


FAKE_RELEASE = """\
#!/bin/sh
[ "$1 $2" = "env --example" ] || exit 2
[ -e "${0%/*}/fail" ] && { echo "error: invalid runtime configuration" >&2; exit 78; }
printf '# STATE_DIRECTORY: path\\nSTATE_DIRECTORY=%s\\n\\n' "$STATE_DIRECTORY"
printf '# FROM_RELEASE: str, default %s\\nFROM_RELEASE=%s\\n' "${SECRET_KEY_BASE:-none}" "$RELEASE_TMP"
"""


def test_env_template_comes_from_the_built_release_when_there_is_one(shop):
    launcher = shop / "_build/prod/rel/shop/bin/shop"
    launcher.parent.mkdir(parents=True)
    launcher.write_text(FAKE_RELEASE)
    launcher.chmod(0o755)
    proc = twelve("gen.systemd", cwd=shop, env={"SECRET_KEY_BASE": "leaked"})
    assert "* environment template from _build/prod/rel/shop/bin/shop env --example" in proc.stdout
    text = (shop / "rel/systemd/shop.env").read_text()
    assert "# FROM_RELEASE: str, default none\nFROM_RELEASE=/run/shop\n" in text
    assert "# STATE_DIRECTORY: set by shop.service (StateDirectory=shop)" in text
    assert "DATABASE_URL" not in text and "leaked" not in text

    (launcher.parent / "fail").touch()
    failing = twelve("gen.systemd", "--force", cwd=shop, check=False)
    assert failing.returncode == 78 and "invalid runtime configuration" in failing.stderr


def test_env_template_of_another_env(shop):
    twelve("gen.systemd", cwd=shop, env={"TWELVE_ENV": "staging"})
    text = (shop / "rel/systemd/shop.env").read_text()
    assert "TWELVE_ENV=staging" in text and "SECRET_KEY_BASE" not in text


def test_a_broken_runtime_config_is_reported_with_exit_78(shop):
    (shop / "config/runtime.py").write_text("from twelve import env\nx = 1 / 0\n")
    proc = twelve("gen.systemd", cwd=shop, check=False)
    assert proc.returncode == 78 and "config/runtime.py:2: ZeroDivisionError" in proc.stderr
    assert not (shop / "rel/systemd").exists()


# -- gen.docker ---------------------------------------------------------------------------------

def parse(path):
    """The Dockerfile's instructions, parsed by BuildKit's own parser (Go, through the
    `dockerfile` package): what `docker build` would read."""
    dockerfile = pytest.importorskip("dockerfile")
    return dockerfile.parse_file(str(path))


def stages(path) -> list[list]:
    """The instructions, split by FROM."""
    result: list[list] = []
    for command in parse(path):
        if command.cmd == "FROM":
            result.append([])
        if result:
            result[-1].append(command)
    return result


def only(stage, cmd):
    found = [c for c in stage if c.cmd == cmd]
    assert len(found) == 1, (cmd, found)
    return found[0]


def test_dockerfile_stages(shop):
    twelve("gen.docker", cwd=shop)
    build, runtime = stages(shop / "Dockerfile")
    assert only(build, "FROM").value == ("python:${PYTHON_VERSION}-slim-${DEBIAN_VERSION}",
                                         "AS", "build")
    release_runs = [c for c in build if c.cmd == "RUN" and "twelve release" in c.value[0]]
    assert len(release_runs) == 1
    assert "TWELVE_ENV=prod twelve release --overwrite --path /release" in release_runs[0].value[0]

    assert only(runtime, "FROM").value == ("debian:${DEBIAN_VERSION}-slim", "AS", "runtime")
    copies = [c for c in runtime if c.cmd in ("COPY", "ADD")]
    assert [(c.flags, c.value) for c in copies] == [(("--from=build",), ("/release", "/app"))], \
        "the runtime stage holds the release and nothing else"
    user = only(runtime, "USER").value[0]
    assert user.split(":")[0] not in ("root", "0") and user.split(":")[0].isdigit()
    assert only(runtime, "STOPSIGNAL").value == ("SIGTERM",)
    health = only(runtime, "HEALTHCHECK")
    assert health.json and health.value[:4] == ("CMD", "/app/python/bin/python3", "-I", "-c")
    assert only(runtime, "CMD").json and only(runtime, "CMD").value == ("/app/bin/shop", "start")
    assert only(runtime, "EXPOSE").value == ("4000",)
    args = {c.value[0].split("=")[0]: c.value[0].split("=")[1]
            for c in parse(shop / "Dockerfile") if c.cmd == "ARG"}
    assert args["PYTHON_VERSION"] == "%d.%d" % sys.version_info[:2]
    assert args["TWELVE_REQUIREMENT"] == '"./rel/docker/twelve-0.1.0-py3-none-any.whl"'


@pytest.mark.parametrize("python", ["3.12", "interpreter"])
def test_dockerfile_builds_on_the_python_the_project_names(python, tmp_path):
    """[tool.twelve] python = "3.12" builds on python:3.12-slim, whatever twelve runs on; a
    path names the version of the interpreter it points at."""
    value = python if python != "interpreter" else sys.executable
    root = write_project(tmp_path / "shop", extra=f"python = {value!r}".replace("'", '"'))
    twelve("gen.docker", cwd=root)
    args = {c.value[0].split("=")[0]: c.value[0].split("=")[1]
            for c in parse(root / "Dockerfile") if c.cmd == "ARG"}
    assert args["PYTHON_VERSION"] == (python if python != "interpreter"
                                      else "%d.%d" % sys.version_info[:2])


def test_dockerfile_without_bundled_python_runs_on_python_slim(tmp_path):
    root = write_project(tmp_path / "shop", extra="include_python = false")
    (root / "package.json").write_text("{}")
    twelve("gen.docker", "--health-path", "/healthz", "--twelve", "twelve==0.1.0", cwd=root)
    build, runtime = stages(root / "Dockerfile")
    assert only(runtime, "FROM").value[0] == "python:${PYTHON_VERSION}-slim-${DEBIAN_VERSION}"
    health = only(runtime, "HEALTHCHECK").value
    assert health[1] == "python3" and "'/healthz'" in health[4]
    assert "nodejs npm" in [c for c in build if c.cmd == "RUN"][0].value[0]
    assert 'ARG TWELVE_REQUIREMENT="twelve==0.1.0"' in (root / "Dockerfile").read_text()


def test_dockerignore_keeps_builds_and_secrets_out(shop):
    proc = twelve("gen.docker", cwd=shop)
    ignored = (shop / ".dockerignore").read_text().splitlines()
    for pattern in ("_build", ".venv", ".git", ".env", "*.env", "node_modules", "rel/systemd"):
        assert pattern in ignored
    assert "rel/docker" not in ignored, "the twelve wheel may be there"
    assert "uv build --wheel --out-dir" in proc.stdout, "says where twelve comes from"


def test_health_path_is_checked(shop):
    proc = twelve("gen.docker", "--health-path", "health'; rm -rf /", cwd=shop, check=False)
    assert proc.returncode == 2 and "must be a URL path starting with /" in proc.stderr
    assert not (shop / "Dockerfile").exists()


def test_healthcheck_is_json_that_python_runs(shop):
    twelve("gen.docker", cwd=shop)
    _build, runtime = stages(shop / "Dockerfile")
    code = only(runtime, "HEALTHCHECK").value[4]
    compile(code, "<healthcheck>", "exec")
    assert json.loads(json.dumps(code)) == code
