"""The 12-factor server settings ``bin/NAME start`` reads: PORT, HOST, WEB_CONCURRENCY,
TWELVE_MAX_WORKERS, TWELVE_ACCESS_LOG, TWELVE_BOOT_TIMEOUT, TWELVE_WORKER_TIMEOUT, TWELVE_SERVER,
and ``graceful_timeout``.

Owns their declaration (key under ``config("twelve", ...)``, variable, reader, default, help),
the ceiling on worker processes, and what a HOST may be. Each setting is read through the typed
readers, so its problems join the app's in the one exit-78 list; a value set with
``config("twelve", key=...)`` wins over the variable, which is then not read, and is checked by
the same rule. Everything is checked before the node binds or forks anything: one typo in
WEB_CONCURRENCY must not fork a million processes, and no HOST may end in a traceback.
"""
from __future__ import annotations

import os
from collections import namedtuple

from twelve.runtime.config.env import check_value, env, report, shown_number

__all__ = ["read_server_settings", "default_max_workers", "host_problem"]

# The ceiling on worker processes when TWELVE_MAX_WORKERS is not set: WORKERS_PER_CPU for each
# CPU this process may run on, at least MIN_MAX_WORKERS (so a small machine still allows a few),
# at most MAX_MAX_WORKERS. TWELVE_MAX_WORKERS may set any ceiling up to WORKERS_LIMIT.
WORKERS_PER_CPU = 4
MIN_MAX_WORKERS = 8
MAX_MAX_WORKERS = 256
WORKERS_LIMIT = 1024
BOOT_TIMEOUT = 60.0     # seconds a boot may take (TWELVE_BOOT_TIMEOUT)
WORKER_TIMEOUT = 30.0   # seconds a silent worker lives on (TWELVE_WORKER_TIMEOUT), gunicorn's too
HOST_MAX_LENGTH = 253  # RFC 1035: a domain name, dots included
HOST_LABEL_MAX = 63
HOST_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")

TOO_MANY_WORKERS = ("{count} worker processes is more than the ceiling of {ceiling} "
                    "({why})")
CEILING_DEFAULT = "{per_cpu} per CPU, {cpus} CPU{s} here, at least {low}, at most {high}"
CEILING_SET = "set by {name}"
TOO_MANY_EXAMPLE = "WEB_CONCURRENCY={ceiling}   (or raise the ceiling: TWELVE_MAX_WORKERS={wanted})"
BAD_HOST = "not an IP address or host name: {shown}"
BAD_HOST_BRACKETS = "an IPv6 address is written without brackets: {shown}"
HOST_EXAMPLE = ("HOST=0.0.0.0   (every IPv4 address; :: for IPv6 too, 127.0.0.1 for this "
                "host only)")
CONFIG_HOST_EXAMPLE = 'config("twelve", host="0.0.0.0")'

# One server setting: its key under config("twelve", ...), its variable (None: set in code
# only), the reader and its options, the default, and the help `bin/NAME env` shows.
Setting = namedtuple("Setting", "key variable kind options default help example")

SETTINGS = (
    Setting("port", "PORT", "int", {"min": 1, "max": 65535}, 4000,
            "TCP port the server listens on", "4000"),
    Setting("host", "HOST", "str", {}, "0.0.0.0", "address the server binds to", "0.0.0.0"),
    Setting("web_concurrency", "WEB_CONCURRENCY", "int", {"min": 1}, 1,
            "number of server worker processes", "4"),
    Setting("max_workers", "TWELVE_MAX_WORKERS", "int", {"min": 1, "max": WORKERS_LIMIT}, None,
            f"the most worker processes WEB_CONCURRENCY may ask for (default: "
            f"{WORKERS_PER_CPU} per CPU, at least {MIN_MAX_WORKERS}, at most "
            f"{MAX_MAX_WORKERS})", "64"),
    Setting("access_log", "TWELVE_ACCESS_LOG", "bool", {}, False,
            "log every request on stdout", "true"),
    Setting("boot_timeout", "TWELVE_BOOT_TIMEOUT", "float", {"min": 1}, BOOT_TIMEOUT,
            "seconds the server (every worker) has to be ready; a boot that takes longer "
            "fails", "120"),
    Setting("worker_timeout", "TWELVE_WORKER_TIMEOUT", "float", {"min": 1}, WORKER_TIMEOUT,
            "seconds a worker may stop answering its supervisor before it is killed and "
            "replaced", "60"),
    Setting("graceful_timeout", None, "float", {"min": 0}, None, None, "30"),
)


