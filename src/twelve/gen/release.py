"""`twelve gen.release` (phx.gen.release): release tasks for the project's database layer.

Writes ``PKG/release.py`` with ``migrate()`` and ``rollback(...)`` for what the project uses,
and two overlays that land next to ``bin/NAME`` in the release: ``bin/migrate`` (``bin/NAME
eval "PKG.release.migrate()"``) and ``bin/server`` (``bin/NAME start``).

What is detected, from ``[project].dependencies`` and the files at the project's root:

* **Django** (``django``, or ``manage.py``): ``call_command("migrate")``; ``rollback(app_label,
  migration)``. The settings module is ``--settings``, else the one manage.py names (else
  ``PKG.settings``) — unless that is one module of split settings (``settings/`` with
  ``base.py``, ``dev.py``, ``production.py``...; manage.py then names the development one):
  then the package's ``production`` (or ``prod``) module, and without exactly one of those the
  command stops and lists the candidates. ``bin/server`` defaults DJANGO_SETTINGS_MODULE to the
  same module, since the app's wsgi.py may default to the development one.
* **Alembic** (``alembic``, or ``alembic.ini``): ``alembic upgrade head`` / ``downgrade`` through
  Alembic's API, with the migrations inside the package (``PKG:migrations``) since a release
  ships no source tree.
* **SQLAlchemy** alone (``sqlalchemy``, ``flask-sqlalchemy``): ``metadata.create_all`` — it
  creates missing tables and never alters or drops (through an async engine when the URL names
  an async driver); rollback says it needs Alembic. The
  MetaData is found in the package's source (``X = MetaData()``, a declarative base, a
  ``SQLAlchemy()``), or named with ``--metadata module:attr``.

Anything else (or Django and Alembic together) is refused with what was found; ``--kind``
overrides the detection.
"""
from __future__ import annotations

import ast
import configparser
import re
from dataclasses import dataclass
from pathlib import Path

from twelve import django_settings as dj
from twelve.errors import ProjectError, UsageError
from twelve.gen.files import Generated, render
from twelve.gen.init import app_name
from twelve.project import Project, requirement_name

KINDS = ("django", "alembic", "sqlalchemy")
LABELS = {"django": "Django", "alembic": "Alembic", "sqlalchemy": "SQLAlchemy without Alembic"}
EFFECTS = {"django": "migrate() runs Django's migrate, rollback(app_label, migration) "
                     "migrates back",
           "alembic": "migrate() runs alembic upgrade head, rollback(revision) downgrades",
           "sqlalchemy": "migrate() creates missing tables (metadata.create_all), never alters "
                         "or drops; rollback needs Alembic"}
SIGNALS = {  # kind → (distributions, files at the project's root)
    "django": (("django",), ("manage.py",)),
    "alembic": (("alembic",), ("alembic.ini",)),
    "sqlalchemy": (("sqlalchemy", "flask-sqlalchemy"), ()),
}
METADATA_REF = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")

DETECTED = "* detected {label} ({reasons}): {effect}"
USING_METADATA = "* using the tables of {ref}"
USING_SETTINGS = "* using the Django settings {ref}"
SPLIT_SETTINGS = ("  note: {given} is one module of the split settings {package}; "
                  "the release uses {chosen} (bin/server and release.py default to it)")
APP_SETTINGS = ("  note: {file} defaults DJANGO_SETTINGS_MODULE to {given}: `bin/{name} start` "
                "serves with those settings unless DJANGO_SETTINGS_MODULE is set; bin/server "
                "sets it to {chosen}. Change the default in {file} to {chosen}.")
NO_PRODUCTION_SETTINGS = ("the Django settings {given} are split ({package}: {modules}) and "
                          "{problem}, so gen.release cannot tell which are for production")
NO_PRODUCTION = "none of them is named production or prod"
MANY_PRODUCTION = "{found} are all named for production"
SETTINGS_HINT = ("Name the production settings: twelve gen.release --settings {example} "
                 "(candidates: {candidates}).")
