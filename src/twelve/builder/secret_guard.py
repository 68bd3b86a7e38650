"""The secret guard: no value of a secret the app reads at boot may be baked into the release.

``config/runtime.py`` declares the app's secrets (``env.secret``). When one of them is set in
the build's environment (a CI job with the production secrets, a developer's shell), a build
config that copies it, an overlay or a generated file would ship it in clear text inside the
release and its tarball. So, once the release is assembled:

1. ``literal_secret_names``: the names of ``env.secret("NAME")`` calls are read from
   runtime.py without running it; when none of them is set in the build's environment (the
   usual build), nothing can leak and the guard is done. Otherwise (or when a call names its
   variable in a way only running tells), ``declared_secrets``: runtime.py is evaluated in declare mode, as ``bin/NAME env`` does,
   by the release's own interpreter with its ``lib/`` (so runtime.py may import the app and its
   dependencies), in the build's environment. Problems with values are not failures here; a
   runtime.py that cannot be evaluated at all makes the guard warn and check nothing.
2. ``find_leaks``: every file of the release (what the tarball holds: ``build_config.json``,
   ``lib/``, ``python/``, the overlays...) is searched for the bytes of each value that is set,
   as written and JSON-escaped. Values shorter than ``MIN_LENGTH`` characters are skipped: a
   short value ("prod", "1234") occurs by chance in a 40 MB interpreter and would fail every
   build for nothing; real secrets are long (``twelve gen.secret`` gives 64 characters).
3. A leak fails the build (``BuildError``, exit 1) naming the variable and the file, never the
   value. ``secret_looking_keys`` finds build config keys named like secrets, for a warning.

Before all that, and whatever the environment: ``literal_secrets`` fails the build on a value
of the build config (``config/config.py``, ``config/ENV.py``, frozen into ``build_config.json``)
that looks like a secret written into the file itself, by ``looks_like_secret``'s rule (below,
and in docs/releases.md), unless ``[tool.twelve] secret_guard_allow`` lists its dotted key.
All of it runs while the release is still the staging directory, so a failure publishes
nothing and the previous release stays as it was.
"""
from __future__ import annotations

import ast
import json
import math
import re
import subprocess
import tempfile
from collections import Counter
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Callable

from twelve.builder.archive import tar_entries
from twelve.builder.release import Release
from twelve.errors import BuildError
from twelve.runtime.config.env import is_set

MIN_LENGTH = 8
# Names that look like secrets. *SECRET* rather than *_SECRET: it also catches secret_key_base.
SECRET_KEY_PATTERNS = ("*_KEY", "*SECRET*", "*PASSWORD*", "*PASSWD*", "*PASSPHRASE*",
                       "*TOKEN*", "*APIKEY*", "*CREDENTIAL*", "*_PWD")
# ... unless the name says the value tells where a secret is or what it is called, not what it is
# (password_file = "/run/secrets/db", token_header = "Authorization").
REFERENCE_KEY_SUFFIXES = ("_NAME", "_HEADER", "_FILE", "_PATH", "_DIR", "_URL", "_ENV", "_VAR")
# A random-looking value, whatever its key: at least this long, with a lowercase letter, an
# uppercase letter and a digit, and at least ENTROPY_SHARE of the most Shannon entropy per
# character a string of its length can have over a 64-character alphabet (log2 min(len, 64)).
# Random base64/alphanumeric strings of 20-64 characters that have all three kinds of character
# pass it in more than 99.9% of draws; words with a digit, paths, URLs, dotted names, hex
# digests and UUIDs (one case only) do not. See docs/releases.md.
ENTROPY_MIN_LENGTH = 20
ENTROPY_SHARE = 0.8
# Values no one means as a secret: the whole value, or a word in it (any case).
PLACEHOLDERS = frozenset({"password", "passw0rd", "secret", "postgres", "changeme", "none",
                          "null", "unset", "todo", "fixme"})
PLACEHOLDER_WORDS = ("changeme", "change-me", "change_me", "change-this", "placeholder",
                     "example", "dummy", "redacted", "your-", "your_")
DOTTED_NAME = re.compile(r"^[A-Za-z_]\w*([.:][A-Za-z_]\w*)+(\(\))?$")  # hello.web:app
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$")  # secret_key_env = "SECRET_KEY_BASE"
BY_NAME, BY_URL, BY_ENTROPY = ("named like a secret", "a URL with a password",
                               "a long random-looking string")
