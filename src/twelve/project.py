"""pyproject.toml → one validated, frozen ``Project``.

This module owns the meaning of ``[tool.twelve]``: every key is declared once in ``SETTINGS``
(name, type, default, help), and validation, defaults and the documentation table in
docs/configuration.md all come from that declaration. Nothing else reads pyproject.toml.
All problems found are reported together in one ``ProjectError`` (exit 2).
"""
from __future__ import annotations

import difflib
import os
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from twelve.errors import ProjectError
from twelve.runtime.servers import SERVERS as SERVER_TABLE

RELEASE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# "package.module:attr" or "package.module:factory()" — the factory is called with no arguments.
APP_REF = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(\(\))?$")
CALLABLE_REF = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
SERVERS = tuple(SERVER_TABLE)
# Which distribution provides each server, to check the project depends on it.
SERVER_PACKAGES = {name: package for name, (_, package) in SERVER_TABLE.items()}
# Without `server`, the framework the project depends on says WSGI or ASGI, and the first of
# these servers the project also depends on serves it.
ASGI_FRAMEWORKS = ("fastapi", "starlette", "quart", "litestar", "sanic")
PREFERRED = {"wsgi": ("gunicorn", "waitress", "granian", "hypercorn"),
             "asgi": ("uvicorn", "granian", "hypercorn")}
STEPS = ("assemble", "tar", "image")
DEFAULT_OVERLAY = "rel/overlays"  # like mix's rel/overlays: always copied first
INTERFACES = ("wsgi", "asgi")
NO_SERVER = ("no server: the release depends on none of " + ", ".join(SERVERS) + "; add one "
             "to [project].dependencies (e.g. \"gunicorn>=22\" for WSGI, \"uvicorn>=0.30\" "
             "for ASGI), or, for an app you wrap without editing its dependencies, to a "
             "dependency group the release includes: [dependency-groups] release = "
             "[\"gunicorn>=22\"] and tool.twelve.groups = [\"release\"]")
DOTTED_KEY = re.compile(r"^[^.\s]+(\.[^.\s]+)+$")  # app.key, app.table.key


@dataclass(frozen=True)
class Setting:
    """One key of ``[tool.twelve]``: its type, default and the help shown in the docs."""

    key: str
    kind: str  # "str" | "bool" | "int" | "list[str]" | "str|list[str]" | "table" | "str|table"
    default: Any
    help: str
    check: Callable[[Any], str | None] | None = None  # returns a problem or None


def _check_app(value: str | dict) -> str | None:
    refs = value.values() if isinstance(value, dict) else [value]
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(INTERFACES))
        if unknown or not value:
            return (f"an app table takes the keys wsgi and asgi (one or both), got "
                    f"{', '.join(unknown) or 'none'}; e.g. app = {{ wsgi = "
                    "\"site.wsgi:application\", asgi = \"site.asgi:application\" }")
    for ref in refs:
        if not isinstance(ref, str) or not APP_REF.match(ref):
            return (f"{ref!r} is not an app reference; use \"module:attr\" or "
                    "\"module:factory()\", e.g. app = \"hello.web:app\" or "
                    "app = \"hello.web:create_app()\"")
    return None


def _check_python(value: str) -> str | None:
    if re.match(r"^3\.\d+$", value) or "/" in value:
        return None
    return (f"{value!r} is neither a version X.Y nor a path; e.g. python = \"3.12\" or "
            "python = \"/usr/bin/python3.12\"")


def _check_server(value: str) -> str | None:
    if value in SERVERS:
        return None
    return f"unknown server {value!r}; allowed: {', '.join(SERVERS)}"


def _check_name(value: str) -> str | None:
    if RELEASE_NAME.match(value):
        return None
    return (f"invalid release name {value!r}: it must match ^[a-z][a-z0-9_]*$ "
            f"(lowercase letters, digits and _, starting with a letter), e.g. "
            f"name = \"{_suggest_name(value)}\"")


