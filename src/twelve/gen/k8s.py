"""`twelve gen.k8s`: Kubernetes manifests that run the release's OCI image (``twelve image``).

Writes ``rel/k8s/NAME.yaml``, one file of several documents, from what the project declares:

- a ConfigMap ``NAME-env``: every non-secret variable config/runtime.py reads (what
  ``bin/NAME env`` lists); required ones as empty values to fill in, the others commented out
  with their default (the node uses it when the variable is unset);
- a Secret ``NAME-secrets``: every ``env.secret`` variable and ``RELEASE_COOKIE`` (the control
  channel's cookie), as a template without values: fill it in, or create the Secret with
  ``kubectl create secret generic``;
- a Deployment ``NAME-web``: the image, ``bin/NAME start``; the variables from the ConfigMap and
  the Secret (``envFrom``) and ``PORT``; readiness and liveness probes on the HTTP port (a path
  the user picks, default ``/``); ``terminationGracePeriodSeconds`` above the drain timeout;
  non-root, a read-only root file system with an ``emptyDir`` on ``/tmp`` (``RELEASE_TMP``),
  no capabilities, seccomp ``RuntimeDefault``; resources left to the user, commented;
- a Service ``NAME`` on the HTTP port;
- a Deployment ``NAME-TYPE`` for each process type other than ``web`` (``bin/NAME start TYPE``);
- a Job ``NAME-migrate`` running ``bin/NAME eval "PKG.release.migrate()"`` when the project has
  ``gen.release``'s ``bin/migrate`` overlay (the image has no ``dirname`` for the overlay
  script itself, so the Job runs its ``eval`` directly).

YAML is written as text (JSON-quoted scalars, which YAML reads as they are), so twelve needs no
YAML library; the tests validate it against the Kubernetes schemas and run it with
``podman kube play``.
"""
from __future__ import annotations

import json
import os
import re

from twelve.builder.image import default_port
from twelve.builder.image_base import APP_UID
from twelve.errors import UsageError
from twelve.gen.docker import BAD_HEALTH_PATH, HEALTH_PATH, has_migrate
from twelve.gen.files import Generated
from twelve.project import Project
from twelve.runtime.config import store as runtime_config

DRAIN_TIMEOUT = 30  # graceful_timeout's default (docs/running.md)
GRACE_MARGIN = 15   # the pod's grace period outlasts the drain by this much
COOKIE_VARIABLE = "RELEASE_COOKIE"
MIGRATE_EVAL = re.compile(r'\beval\s+"([^"]+)"')
BAD_IMAGE = "--image {value!r} is not an image reference, e.g. --image registry.example/hello:0.1.0"
BAD_GRACE = "--drain-timeout must be at least 1 second, got {value}"
HEADER = """\
# Kubernetes manifests for {name}, written by `twelve gen.k8s` (docs/containers.md): the
# image is the one `twelve image` writes. Defaults in comments were evaluated on the machine
# that generated this file; in the image HOME is /tmp.
"""
NEXT = """
Deploy:
    skopeo copy oci:_build/prod/{name}-{version}.oci:{version} docker://{image}
    # fill in {path}'s Secret (or create it with kubectl create secret generic {name}-secrets)
    kubectl apply -f {path}
"""


def k8s_files(project: Project, *, image: str, health_path: str, drain_timeout: int,
              env_name: str, build_environ) -> list[Generated]:
    if not HEALTH_PATH.match(health_path):
        raise UsageError(BAD_HEALTH_PATH.format(value=health_path))
    if not image or any(c.isspace() for c in image) or image.startswith("-"):
        raise UsageError(BAD_IMAGE.format(value=image))
    if drain_timeout < 1:
        raise UsageError(BAD_GRACE.format(value=drain_timeout))
    plain, secret = variables(project, env_name, build_environ)
    name = project.name
    documents = [config_map(name, plain), secret_template(name, secret),
                 web_deployment(project, image, health_path, drain_timeout), service(name)]
    documents += [worker_deployment(project, image, kind, drain_timeout)
                  for kind in sorted(project.processes) if kind != "web"]
    migrate = migrate_expression(project)
    if migrate:
        documents.append(migrate_job(name, image, migrate))
    header = HEADER.format(name=name)
    return [Generated(f"rel/k8s/{name}.yaml", header + "---\n".join(documents))]