def read_server_settings(settings: dict, web_servers: tuple[str, ...] = ()) -> None:
    """Fill ``settings`` (the "twelve" app's) with every server setting, each checked; with
    ``web_servers`` (the release's default server first), TWELVE_SERVER too."""
    declared = SETTINGS
    if web_servers:
        declared += (Setting("server", "TWELVE_SERVER", "str", {"choices": sorted(web_servers)},
                             web_servers[0], "the HTTP server (of those the release ships)",
                             web_servers[0]),)
    names = {s.key: _label(s.key) if s.key in settings else s.variable for s in declared}
    for setting in declared:
        value = _read(setting, settings, names[setting.key])
        if value is not None:
            settings[setting.key] = value
        elif setting.key in settings:  # set in code, wrongly: reported
            settings[setting.key] = setting.default
    _check_host(settings, names["host"])
    _check_workers(settings, names["web_concurrency"], names["max_workers"])
    if settings.get("graceful_timeout", 0) is None:
        del settings["graceful_timeout"]


def _read(setting: Setting, settings: dict, label: str):
    """The setting's value from the config (checked) or else from its variable (read)."""
    if setting.key in settings:
        return check_value(label, settings[setting.key], setting.kind, **setting.options,
                           example=f'config("twelve", {setting.key}={setting.example})')
    if setting.variable is None:
        return None
    reader = getattr(env, setting.kind)
    return reader(setting.variable, default=setting.default, help=setting.help,
                  **setting.options)


def _label(key: str) -> str:
    return f'config("twelve", {key}=...)'


def _check_host(settings: dict, name: str) -> None:
    problem = host_problem(settings["host"])
    if problem is not None:
        report(name, problem, HOST_EXAMPLE if name == "HOST" else CONFIG_HOST_EXAMPLE)
        settings["host"] = "0.0.0.0"


def _check_workers(settings: dict, name: str, ceiling_name: str) -> None:
    """WEB_CONCURRENCY within the ceiling (TWELVE_MAX_WORKERS, or the default one)."""
    ceiling, why = settings.get("max_workers"), CEILING_SET.format(name=ceiling_name)
    if ceiling is None:
        ceiling, why = default_max_workers()
        settings["max_workers"] = ceiling
    count = settings["web_concurrency"]
    if count > ceiling:
        report(name, TOO_MANY_WORKERS.format(count=shown_number(count), ceiling=ceiling,
                                             why=why), _workers_example(name, ceiling, count))
        settings["web_concurrency"] = 1


def _workers_example(name: str, ceiling: int, count: int) -> str:
    if name != "WEB_CONCURRENCY":
        return f'config("twelve", web_concurrency={ceiling})'
    if count > WORKERS_LIMIT:  # no ceiling allows it
        return f"WEB_CONCURRENCY={ceiling}"
    return TOO_MANY_EXAMPLE.format(ceiling=ceiling, wanted=count)


def default_max_workers() -> tuple[int, str]:
    """The ceiling on worker processes when none is set, and why it is that."""
    cpus = _usable_cpus()
    ceiling = min(MAX_MAX_WORKERS, max(MIN_MAX_WORKERS, WORKERS_PER_CPU * cpus))
    return ceiling, CEILING_DEFAULT.format(per_cpu=WORKERS_PER_CPU, cpus=cpus,
                                           s="" if cpus == 1 else "s", low=MIN_MAX_WORKERS,
                                           high=MAX_MAX_WORKERS)


def _usable_cpus() -> int:
    # The CPUs this process may run on (taskset, cpusets), not every CPU of the machine.
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def host_problem(host: str) -> str | None:
    """What is wrong with ``host`` as an address to bind, without asking a resolver: an IPv4
    or IPv6 address, or a host name (internationalised ones too); None when it may be one."""
    import socket

    shown = _shown_host(host)
    if host.startswith("[") and host.endswith("]"):
        return BAD_HOST_BRACKETS.format(shown=shown)
    address, _, zone = host.partition("%")  # fe80::1%eth0: an address on one interface
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, address)
        except (OSError, ValueError):
            continue
        if not zone or (family == socket.AF_INET6 and set(zone) <= HOST_CHARACTERS | {"."}):
            return None
    return None if _is_host_name(host) else BAD_HOST.format(shown=shown)


def _is_host_name(host: str) -> bool:
    if len(host) > 4 * HOST_MAX_LENGTH:  # no name this long encodes short enough; skip IDNA
        return False
    try:
        name = host.encode("idna").decode("ascii")
    except UnicodeError:  # an empty or overlong label, a character IDNA refuses
        return False
    labels = name[:-1].split(".") if name.endswith(".") else name.split(".")
    return (0 < len(name) <= HOST_MAX_LENGTH
            and all(0 < len(label) <= HOST_LABEL_MAX and set(label) <= HOST_CHARACTERS
                    and not label.startswith("-") and not label.endswith("-")
                    for label in labels))


def _shown_host(host: str) -> str:
    text = repr(host)
    return text if len(text) <= 40 else f"{text[:37]}... ({len(host)} characters)"