def check_steps(steps: list[str], aliases: dict) -> str | None:
    """mix's rules: assemble exactly once, tar at most once and after it (and image, the OCI
    image, likewise: tar and image come last, in either order); the others are
    aliases (run before assemble) or "module:function" callables (receive, return the release)."""
    unknown = [s for s in steps if s not in STEPS and s not in aliases
               and not CALLABLE_REF.match(s)]
    if unknown:
        return (f"unknown step {unknown[0]!r}; a step is \"assemble\", \"tar\", \"image\", "
                "an alias from [tool.twelve.aliases] or a \"module:function\" that receives and "
                "returns the release")
    if steps.count("assemble") != 1:
        return "the steps must contain \"assemble\" exactly once"
    if steps.count("tar") > 1:
        return "the steps may contain \"tar\" at most once"
    if "tar" in steps and steps.index("tar") < steps.index("assemble"):
        return "\"tar\" must come after \"assemble\" in the steps"
    if steps.count("image") > 1:
        return "the steps may contain \"image\" at most once"
    if "image" in steps and steps.index("image") < steps.index("assemble"):
        return "\"image\" must come after \"assemble\" in the steps"
    for artifact in ("tar", "image"):  # only the other artifact may follow one
        later = [s for s in steps[steps.index(artifact) + 1:]
                 if s not in ("tar", "image")] if artifact in steps else []
        if later:
            return (f"\"{artifact}\" must be the last step: {later[0]!r} after it would "
                    f"change the release but not its {'tarball' if artifact == 'tar' else 'image'}")
    late = [s for s in steps[steps.index("assemble"):] if s in aliases]
    if late:
        return (f"the alias step {late[0]!r} must come before \"assemble\" (aliases build "
                "files that go into the release, e.g. assets)")
    return None


def _check_processes(value: dict) -> str | None:
    for name, target in value.items():
        if not RELEASE_NAME.match(name):
            return f"process type {name!r} must match ^[a-z][a-z0-9_]*$ (e.g. worker)"
        if not isinstance(target, str) or not (target == "server" and name == "web"
                                                or CALLABLE_REF.match(target)):
            return (f"process {name!r} = {target!r}: use \"module:function\" (e.g. "
                    "worker = \"hello.worker:main\"); only web may be \"server\"")
    return None


def _check_aliases(value: dict) -> str | None:
    for name, commands in value.items():
        if not re.match(r"^[a-z][a-z0-9_.:-]*$", name):
            return f"alias name {name!r} must match ^[a-z][a-z0-9_.:-]*$ (e.g. assets.deploy)"
        if isinstance(commands, str):
            continue
        if not isinstance(commands, list) or not all(isinstance(c, str) for c in commands):
            return f"alias {name!r} must be a command string or a list of command strings"
    return None


def _check_secret_guard_allow(value: list[str]) -> str | None:
    for key in value:
        if not DOTTED_KEY.match(key):
            return (f"{key!r} is not a dotted build config key; name the app and the key, "
                    "e.g. secret_guard_allow = [\"hello.signing_salt\"]")
    return None


# Standard library modules a server does not need, left out of every release unless
# keep_stdlib names them (the builder's interpreter module prunes them; each saves the bytes
# said). What no release can use (tkinter without Tk, the test suites) is pruned for good.
OPTIONAL_STDLIB: dict[str, str] = {
    "ensurepip": "bundled pip and setuptools wheels (~3 MB): keep for `python -m venv` with pip",
    "idlelib": "the IDLE editor, a Tk GUI (~2 MB)",
    "lib2to3": "the Python 2 to 3 converter, deprecated (~1 MB); a few old tools import it",
    "pydoc_data": "the topics of help('keyword') (~0.7 MB); help() on objects works without",
    "turtledemo": "turtle graphics demos",
    "turtle": "turtle graphics (needs Tk)",
}


