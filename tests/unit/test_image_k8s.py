"""gen.k8s without a cluster: what the manifests hold, checked against the Kubernetes schemas.
(Run with `podman kube play` in tests/integration/test_image.py.)"""
from __future__ import annotations

import pytest
import yaml
from kubernetes_validate import validate

from conftest import twelve
from test_gen import write_project
from test_gen_units import RUNTIME_PY

MIGRATE = '#!/bin/sh\nexec "$(dirname -- "$0")/shop" eval "shop.release.migrate()"\n'


@pytest.fixture
def shop(tmp_path):
    root = write_project(tmp_path / "shop", extra='[tool.twelve.processes]\n'
                                                  'mailer = "shop.mail:main"\n')
    (root / "config").mkdir()
    (root / "config" / "runtime.py").write_text(RUNTIME_PY)
    overlay = root / "rel" / "overlays" / "bin"
    overlay.mkdir(parents=True)
    (overlay / "migrate").write_text(MIGRATE)
    return root


def documents(root) -> list[dict]:
    return list(yaml.safe_load_all((root / "rel" / "k8s" / "shop.yaml").read_text()))


def test_manifests_validate_and_hold_what_the_project_declares(shop):
    out = twelve("gen.k8s", "--image", "registry.example/shop:1.0", "--health-path", "/up",
                 cwd=shop, env={"TWELVE_ENV": "prod", "SECRET_KEY_BASE": "x" * 70})
    assert "* creating rel/k8s/shop.yaml" in out.stdout
    docs = documents(shop)
    for doc in docs:
        validate(doc, "1.30", strict=True)
    by_name = {d["metadata"]["name"]: d for d in docs}
    assert set(by_name) == {"shop-env", "shop-secrets", "shop-web", "shop", "shop-mailer",
                            "shop-migrate"}
    config = by_name["shop-env"]["data"]
    assert config == {"MAIL_FROM": ""}  # required, not secret; defaults stay commented
    assert by_name["shop-secrets"]["stringData"] == {"SECRET_KEY_BASE": "",
                                                     "RELEASE_COOKIE": ""}
    web = by_name["shop-web"]["spec"]["template"]["spec"]
    assert web["terminationGracePeriodSeconds"] == 45
    assert web["securityContext"] == {"runAsNonRoot": True, "runAsUser": 65532,
                                      "runAsGroup": 65532,
                                      "seccompProfile": {"type": "RuntimeDefault"}}
    container = web["containers"][0]
    assert container["image"] == "registry.example/shop:1.0"
    assert container["readinessProbe"]["httpGet"] == {"path": "/up", "port": "http"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert web["volumes"] == [{"name": "tmp", "emptyDir": {}}]
    mailer = by_name["shop-mailer"]["spec"]["template"]["spec"]["containers"][0]
    assert mailer["args"] == ["start", "mailer"]
    job = by_name["shop-migrate"]["spec"]["template"]["spec"]["containers"][0]
    assert job["args"] == ["eval", "shop.release.migrate()"]
    assert "x" * 70 not in (shop / "rel" / "k8s" / "shop.yaml").read_text()


def test_no_migrate_overlay_no_job_and_a_longer_drain(shop):
    (shop / "rel" / "overlays" / "bin" / "migrate").unlink()
    twelve("gen.k8s", "--drain-timeout", "60", cwd=shop, env={"TWELVE_ENV": "prod"})
    docs = documents(shop)
    assert "Job" not in {d["kind"] for d in docs}
    web = next(d for d in docs if d["metadata"]["name"] == "shop-web")
    assert web["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 75
    assert web["spec"]["template"]["spec"]["containers"][0]["image"] == "shop:0.1.0"


@pytest.mark.parametrize("args, message", [
    (["--health-path", "up"], "--health-path 'up' must be a URL path"),
    (["--image", "two words"], "--image 'two words' is not an image reference"),
    (["--drain-timeout", "0"], "--drain-timeout must be at least 1 second"),
])
def test_bad_options_exit_2(shop, args, message):
    proc = twelve("gen.k8s", *args, cwd=shop, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr
