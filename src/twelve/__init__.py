"""twelve: self-contained, 12-factor releases for Python web apps.

The public API an application and its ``config/*.py`` files use is re-exported from
``twelve.runtime`` (stdlib only), so the same ``import twelve`` works in development and inside
a release, where only ``twelve/__init__.py`` and ``twelve/runtime/`` are shipped.
"""
__all__ = ["config", "config_env", "env", "get_env", "stopping"]
__version__ = "0.1.0"

# Imported on first use (PEP 562): `bin/NAME pid`, `stop`, `rpc` import the package on their
# way to twelve.runtime and need none of this, and they are timed in milliseconds.
_API = {"config": "twelve.runtime.config.store", "config_env": "twelve.runtime.config.store",
        "env": "twelve.runtime.config.store", "get_env": "twelve.runtime.config.store",
        "stopping": "twelve.runtime.process.lifecycle"}


def __getattr__(name: str):
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'twelve' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
