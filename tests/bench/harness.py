"""Shared pieces of the benchmark: a metric record, timing helpers, the table."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Metric:
    """One benchmark figure with the baseline measured in the same run.

    ``ratio`` is always ``value / baseline``: above 1 means more (faster for a
    rate, slower for a latency) than the baseline.
    """

    name: str
    value: float
    unit: str
    baseline: float | None = None
    target: str = ""
    extra: dict[str, float] = field(default_factory=dict)
    met: bool | None = None
    """Whether ``target`` was met (None: no target)."""

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline  # type: ignore[operator]

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "value": round(self.value, 4),
            "unit": self.unit,
            "baseline": None if self.baseline is None else round(self.baseline, 4),
            "ratio": None if self.ratio is None else round(self.ratio, 4),
        }
        if self.target:
            out["target"] = self.target
            out["met"] = self.met
        out.update({k: round(v, 4) for k, v in self.extra.items()})
        return out


def rate(fn: Callable[[], object], seconds: float = 1.0, batch: int = 200) -> float:
    """Calls of ``fn`` per second over about ``seconds`` of wall time (best of three)."""
    best = 0.0
    for _ in range(3):
        n = 0
        start = time.perf_counter()
        deadline = start + seconds / 3
        while True:
            for _ in range(batch):
                fn()
            n += batch
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, n / (now - start))
    return best


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 of ``samples``."""
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return p50, p99