def _check_keep_sources(value: list[str]) -> str | None:
    bad = [name for name in value if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", name)]
    if bad:
        return (f"{bad[0]!r} is not a distribution name; name it as the lock does, e.g. "
                "keep_sources = [\"numba\"]")
    return None


def _check_optimize(value: int) -> str | None:
    if value not in (0, 1, 2):
        return (f"{value} is not an optimization level; it is 0 (the default), 1 (python -O) "
                "or 2 (python -OO)")
    return None


def _check_keep_stdlib(value: list[str]) -> str | None:
    for name in value:
        if name not in OPTIONAL_STDLIB:
            close = difflib.get_close_matches(name, list(OPTIONAL_STDLIB), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            return (f"{name!r} is not a module twelve leaves out; {hint}it can keep "
                    + ", ".join(OPTIONAL_STDLIB) + " (every other module is always shipped)")
    return None


SETTINGS: tuple[Setting, ...] = (
    Setting("app", "str|table", None, "The WSGI or ASGI application: \"module:attr\" or "
            "\"module:factory()\"; or a table { wsgi = …, asgi = … } when the app has both "
            "(Django), so any server can serve it. Required.", _check_app),
    Setting("name", "str", None, "The release name (default: the project name with - and . "
            "turned into _). Must match ^[a-z][a-z0-9_]*$.", _check_name),
    Setting("server", "str", None, "The HTTP server: " + ", ".join(SERVERS) + ". Default: "
            "for an ASGI framework (FastAPI, Starlette, …) the first of uvicorn, granian, "
            "hypercorn the project depends on; otherwise of gunicorn, waitress, granian, "
            "hypercorn.", _check_server),
    Setting("python", "str", None, "The Python the release is built for and bundles: a "
            "version \"3.12\" (an installed one: uv-managed, pyenv's, or python3.12 on PATH; "
            "never downloaded) or an interpreter's path. Default: the one twelve runs on. "
            "[project] requires-python must allow it.", _check_python),
    Setting("include_python", "bool", True, "Bundle the build interpreter (see python) into "
            "the release (like mix's include_erts). false uses python3 from the target's PATH, "
            "which must be the same X.Y."),
    Setting("steps", "list[str]", ["assemble"], "The build steps, in order: \"assemble\" "
            "exactly once, \"tar\" (the tarball) and \"image\" (the OCI image, "
            "docs/containers.md) at most once each and last, aliases (before assemble) and "
            "\"module:function\" callables (given the release, returning it; after assemble "
            "they may change release.staging, and the manifest follows)."),
    Setting("overlays", "str|list[str]", [], "More directories copied verbatim into the "
            "release root, after rel/overlays (always first, when it exists); later ones "
            "override earlier ones, file by file."),
    Setting("env_sh", "str", "rel/env.sh", "Shell script sourced by bin/NAME before boot "
            "(copied to releases/VSN/env.sh)."),
    Setting("config_dir", "str", "config", "Where config.py, ENV.py and runtime.py live."),
    Setting("static_dir", "str", "static", "The static files `twelve digest` fingerprints "
            "(relative to the project root)."),
    Setting("strip", "bool", True, "Ship what a server runs, not what a reader reads: the "
            "standard library as .pyc without docstrings in python/lib/pythonXY.zip, the "
            "dependencies as .pyc without their .py sources, test suites (tests/) or stubs "
            "(.pyi, .pyx, .pxd), and their ELF files without debug info (like mix's "
            "strip_beams). The app's own modules always keep their sources, so its tracebacks "
            "show the lines. false ships everything as installed.", None),
    Setting("keep_sources", "list[str]", [], "Distributions (names as in the lock, e.g. "
            "\"numba\") shipped exactly as installed under strip = true: sources, tests and "
            "stubs. For a package that reads its own source at run time "
            "(inspect.getsource: numba's @jit, torch.jit.script).", _check_keep_sources),
    Setting("optimize", "int", 0, "The bytecode optimization level of the dependencies under "
            "strip = true, as python -O and -OO apply it: 1 removes their assert statements "
            "and `if __debug__:` blocks, 2 their docstrings as well (the benchmark's reference "
            "app: a release 3.5 MB and a tarball 1.0 MB smaller). Default 0: they run as they "
            "were tested. The app's own code and keep_sources packages are never optimized.",
            _check_optimize),
    Setting("keep_stdlib", "list[str]", [], "Standard library modules the release keeps "
            "although twelve leaves them out by default (" + ", ".join(
                OPTIONAL_STDLIB) + "), e.g. keep_stdlib = [\"lib2to3\"].", _check_keep_stdlib),
    Setting("processes", "table", {"web": "server"}, "[tool.twelve.processes]: process types "
            "for `bin/NAME start TYPE`; web = \"server\" is the HTTP server, others are "
            "\"module:function\".", _check_processes),
    Setting("aliases", "table", {}, "[tool.twelve.aliases]: named command lists for "
            "`twelve run NAME`, usable as steps.", _check_aliases),
    Setting("groups", "list[str]", [], "PEP 735 [dependency-groups] the release includes "
            "besides [project].dependencies, resolved and locked with them: a server or "
            "drivers for an app you wrap, without editing its dependencies."),
    Setting("package", "bool", None, "Whether the project is a package of its own, built as "
            "a wheel into lib/. Default: true when pyproject.toml has a [build-system] table, "
            "false without one (as uv does): a project that only pins dependencies and "
            "points app at a module of one of them."),
    Setting("secret_guard_allow", "list[str]", [], "Build config keys (dotted: "
            "\"app.key\", \"app.table.key\") the secret guard lets through although their "
            "value looks like a secret; each key exactly, never a pattern. See the secret "
            "guard in docs/releases.md.", _check_secret_guard_allow),
)
SETTINGS_BY_KEY = {s.key: s for s in SETTINGS}


@dataclass(frozen=True)
class Project:
    """Everything the build needs to know about the project, validated and read-only."""

    root: Path
    dist_name: str          # [project].name, as written
    name: str               # the release name
    version: str
    dependencies: tuple[str, ...]
    requires_python: str | None
    app: str                # the app reference the default server serves
    apps: dict[str, str]    # {"wsgi": ref, "asgi": ref} when the project names both
    server: str
    include_python: bool
    steps: tuple[str, ...]
    overlays: tuple[Path, ...]
    env_sh: Path
    config_dir: Path
    static_dir: Path
    strip: bool
    processes: dict[str, str]
    aliases: dict[str, tuple[str, ...]]
    lock_file: Path | None = field(default=None)
    package: bool = True    # build the project as a wheel (false: nothing of its own)
    groups: tuple[str, ...] = ()  # [dependency-groups] the release includes
    group_dependencies: tuple[str, ...] = ()  # their requirements, include-group followed
    build_backend: str | None = None  # [build-system].build-backend; None without the table
    # [build-system].requires, when a build environment made once may build the wheel: None
    # without the table, or with a backend-path (an in-tree backend), or requires not a list
    build_requires: tuple[str, ...] | None = None
    tool_tables: tuple[str, ...] = ()  # the [tool.*] tables pyproject.toml has ("setuptools"...)
    secret_guard_allow: tuple[str, ...] = field(default=())
    python: str | None = None  # "3.12" or an interpreter's path; None: the builder's own
    keep_sources: tuple[str, ...] = ()  # normalised distribution names strip leaves whole
    keep_stdlib: tuple[str, ...] = ()   # OPTIONAL_STDLIB modules the release keeps
    optimize: int = 0   # the locked packages' bytecode optimization level (strip = true)

    @property
    def main_overlay(self) -> Path:
        """Where generators write overlay files: the first overlay dir the project names
        besides rel/overlays, else rel/overlays."""
        return self.overlays[1] if len(self.overlays) > 1 else self.overlays[0]

    @property
    def release_dependencies(self) -> tuple[str, ...]:
        """What the release installs: [project].dependencies and the groups it includes."""
        return (*self.dependencies, *self.group_dependencies)

    @property
    def app_module(self) -> str:
        return self.app.split(":", 1)[0]


def load_project(root: Path) -> Project:
    """Read ``root/pyproject.toml`` into a validated ``Project`` or raise ``ProjectError``."""
    path = root / "pyproject.toml"
    data = _read_toml(path)
    problems: list[str] = []
    meta = _read_project_table(data, problems)
    tables = data.get("tool", {})
    tool = tables.get("twelve") if isinstance(tables, dict) else None
    if not isinstance(tool, dict):
        problems.append("[tool.twelve] is missing or not a table; add it with at least: "
                        "app = \"module:app\"")
        tool = None
    values = _read_settings(tool or {}, problems)
    meta["group_dependencies"] = read_groups(meta["dependency_groups"], values["groups"],
                                             problems)
    if tool is not None and "app" not in tool:
        problems.append("tool.twelve.app is required: the WSGI/ASGI app, e.g. "
                        "app = \"hello.web:app\"")
    if problems:
        raise _project_error(path, problems)
    return _build_project(root.resolve(), meta, values, problems, path)


def _build_project(root: Path, meta: dict, values: dict, problems: list[str],
                   path: Path) -> Project:
    name = values["name"] or _suggest_name(meta["name"])
    if values["name"] is None and not RELEASE_NAME.match(name):
        problems.append(_check_name(name) + " (set tool.twelve.name)")
    apps = values["app"] if isinstance(values["app"], dict) else {}
    release_deps = [*meta["dependencies"], *meta["group_dependencies"]]  # as release_dependencies
    server = values["server"] or _default_server(release_deps, apps)
    app = values["app"] if isinstance(values["app"], str) else _app_for(server, apps)
    if apps and server and not _serves_any(server, apps):
        problems.append(f"tool.twelve.server {server!r} serves none of the app table's "
                        f"interfaces ({', '.join(apps)}); choose another server or add an "
                        "app for it")
    if server is None:
        problems.append(NO_SERVER)
    elif values["server"] and not _depends_on(release_deps, SERVER_PACKAGES[server]):
        problems.append(f"tool.twelve.server is {server!r} but the release does not depend on "
                        f"it; add \"{SERVER_PACKAGES[server]}\" to [project].dependencies or "
                        "to a dependency group in tool.twelve.groups")
    overlays = values["overlays"]
    overlays = [DEFAULT_OVERLAY, *([overlays] if isinstance(overlays, str) else overlays)]
    overlays = list(dict.fromkeys(os.path.normpath(o) for o in overlays))
    paths = {k: _inside(root, values[k], f"tool.twelve.{k}", problems)
             for k in ("env_sh", "config_dir", "static_dir")}
    aliases = {name: tuple([cmds] if isinstance(cmds, str) else cmds)
               for name, cmds in values["aliases"].items()}
    steps_problem = check_steps(values["steps"], aliases)
    if steps_problem:
        problems.append(f"tool.twelve.steps: {steps_problem}")
    processes = dict(values["processes"])
    processes.setdefault("web", "server")
    overlay_paths = [_inside(root, o, "tool.twelve.overlays", problems) for o in overlays]
    if values["optimize"] and not values["strip"]:
        problems.append("tool.twelve.optimize applies to the bytecode strip = true ships "
                        "without sources; with strip = false remove optimize or set strip = "
                        "true")
    if problems:
        raise _project_error(path, problems)
    lock = root / "uv.lock"
    return Project(
        root=root, dist_name=meta["name"], name=name, version=meta["version"],
        dependencies=tuple(meta["dependencies"]), requires_python=meta["requires_python"],
        app=app, apps=apps, server=server, include_python=values["include_python"],
        steps=tuple(values["steps"]), overlays=tuple(overlay_paths), env_sh=paths["env_sh"],
        config_dir=paths["config_dir"], static_dir=paths["static_dir"], strip=values["strip"],
        processes=processes, aliases=aliases, lock_file=lock if lock.is_file() else None,
        package=(values["package"] if values["package"] is not None
                 else meta["build_backend"] is not None),
        groups=tuple(values["groups"]), build_backend=meta["build_backend"],
        build_requires=meta["build_requires"],
        group_dependencies=tuple(meta["group_dependencies"]),
        tool_tables=tuple(sorted(meta["tool_tables"])),
        secret_guard_allow=tuple(values["secret_guard_allow"]), python=values["python"],
        keep_sources=tuple(sorted({normalise(n) for n in values["keep_sources"]})),
        keep_stdlib=tuple(sorted(set(values["keep_stdlib"]))), optimize=values["optimize"])


def _read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ProjectError(f"no pyproject.toml in {path.parent}",
                           hint="Run twelve from the project's root, or pass --path.") from None
    except tomllib.TOMLDecodeError as e:
        raise ProjectError(f"{path} is not valid TOML: {e}",
                           hint="Fix the syntax at the position shown.") from None


def _build_requires(build_system) -> tuple[str, ...] | None:
    if not isinstance(build_system, dict) or "backend-path" in build_system:
        return None
    requires = build_system.get("requires")
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        return None
    return tuple(requires)


def _read_project_table(data: dict, problems: list[str]) -> dict:
    project = data.get("project")
    if not isinstance(project, dict):
        problems.append("[project] is missing; it needs at least name and version")
        project = {}
    build_system = data.get("build-system")
    meta = {"name": project.get("name"), "version": project.get("version"),
            "dependencies": project.get("dependencies", []),
            "requires_python": project.get("requires-python"),
            "build_backend": (build_system.get("build-backend", "setuptools.build_meta:__legacy__")
                              if isinstance(build_system, dict) else None),
            "build_requires": _build_requires(build_system),
            "dependency_groups": data.get("dependency-groups", {}),
            "tool_tables": [k for k in tools] if isinstance(tools := data.get("tool"), dict)
            else []}
    for key in ("name", "version"):
        if not isinstance(meta[key], str) or not meta[key]:
            dynamic = project.get("dynamic", [])
            hint = "dynamic versions are not supported yet; " if key == "version" and \
                isinstance(dynamic, list) and "version" in dynamic else ""
            problems.append(f"project.{key} must be a non-empty string ({hint}e.g. "
                            f"{key} = \"{'hello' if key == 'name' else '0.1.0'}\")")
            meta[key] = meta[key] if isinstance(meta[key], str) else ""
    deps = meta["dependencies"]
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        problems.append("project.dependencies must be a list of requirement strings")
        meta["dependencies"] = []
    return meta


def _read_settings(tool: dict, problems: list[str]) -> dict:
    for key in tool:
        if key not in SETTINGS_BY_KEY:
            near = difflib.get_close_matches(key, SETTINGS_BY_KEY, n=1)
            guess = f"; did you mean {near[0]!r}?" if near else ""
            problems.append(f"unknown key tool.twelve.{key}{guess} (known keys: "
                            f"{', '.join(SETTINGS_BY_KEY)})")
    values = {}
    for setting in SETTINGS:
        value = tool.get(setting.key, setting.default)
        if setting.key in tool:
            problem = _type_problem(setting, value)
            if problem is None and setting.check is not None:
                problem = setting.check(value)
            if problem is not None:
                problems.append(f"tool.twelve.{setting.key}: {problem}")
                value = setting.default
        values[setting.key] = value
    return values


def _type_problem(setting: Setting, value: Any) -> str | None:
    ok = {
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "list[str]": isinstance(value, list) and all(isinstance(v, str) for v in value),
        "str|list[str]": isinstance(value, str) or (
            isinstance(value, list) and all(isinstance(v, str) for v in value)),
        "table": isinstance(value, dict),
        "str|table": isinstance(value, (str, dict)),
    }[setting.kind]
    if ok:
        return None
    wanted = {"str": "a string", "bool": "true or false", "int": "an integer",
              "list[str]": "a list of strings",
              "str|list[str]": "a string or a list of strings",
              "table": "a table", "str|table": "a string or a table"}[setting.kind]
    return f"must be {wanted}, got {type(value).__name__} {value!r}"


def read_groups(tables: Any, names: list[str], problems: list[str]) -> list[str]:
    """The requirements of the named PEP 735 dependency groups, ``include-group`` followed."""
    if not isinstance(tables, dict):
        problems.append("[dependency-groups] must be a table of lists")
        return []
    found: list[str] = []

    def add(name: str, seen: tuple[str, ...]) -> None:
        key = next((k for k in tables if normalise(k) == normalise(name)), None)
        if key is None:
            near = difflib.get_close_matches(name, list(tables), n=1)
            problems.append(f"no dependency group {name!r} in [dependency-groups]"
                            + (f"; did you mean {near[0]!r}?" if near else
                               f"; add it, e.g. [dependency-groups] {name} = [\"gunicorn>=22\"]"))
            return
        if key in seen:
            problems.append(f"dependency group {key!r} includes itself "
                            f"({' -> '.join((*seen, key))})")
            return
        entries = tables[key]
        for entry in entries if isinstance(entries, list) else [entries]:
            if isinstance(entry, str):
                found.append(entry)
            elif isinstance(entry, dict) and isinstance(entry.get("include-group"), str):
                add(entry["include-group"], (*seen, key))
            else:
                problems.append(f"dependency group {key!r}: {entry!r} is neither a requirement "
                                "string nor {include-group = \"NAME\"}")

    for name in names:
        add(name, ())
    return found


def _inside(root: Path, rel: str, key: str, problems: list[str]) -> Path:
    path = (root / rel).resolve()
    if not path.is_relative_to(root):
        problems.append(f"{key}: {rel!r} points outside the project; use a path inside it")
    return path


def requirement_name(req: str) -> str:
    """"Flask[async]>=3" → "flask": the normalised distribution name of a requirement."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
    return normalise(match.group(1)) if match else ""


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _depends_on(deps: list[str], package: str) -> bool:
    return any(requirement_name(d) == normalise(package) for d in deps)


def _serves_any(server: str, apps: dict[str, str]) -> bool:
    from twelve.runtime.servers import get

    return any(kind in apps for kind in get(server).interfaces)


def _app_for(server: str | None, apps: dict[str, str]) -> str:
    """Of an app table, the reference the server serves (WSGI first where it does both)."""
    from twelve.runtime.servers import get

    kinds = get(server).interfaces if server else INTERFACES
    return next((apps[k] for k in kinds if k in apps), next(iter(apps.values())))


def _default_server(deps: list[str], apps: dict[str, str]) -> str | None:
    kind = "asgi" if any(_depends_on(deps, f) for f in ASGI_FRAMEWORKS) else "wsgi"
    if apps and kind not in apps:
        kind = next(iter(apps))
    candidates = [s for s in PREFERRED[kind] + SERVERS if _depends_on(deps, SERVER_PACKAGES[s])]
    return candidates[0] if candidates else None


def _suggest_name(value: str) -> str:
    name = re.sub(r"[^a-z0-9_]", "_", value.lower())
    return name if name[:1].isalpha() else f"app_{name}".strip("_")


def _project_error(path: Path, problems: list[str]) -> ProjectError:
    if len(problems) == 1:
        return ProjectError(f"{path}: {problems[0]}")
    listed = "\n".join(f"  - {p}" for p in problems)
    return ProjectError(f"{path}: {len(problems)} problems\n{listed}")


def settings_table() -> str:
    """The Markdown table of ``[tool.twelve]`` keys, for docs/configuration.md."""
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for s in SETTINGS:
        default = "—" if s.default is None else f"`{json.dumps(s.default)}`"
        kind = s.kind.replace("|", " or ")
        rows.append(f"| `{s.key}` | {kind} | {default} | {s.help} |")
    return "\n".join(rows)
