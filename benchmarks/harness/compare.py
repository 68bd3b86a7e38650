"""Two runs side by side (``bench.py --diff OLD.json [NEW.json]``): every target, and twelve's
own medians, before and after — how the lead sees what a change did. Both runs' machines and
load averages are printed too: a ratio moves with a busy machine as well as with the code."""
from __future__ import annotations

import json
from pathlib import Path

from harness.report import _with_unit, seconds

TWELVE_FIGURES = (("cold build", ("build", "twelve", "cold")),
                  ("warm rebuild", ("build", "twelve", "warm")),
                  ("incremental rebuild", ("build", "twelve", "incremental")),
                  ("warm rebuild + tar", ("build", "twelve_tar", "warm")),
                  ("launch → first 200", ("launch", "twelve")),
                  ('rpc "1 + 1"', ("control", 'rpc "1 + 1"')),
                  ("pid", ("control", "pid")),
                  ('eval "1 + 1"', ("control", 'eval "1 + 1"')),
                  ("stop → gone", ("control", "stop → gone (idle)")),
                  ("restart → serving", ("control", "restart → serving again")))


def _median(results: dict, path: tuple[str, ...]) -> float | None:
    node = results
    for key in path:
        node = node.get(key, {}) if isinstance(node, dict) else {}
    return node.get("median") if isinstance(node, dict) else None


def compare(old_path: Path, new_path: Path) -> str:
    old, new = (json.loads(Path(p).read_text()) for p in (old_path, new_path))
    lines = [f"{'':52} {'before':>14} {'after':>14}  change"]
    for label, results in (("after", new), ("before", old)):
        meta = results["meta"]
        load = results.get("load", [[0], [0]])
        lines.insert(0, f"{label}: {meta['mode']} run of {meta['started']} UTC, twelve "
                        f"{meta['versions'].get('twelve')}, load {load[0][0]:.1f} → "
                        f"{load[-1][0]:.1f}")
    lines.append("targets:")
    before = {t["key"]: t for t in old.get("targets", [])}
    for t in new.get("targets", []):
        was = before.get(t["key"], {})
        lines.append(_row(t["target"], was.get("measured"), t["measured"], t["unit"],
                          f"{_state(was.get('met'))} → {_state(t['met'])}"))
    lines.append("twelve's medians:")
    for label, path in TWELVE_FIGURES:
        a, b = _median(old, path), _median(new, path)
        lines.append(_row(label, a, b, "s", f"{b / a:.2f}×" if a and b else ""))
    return "\n".join(lines)


def _row(label: str, a, b, unit: str, change: str) -> str:
    show = (lambda v: "—" if v is None else (seconds(v) if unit == "s" else _with_unit(v, unit)))
    return f"  {label:<50} {show(a):>14} {show(b):>14}  {change}"


def _state(met) -> str:
    return {True: "met", False: "NOT", None: "—"}[met]