LISTED = 20  # leaks named in one error; the count covers them all

LEAK = "the value of the secret {name} is in {file}"
LEAKS = "values of secrets are in {count} files of the release:"
LEAK_HINT = ("{names} {verb} read with env.secret by config/runtime.py and set in this "
             "build's environment, so {pronoun} must not be baked into the release. Read "
             "secrets at boot in config/runtime.py, never in config/config.py, "
             "config/{env}.py, an overlay or a generated file. The previous release is "
             "unchanged.")
NOT_EVALUATED = ("  warning: the secret guard could not evaluate config/runtime.py, so it "
                 "checked no secret:\n{detail}")
LITERAL = ("{file} sets {key} to a literal secret ({reason}); build_config.json would ship "
           "it in clear text")
LITERALS = ("{count} build config keys are set to literal secrets; build_config.json would "
            "ship them in clear text:")
LITERAL_HINT = ("Read secrets at boot instead: in config/runtime.py, e.g. config(\"{app}\", "
                "{name}=env.secret(\"{variable}\")), with {variable} set where the release "
                "runs. If it is no secret, allow it by key in pyproject.toml: [tool.twelve] "
                "secret_guard_allow = [\"{key}\"]. The previous release is unchanged.")
KEY_WARNING = ("  warning: build config key {key} looks like a secret; build_config.json ships "
               "in clear text: read secrets at boot with env.secret in config/runtime.py")

# Run by the release's interpreter: argv = lib, runtime.py, build_config.json, env, output.
DECLARE = """\
import json, os, sys
sys.path.insert(0, sys.argv[1])
from twelve.runtime.config.store import describe_environment
with open(sys.argv[3]) as f:
    build_config = json.load(f)
try:
    rows = describe_environment(sys.argv[2], build_config, sys.argv[4], os.environ,
                                source="config/runtime.py")
except Exception as e:  # a ConfigError's message is scrubbed of secret values
    sys.exit(e.render() if hasattr(e, "render") else f"{type(e).__name__}: {e}")
with open(sys.argv[5], "w") as f:
    json.dump(sorted(variable.name for variable, _ in rows if variable.secret), f)
"""

Log = Callable[[str], None]


def check_build_config(release: Release, log: Log) -> None:
    """Fail the build on a literal secret in the build config; warn about keys named like
    secrets. Needs no release on disk: the build runs it before any I/O."""
    allowed = set(release.project.secret_guard_allow) if release.project else set()
    found = [(key, reason) for key, reason in literal_secrets(release.build_config)
             if key not in allowed]
    if found:
        raise literal_error(found, release)
    for key in secret_looking_keys(release.build_config):
        if key not in allowed:
            log(KEY_WARNING.format(key=key))


def check_release(release: Release, python: str, environ, log: Log) -> None:
    """Fail the build if a secret's value is in the staging release."""
    runtime_py = release.version_dir / "runtime.py"
    if not runtime_py.is_file():
        return
    candidates = literal_secret_names(runtime_py)
    if candidates is not None and not any(
            is_set(environ, name) and len(environ[name]) >= MIN_LENGTH for name in candidates):
        return  # no secret of this app is set here: nothing can leak (the usual build)
    try:
        names = declared_secrets(release, python, runtime_py, environ)
    except BuildError as e:
        log(NOT_EVALUATED.format(detail=e.message))
        return
    values = {name: environ[name] for name in names
              if is_set(environ, name) and len(environ[name]) >= MIN_LENGTH}
    leaks = find_leaks(release.staging, release.version, values)
    if leaks:
        raise leak_error(leaks, release.env)


def literal_secret_names(runtime_py: Path) -> set[str] | None:
    """The names in ``env.secret("NAME", ...)`` calls of runtime.py, read without running it.

    None when only running it can tell: a call that computes its name, ``.secret`` used other
    than as such a call, or an import of anything but the standard library and twelve (an
    imported module may read secrets of its own).
    """
    import sys

    try:
        tree = ast.parse(runtime_py.read_text(), str(runtime_py))
    except (SyntaxError, ValueError, OSError):
        return None
    names, calls, uses = set(), 0, 0
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) \
                else [node.module or ""]
            if any(m.split(".")[0] not in sys.stdlib_module_names | {"twelve"} for m in modules):
                return None
        elif isinstance(node, ast.Attribute) and node.attr == "secret":
            uses += 1
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "secret"):
            first = node.args[0] if node.args else None
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                return None
            names.add(first.value)
            calls += 1
    return names if uses == calls else None


