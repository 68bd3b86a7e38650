"""Application configuration at its three times, as in ``mix release``:

* build: ``config/config.py`` then ``config/<env>.py``, frozen to ``build_config.json``;
* boot: ``config/runtime.py`` over the build config, at every start of the release;
* development: both, lazily, the first time app code calls ``get_env`` without twelve booting.

Owns the config store (app name → settings dict), the API config files and app code use
(``config``, ``config_env``, ``get_env``; ``env`` comes from ``twelve.runtime.config.env``), the
evaluation of config files, and the listing of the environment an app declares
(``bin/NAME env``). Evaluations take the environment as a mapping; only the development fallback
reads ``os.environ``. Standard library only: this module ships in every release.
"""
from __future__ import annotations

import builtins
import os

from twelve.runtime.config.env import (ConfigError, Problem, Recorder, Variable, env, is_set,
                                       runtime_footer)

__all__ = ["config", "config_env", "get_env", "env", "ConfigError", "Problem", "Variable",
           "evaluate_build_config", "evaluate_runtime_config", "describe_environment",
           "format_environment", "format_env_example"]

DEFAULT_ENV = "dev"
FROZEN_TYPES = "str, int, float, bool, None, list and dict with string keys"
NOT_FROZEN = "{label}: {where} is {what}, which cannot be frozen into build_config.json"
NOT_FROZEN_HINT = ("Build-time configuration must be plain data ({types}). Compute other values "
                   "in config/runtime.py, which runs at every boot.")
BAD_ENV_NAME = "invalid environment name {name!r}: expected a name such as dev or prod"


class _Evaluation:
    """One run of config files: the store they write to, the env name, what they read."""

    def __init__(self, store: dict, env_name: str, environ) -> None:
        self.store = store
        self.env_name = env_name
        self.recorder = Recorder(environ)
        self._previous = None

    def __enter__(self) -> _Evaluation:
        global _current
        self._previous, _current = _current, self
        self.recorder.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        global _current
        self.recorder.__exit__(*exc_info)
        _current, self._previous = self._previous, None


_current: _Evaluation | None = None  # the evaluation in progress, if any
_installed: dict | None = None  # the store of the last runtime evaluation in this process
_installed_env: str | None = None


def config(app: str, **values) -> None:
    """Deep-merge ``values`` into the settings of ``app``: dicts merge, anything else replaces."""
    if not isinstance(app, str):
        raise TypeError(f"config() takes the app name first, e.g. config('web', ...), "
                        f"not {type(app).__name__}")
    _deep_merge(_active_store().setdefault(app, {}), values)


def config_env() -> str:
    """The environment name ("dev", "prod", ...) the configuration is evaluated for."""
    if _current is not None:
        return _current.env_name
    if _installed_env is not None:
        return _installed_env
    return os.environ.get("TWELVE_ENV") or DEFAULT_ENV


def get_env(app: str, key: str | None = None, default=None):
    """One setting of ``app``, or (``key=None``) a copy of all its settings, else ``default``."""
    settings = _active_store().get(app)
    if settings is None:
        return default
    if key is None:
        return _copied(settings)
    return settings.get(key, default)


_ATOMS = (str, int, float, bool, type(None))


def _copied(value):
    """A deep copy; the config's dicts, lists and scalars without the copy module, whose
    import (weakref, copyreg, types) would cost every eval."""
    if type(value) is dict:
        return {key: _copied(item) for key, item in value.items()}
    if type(value) is list:
        return [_copied(item) for item in value]
    if isinstance(value, _ATOMS):
        return value
    import copy

    return copy.deepcopy(value)


def _deep_merge(target: dict, values: dict) -> None:
    for key, value in values.items():
        if isinstance(value, dict):
            if not isinstance(target.get(key), dict):
                target[key] = {}
            # Merge into a fresh dict so later changes to the caller's dict do not leak in.
            _deep_merge(target[key], value)
        else:
            target[key] = value


def _active_store() -> dict:
    if _current is not None:
        return _current.store
    if _installed is None:
        _load_development_config()
    return _installed


def _install(store: dict, env_name: str) -> None:
    global _installed, _installed_env
    _installed, _installed_env = store, env_name


def _load_development_config() -> None:
    """Development: the app was imported without twelve booting (``flask run``); evaluate
    ./config as a release would, in the env named by TWELVE_ENV."""
    env_name = os.environ.get("TWELVE_ENV") or DEFAULT_ENV
    config_dir = os.path.join(os.getcwd(), "config")
    build = evaluate_build_config(config_dir, env_name, os.environ)
    evaluate_runtime_config(os.path.join(config_dir, "runtime.py"), build, env_name,
                            os.environ, source="config/runtime.py")


