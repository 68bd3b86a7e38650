"""Typed readers of the environment (``env.str``, ``env.int``, ... ``env.secret``) and the
error they report.

Owns: how a variable's text becomes a value, what counts as a problem, the example shown for
each kind of variable, and what an evaluation keeps of its reads (``Variable`` declarations and
``Problem`` entries, in a ``Recorder``). ``ConfigError`` lives here because a reader called
outside an evaluation raises it at once. A secret's value leaves this module only as the
reader's return value: problems say "missing" or give a length, and a recorder keeps secret
values solely to scrub them out of exception messages.

An empty (or blank) variable counts as unset, so ``NAME=`` in an EnvironmentFile means "use the
default", and the generated ``--example`` template stays valid as written.
"""
from __future__ import annotations

import os
from collections import namedtuple

from twelve.runtime.errors import CONFIG, TwelveError

__all__ = ["env", "ConfigError", "Problem", "Variable", "Recorder", "MISSING", "is_set",
           "report", "check_value"]

# What `bin/NAME env` lists. `default` is the default as it would be written in the environment
# ("4000", "true"), None when there is none; a secret's default is never kept. `example` is the
# example value (given or derived), without the NAME= prefix.
Variable = namedtuple(
    "Variable", "name type default required secret choices min_length help example")
# One entry of a ConfigError; `example` is the whole line shown after "example: ".
Problem = namedtuple("Problem", "name problem example")
# The options of one read; a reader fills in the ones that make sense for its kind.
_Rule = namedtuple("_Rule", "kind secret choices min_length low high sep schemes",
                   defaults=(False, None, None, None, None, ",", None))

NOT_SHOWN = "<secret>"
SCRUB_PREFIX = 6  # a secret's first characters that, cut short in a message, are still hidden
REPR_LIMIT = 40
MAX_DIGITS = 4000
GEN_SECRET = "generate one with `twelve gen.secret{arg}`"
RUNTIME_FOOTER = ("Set these variables in the environment (or in the release's "
                  "releases/VSN/env.sh) and start again.")
BUILD_FOOTER = "Set these variables in the environment of the build and build again."
# releases/VSN/env.sh ships inside the release and its tarball: never a place for a secret.
SECRET_FOOTER = ("Set these variables in the environment and start again. {names} {verb} "
                 "secret{plural}: set {pronoun} only in the environment the node gets (e.g. an "
                 "EnvironmentFile= of its systemd unit, outside the release), never in "
                 "releases/VSN/env.sh, which ships inside the release.")


def runtime_footer(secrets) -> str:
    """The hint under a runtime ConfigError; ``secrets``: the names of secrets with problems."""
    names = sorted(secrets)
    if not names:
        return RUNTIME_FOOTER
    many = len(names) > 1
    return SECRET_FOOTER.format(names=", ".join(names), verb="are" if many else "is a",
                                pronoun="them" if many else "it", plural="s" if many else "")


class _Missing:
    def __repr__(self) -> str:
        return "<required>"


MISSING = _Missing()


