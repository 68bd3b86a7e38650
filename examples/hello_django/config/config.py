"""Build-time configuration, evaluated by `twelve release` and frozen into the release.
Never put secrets here: the values are written to releases/VSN/build_config.json."""
from twelve import config

config("hello_django", time_zone="UTC", language_code="en-us")