SETTINGS_NOT_DJANGO = "--settings names Django settings, but the project's database layer is {label}"
SETTINGS_NOT_DJANGO_HINT = "Leave --settings out, or add --kind django if the project is Django."
BAD_SETTINGS = "--settings {value!r} is not a dotted module name (e.g. {pkg}.settings.production)"
SERVER_SETTINGS = ('DJANGO_SETTINGS_MODULE=${{DJANGO_SETTINGS_MODULE:-{settings}}}\n'
                   'export DJANGO_SETTINGS_MODULE')
USING_SCRIPTS = "* using the Alembic migrations in {ref}"
NOTHING_DETECTED = ("no database layer found: the project depends on none of django, alembic, "
                    "sqlalchemy and has no manage.py or alembic.ini")
NOTHING_DETECTED_HINT = ("gen.release writes migration helpers for Django, Alembic or plain "
                         "SQLAlchemy; add the one you use to [project].dependencies, or name it "
                         "with --kind (django, alembic, sqlalchemy).")
AMBIGUOUS = "both Django ({django}) and Alembic ({alembic}) found; which one migrates?"
AMBIGUOUS_HINT = "Name it: twelve gen.release --kind django (or --kind alembic)."
NO_PACKAGE = "cannot find the package {pkg!r} of the app {app!r} (looked in {places})"
NO_PACKAGE_HINT = ("release.py goes into the app's top-level package; check tool.twelve.app in "
                   "pyproject.toml.")
BAD_METADATA = "--metadata {value!r} is not module:attribute (e.g. {pkg}.db:metadata)"
NO_METADATA = ("no SQLAlchemy MetaData found in {where}: looked for `X = MetaData()`, "
               "a declarative base and `X = SQLAlchemy()` at module level")
MANY_METADATA = "several SQLAlchemy MetaData found in {where}: {found}"
METADATA_HINT = "Name the one holding your tables: twelve gen.release --metadata {example}"
ALEMBIC_OUTSIDE = ("  note: alembic.ini's script_location {location!r} is outside the package; "
                   "a release ships only the package, so move the migrations to {target} "
                   "(`git mv {location} {target}`) and set script_location = {ref}")
ALEMBIC_MISSING = ("  note: {target} does not exist yet; create it with "
                   "`alembic init {target}`")
NEXT = """
Then, in a release:
    bin/migrate                      # bin/{name} eval "{app}.release.migrate()"
    bin/server                       # bin/{name} start
{rollback}"""
ROLLBACK_EXAMPLE = {"django": "    bin/{name} eval \"{app}.release.rollback('APP_LABEL', 'MIGRATION')\"\n",
                    "alembic": "    bin/{name} eval \"{app}.release.rollback('REVISION')\"\n",
                    "sqlalchemy": ""}


@dataclass(frozen=True)
class Detection:
    kind: str                  # one of KINDS
    reasons: tuple[str, ...]   # what gave it away: "dependency alembic", "alembic.ini"

    def describe(self) -> str:
        return DETECTED.format(label=LABELS[self.kind], reasons=", ".join(self.reasons),
                               effect=EFFECTS[self.kind])


def detect(project: Project, kind: str | None = None) -> Detection:
    """Which database layer the project uses; ``kind`` (from --kind) overrides."""
    found = {k: _signals(project, k) for k in KINDS}
    if kind is not None:
        return Detection(kind, tuple(found[kind]) or ("--kind",))
    if found["django"] and found["alembic"]:
        raise UsageError(AMBIGUOUS.format(django=", ".join(found["django"]),
                                          alembic=", ".join(found["alembic"])),
                         hint=AMBIGUOUS_HINT)
    for k in KINDS:
        if found[k]:
            return Detection(k, tuple(found[k]))
    raise ProjectError(NOTHING_DETECTED, hint=NOTHING_DETECTED_HINT)


