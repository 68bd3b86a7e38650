"""twelve: self-contained, 12-factor releases for Python web apps.

The public API an application and its ``config/*.py`` files use is re-exported from
``twelve.runtime`` (stdlib only), so the same ``import twelve`` works in development and inside
a release, where only ``twelve/__init__.py`` and ``twelve/runtime/`` are shipped.
"""
from twelve.runtime.config import config, config_env, env, get_env
from twelve.runtime.lifecycle import stopping

__all__ = ["config", "config_env", "env", "get_env", "stopping"]
__version__ = "0.1.0"
