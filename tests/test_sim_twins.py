"""The simulator drives devices through their twins; a real device in the site has none."""

from __future__ import annotations

from sim.scenario import parse_scenario
from sim.scenario_cli import run_simulated, validate

SCENARIO = """
spec: 1
name: keys typed on a keypad that is not simulated
site:
  panel: {id: p1, site: demo}
  users: [{name: alice, code: "1234", role: master}]
  zones: [{name: front_door, kind: entry}]
  devices: {keypad: "socket://127.0.0.1:9"}
steps:
  - press: "1234A"
"""


async def test_a_step_on_a_real_device_is_refused_with_the_reason() -> None:
    scenario = parse_scenario(SCENARIO, "real-keypad.yaml")
    data, source = validate(scenario)
    lines: list[str] = []
    outcome = await run_simulated(scenario, data, source, out=lines.append)
    assert not outcome.passed
    assert any(
        "could not be done: the panel's keypad is a real device, not a simulated one" in line
        for line in lines
    ), "\n".join(lines)