def package_dir(project: Project) -> Path:
    pkg = app_name(project)
    candidates = [project.root / "src" / pkg, project.root / pkg]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    places = " and ".join(c.relative_to(project.root).as_posix() + "/" for c in candidates)
    raise ProjectError(NO_PACKAGE.format(pkg=pkg, app=project.app, places=places),
                       hint=NO_PACKAGE_HINT)


def release_files(project: Project, detection: Detection, *, metadata: str | None,
                  log, settings: str | None = None) -> list[Generated]:
    """release.py in the package and the two overlays; ``log`` receives notes for the user."""
    if settings is not None and detection.kind != "django":
        raise UsageError(SETTINGS_NOT_DJANGO.format(label=LABELS[detection.kind]),
                         hint=SETTINGS_NOT_DJANGO_HINT)
    pkg_dir = package_dir(project)
    values = {"NAME": project.name, "APP": app_name(project), "SERVER_ENV": ""}
    if detection.kind == "django":
        values["SETTINGS"] = django_settings(project, settings, log)
        values["SERVER_ENV"] = SERVER_SETTINGS.format(settings=values["SETTINGS"])
        log(USING_SETTINGS.format(ref=values["SETTINGS"]))
    elif detection.kind == "alembic":
        values["SCRIPT_LOCATION"] = alembic_script_location(project, pkg_dir, log)
        log(USING_SCRIPTS.format(ref=values["SCRIPT_LOCATION"]))
    else:
        values["METADATA"] = metadata_ref(project, pkg_dir, metadata)
        log(USING_METADATA.format(ref=values["METADATA"]))
    overlays = _relative(project, project.main_overlay)
    return [
        Generated(f"{_relative(project, pkg_dir)}/release.py",
                  render(f"release_{detection.kind}.py", **values)),
        Generated(f"{overlays}/bin/migrate", render("migrate.sh", **values), 0o755),
        Generated(f"{overlays}/bin/server", render("server.sh", **values), 0o755),
    ]


def next_steps(project: Project, detection: Detection) -> str:
    rollback = ROLLBACK_EXAMPLE[detection.kind].format(name=project.name, app=app_name(project))
    return NEXT.format(name=project.name, app=app_name(project), rollback=rollback)


def django_settings(project: Project, given: str | None = None, log=lambda line: None) -> str:
    """The settings module the release's tasks and server use (see the module docstring)."""
    if given is not None:
        if not DOTTED.match(given):
            raise UsageError(BAD_SETTINGS.format(value=given, pkg=app_name(project)))
        chosen = given
    else:
        named = (dj.default_settings(project.root / "manage.py")
                 or f"{app_name(project)}.settings")
        chosen = _production_settings(project, named, log)
    _note_app_default(project, chosen, log)
    return chosen


def _production_settings(project: Project, named: str, log) -> str:
    """``named``, or the production module of the split settings it belongs to."""
    search = dj.roots(project.root)
    package = dj.split_package(search, named)
    if named.rpartition(".")[2] in dj.PRODUCTION or package is None:
        return named
    modules = dj.package_modules(search, package)
    production = dj.production_modules(modules)
    if len(production) == 1:
        log(SPLIT_SETTINGS.format(given=named, package=package, chosen=production[0]))
        return production[0]
    problem = (MANY_PRODUCTION.format(found=" and ".join(production)) if production
               else NO_PRODUCTION)
    leaves = ", ".join(m.rpartition(".")[2] for m in modules)
    raise UsageError(NO_PRODUCTION_SETTINGS.format(given=named, package=package, modules=leaves,
                                                   problem=problem),
                     hint=SETTINGS_HINT.format(example=(production or [f"{package}.production"])[0],
                                               candidates=", ".join(modules)))