def declared_secrets(release: Release, python: str, runtime_py: Path, environ) -> list[str]:
    """Names of the variables runtime.py reads with env.secret, evaluated in ``environ``."""
    lib = release.staging / "lib"
    with tempfile.TemporaryDirectory(prefix="twelve-secrets-") as work:
        out = Path(work) / "secrets.json"
        proc = subprocess.run(
            [python, "-I", "-B", "-c", DECLARE, str(lib), str(runtime_py),
             str(release.version_dir / "build_config.json"), release.env, str(out)],
            env=dict(environ), cwd=release.staging, capture_output=True, text=True,
            stdin=subprocess.DEVNULL, timeout=120)
        if proc.returncode != 0 or not out.is_file():
            detail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise BuildError("\n".join("    " + line for line in detail))
        return json.loads(out.read_text())


def find_leaks(root: Path, version: str, values: dict[str, str]) -> list[tuple[str, str]]:
    """(file, variable) for every file of the release that holds one of ``values``."""
    needles = {name: _forms(value) for name, value in values.items()}
    if not needles:
        return []
    leaks = []
    for rel, path in tar_entries(root, version):
        if path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        leaks += [(rel, name) for name, forms in sorted(needles.items())
                  if any(form in data for form in forms)]
    return leaks


def _forms(value: str) -> tuple[bytes, ...]:
    """The bytes of ``value`` as a file may hold it: as is, and inside a JSON string."""
    forms = {value.encode("utf-8"), json.dumps(value)[1:-1].encode("ascii")}
    return tuple(sorted(forms))


def leak_error(leaks: list[tuple[str, str]], env: str) -> BuildError:
    names = sorted({name for _, name in leaks})
    plural = len(names) > 1
    hint = LEAK_HINT.format(names=", ".join(names), verb="are" if plural else "is",
                            pronoun="their values" if plural else "its value", env=env)
    if len(leaks) == 1:
        file, name = leaks[0]
        return BuildError(LEAK.format(name=name, file=file), hint=hint)
    files = len({file for file, _ in leaks})
    lines = [f"  {name}  in {file}" for file, name in leaks[:LISTED]]
    if len(leaks) > LISTED:
        lines.append(f"  ... and {len(leaks) - LISTED} more")
    return BuildError(LEAKS.format(count=files) + "\n" + "\n".join(lines), hint=hint)


def secret_looking_keys(config: dict, prefix: str = "") -> list[str]:
    """Dotted paths of the keys of ``config`` (at any depth) named like secrets."""
    found = []
    for key, value in config.items():
        path = f"{prefix}{key}"
        if any(fnmatchcase(str(key).upper(), pattern) for pattern in SECRET_KEY_PATTERNS):
            found.append(path)
        if isinstance(value, dict):
            found += secret_looking_keys(value, path + ".")
    return found


def literal_secrets(config: dict, prefix: str = "") -> list[tuple[str, str]]:
    """(dotted key, reason) for every string of ``config`` (at any depth, in lists too: named
    by the list's key) that ``looks_like_secret``."""
    found = []
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            found += literal_secrets(value, path + ".")
            continue
        for item in _strings(value):
            reason = looks_like_secret(str(key), item)
            if reason:
                found.append((path, reason))
                break
    return found


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def looks_like_secret(key: str, value: str) -> str | None:
    """Why ``value``, set under ``key``, looks like a secret written in clear; None if not.

    1. A URL with a password (``postgresql://app:s3cr3t-pw@db/app``), whatever the key.
    2. Else, nothing that names a place or a thing is a secret: a path (``/``, ``./``, ``../``,
       ``~/``), a URL, a dotted name (``hello.web:app``; unless random-looking as in 4, like
       a JWT), an environment variable's name; nor is a placeholder (shorter than
       MIN_LENGTH, one character repeated, ``<...>``/``{...}``/``${...}``/``[...]``, one of
       PLACEHOLDERS, or with one of PLACEHOLDER_WORDS in it).
    3. A key named like a secret (SECRET_KEY_PATTERNS, unless it ends in one of
       REFERENCE_KEY_SUFFIXES): any other value.
    4. Any key: one word of ENTROPY_MIN_LENGTH characters or more with a lowercase and an
       uppercase letter and a digit, and Shannon entropy of at least ENTROPY_SHARE of
       log2(min(length, 64)) bits per character.
    """
    text = value.strip()
    password = _url_password(text)
    if password is not None:
        user = text.split("://", 1)[1].split(":", 1)[0]
        return BY_URL if password != user and not _placeholder(password) else None
    if _reference(text) or _placeholder(text):
        return None
    name = key.upper()
    if (any(fnmatchcase(name, pattern) for pattern in SECRET_KEY_PATTERNS)
            and not name.endswith(REFERENCE_KEY_SUFFIXES)):
        return BY_NAME
    return BY_ENTROPY if _random_looking(text) else None