def variables(project: Project, env_name: str, build_environ):
    """(non-secret, secret) variables the runtime config reads, evaluated here as gen.systemd
    does without a release: every variable, whatever the build machine's environment sets."""
    build_config = runtime_config.evaluate_build_config(project.config_dir, env_name,
                                                        build_environ)
    runtime_py = project.config_dir / "runtime.py"
    rows = runtime_config.describe_environment(
        runtime_py if runtime_py.is_file() else None, build_config, env_name, {},
        server=True, source="config/runtime.py")
    managed = {"PORT", "RELEASE_TMP"}
    plain = [v for v, _ in rows if not v.secret and v.name not in managed]
    secret = [v for v, _ in rows if v.secret]
    return plain, secret


def config_map(name: str, plain) -> str:
    lines = [f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}-env\n"
             f"{_labels(name, None, 2)}data:\n"]
    for variable in plain:
        lines.append(f"  # {_comment(variable)}\n")
        if variable.required:
            lines.append(f"  {variable.name}: \"\"\n")
        else:  # unset, the node uses the default (as evaluated here: see the header)
            lines.append(f"  # {variable.name}: {_q(str(variable.default or ''))}\n")
    if not any(not line.lstrip().startswith("#") for line in lines[1:]):
        lines[0] = lines[0].removesuffix("data:\n") + "data: {}\n"  # only comments: empty
    return "".join(lines)


def secret_template(name: str, secret) -> str:
    lines = [f"# A template: fill in every value (never commit them), or create the Secret with\n"
             f"#   kubectl create secret generic {name}-secrets --from-literal=NAME=VALUE ...\n"
             f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}-secrets\n"
             f"{_labels(name, None, 2)}type: Opaque\nstringData:\n"]
    for variable in secret:
        lines.append(f"  # {_comment(variable)}\n"
                     f"  {variable.name}: \"\"\n")
    lines.append(f"  # the control channel's cookie (bin/{name} rpc, remote, stop from "
                 f"kubectl exec): at least 16 random characters, e.g. `twelve gen.secret`\n"
                 f"  {COOKIE_VARIABLE}: \"\"\n")
    return "".join(lines)


def web_deployment(project: Project, image: str, health_path: str, drain: int) -> str:
    port = default_port()
    probe = (f"httpGet:\n  path: {_q(health_path)}\n  port: http\n")
    container = (f"name: web\nimage: {_q(image)}\nargs: [\"start\"]\n"
                 f"ports:\n- name: http\n  containerPort: {port}\n"
                 f"env:\n- name: PORT\n  value: {_q(str(port))}\n"
                 + _env_and_mounts(project.name)
                 + "readinessProbe:\n" + _indent(probe + "periodSeconds: 5\n", 2)
                 + "livenessProbe:\n"
                 + _indent(probe + "initialDelaySeconds: 10\nperiodSeconds: 20\n"
                           "failureThreshold: 3\n", 2)
                 + _container_security())
    return _deployment(project.name, "web", container, drain)


def worker_deployment(project: Project, image: str, kind: str, drain: int) -> str:
    container = (f"name: {kind}\nimage: {_q(image)}\nargs: [\"start\", {_q(kind)}]\n"
                 + _env_and_mounts(project.name) + _container_security())
    return _deployment(project.name, kind, container, drain)


def _deployment(name: str, component: str, container: str, drain: int) -> str:
    return (f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n"
            f"  name: {name}-{component.replace('_', '-')}\n{_labels(name, component, 2)}"
            f"spec:\n  replicas: 1\n  selector:\n    matchLabels:\n"
            f"{_selector(name, component, 6)}"
            f"  template:\n    metadata:\n{_labels(name, component, 6)}"
            f"    spec:\n"
            f"      # above the node's drain ({drain} s, graceful_timeout): SIGTERM drains, "
            f"SIGKILL comes after this\n"
            f"      terminationGracePeriodSeconds: {drain + GRACE_MARGIN}\n"
            + _indent(_pod_security(), 6)
            + "      containers:\n" + _indent(_as_item(container), 6)
            + "      volumes:\n      - name: tmp\n        emptyDir: {}\n")


