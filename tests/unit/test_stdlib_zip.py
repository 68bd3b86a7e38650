"""What every control command imports of the standard library ships beside the zip, as .pyc
files: ``stdlib.HOT`` must name (by its top-level name) each standard-library module that the
client of rpc/stop/restart, the runtime config's evaluation and a typical runtime.py import, or
that command reads and inflates it from the zip at every run."""
import os
import subprocess
import sys
import sysconfig

from twelve.builder import stdlib

# What bin/NAME rpc, eval, stop and restart import, and what runtime.py commonly does.
COMMAND_PATH = ("twelve.runtime.boot", "twelve.runtime.commands", "twelve.runtime.control.remote",
                "twelve.runtime.system", "twelve.runtime.evaluation",
                "twelve.runtime.config.store", "twelve.runtime.config.envfile",
                "pathlib", "urllib.parse", "json")
PROBE = f"""
import sys
before = set(sys.modules)
for name in {COMMAND_PATH!r}:
    __import__(name)
for name in sorted(set(sys.modules) - before):
    spec = getattr(sys.modules[name], "__spec__", None)
    origin = getattr(spec, "origin", None) or ""
    if origin.endswith(".py") and origin.startswith({sysconfig.get_paths()["stdlib"]!r} + "/"):
        print(name)
"""


def test_hot_holds_every_standard_library_module_of_the_command_path():
    # The interpreter's own start (encodings, from the zip) is imported before the probe looks:
    # it is in the floor every command is measured against.
    imported = subprocess.run([sys.executable, "-E", "-s", "-c", PROBE], check=True,
                              capture_output=True, text=True).stdout.split()
    assert imported, "the probe found no standard library module: it is broken"
    assert {name.split(".")[0] for name in imported} - stdlib.HOT == set()


def test_hot_names_only_top_level_modules_of_the_standard_library():
    root = sysconfig.get_paths()["stdlib"]
    for name in stdlib.HOT:
        assert "." not in name, name
        path = os.path.join(root, name)
        assert os.path.isfile(path + ".py") or os.path.isfile(path + "/__init__.py"), name
