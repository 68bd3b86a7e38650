"""What a run measures, declared once per mode: repetitions, peers, durations.

Repetitions follow a warm-up that is discarded: for builds the warm-up of the warm and
incremental runs is the cold build itself (it fills the caches). The budget is this project's
machine (2 cores): ``full`` about 17 minutes, ``quick`` under 3, ``smoke`` (make test) under a
minute on the tiny app.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

PEERS = ("pyinstaller", "pex", "shiv", "venv")
GROUPS = ("build", "size", "launch", "control", "serving")  # serving includes memory
SLOW_PEERS = ("pyinstaller", "pex")  # about a minute or half a minute per build here


@dataclass(frozen=True)
class Plan:
    mode: str
    peers: tuple[str, ...] = PEERS
    cold: int = 2            # cold builds per tool (each with empty caches)
    cold_slow: int = 1       # ... for the slow peers
    warm: int = 3            # warm builds per tool (after the cold ones)
    warm_slow: int = 2
    incremental: int = 3
    incremental_slow: int = 2
    incremental_peers: int | None = None  # the peers' incremental builds, if not `incremental`
    variants: int = 2        # twelve's tar and assets builds
    assets_variant: bool = True  # also build the example as configured (assets.deploy step)
    launch: int = 5          # launch → first 200, per tool, after one warm-up launch
    control: int = 7         # each control command
    stops: int = 3           # stop → gone and restart → serving (each needs a node)
    wrk_seconds: float = 5.0
    wrk_rounds: int = 5      # alternating twelve / bare rounds per path (short, many: a busy
                             # machine's drift then hits both servers alike)
    wrk_connections: int = 8
    wrk_warmup: bool = True  # one discarded round per server and path first
    idle_seconds: float = 2.0
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    only: tuple[str, ...] = GROUPS  # the groups of metrics measured
    skipped: tuple[str, ...] = ()  # said in the results, plainly

    def builds(self, tool: str, kind: str) -> int:
        slow = tool in SLOW_PEERS
        if kind == "incremental" and tool != "twelve" and self.incremental_peers is not None:
            return self.incremental_peers
        return {"cold": self.cold_slow if slow else self.cold,
                "warm": self.warm_slow if slow else self.warm,
                "incremental": self.incremental_slow if slow else self.incremental}[kind]


FULL = Plan("full")
QUICK = Plan("quick", peers=("shiv", "venv"), cold=1, cold_slow=0, warm=1, warm_slow=0,
             incremental=1, incremental_slow=0, incremental_peers=0, variants=1,
             assets_variant=False, launch=2, control=3, stops=1, wrk_seconds=2.0, wrk_rounds=1,
             wrk_warmup=False, idle_seconds=1.0,
             skipped=("PyInstaller and pex: not built (about a minute and half a minute per "
                      "build here); run `make bench` for them",
                      "one build of each kind (the cold one is the warm-up); no incremental "
                      "build of the peers (a peer rebuilds everything: see `make bench`); "
                      "twelve's as-configured build (assets.deploy step) not measured; 2 "
                      "launches, 3 runs of each control command, one 2-second wrk round per "
                      "server and path without a warm-up round"))
SMOKE = Plan("smoke", peers=("venv",), cold=1, cold_slow=0, warm=1, warm_slow=0,
             incremental=1, incremental_slow=0, variants=1, launch=1, control=1, stops=1,
             wrk_seconds=1.0, wrk_rounds=1, wrk_connections=2, wrk_warmup=False,
             idle_seconds=0.3,
             skipped=("smoke run on the tiny app: one iteration of each metric, twelve and "
                      "venv only; the figures mean nothing",))
MODES = {"full": FULL, "quick": QUICK, "smoke": SMOKE}


def plan_for(mode: str, peers: tuple[str, ...] | None = None,
             only: tuple[str, ...] | None = None) -> Plan:
    """The mode's plan, narrowed to some peers and some groups of metrics. Without "build",
    each tool needed is built once, untimed; without "size" or "launch", only the venv
    baseline is built among the peers (control and serving compare with it)."""
    plan = MODES[mode]
    if only is not None and set(only) != set(GROUPS):
        plan = replace(plan, only=tuple(g for g in GROUPS if g in only),
                       skipped=plan.skipped + (f"only {', '.join(only)} measured "
                                               "(--only)",))
        if "build" not in only:
            plan = replace(plan, cold=0, cold_slow=0, warm=0, warm_slow=0, incremental=0,
                           incremental_slow=0, incremental_peers=0, assets_variant=False,
                           variants=1)
        if peers is None and not {"size", "launch"} & set(only):
            peers = ("venv",)
    if peers is not None:
        chosen = tuple(p for p in PEERS if p in peers)
        notes = [n for n in plan.skipped if not n.startswith("PyInstaller and pex")]
        slow = [p for p in SLOW_PEERS if p in chosen and plan.builds(p, "warm") == 0]
        if slow:
            notes.append(f"{', '.join(slow)}: one untimed build (for size, launch), no build "
                         "times in this mode")
        plan = replace(plan, peers=chosen, skipped=tuple(notes))
    return plan