def service(name: str) -> str:
    port = default_port()
    return (f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n"
            f"{_labels(name, 'web', 2)}spec:\n  selector:\n{_selector(name, 'web', 4)}"
            f"  ports:\n  - name: http\n    port: {port}\n    targetPort: http\n")


def migrate_job(name: str, image: str, expression: str) -> str:
    container = (f"name: migrate\nimage: {_q(image)}\nargs: [\"eval\", {_q(expression)}]\n"
                 + _env_and_mounts(name) + _container_security())
    return (f"# Run it before rolling out a new version: kubectl apply, then kubectl wait "
            f"--for=condition=complete job/{name}-migrate\n"
            f"apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}-migrate\n"
            f"{_labels(name, 'migrate', 2)}spec:\n  backoffLimit: 0\n  template:\n"
            f"    metadata:\n{_labels(name, 'migrate', 6)}    spec:\n"
            f"      restartPolicy: Never\n" + _indent(_pod_security(), 6)
            + "      containers:\n" + _indent(_as_item(container), 6)
            + "      volumes:\n      - name: tmp\n        emptyDir: {}\n")


def migrate_expression(project: Project) -> str | None:
    """The eval of gen.release's bin/migrate overlay, when the project has one."""
    if not has_migrate(project):
        return None
    for overlay in reversed(project.overlays):  # later overlays override earlier ones
        script = overlay / "bin" / "migrate"
        if script.is_file():
            found = MIGRATE_EVAL.search(script.read_text(errors="replace"))
            return found.group(1) if found else None
    return None


def _env_and_mounts(name: str) -> str:
    return (f"envFrom:\n- configMapRef:\n    name: {name}-env\n"
            f"- secretRef:\n    name: {name}-secrets\n"
            f"volumeMounts:\n- name: tmp\n  mountPath: /tmp  # RELEASE_TMP and HOME\n"
            "# resources: set them for your app, e.g.\n"
            "#   requests: {cpu: 100m, memory: 128Mi}\n"
            "#   limits: {memory: 256Mi}\n")


def _container_security() -> str:
    return ("securityContext:\n  allowPrivilegeEscalation: false\n"
            "  readOnlyRootFilesystem: true\n  capabilities:\n    drop: [\"ALL\"]\n")


def _pod_security() -> str:
    return (f"securityContext:\n  runAsNonRoot: true\n  runAsUser: {APP_UID}\n"
            f"  runAsGroup: {APP_UID}\n  seccompProfile:\n    type: RuntimeDefault\n")


def _labels(name: str, component: str | None, indent: int) -> str:
    pad = " " * indent
    text = f"{pad}labels:\n{pad}  app.kubernetes.io/name: {_q(name)}\n"
    if component:
        text += f"{pad}  app.kubernetes.io/component: {_q(component)}\n"
    return text


def _selector(name: str, component: str, indent: int) -> str:
    pad = " " * indent
    return (f"{pad}app.kubernetes.io/name: {_q(name)}\n"
            f"{pad}app.kubernetes.io/component: {_q(component)}\n")


def _as_item(block: str) -> str:
    lines = block.splitlines(keepends=True)
    return "".join(("- " if i == 0 else "  ") + line for i, line in enumerate(lines))


def _indent(block: str, by: int) -> str:
    return "".join(" " * by + line for line in block.splitlines(keepends=True))


def _q(value: str) -> str:
    return json.dumps(value)


def _comment(variable) -> str:
    """The variable's comment in ``bin/NAME env --example``, on one line."""
    first = runtime_config.format_env_example([(variable, False)]).splitlines()[0]
    return " ".join(first.removeprefix("# ").split())


def next_steps(project: Project, image: str) -> str:
    return NEXT.format(name=project.name, version=project.version, image=image,
                       path=os.path.join("rel", "k8s", f"{project.name}.yaml"))