class ConfigError(TwelveError):
    """The configuration cannot be evaluated: a list of problems with variables, or a message.

    ``source`` labels where (``releases/0.1.0/runtime.py``); ``stage`` is "runtime" or "build".
    """

    exit_code = CONFIG

    def __init__(self, message: str | None = None, *, problems=(), source: str | None = None,
                 stage: str = "runtime", hint: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        self.stage = stage
        if message is None:
            count = len(self.problems)
            where = f" ({source})" if source else ""
            message = (f"invalid {stage} configuration{where}: "
                       f"{count} problem{'s' if count != 1 else ''}")
        if hint is None and self.problems:
            hint = BUILD_FOOTER if stage == "build" else RUNTIME_FOOTER
        super().__init__(message, hint=hint)

    def render(self) -> str:
        if not self.problems:
            return super().render()
        text = f"error: {self.message}\n\n{format_problems(self.problems)}"
        return text + (f"\n\n{self.hint}" if self.hint else "")


def format_problems(problems) -> str:
    """The aligned two-column block of a ConfigError: NAME, what is wrong, then an example."""
    width = max(len(p.name) for p in problems) + 3
    lines = []
    for p in problems:
        lines.append(f"  {p.name.ljust(width)}{p.problem}")
        if p.example:
            lines.append(f"  {' ' * width}example: {p.example}")
    return "\n".join(lines)


class Recorder:
    """What one evaluation read: declarations and problems (first per name wins), and the
    secret values seen, kept only so exception messages can be scrubbed of them."""

    def __init__(self, environ) -> None:
        self.environ = environ
        self.variables: dict[str, Variable] = {}
        self.problems: dict[str, Problem] = {}
        self._secrets: set[str] = set()
        self._previous = None

    def __repr__(self) -> str:
        return f"<Recorder: {len(self.variables)} variables, {len(self.problems)} problems>"

    def __enter__(self) -> Recorder:
        global _recorder
        self._previous, _recorder = _recorder, self
        return self

    def __exit__(self, *exc_info) -> None:
        global _recorder
        _recorder, self._previous = self._previous, None

    def scrub(self, text: str) -> str:
        """``text`` without any secret seen: as written, as repr() or ascii() escape it
        (a message quoting the value), and cut short (a message truncating it)."""
        forms = {form for secret in self._secrets
                 for form in (secret, repr(secret)[1:-1], ascii(secret)[1:-1],
                              repr(secret.encode("utf-8", "replace"))[2:-1])}
        return _scrub_forms(text, sorted(forms, key=lambda form: (-len(form), form)))


def _scrub_forms(text: str, forms: list[str]) -> str:
    """``text`` with every form replaced, and every prefix of a form of at least SCRUB_PREFIX
    characters (a message that cut the secret short), longest piece first across all forms.

    Longest first across forms, not form by form: the repr() of a secret with a backslash is
    longer than the secret, and its prefix up to the backslash is a prefix of the secret too,
    so form by form it hid only that prefix of the secret as written and left the rest shown.
    Equal lengths go in the order of ``forms``.

    Trying every length would be quadratic (a 120 KB secret: 120,000 slices and searches).
    Only the lengths that occur change anything, and if a prefix occurs so does every shorter
    one, so a binary search per form finds the longest that occurs: one round of searches per
    length that occurs (almost always none or one) instead of a search per length.
    """
    below = max(map(len, forms), default=0)
    while True:
        length = max((_longest_prefix_in(text, form, below) for form in forms), default=0)
        if length == 0:
            return text
        for form in forms:
            if _counts(form, length) and form[:length] in text:
                text = text.replace(form[:length], NOT_SHOWN)
        below = length - 1


def _counts(form: str, length: int) -> bool:
    """Whether ``form[:length]`` is hidden: the whole form, or a prefix long enough."""
    return length == len(form) or SCRUB_PREFIX <= length < len(form)


def _longest_prefix_in(text: str, form: str, most: int) -> int:
    """The longest prefix of ``form`` that is hidden, at most ``most`` long and in ``text``;
    0 if none is."""
    if len(form) < SCRUB_PREFIX:
        return len(form) if len(form) <= most and form in text else 0
    low, high = SCRUB_PREFIX, min(most, len(form))
    if low > high or form[:low] not in text:
        return 0
    while low < high:  # form[:low] is in text; the longest that is, at most high long
        middle = (low + high + 1) // 2
        if form[:middle] in text:
            low = middle
        else:
            high = middle - 1
    return low


_recorder: Recorder | None = None


def is_set(environ, name: str) -> bool:
    """Whether ``name`` has a value; blank counts as unset (see the module docstring)."""
    value = environ.get(name)
    return value is not None and value.strip() != ""


def _read(name: str, default, rule: _Rule, example, help):
    """Read one variable: parse and check it, or record (or raise) a problem."""
    recorder = _recorder
    environ = recorder.environ if recorder is not None else os.environ
    if recorder is not None and name not in recorder.variables:
        recorder.variables[name] = _declare(name, default, rule, example, help)
    raw = environ.get(name)
    if rule.secret and recorder is not None and raw:
        recorder._secrets.add(raw)
    if raw is None or not raw.strip():
        if default is not MISSING:
            return _default_value(default, rule)
        return _problem(name, f"missing ({_describe(rule)})", default, rule, example, help)
    try:
        value = _PARSERS[rule.kind](raw, rule)
        _check(value, raw, rule)
    except _Invalid as invalid:
        return _problem(name, str(invalid), default, rule, example, help)
    return value


def report(name: str, text: str, example: str | None) -> None:
    """A problem found beyond what a reader checks (a setting that depends on another): listed
    with the others during an evaluation (first per name wins), raised at once outside one.
    ``example`` is the whole line shown after "example: "."""
    problem = Problem(name, text, example)
    if _recorder is None:
        raise ConfigError(problems=[problem], source="environment")
    _recorder.problems.setdefault(name, problem)


def check_value(label: str, value, kind: str, *, example: str, choices=None, min=None,
                max=None):
    """A value set in code (``config("twelve", port=...)``) checked by the rule ``env.<kind>``
    applies to a variable's text: the parsed value, or None once the problem is reported under
    ``label``. A value of another Python type is checked as its text: ``8000.0`` is no int."""
    rule = _Rule(kind, choices=choices, low=min, high=max)
    raw = value if isinstance(value, str) else _default_text(value, rule)
    try:
        if kind == "str" and not isinstance(value, str):
            raise _Invalid(f"not a string: {_shown(repr(value))}")
        if kind == "str" and not choices and not raw:
            return raw  # "" set in code is meant ("" for HOST: every address)
        if not raw.strip():
            raise _Invalid(f"empty ({_describe(rule)})")
        parsed = _PARSERS[kind](raw, rule)
        _check(parsed, raw, rule)
    except _Invalid as invalid:
        report(label, str(invalid), example)
        return None
    return parsed


def _problem(name, text, default, rule, example, help):
    """Record a problem during an evaluation (and carry on), or raise it outside of one."""
    variable = _declare(name, default, rule, example, help)
    report(name, text, _example_line(variable, rule))
    return _placeholder(rule) if default is MISSING else _default_value(default, rule)


def _placeholder(rule: _Rule):
    """What a reader returns for a required variable with a problem, during an evaluation: a
    value of its type, so the rest of runtime.py runs on and every other problem is reported
    too (the evaluation fails anyway)."""
    if rule.choices and rule.kind != "list":
        return rule.choices[0]
    if rule.kind in ("int", "float"):
        value = rule.low if rule.low is not None else rule.high if rule.high is not None else 0
        return float(value) if rule.kind == "float" else value
    if rule.kind == "path":
        from pathlib import Path

        return Path()
    return {"bool": False, "list": [], "json": None}.get(rule.kind, "")


def _declare(name, default, rule, example, help) -> Variable:
    required = default is MISSING
    text = None if required or rule.secret or default is None else _default_text(default, rule)
    if text is not None and _recorder is not None:
        text = _recorder.scrub(text)  # a default built from a secret read before
    if example is None:
        example = text if text is not None else _sample(rule)
    elif _recorder is not None:
        example = _recorder.scrub(str(example))
    choices = tuple(rule.choices) if rule.choices is not None else None
    return Variable(name, rule.kind if not rule.secret else "secret", text, required,
                    rule.secret, choices, rule.min_length, help, str(example))


def _example_line(variable: Variable, rule: _Rule) -> str:
    line = f"{variable.name}={variable.example}"
    if rule.choices:
        line += f"   (one of: {', '.join(map(str, rule.choices))})"
    return line


class _Invalid(ValueError):
    """A value that does not parse or check; its text is the problem shown to the user."""


def _shown(raw: str) -> str:
    text = repr(raw)
    return text if len(text) <= REPR_LIMIT else text[:REPR_LIMIT - 3] + "..."


def shown_number(value) -> str:
    """A number as a message quotes it: an integer of 4,000 digits is cut short too."""
    text = str(value)
    return text if len(text) <= REPR_LIMIT else f"{text[:REPR_LIMIT - 3]}... ({len(text)} digits)"


def _shown_url(raw: str) -> str:
    # A URL's user-info often holds a password: never show what comes before the host.
    text = raw.strip()
    if "@" in text:
        before, host = text.rsplit("@", 1)
        scheme = before.split("://", 1)[0] + "://" if "://" in before else ""
        text = f"{scheme}***@{host}"
    return _shown(text)


def _parse_int(raw: str, rule: _Rule) -> int:
    # int() alone would accept "4_000" and non-ASCII digits; a port is written in plain decimal.
    text = raw.strip()
    digits = text[1:] if text[0] in "+-" else text
    if not (digits.isascii() and digits.isdigit()):
        raise _Invalid(f"not an integer: {_shown(raw)}")
    if len(digits) > MAX_DIGITS:  # int() refuses them with a traceback
        raise _Invalid(f"an integer of {len(digits)} digits: too large")
    return int(text)


def _parse_float(raw: str, rule: _Rule) -> float:
    import math

    text = raw.strip()
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if "_" in text or not math.isfinite(value):
        raise _Invalid(f"not a number: {_shown(raw)}")
    return value


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def _parse_bool(raw: str, rule: _Rule) -> bool:
    text = raw.strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise _Invalid(f"not a boolean (true/false, 1/0, yes/no, on/off): {_shown(raw)}")


def _parse_list(raw: str, rule: _Rule) -> list:
    return [item.strip() for item in raw.split(rule.sep) if item.strip()]


def _parse_json(raw: str, rule: _Rule):
    import json

    try:
        return json.loads(raw)
    except ValueError as exc:
        where = f" at line {exc.lineno} column {exc.colno}" if hasattr(exc, "lineno") else ""
        reason = getattr(exc, "msg", "invalid")
        raise _Invalid(f"not valid JSON ({reason}{where}): {_shown(raw)}") from None


def _parse_url(raw: str, rule: _Rule) -> str:
    from urllib.parse import urlsplit

    text = raw.strip()
    try:
        parts = urlsplit(text)
        parts.port  # raises ValueError on a port that is not a number
    except ValueError:
        raise _Invalid(f"not a valid URL: {_shown_url(raw)}") from None
    # urlsplit reads "localhost:5432" as scheme "localhost": insist on "scheme://".
    if not parts.scheme or text.split("://", 1)[0].lower() != parts.scheme:
        raise _Invalid(f"not a URL (expected scheme://...): {_shown_url(raw)}")
    # "postgresql+psycopg" is a postgresql URL to SQLAlchemy, so the part before "+" counts.
    if rule.schemes and not {parts.scheme, parts.scheme.split("+")[0]} & set(rule.schemes):
        raise _Invalid(f"scheme {parts.scheme!r} is not one of: {', '.join(rule.schemes)}")
    return text


def _parse_path(raw: str, rule: _Rule):
    from pathlib import Path

    return Path(raw.strip())


def _parse_text(raw: str, rule: _Rule) -> str:
    return raw


_PARSERS = {"str": _parse_text, "int": _parse_int, "float": _parse_float, "bool": _parse_bool,
            "list": _parse_list, "json": _parse_json, "url": _parse_url, "path": _parse_path}


def _check(value, raw: str, rule: _Rule) -> None:
    """The constraints beyond the type: choices, bounds, length."""
    if rule.choices is not None:
        for item in value if rule.kind == "list" else [value]:
            if item not in rule.choices:
                allowed = ", ".join(map(str, rule.choices))
                raise _Invalid(f"not one of {allowed}: {_shown(str(item))}")
    if rule.low is not None and value < rule.low:
        raise _Invalid(f"must be {_range_text(rule)}, got {shown_number(value)}")
    if rule.high is not None and value > rule.high:
        raise _Invalid(f"must be {_range_text(rule)}, got {shown_number(value)}")
    if rule.min_length is not None and len(value) < rule.min_length:
        shown = "" if rule.secret else f": {_shown(raw)}"
        raise _Invalid(f"too short (needs {rule.min_length}, got {len(value)}){shown}")


def _range_text(rule: _Rule) -> str:
    if rule.low is not None and rule.high is not None:
        return f"between {rule.low} and {rule.high}"
    if rule.low is not None:
        return f"at least {rule.low}"
    return f"at most {rule.high}"


def _describe(rule: _Rule) -> str:
    """What a valid value is, for "missing (...)"."""
    if rule.secret:
        size = f" of at least {rule.min_length} characters" if rule.min_length else ""
        return f"a secret{size}"
    if rule.choices:
        return f"one of: {', '.join(map(str, rule.choices))}"
    if rule.kind in ("int", "float"):
        noun = "an integer" if rule.kind == "int" else "a number"
        bounded = rule.low is not None or rule.high is not None
        return f"{noun} {_range_text(rule)}" if bounded else noun
    if rule.kind == "url" and rule.schemes:
        return f"a {' or '.join(rule.schemes)} URL"
    if rule.kind == "str" and rule.min_length:
        return f"a string of at least {rule.min_length} characters"
    return _NOUNS[rule.kind].format(sep=rule.sep)


_NOUNS = {"str": "a string", "bool": "true or false", "list": "a list separated by '{sep}'",
          "json": "a JSON value", "url": "a URL", "path": "a path"}

_URL_EXAMPLES = {"https": "https://example.com", "http": "http://localhost:8000",
                 "postgresql": "postgresql://user:password@localhost:5432/app",
                 "postgres": "postgres://user:password@localhost:5432/app",
                 "mysql": "mysql://user:password@localhost:3306/app",
                 "sqlite": "sqlite:////var/lib/app/app.db",
                 "redis": "redis://localhost:6379/0", "amqp": "amqp://guest:guest@localhost//"}


def _sample(rule: _Rule) -> str:
    """A valid example value when neither an example nor a default was given."""
    if rule.secret:
        size = rule.min_length or 64
        arg = f" {size}" if size > 64 else ""
        return f"<{size}+ random characters; {GEN_SECRET.format(arg=arg)}>"
    if rule.choices:
        return str(rule.choices[0])
    if rule.kind in ("int", "float"):
        usual = 4000 if rule.kind == "int" else 0.5
        low_ok = rule.low is None or usual >= rule.low
        high_ok = rule.high is None or usual <= rule.high
        return str(usual if low_ok and high_ok else rule.low if not low_ok else rule.high)
    if rule.kind == "url":
        scheme = rule.schemes[0] if rule.schemes else "https"
        return _URL_EXAMPLES.get(scheme, f"{scheme}://localhost")
    samples = {"str": "value", "bool": "true", "list": f"a{rule.sep}b",
               "json": '{"key": "value"}', "path": "/var/lib/app"}
    return samples[rule.kind]


def _default_text(default, rule: _Rule) -> str:
    """A default as it would be written in the environment."""
    if rule.kind == "bool" and isinstance(default, bool):
        return "true" if default else "false"
    if rule.kind == "list" and isinstance(default, (list, tuple)):
        return rule.sep.join(map(str, default))
    if rule.kind == "json":
        import json

        return json.dumps(default)
    return str(default)


def _default_value(default, rule: _Rule):
    if rule.kind == "path" and isinstance(default, str):
        from pathlib import Path

        return Path(default)
    return default


class _Env:
    """The ``env`` readers. With no default a variable is required."""

    def __repr__(self) -> str:
        return "<twelve env readers: str int float bool list json url path secret>"

    def str(self, name, default=MISSING, *, choices=None, min_length=None, example=None,
            help=None):
        return _read(name, default, _Rule("str", choices=choices, min_length=min_length),
                     example, help)

    def int(self, name, default=MISSING, *, choices=None, min=None, max=None, example=None,
            help=None):
        return _read(name, default, _Rule("int", choices=choices, low=min, high=max),
                     example, help)

    def float(self, name, default=MISSING, *, min=None, max=None, example=None, help=None):
        return _read(name, default, _Rule("float", low=min, high=max), example, help)

    def bool(self, name, default=MISSING, *, example=None, help=None):
        return _read(name, default, _Rule("bool"), example, help)

    def list(self, name, default=MISSING, *, sep=",", choices=None, example=None, help=None):
        return _read(name, default, _Rule("list", choices=choices, sep=sep), example, help)

    def json(self, name, default=MISSING, *, example=None, help=None):
        return _read(name, default, _Rule("json"), example, help)

    def url(self, name, default=MISSING, *, schemes=None, example=None, help=None):
        schemes = tuple(schemes) if schemes else None
        return _read(name, default, _Rule("url", schemes=schemes), example, help)

    def path(self, name, default=MISSING, *, example=None, help=None):
        return _read(name, default, _Rule("path"), example, help)

    def secret(self, name, default=MISSING, *, min_length=None, example=None, help=None):
        return _read(name, default, _Rule("str", secret=True, min_length=min_length),
                     example, help)


env = _Env()
