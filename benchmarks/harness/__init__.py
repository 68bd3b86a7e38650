"""The benchmark harness behind ``benchmarks/bench.py``: twelve against PyInstaller (onedir), pex,
shiv and a plain venv + pip, on the same app, in the same run (issue 7).

Modules: ``plan`` (what a run measures, declared once per mode), ``workspace`` (the app copies,
caches and the clean environment every timed command gets), ``tools`` (how each tool builds and
serves the app), ``measure_*`` (one module per group of metrics), ``targets`` (issue 7's
point 4, evaluated), ``report`` and ``chart`` (latest.md, latest.json, latest.png).
"""
