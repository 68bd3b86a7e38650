"""Build-time configuration for TWELVE_ENV=prod (evaluated after config.py)."""
from twelve import config

config("hello", greeting="Hello")
