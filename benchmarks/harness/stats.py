"""Repeated measurements: a ``Sample`` of values with its median, min and max, and ratios."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Sample:
    """Values of one measurement, in ``unit`` ("s", "MB", "req/s", "files"...)."""

    unit: str
    values: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None

    @property
    def min(self) -> float | None:
        return min(self.values) if self.values else None

    @property
    def max(self) -> float | None:
        return max(self.values) if self.values else None

    def to_json(self) -> dict:
        return {"unit": self.unit, "values": self.values, "median": self.median,
                "min": self.min, "max": self.max, "n": len(self.values), "note": self.note}

    @classmethod
    def from_json(cls, data: dict) -> "Sample":
        return cls(data["unit"], list(data["values"]), data.get("note", ""))


def repeat(measure: Callable[[int], float], reps: int, warmup: int, unit: str = "s",
           note: str = "") -> Sample:
    """Call ``measure(i)`` ``warmup`` times (discarded), then ``reps`` times (kept)."""
    for i in range(warmup):
        measure(-1 - i)
    return Sample(unit, [measure(i) for i in range(reps)], note)


def stopwatch(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def ratio(value: float | None, baseline: float | None) -> float | None:
    if value is None or baseline is None or baseline == 0:
        return None
    return value / baseline
