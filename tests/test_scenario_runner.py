"""The runner's semantics (event window, within, expect_not, result) against a scripted fake."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from common.clock import VirtualClock
from sim.report import exit_status, summary, write_junit
from sim.runner import Observed, ScenarioRun, field_matches
from sim.scenario import parse_scenario
from sim.site import SiteFacts

FACTS = SiteFacts("demo", "p1", {"alice": ("04A1",)}, {"alice": "master"}, {"door": "entry"}, ())


class FakeCloud:
    """Records commands and answers them at once, like a hub that is always quick."""

    def __init__(self, target: FakeTarget) -> None:
        self.events: list[dict[str, Any]] = []
        self.results: dict[str, dict[str, Any]] = {}
        self.target = target

    async def send(self, command: Mapping[str, Any]) -> bool:
        if command.get("action") == "arm":
            self.results[command["id"]] = {"id": command["id"], "ok": True, "state": "arming"}
            self.target.arm("app")
        else:
            self.results[command["id"]] = {"id": command["id"], "ok": False, "error": "bad_request"}
        return True


class FakeTarget:
    """A toy panel: ``A`` arms after a 10 s exit delay; the door alarms when armed."""

    def __init__(self) -> None:
        self.clock = VirtualClock(1_000_000)
        self.state = "disarmed"
        self.seq = 0
        self.facts = FACTS
        self.cloud = FakeCloud(self)
        self.virtual = True
        self.taken: list[str] = []

    def emit(self, kind: str, **fields: Any) -> None:
        self.seq += 1
        self.cloud.events.append(
            {"panel": "p1", "seq": self.seq, "type": kind, "cid": "3401", **fields}
        )

    def arm(self, method: str) -> None:
        self.state = "arming"
        self.emit("arming", method=method, mode="total")

        def armed() -> None:
            self.state = "armed_total"
            self.emit("armed", method=method, mode="total")

        self.clock.call_at(self.clock.now_ms() + 10_000, armed)

    async def press(self, keys: str) -> None:
        self.taken.append(keys)
        if keys.endswith("A"):
            self.arm("keypad")

    async def tap(self, uid: str) -> None:
        self.taken.append(uid)

    async def set_zone(self, zone: str, is_open: bool) -> None:
        if is_open and self.state == "armed_total":
            self.state = "triggered"
            self.emit("alarm", zone=zone)

    async def tamper(self, target: str) -> None:
        self.emit("tamper", zone=target)

    async def set_broker(self, up: bool) -> None:
        raise RuntimeError("no broker here")

    async def restart(self, which: str) -> None:
        self.taken.append(which)

    async def power(self, which: str, on: bool) -> None:
        self.taken.append(f"{which} {'on' if on else 'off'}")

    def observe(self) -> Observed:
        return Observed(self.state, self.state == "triggered", False)

    def now_ms(self) -> int:
        return self.clock.now_ms()

    async def settle(self) -> None:
        return None

    async def run_for(self, seconds: float, until: Callable[[], bool] | None) -> None:
        deadline = self.clock.now_ms() + round(seconds * 1000)
        while until is None or not until():
            nxt = self.clock.next_deadline()
            if nxt is None or nxt > deadline:
                await self.clock.advance_to(deadline)
                return
            await self.clock.advance_to(nxt)


async def run(text: str) -> tuple[Any, list[str], FakeTarget]:
    lines: list[str] = []
    target = FakeTarget()
    runner = ScenarioRun(parse_scenario(text, "s.yaml"), target, lines.append)  # type: ignore[arg-type]
    runner.grace_s = 0.0  # nothing is ever in flight in the fake
    outcome = await runner.run()
    return outcome, lines, target


async def test_a_good_scenario_passes_with_a_tick_per_step() -> None:
    outcome, lines, target = await run(
        "spec: 1\nname: arm\nsteps:\n"
        "  - press: '1234A'\n"
        "  - expect: {state: arming, event: {type: arming, method: keypad, cid: 3401}}\n"
        "  - expect_not: {state: armed_total, within: 9}\n"
        "  - expect: {state: armed_total, within: 2, event: {type: armed}}\n"
        "  - open: door\n"
        "  - expect: {state: triggered, siren: on, event: {type: alarm, zone: door}}\n"
    )
    assert outcome.passed, lines
    assert lines[0] == "s.yaml: arm"
    assert all(line.startswith("  ✓ steps[") for line in lines[1:-1])
    assert lines[-1] == "  ✓ events end to end: p1 seq 1..3 in order, no gaps"
    assert len(lines) == 8
    assert outcome.virtual_s == 10.0
    assert target.taken == ["1234A"]


async def test_within_stops_as_soon_as_it_holds_and_wait_lets_time_pass() -> None:
    outcome, _, target = await run(
        "spec: 1\nsteps:\n  - press: 'A'\n  - expect: {state: armed_total, within: 3600}\n"
        "  - wait: 3600\n"
    )
    assert outcome.passed
    assert target.now_ms() == 1_000_000 + 10_000 + 3_600_000


async def test_an_event_expectation_only_sees_events_since_the_last_action_step() -> None:
    outcome, lines, _ = await run(
        "spec: 1\nsteps:\n  - press: 'A'\n  - tamper: keypad\n  - expect: {event: {type: arming}}\n"
    )
    assert outcome.status == "failed"
    assert outcome.message.startswith("steps[2] expect: {event: {type: arming}}")
    text = "\n".join(lines)
    assert "✗ steps[2] expect: {event: {type: arming}}  (line 5)" in text
    assert "but:      no event {type: arming} on the cloud" in text
    assert "seen:     state arming, siren off, keypad unlocked" in text
    assert "events since steps[1] (on the cloud):" in text
    assert "#2 tamper zone=keypad" in text


async def test_a_failed_expectation_stops_the_run_and_says_what_was_seen() -> None:
    outcome, lines, _ = await run(
        "spec: 1\nsteps:\n  - press: 'A'\n  - expect: {state: armed_total, within: 5}\n"
        "  - press: '1234D'\n  - wait: 1\n"
    )
    assert outcome.status == "failed"
    text = "\n".join(lines)
    assert "expected: state: armed_total within 5 s" in text
    assert "but:      state is arming, not armed_total" in text
    assert "  - 2 steps not run" in text
    assert outcome.virtual_s == 5.0


async def test_expect_not_fails_when_the_thing_happens_within_its_time() -> None:
    outcome, lines, _ = await run(
        "spec: 1\nsteps:\n  - press: 'A'\n  - expect_not: {event: {type: armed}, within: 11}\n"
    )
    assert outcome.status == "failed"
    assert "expected not: event: {type: armed} within 11 s" in "\n".join(lines)
    assert outcome.virtual_s == 10.0


async def test_result_is_the_result_of_the_last_cloud_step() -> None:
    outcome, lines, _ = await run(
        "spec: 1\nsteps:\n"
        "  - cloud: {action: arm, mode: total, user: alice, via: app}\n"
        "  - expect: {result: {ok: true, state: arming}, event: {type: arming, method: app}}\n"
        "  - cloud: {action: fly, user: alice, via: app}\n"
        "  - expect: {result: {ok: true}}\n"
    )
    assert outcome.status == "failed"
    text = "\n".join(lines)
    assert "✓ steps[0] cloud: {action: arm, mode: total, user: alice, via: app}" in text
    assert "but:      result is {id: s2, ok: false, error: bad_request}" in text


async def test_an_action_that_cannot_be_done_fails_its_step() -> None:
    outcome, lines, _ = await run("spec: 1\nsteps:\n  - broker: stop\n")
    assert outcome.status == "failed"
    assert "could not be done: no broker here" in lines[1]


def test_fields_match_across_yaml_types() -> None:
    assert field_matches(3401, "3401")
    assert field_matches("total", "total")
    assert field_matches(None, None)
    assert not field_matches(None, "x")
    assert not field_matches(True, "true")
    assert field_matches(["a"], ["a"])
    assert not field_matches("on", True)


async def test_junit_and_summary(tmp_path: Any) -> None:
    good, _, _ = await run("spec: 1\nsteps:\n  - press: 'A'\n  - expect: {state: arming}\n")
    bad, _, _ = await run("spec: 1\nsteps:\n  - expect: {state: triggered}\n")
    assert exit_status([good]) == 0
    assert exit_status([good, bad]) == 1
    assert summary([good, bad], 1.0).startswith("scenarios: 1 passed, 1 failed in 1.0 s")
    out = tmp_path / "junit.xml"
    write_junit([good, bad], out)
    text = out.read_text()
    assert 'tests="2" failures="1" errors="0"' in text
    assert "<failure message=" in text
    assert "but:      state is disarmed, not triggered" in text


async def test_events_must_arrive_in_the_order_given() -> None:
    ok, _, _ = await run(
        "spec: 1\nsteps:\n  - press: 'A'\n  - expect:\n"
        "      events: [{type: arming, method: keypad}, {type: armed}]\n      within: 11\n"
    )
    assert ok.passed
    bad, lines, _ = await run(
        "spec: 1\nsteps:\n  - press: 'A'\n  - wait: 10\n"
        "  - expect: {events: [{type: armed}, {type: arming}]}\n"
    )
    assert bad.status == "failed"
    assert "no event {type: arming} after the ones before it" in "\n".join(lines)


async def test_a_gap_in_the_event_sequence_fails_the_scenario() -> None:
    target = FakeTarget()
    scenario = parse_scenario("spec: 1\nsteps:\n  - tamper: keypad\n  - tamper: keypad\n", "s")
    lines: list[str] = []
    runner = ScenarioRun(scenario, target, lines.append)  # type: ignore[arg-type]
    real_emit = target.emit

    def lossy(kind: str, **fields: Any) -> None:
        target.seq += 1  # one event lost on the way
        real_emit(kind, **fields)

    target.emit = lossy  # type: ignore[method-assign]
    outcome = await runner.run()
    assert outcome.status == "failed"
    assert lines[-1] == "  ✗ events end to end: p1 seq 2..4  — panel p1: seq 2 then 4"
