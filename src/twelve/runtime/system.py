"""A configured system: loading the runtime config, the app and the server, for start, eval,
check and env. The config is always evaluated before any app code is imported.

Once the app is imported, a prod release whose Django settings have ``DEBUG = True`` (the
development settings of a split settings package, say) is reported on stderr. Django is looked
at only when the app already imported it and configured its settings: the runtime never
imports Django itself.
"""
from __future__ import annotations

import os
import sys

from twelve.runtime import jsonc
from twelve.runtime.config import store as runtime_config
from twelve.runtime.errors import ERROR, OK, BootError

DJANGO_DEBUG = ("warning: the Django settings {module} have DEBUG = True in a prod release: "
                "error pages show tracebacks and settings to every visitor, and every SQL "
                "query is kept in memory")
DJANGO_DEBUG_HINT = ("  Point DJANGO_SETTINGS_MODULE at the production settings, or read DEBUG "
                     "from the runtime config (docs/django.md).")


def config_inputs(release):
    """(releases/VSN/runtime.py or None, the frozen build config)."""
    vdir = release.version_dir
    runtime_py = os.path.join(vdir, "runtime.py")
    with open(os.path.join(vdir, "build_config.json"), "rb") as f:
        build_config = jsonc.loads(f.read())
    return (runtime_py if os.path.isfile(runtime_py) else None), build_config


def web_servers(release) -> tuple[str, ...]:
    """The release's default server first, then every other server it ships."""
    from twelve.runtime.servers import SERVERS

    shipped = {p["name"].lower() for p in release.manifest.get("packages", [])}
    default = release.manifest["server"]
    others = [name for name, (_, package) in SERVERS.items()
              if name != default and package in shipped]
    return (default, *others)


def load_config(release, *, server: bool) -> dict:
    """Evaluate releases/VSN/runtime.py over the frozen build config (ConfigError → 78)."""
    runtime_py, build_config = config_inputs(release)
    return runtime_config.evaluate_runtime_config(
        runtime_py, build_config, release.manifest["env"], release.environ, server=server,
        source=f"releases/{release.vsn}/runtime.py",
        web_servers=web_servers(release) if server else ())


def load_app(ref: str):
    """Import "module:attr" or call "module:factory()"; a failure is a BootError."""
    import importlib

    module_name, _, attr = ref.partition(":")
    factory = attr.endswith("()")
    attr = attr.removesuffix("()")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and module_name.startswith(e.name):
            raise BootError(f"the app module {module_name!r} is not in the release ({ref})",
                            hint="Check tool.twelve.app in pyproject.toml.") from None
        raise _import_failure(ref) from None
    except Exception:
        raise _import_failure(ref) from None
    target = module
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise BootError(f"{module_name} has no attribute {attr!r} ({ref})",
                            hint="Check tool.twelve.app in pyproject.toml.")
    if factory:
        try:
            target = target()
        except Exception:
            raise _import_failure(ref, "creating") from None
    warn_django_debug()
    return target


def warn_django_debug() -> None:
    """Report DEBUG = True of the Django settings the app configured, in a prod release."""
    conf = sys.modules.get("django.conf")
    if conf is None or runtime_config.config_env() != "prod":
        return
    try:
        settings = conf.settings
        if not settings.configured or settings.DEBUG is not True:
            return
        module = getattr(settings, "SETTINGS_MODULE", None) or "(configured in code)"
    except Exception:  # a warning never stops a boot the app itself survived
        return
    sys.stderr.write(DJANGO_DEBUG.format(module=module) + "\n" + DJANGO_DEBUG_HINT + "\n")
    sys.stderr.flush()


def _import_failure(ref: str, doing: str = "importing") -> BootError:
    exc_type, exc, tb = sys.exc_info()
    import traceback  # only on a failure: eval and rpc start faster

    frames = [f for f in traceback.extract_tb(tb) if "importlib" not in f.filename]
    trace = "".join(traceback.format_list(frames)).rstrip()
    return BootError(f"{doing} the app {ref} failed: {exc_type.__name__}: {exc}",
                     hint="Traceback (most recent call last):\n" + trace)


def evaluate(release, code: str, args: list[str]) -> int:
    """Run code in a configured system whose app is not started; like `python -c`."""
    from twelve.runtime import evaluation

    load_config(release, server=False)
    sys.argv = ["-c", *args]
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        evaluation.run(code, namespace)
    except SystemExit:
        raise
    except BaseException as e:
        sys.stderr.write(evaluation.format_user_traceback(e, "<eval>"))
        return ERROR
    return OK


def app_ref(release, server) -> str:
    """The app reference ``server`` serves: of an app table {wsgi, asgi}, the interface the
    server serves (in its order of preference); else the one app of the release."""
    apps = release.manifest.get("apps") or {}
    return next((apps[k] for k in server.interfaces if k in apps), release.manifest["app"])


def process_target(release, process: str) -> str:
    """What a process type runs: "server" (the web server) or a "module:function"."""
    targets = release.manifest.get("processes", {"web": "server"})
    if process not in targets:
        raise BootError(f"unknown process type {process!r}; this release defines: "
                        f"{', '.join(sorted(targets))}")
    return targets[process]


def check(release, process: str = "web") -> str:
    """Load the config and import what the process type runs, without running it."""
    from twelve.runtime import servers

    target = process_target(release, process)
    cfg = load_config(release, server=process == "web")
    if target != "server":
        load_app(target)
        return f"ok: {release.name} {release.vsn}: config loaded, {process} = {target} imported"
    server = servers.get(cfg["twelve"]["server"])
    ref = app_ref(release, server)
    kind = servers.check_interface(server, load_app(ref), ref)
    return (f"ok: {release.name} {release.vsn}: config loaded, app {ref} ({kind.upper()}) "
            f"imported, server {server.name}")


ENV_NAME_LINE = "config_env(): {env} (TWELVE_ENV when the release was built)"
ENV_FILE_LINE = "env file: {path} (the environment wins over it)"


def describe_env(release, *, example: bool) -> str:
    runtime_py, build_config = config_inputs(release)
    rows = runtime_config.describe_environment(
        runtime_py, build_config, release.manifest["env"], release.environ, server=True,
        web_servers=web_servers(release))
    if example:
        return runtime_config.format_env_example(rows)
    from twelve.runtime.config.envfile import ENV_FILE, value_sources

    lines = [runtime_config.format_environment(rows, value_sources(release.environ)),
             ENV_NAME_LINE.format(env=release.manifest["env"])]
    if release.environ.get(ENV_FILE):
        lines.append(ENV_FILE_LINE.format(path=release.environ[ENV_FILE]))
    return "\n".join(lines)
