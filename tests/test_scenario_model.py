"""Scenario files: each step type parses to its typed step; mistakes name file, step, reason."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from common.errors import ConfigError
from protocol.messages import State
from sim.scenario import (
    Broker,
    Cloud,
    Conditions,
    Expect,
    Power,
    Press,
    Restart,
    SetZone,
    Tamper,
    Tap,
    Wait,
    check_against_site,
    describe_step,
    load_scenario,
    parse_scenario,
    resolve_tag,
)

SCENARIOS = Path(__file__).parent.parent / "sim" / "scenarios"

GOOD = """\
spec: 1
name: every step
steps:
  - press: "1234A"
  - tap: alice
  - open: front_door
  - close: front_door
  - tamper: keypad
  - wait: 30
  - cloud: {action: arm, mode: night, user: alice, via: app}
  - broker: stop
  - broker: start
  - restart: panel
  - restart: hub
  - stop: panel
  - start: panel
  - expect: {state: armed_total, siren: on, locked: false, within: 2}
  - expect: {result: {ok: true}, event: {type: armed, user: alice}}
  - expect_not: {event: {type: alarm}, within: 60}
  - expect: {siren: "off"}
"""


def test_every_step_type_parses_to_its_typed_step() -> None:
    scenario = parse_scenario(GOOD, "good.yaml")
    assert scenario.name == "every step"
    assert scenario.site is None
    assert scenario.steps[:13] == (
        Press("1234A"),
        Tap("alice"),
        SetZone("front_door", True),
        SetZone("front_door", False),
        Tamper("keypad"),
        Wait(30.0),
        Cloud({"action": "arm", "mode": "night", "user": "alice", "via": "app"}),
        Broker(False),
        Broker(True),
        Restart("panel"),
        Restart("hub"),
        Power("panel", False),
        Power("panel", True),
    )
    steps = scenario.steps[2:]  # the two extension steps shift the rest
    assert steps[11] == Expect(
        Conditions(state=State.ARMED_TOTAL, siren=True, locked=False), within=2.0
    )
    assert steps[12] == Expect(
        Conditions(result={"ok": True}, event={"type": "armed", "user": "alice"})
    )
    assert steps[13] == Expect(Conditions(event={"type": "alarm"}), 60.0, negate=True)
    assert steps[14] == Expect(Conditions(siren=False))
    assert scenario.lines[0] == 4
    assert scenario.lines[16] == 20


def test_steps_describe_themselves_as_written() -> None:
    scenario = parse_scenario(GOOD, "good.yaml")
    assert describe_step(scenario.steps[0]) == 'press: "1234A"'
    assert describe_step(scenario.steps[11]) == "stop: panel"
    assert describe_step(scenario.steps[13]) == (
        "expect: {state: armed_total, siren: on, locked: false, within: 2}"
    )
    assert describe_step(scenario.steps[15]) == "expect_not: {event: {type: alarm}, within: 60}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "spec: 1\nsteps:\n  - press: '1'\n  - tap: a\n  - wait: 1\n  - presss: '1'\n",
            "s.yaml: steps[3]: unknown step \"presss\" (did you mean 'press'?) (line 6)",
        ),
        ("steps:\n  - press: '1'\n", "s.yaml: spec: missing: write spec: 1 at the top"),
        ("spec: 2\nsteps: [{wait: 1}]\n", "s.yaml: spec: unsupported version '2'"),
        ("spec: 1\nsteps: []\n", "s.yaml: steps: expected a non-empty list of steps"),
        ("spec: 1\nsteps:\n  - press: 1234\n", "s.yaml: steps[0].press: quote the keys"),
        ("spec: 1\nsteps:\n  - press: '12x4'\n", "s.yaml: steps[0].press: not a keypad key: 'x'"),
        ("spec: 1\nsteps:\n  - wait: soon\n", "s.yaml: steps[0].wait: expected a number"),
        ("spec: 1\nsteps:\n  - wait: -1\n", "s.yaml: steps[0].wait: must be at least 0"),
        (
            "spec: 1\nsteps:\n  - broker: reboot\n",
            "s.yaml: steps[0].broker: expected stop or start",
        ),
        (
            "spec: 1\nsteps:\n  - restart: cloud\n",
            "s.yaml: steps[0].restart: expected panel or hub",
        ),
        ("spec: 1\nsteps:\n  - expect: {}\n", "s.yaml: steps[0].expect: nothing to check"),
        ("spec: 1\nsteps:\n  - expect: {stat: armed}\n", 'unknown condition "stat"'),
        ("spec: 1\nsteps:\n  - expect: {state: armed}\n", "steps[0].expect.state: unknown state"),
        ("spec: 1\nsteps:\n  - expect: {siren: loud}\n", "steps[0].expect.siren: expected"),
        ("spec: 1\nsteps:\n  - expect: {locked: 1}\n", "steps[0].expect.locked: expected true"),
        ("spec: 1\nsteps:\n  - expect: {event: {type: armd}}\n", "unknown event type 'armd'"),
        (
            "spec: 1\nsteps:\n  - expect_not: {event: {type: alarm, zome: hall_pir}, within: 5}\n",
            "steps[0].expect_not.event.zome: unknown field (known: ",
        ),
        (
            "spec: 1\nsteps:\n  - expect_not: {event: {zome: x}, within: 5}\n",
            "did you mean 'zone'?",
        ),
        ("spec: 1\nsteps:\n  - expect: {event: {type: armed, usr: alice}}\n", "mean 'user'?"),
        ("spec: 1\nsteps:\n  - expect: {result: {okay: true}}\n", "result.okay: unknown field"),
        ("spec: 1\nsteps:\n  - expect: {events: [{tipe: armed}]}\n", "events[0].tipe: unknown"),
        ("spec: 1\nsteps:\n  - expect: {state: disarmed, within: 0}\n", "within: must be above 0"),
        ("spec: 1\nsteps:\n  - {press: '1', wait: 1}\n", "steps[0]: a step is a mapping"),
        ("spec: 1\nsteps:\n  - cloud: arm\n", "steps[0].cloud: expected the command"),
        ("spec: 1\nsite: demo\nsteps: [{wait: 1}]\n", "s.yaml: site: expected a mapping"),
        ("spec: 1\nstep: []\n", "s.yaml: step: unknown key"),
        ("- just a list\n", "s.yaml: a scenario is a mapping"),
        ("spec: 1\nsteps:\n  - press: '1\n", "s.yaml: YAML syntax error at line"),
        ("spec: 1\nsteps:\n  - {press: '1'\n", "s.yaml: YAML syntax error at line 4"),
    ],
)
def test_malformed_files_name_file_step_and_reason(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_scenario(text, "s.yaml")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_yaml_booleans_on_and_off_mean_siren_on_and_off() -> None:
    steps = parse_scenario(
        "spec: 1\nsteps:\n  - expect: {siren: on}\n  - expect: {siren: off}\n", "s"
    )
    assert [s.conditions.siren for s in steps.steps if isinstance(s, Expect)] == [True, False]


def test_names_are_checked_against_the_site() -> None:
    users = {"alice": ("04A1B2C3D4E5F6",), "nobody": ()}
    zones = {"front_door"}
    ok = parse_scenario(
        "spec: 1\nsteps:\n  - tap: alice\n  - tap: 04aabbccdd\n  - tamper: keypad\n", "s"
    )
    check_against_site(ok, users, zones)
    for step, message in [
        ("tap: bob", "steps[0].tap: no user 'bob' in the site"),
        ("tap: nobody", "steps[0].tap: user 'nobody' has no tag"),
        ("open: back_door", "steps[0].open: no zone 'back_door'"),
        ("close: back_door", "steps[0].close: no zone 'back_door'"),
        ("tamper: box", "steps[0].tamper: no zone 'box'"),
    ]:
        scenario = parse_scenario(f"spec: 1\nsteps:\n  - {step}\n", "s.yaml")
        with pytest.raises(ConfigError) as info:
            check_against_site(scenario, users, zones)
        assert message in str(info.value)
    assert resolve_tag("alice", users) == "04A1B2C3D4E5F6"
    assert resolve_tag("04aabbccdd", users) == "04AABBCCDD"


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_scenario(tmp_path / "nope.yaml")


def test_the_bundled_library_parses_and_covers_every_step_type() -> None:
    files = sorted(SCENARIOS.glob("*.yaml"))
    assert len(files) >= 25
    kinds: set[str] = set()
    for path in files:
        scenario = load_scenario(path)
        for step in scenario.steps:
            kinds.add(describe_step(step).split(":")[0])
    assert kinds >= {"press", "tap", "open", "close", "tamper", "wait", "cloud", "broker"}
    assert kinds >= {"restart", "expect", "expect_not"}


def test_every_field_of_a_cloud_event_can_be_checked() -> None:
    """A scenario may name any field the cloud event has, and only those."""
    from hub.cloudapi import EVENT_FIELDS, RESULT_FIELDS, event_json, result_json
    from protocol.messages import ErrorCode, Event, EventType, Method, Mode, Result, State

    event = Event(
        7, 1_000, EventType.ARMED, Method.TAG, cid="3401", sia="CL", mode=Mode.TOTAL,
        user="alice", zone="z", tag="04A1B2C3", photo="p1-7", detail="d", clock_unsynced=True,
    )  # fmt: skip
    keys = set(event_json("demo", "p1", event, received_ms=2_000))
    for media in (EventType.CLIP_READY, EventType.LISTEN_ENDED):  # their id is "clip", "audio"
        keys |= set(event_json("demo", "p1", dataclasses.replace(event, type=media)))
    assert keys == EVENT_FIELDS
    result = Result("c1", False, state=State.DISARMED, error=ErrorCode.FORBIDDEN, detail="x")
    assert set(result_json(result, "p1")) == RESULT_FIELDS
