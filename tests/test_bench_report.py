"""`make bench` says whether each target held, and fails when one did not."""

from __future__ import annotations

import pytest

from tests.bench.__main__ import print_table, verdict
from tests.bench.harness import Metric


def test_a_missed_target_is_named_and_fails_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    metrics = [
        Metric("fast_ms", 1.0, "ms", 0.5, "<= 2 ms", met=True),
        Metric("slow_ms", 9.0, "ms", 0.5, "<= 2 ms", met=False),
        Metric("info_ms", 3.0, "ms", 1.0),  # no target: no verdict
    ]
    print_table(metrics)
    assert verdict(metrics, []) == 1
    out, err = capsys.readouterr()
    rows = {line.split()[0]: line + " " for line in out.splitlines() if line.strip()}
    assert " yes " in rows["fast_ms"] and " NO " in rows["slow_ms"] and " - " in rows["info_ms"]
    assert "targets missed: slow_ms" in err


def test_every_target_met_exits_0_and_a_broken_benchmark_does_not(
    capsys: pytest.CaptureFixture[str],
) -> None:
    metrics = [Metric("fast_ms", 1.0, "ms", 0.5, "<= 2 ms", met=True)]
    assert verdict(metrics, []) == 0
    assert "every target met (1)" in capsys.readouterr().err
    assert verdict(metrics, ["bench_link"]) == 1
