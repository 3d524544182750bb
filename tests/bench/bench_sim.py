"""Simulator figures: an hour of virtual time in a scenario, and `centinela sim` start-up.

- ``virtual_hour_s``: wall time of a 100-step scenario spanning one hour of
  virtual time (arm, wait, expect, disarm …). Baseline: the same 100 steps
  with every ``wait`` at 0, so the ratio is what virtual time itself costs.
- ``sim_start_s``: ``centinela sim --headless`` from exec to the first state
  the cloud stand-in receives. Baseline: mosquitto alone, exec to listening.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sim.broker import Mosquitto
from sim.lifeline import Supervised
from sim.scenario import parse_scenario
from sim.scenario_cli import run_simulated, validate
from tests.bench.harness import Metric

ROOT = Path(__file__).resolve().parents[2]


def hour_scenario(wait_s: float) -> str:
    """100 steps; with ``wait_s`` = 134 they span exactly one hour of virtual time."""
    steps = []
    for _ in range(25):
        steps += [
            '  - press: "1234A"',
            "  - expect: {state: armed_total, within: 11}",
            f"  - wait: {wait_s:g}",
            '  - press: "1234D"',
        ]
    return "spec: 1\nname: one virtual hour\nsteps:\n" + "\n".join(steps) + "\n"


async def _run_scenario(wait_s: float) -> tuple[float, float]:
    scenario = parse_scenario(hour_scenario(wait_s), "bench.yaml")
    data, source = validate(scenario)
    started = time.perf_counter()
    outcome = await run_simulated(scenario, data, source, out=lambda _line: None)
    elapsed = time.perf_counter() - started
    if not outcome.passed:
        raise RuntimeError(f"bench scenario failed: {outcome.message}")
    return elapsed, outcome.virtual_s


def _sim_start() -> float:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    started = time.perf_counter()
    proc = Supervised(
        [sys.executable, "-m", "centinela", "sim", "--headless", str(ROOT / "sim/sites/demo.toml")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "sim.main: state " in line:
                return time.perf_counter() - started
        raise RuntimeError("centinela sim exited before the cloud saw a state")
    finally:
        proc.terminate()
        proc.wait(10)


def _mosquitto_start() -> float:
    with tempfile.TemporaryDirectory():
        broker = Mosquitto()
        started = time.perf_counter()
        broker.start()
        elapsed = time.perf_counter() - started
        broker.close()
    return elapsed


async def run() -> list[Metric]:
    hour, virtual = await _run_scenario(134)
    flat, _ = await _run_scenario(0)
    starts = sorted(_sim_start() for _ in range(3))
    brokers = sorted(_mosquitto_start() for _ in range(3))
    return [
        Metric(
            "virtual_hour_s",
            hour,
            "s",
            baseline=flat,
            target="<= 5 s (100 steps, 1 h virtual)",
            extra={"virtual_s": virtual},
            met=hour <= 5,
        ),
        Metric(
            "sim_start_s", starts[1], "s", baseline=brokers[1], target="<= 3 s", met=starts[1] <= 3
        ),
    ]