def _url_password(text: str) -> str | None:
    from urllib.parse import unquote, urlsplit

    if "://" not in text or "@" not in text:
        return None
    try:
        password = urlsplit(text).password
    except ValueError:
        return None
    return unquote(password) if password else None


def _reference(text: str) -> bool:
    # A JWT is three dot-separated words too, but random ones.
    dotted = bool(DOTTED_NAME.match(text)) and not _random_looking(text)
    return (text.startswith(("/", "./", "../", "~/")) or "://" in text or dotted
            or bool(ENV_NAME.match(text)))


def _placeholder(text: str) -> bool:
    lower = text.lower()
    return (len(text) < MIN_LENGTH or len(set(text)) == 1 or lower in PLACEHOLDERS
            or (text[0], text[-1]) in (("<", ">"), ("{", "}"), ("$", "}"), ("[", "]"))
            or any(word in lower for word in PLACEHOLDER_WORDS))


def _random_looking(text: str) -> bool:
    if len(text) < ENTROPY_MIN_LENGTH or any(c.isspace() for c in text):
        return False
    if not (any(c.islower() for c in text) and any(c.isupper() for c in text)
            and any(c.isdigit() for c in text)):
        return False
    return shannon_entropy(text) >= ENTROPY_SHARE * math.log2(min(len(text), 64))


def shannon_entropy(text: str) -> float:
    """Bits per character of ``text``, from the frequencies of its own characters."""
    counts, size = Counter(text).values(), len(text)
    return -sum(n / size * math.log2(n / size) for n in counts)


def literal_error(found: list[tuple[str, str]], release: Release) -> BuildError:
    key = found[0][0]
    app, _, rest = key.partition(".")
    name = (rest or app).rsplit(".", 1)[-1]
    hint = LITERAL_HINT.format(app=app, name=name, variable=name.upper(), key=key)
    if len(found) == 1:
        return BuildError(LITERAL.format(file=setting_file(release, key), key=key,
                                         reason=found[0][1]), hint=hint)
    lines = [f"  {key}  ({setting_file(release, key)}: {reason})"
             for key, reason in found[:LISTED]]
    if len(found) > LISTED:
        lines.append(f"  ... and {len(found) - LISTED} more")
    return BuildError(LITERALS.format(count=len(found)) + "\n" + "\n".join(lines), hint=hint)


def setting_file(release: Release, key: str) -> str:
    """Which build config file sets ``key``, read without running it: the last evaluated
    (config/ENV.py after config/config.py) that names the key's last part, as a keyword or a
    string; else releases/VSN/build_config.json (a step may have set it)."""
    fallback = f"releases/{release.version}/build_config.json"
    if release.project is None:
        return fallback
    last = key.rsplit(".", 1)[-1]
    config_dir = release.project.config_dir
    for path in (config_dir / f"{release.env}.py", config_dir / "config.py"):
        try:
            tree = ast.parse(path.read_text(), str(path))
        except (OSError, SyntaxError, ValueError):
            continue
        if any(isinstance(node, ast.keyword) and node.arg == last
               or isinstance(node, ast.Constant) and node.value == last
               for node in ast.walk(tree)):
            try:
                return str(path.relative_to(release.project.root))
            except ValueError:
                return str(path)
    return fallback