def _note_app_default(project: Project, chosen: str, log) -> None:
    """Say so when the app's module (wsgi.py) defaults to other settings than ``chosen``."""
    app_file = dj.module_file(dj.roots(project.root), project.app_module)
    given = dj.default_settings(app_file) if app_file else None
    if given and given != chosen:
        log(APP_SETTINGS.format(file=_relative(project, app_file), given=given, chosen=chosen,
                                name=project.name))


def alembic_script_location(project: Project, pkg_dir: Path, log) -> str:
    """Alembic's script_location as a package resource (``PKG:migrations``), which works from a
    release; alembic.ini's value when it already points inside the package."""
    pkg = app_name(project)
    default_dir = pkg_dir / "migrations"
    location = _ini_script_location(project.root / "alembic.ini")
    if location is None:
        if not default_dir.is_dir():
            log(ALEMBIC_MISSING.format(target=_relative(project, default_dir)))
        return f"{pkg}:migrations"
    if ":" in location and not location.startswith("%(here)s"):
        return location  # already a package resource, e.g. "hello:migrations"
    path = (project.root / location.replace("%(here)s", str(project.root))).resolve()
    if path.is_relative_to(pkg_dir.resolve()):
        return f"{pkg}:{path.relative_to(pkg_dir.resolve()).as_posix()}"
    ref = f"{pkg}:migrations"
    log(ALEMBIC_OUTSIDE.format(location=location, target=_relative(project, default_dir),
                               ref=ref))
    return ref


def _ini_script_location(ini: Path) -> str | None:
    if not ini.is_file():
        return None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(ini)
    except configparser.Error:
        return None
    return parser.get("alembic", "script_location", fallback=None)


def metadata_ref(project: Project, pkg_dir: Path, given: str | None) -> str:
    pkg = app_name(project)
    if given is not None:
        if not METADATA_REF.match(given):
            raise UsageError(BAD_METADATA.format(value=given, pkg=pkg))
        return given
    found = find_metadata(pkg_dir, pkg)
    where = _relative(project, pkg_dir) + "/"
    if len(found) == 1:
        return found[0]
    example = found[0] if found else f"{pkg}.db:metadata"
    problem = (MANY_METADATA.format(where=where, found=", ".join(found)) if found
               else NO_METADATA.format(where=where))
    raise ProjectError(problem, hint=METADATA_HINT.format(example=example))


def find_metadata(pkg_dir: Path, pkg: str) -> list[str]:
    """``module:attr`` of every module-level MetaData, declarative base or Flask-SQLAlchemy
    object in the package's source, sorted; migrations and tests are not looked at."""
    found = []
    for path in sorted(pkg_dir.rglob("*.py")):
        rel = path.relative_to(pkg_dir)
        if {"migrations", "tests", "__pycache__"} & set(rel.parts[:-1]):
            continue
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except (SyntaxError, ValueError):
            continue
        module = ".".join([pkg, *rel.parts[:-1]] + ([] if rel.stem == "__init__" else [rel.stem]))
        found += [f"{module}:{attr}" for attr in _metadata_names(tree)]
    return sorted(found)


def _metadata_names(tree: ast.Module) -> list[str]:
    names = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            called = _called_name(node.value.func)
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
            if called == "MetaData":
                names += targets
            elif called in ("declarative_base", "SQLAlchemy"):
                names += [f"{t}.metadata" for t in targets]
        elif isinstance(node, ast.ClassDef):
            if any(_called_name(base) == "DeclarativeBase" for base in node.bases):
                names.append(f"{node.name}.metadata")
    return names


def _called_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _signals(project: Project, kind: str) -> list[str]:
    distributions, files = SIGNALS[kind]
    deps = dependency_names(project)
    return ([f"dependency {d}" for d in distributions if d in deps]
            + [name for name in files if (project.root / name).is_file()])


def dependency_names(project: Project) -> set[str]:
    """The normalised distribution names of ``[project].dependencies`` (PEP 503)."""
    return {requirement_name(r) for r in project.dependencies} - {""}


def _relative(project: Project, path: Path) -> str:
    return path.relative_to(project.root).as_posix()