def evaluate_build_config(config_dir, env_name: str, environ) -> dict:
    """Run config.py then <env_name>.py from ``config_dir`` (each if present); return the merged
    settings as plain JSON data, ready for build_config.json. Raises ConfigError."""
    if not env_name or not env_name.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(BAD_ENV_NAME.format(name=env_name), stage="build")
    config_dir = os.fspath(config_dir)
    names = ["config.py"] + ([f"{env_name}.py"] if env_name != "config" else [])
    files = [(os.path.join(config_dir, name), f"{os.path.basename(config_dir)}/{name}")
             for name in names if os.path.isfile(os.path.join(config_dir, name))]
    source = ", ".join(label for _, label in files) or os.path.basename(config_dir)
    evaluation, crash = _Evaluation({}, env_name, environ), None
    with evaluation:
        for path, label in files:
            crash = _run_file(path, label, evaluation.recorder)
            if crash is not None:
                break
            _check_freezable(evaluation.store, label)
    _raise_failure(evaluation.recorder, crash, source, "build")
    import json

    # The round trip makes development see what a release sees (tuples become lists).
    return json.loads(json.dumps(evaluation.store))


def evaluate_runtime_config(runtime_py, build_config: dict, env_name: str, environ, *,
                            server: bool = False, source: str = "config/runtime.py",
                            web_servers: tuple[str, ...] = ()) -> dict:
    """Evaluate ``runtime_py`` (if any) over a copy of ``build_config``; with ``server``, also
    read PORT, HOST, WEB_CONCURRENCY and (when ``web_servers`` names the release's default
    server first, then the others it ships) TWELVE_SERVER, unless the config set them under
    "twelve". Installs the result as the active configuration of this process and returns it.
    Raises ConfigError."""
    evaluation, crash = _evaluate_runtime(runtime_py, build_config, env_name, environ,
                                          server, source, web_servers)
    _raise_failure(evaluation.recorder, crash, source, "runtime")
    _install(evaluation.store, env_name)
    return evaluation.store


def _evaluate_runtime(runtime_py, build_config, env_name, environ, server, source,
                      web_servers=()):
    evaluation, crash = _Evaluation(_copied(build_config), env_name, environ), None
    with evaluation:
        if runtime_py is not None and os.path.isfile(runtime_py):
            crash = _run_file(os.fspath(runtime_py), source, evaluation.recorder)
        if server:
            _read_server_settings(evaluation.store, web_servers)
    return evaluation, crash


def _read_server_settings(store: dict, web_servers: tuple[str, ...] = ()) -> None:
    """The 12-factor server settings (twelve.runtime.config.server), read through the same
    readers so their problems are listed with the app's."""
    from twelve.runtime.config.server import read_server_settings

    read_server_settings(store.setdefault("twelve", {}), web_servers)


def _raise_failure(recorder: Recorder, crash: ConfigError | None, source: str,
                   stage: str) -> None:
    # Problems come first: an exception after a missing variable is most likely its consequence.
    if recorder.problems:
        hint = None
        if stage == "runtime":
            variables = recorder.variables
            hint = runtime_footer(
                name for name in recorder.problems
                if name in variables and variables[name].secret)
        raise ConfigError(problems=recorder.problems.values(), source=source, stage=stage,
                          hint=hint)
    if crash is not None:
        raise crash


def _run_file(path: str, label: str, recorder: Recorder) -> ConfigError | None:
    """Execute one config file in a fresh namespace (as runpy.run_path would, without its
    imports); an exception becomes a ConfigError naming the file and line, returned."""
    try:
        with open(path, "rb") as file:
            source = file.read()
    except OSError as exc:
        return ConfigError(f"cannot read {label}: {exc.strerror}")
    namespace = {"__name__": "__twelve_config__", "__file__": path, "__builtins__": builtins}
    try:
        exec(compile(source, path, "exec", dont_inherit=True), namespace)
    except Exception as exc:  # noqa: BLE001 - any failure of user code is reported, not raised
        return _describe_crash(exc, path, label, source, recorder)
    return None


def _describe_crash(exc: Exception, path: str, label: str, source: bytes,
                    recorder: Recorder) -> ConfigError:
    if isinstance(exc, SyntaxError) and exc.filename == path:
        line, text = exc.lineno, exc.msg
    else:
        line, text = _line_in(exc, path), str(exc)
    # The message may quote a secret the file read (int(env.secret(...)) fails with the value).
    text = recorder.scrub(text)
    where = f"{label}:{line}" if line else label
    message = f"{where}: {type(exc).__name__}" + (f": {text}" if text else "")
    code = source.decode("utf-8", "replace").splitlines()
    hint = f"  {line} | {code[line - 1].strip()}" if line and line <= len(code) else None
    return ConfigError(message, source=label, hint=hint)


def _line_in(exc: BaseException, path: str) -> int | None:
    """The line of the innermost frame that belongs to the config file itself."""
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _check_freezable(store: dict, label: str) -> None:
    for app, settings in store.items():
        found = _unfreezable(settings, app)
        if found is not None:
            where, what = found
            raise ConfigError(NOT_FROZEN.format(label=label, where=where, what=what),
                              source=label, stage="build",
                              hint=NOT_FROZEN_HINT.format(types=FROZEN_TYPES))


def _unfreezable(value, where: str):
    """(dotted path, description) of the first value JSON cannot hold as it is, or None."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return None
    if isinstance(value, (list, tuple)):
        items = ((f"{where}[{index}]", item) for index, item in enumerate(value))
    elif isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                return where, f"a dict with the non-string key {key!r}"
        items = ((f"{where}.{key}", item) for key, item in value.items())
    else:
        kind = type(value)
        return where, f"a {kind.__module__}.{kind.__qualname__}".replace("builtins.", "")
    for item_where, item in items:
        found = _unfreezable(item, item_where)
        if found is not None:
            return found
    return None


def describe_environment(runtime_py, build_config: dict, env_name: str, environ, *,
                         server: bool = True, source: str = "config/runtime.py",
                         web_servers: tuple[str, ...] = ()) -> list[tuple[Variable, bool]]:
    """Every variable the runtime config reads, and whether ``environ`` sets it, for
    ``bin/NAME env``. Problems with values do not fail; a broken runtime.py still does."""
    evaluation, crash = _evaluate_runtime(runtime_py, build_config, env_name, environ,
                                          server, source, web_servers)
    if crash is not None and not evaluation.recorder.problems:
        raise crash
    return [(variable, is_set(environ, variable.name))
            for variable in evaluation.recorder.variables.values()]


def _default_column(variable: Variable) -> str:
    if variable.secret or variable.required or variable.default is None:
        return "-"
    text = repr(variable.default) if variable.default == "" else variable.default
    return text if len(text) <= 40 else text[:37] + "..."


def format_environment(rows, sources=None) -> str:
    """A table of the declared environment: NAME TYPE DEFAULT REQUIRED SECRET SET FROM, where
    FROM says where the value comes from: the environment, an env file (``sources`` maps
    such names to "env file"), the default, or nowhere ("-")."""
    sources = sources or {}
    table = [("NAME", "TYPE", "DEFAULT", "REQUIRED", "SECRET", "SET", "FROM")]
    for variable, present in rows:
        if present:
            origin = sources.get(variable.name, "environment")
        else:
            origin = "-" if variable.required or variable.default is None else "default"
        table.append((variable.name, variable.type, _default_column(variable),
                      _yes(variable.required), _yes(variable.secret), _yes(present), origin))
    if len(table) == 1:
        return "No environment variables are declared."
    widths = [max(len(row[column]) for row in table) for column in range(len(table[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                     for row in table)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def format_env_example(rows) -> str:
    """An EnvironmentFile template: a comment per variable, then NAME=default, or #NAME= for a
    variable without a default and for every secret (whose value is never written)."""
    blocks = []
    for variable, _present in rows:
        blocks.append(f"# {_comment(variable)}")
        if variable.secret or variable.required or variable.default is None:
            blocks.append(f"#{variable.name}=\n")
        else:
            blocks.append(f"{variable.name}={_quoted(variable.default)}\n")
    return "\n".join(blocks)


def _comment(variable: Variable) -> str:
    parts = [variable.type]
    if variable.required:
        parts.append("required")
    elif variable.secret or variable.default is None:
        parts.append("optional")
    else:
        parts.append(f"default {variable.default}")
    if variable.choices:
        parts.append(f"one of: {', '.join(map(str, variable.choices))}")
    if variable.min_length:
        parts.append(f"at least {variable.min_length} characters")
    text = f"{variable.name}: {', '.join(parts)}"
    if variable.help:
        text += f" - {' '.join(variable.help.split())}"
    if variable.required:
        text += f"; e.g. {variable.example}"
    return text


def _quoted(value: str) -> str:
    # systemd's EnvironmentFile and sh both read single quotes verbatim.
    if value and not any(c.isspace() or c in "'\"\\$`#;&|<>()" for c in value):
        return value
    if "'" not in value:
        return f"'{value}'"
    return '"' + "".join("\\" + c if c in '"\\$`' else c for c in value) + '"'
