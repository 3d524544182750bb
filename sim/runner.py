"""Runs a scenario's steps against a target (simulated site or rig) and judges the expectations."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sim.cloud import CloudStandIn
from sim.scenario import (
    Broker,
    Cloud,
    Conditions,
    Expect,
    Power,
    Press,
    Restart,
    Scenario,
    SetZone,
    Step,
    Tamper,
    Tap,
    Wait,
    describe_step,
    flow,
    resolve_tag,
)
from sim.site import SiteFacts

_LOGGER = logging.getLogger(__name__)

DELIVERY_WAIT_S = 2.0  # real seconds an expectation without `within` waits for in-flight news
RESULT_WAIT_S = 2.0  # real seconds a cloud step waits for its result before moving on


@dataclass(frozen=True, slots=True)
class Observed:
    """What the target shows now; None where it cannot tell."""

    state: str | None
    siren: bool | None
    locked: bool | None
    locked_until_ms: int | None = None
    open_zones: tuple[str, ...] = ()


class Target(Protocol):
    """What a scenario drives: the simulated site, or a real panel on a rig."""

    @property
    def facts(self) -> SiteFacts: ...

    @property
    def cloud(self) -> CloudStandIn: ...

    async def press(self, keys: str) -> None: ...

    async def tap(self, uid: str) -> None: ...

    async def set_zone(self, zone: str, is_open: bool) -> None: ...

    async def tamper(self, target: str) -> None: ...

    async def set_broker(self, up: bool) -> None: ...

    async def restart(self, which: str) -> None: ...

    async def power(self, which: str, on: bool) -> None: ...

    def observe(self) -> Observed: ...

    def now_ms(self) -> int: ...

    async def settle(self) -> None: ...

    async def run_for(self, seconds: float, until: Callable[[], bool] | None) -> None: ...


@dataclass
class StepOutcome:
    """One step as run: its text, tick or cross, and what was seen on a failure."""

    index: int
    line: int | None
    text: str
    ok: bool
    note: str = ""
    detail: list[str] = field(default_factory=list)


@dataclass
class ScenarioOutcome:
    """The whole run of one scenario file."""

    path: str
    name: str
    status: str  # passed | failed | error | malformed
    steps: list[StepOutcome] = field(default_factory=list)
    message: str = ""
    seconds: float = 0.0
    virtual_s: float = 0.0
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def field_matches(expected: object, actual: object) -> bool:
    """True when an expected field value matches the observed one (YAML numbers match strings)."""
    if expected == actual and type(expected) is type(actual):
        return True
    if expected is None or actual is None or isinstance(expected, bool) or isinstance(actual, bool):
        return expected == actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return expected == actual
    if isinstance(expected, list | tuple) and isinstance(actual, list | tuple):
        return len(expected) == len(actual) and all(map(field_matches, expected, actual))
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        return includes(actual, expected)
    return str(expected) == str(actual)


def includes(actual: Mapping[str, Any], expected: Mapping[str, Any]) -> bool:
    """True when every expected field is in ``actual`` with a matching value (absent = null)."""
    return all(field_matches(v, actual.get(k)) for k, v in expected.items())


def in_order(events: Sequence[Mapping[str, Any]], wanted: Sequence[Mapping[str, Any]]) -> int:
    """How many of ``wanted`` are found in ``events`` in that order (others may come between)."""
    found = 0
    for event in events:
        if found < len(wanted) and includes(event, wanted[found]):
            found += 1
    return found


def event_line(event: Mapping[str, Any]) -> str:
    """An event in one short line: seq, type and who/how/where."""
    parts = [f"#{event.get('seq', '?')} {event.get('type', '?')}"]
    for key in ("mode", "user", "method", "zone", "tag", "photo", "detail", "cid", "sia"):
        if event.get(key) not in (None, ""):
            parts.append(f"{key}={event[key]}")
    return " ".join(parts)


def observed_line(seen: Observed, now_ms: int) -> str:
    """State, siren, lockout and open zones in one line."""
    parts = [f"state {seen.state or '?'}"]
    parts.append("siren ?" if seen.siren is None else f"siren {'on' if seen.siren else 'off'}")
    if seen.locked:
        left = ""
        if seen.locked_until_ms is not None:
            left = f" ({max(0, seen.locked_until_ms - now_ms) / 1000:g} s left)"
        parts.append(f"keypad locked{left}")
    elif seen.locked is not None:
        parts.append("keypad unlocked")
    parts.append(f"open zones: {', '.join(seen.open_zones) or 'none'}")
    return ", ".join(parts)


class ScenarioRun:
    """Runs one scenario's steps in order against ``target``, stopping at the first failure."""

    def __init__(self, scenario: Scenario, target: Target, out: Callable[[str], None]) -> None:
        self.scenario = scenario
        self.target = target
        self.out = out
        self.window_start = 0  # index into cloud.events: start of the latest action step
        self.window_step: int | None = None
        self.last_cloud_id: str | None = None
        self.grace_s = DELIVERY_WAIT_S

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.target.cloud.events

    async def run(self) -> ScenarioOutcome:
        """Every step, one output line each; the outcome says passed or failed."""
        outcome = ScenarioOutcome(self.scenario.path, self.scenario.name, "passed")
        started, start_ms = time.perf_counter(), self.target.now_ms()
        self.out(f"{self.scenario.path}: {self.scenario.name}")
        for index, step in enumerate(self.scenario.steps):
            line = self.scenario.lines[index] if index < len(self.scenario.lines) else None
            step_outcome = await self._step(index, line, step)
            outcome.steps.append(step_outcome)
            self._print(step_outcome)
            if not step_outcome.ok:
                outcome.status = "failed"
                outcome.message = f"steps[{index}] {step_outcome.text}: {step_outcome.note}"
                left = len(self.scenario.steps) - index - 1
                if left:
                    self.out(f"  - {left} step{'s' if left > 1 else ''} not run")
                break
        if outcome.passed:
            check = self._sequence_check()
            outcome.steps.append(check)
            self._print(check)
            if not check.ok:
                outcome.status = "failed"
                outcome.message = check.note
        outcome.seconds = time.perf_counter() - started
        if getattr(self.target, "virtual", False):
            outcome.virtual_s = (self.target.now_ms() - start_ms) / 1000
        outcome.events = list(self.events)
        return outcome

    def _sequence_check(self) -> StepOutcome:
        """Every panel's events reached the cloud in seq order, without gaps (CONTRACT §5)."""
        last: dict[str, int] = {}
        first: dict[str, int] = {}
        repeats = 0
        problems: list[str] = []
        for event in self.events:
            panel, seq = str(event.get("panel")), event.get("seq")
            if not isinstance(seq, int):
                problems.append(f"event without a seq: {event_line(event)}")
                continue
            if panel in last and seq <= last[panel]:
                repeats += 1  # a broker may redeliver a QoS 1 message; a real cloud dedups
                continue
            if panel in last and seq != last[panel] + 1:
                problems.append(f"panel {panel}: seq {last[panel]} then {seq}")
            first.setdefault(panel, seq)
            last[panel] = seq
        text = "events end to end: " + (
            ", ".join(f"{p} seq {first[p]}..{last[p]}" for p in sorted(last)) or "none"
        )
        note = f"{repeats} redelivered" if repeats else ""
        if problems:
            return StepOutcome(len(self.scenario.steps), None, text, False, "; ".join(problems))
        return StepOutcome(len(self.scenario.steps), None, text + " in order, no gaps", True, note)

    def _print(self, step: StepOutcome) -> None:
        mark = "✓" if step.ok else "✗"
        where = f"  (line {step.line})" if step.line and not step.ok else ""
        note = f"  — {step.note}" if step.note and (step.ok or not step.detail) else ""
        label = f"steps[{step.index}] " if step.index < len(self.scenario.steps) else ""
        self.out(f"  {mark} {label}{step.text}{note}{where}")
        for text in step.detail:
            self.out(f"      {text}")

    async def _step(self, index: int, line: int | None, step: Step) -> StepOutcome:
        text = describe_step(step)
        if isinstance(step, Expect):
            return await self._expect(index, line, text, step)
        self.window_start = len(self.events)
        self.window_step = index
        try:
            note = await self._act(index, step)
        except Exception as exc:
            _LOGGER.debug("step %d failed", index, exc_info=True)
            return StepOutcome(index, line, text, False, f"could not be done: {exc}")
        return StepOutcome(index, line, text, True, note)

    async def _act(self, index: int, step: Step) -> str:
        target = self.target
        match step:
            case Press(keys):
                await target.press(keys)
            case Tap(who):
                await target.tap(resolve_tag(who, target.facts.users))
            case SetZone(zone, is_open):
                await target.set_zone(zone, is_open)
            case Tamper(name):
                await target.tamper(name)
            case Wait(seconds):
                await target.run_for(seconds, None)
                return ""
            case Cloud(command):
                return await self._cloud(index, command)
            case Broker(up):
                await target.set_broker(up)
            case Restart(which):
                await target.restart(which)
            case Power(which, on):
                await target.power(which, on)
        await target.settle()
        return ""

    async def _cloud(self, index: int, command: Mapping[str, Any]) -> str:
        cmd = dict(command)
        cmd.setdefault("id", f"s{index}")
        cmd.setdefault("panel", self.target.facts.panel)
        cloud = self.target.cloud
        self.last_cloud_id = str(cmd["id"])
        cloud.results.pop(self.last_cloud_id, None)
        if not await cloud.send(cmd):
            return "not sent: the cloud broker is unreachable"
        # A command is taken in once the hub answers; wait a little so the next step sees it.
        deadline = time.monotonic() + RESULT_WAIT_S
        while self.last_cloud_id not in cloud.results and time.monotonic() < deadline:
            await self.target.settle()
            if self.last_cloud_id not in cloud.results:
                await asyncio.sleep(0.005)
        result = cloud.results.get(self.last_cloud_id)
        return f"result {flow(result)}" if result else "no result yet"

    # -- expectations -------------------------------------------------------------------

    def mismatches(self, cond: Conditions, events: Sequence[Mapping[str, Any]]) -> list[str]:
        """What does not hold now (empty when everything does)."""
        seen = self.target.observe()
        wrong: list[str] = []
        if cond.state is not None and seen.state != cond.state.value:
            wrong.append(f"state is {seen.state}, not {cond.state.value}")
        if cond.siren is not None and seen.siren != cond.siren:
            wrong.append(f"siren is {_onoff(seen.siren)}, not {_onoff(cond.siren)}")
        if cond.locked is not None and seen.locked != cond.locked:
            wrong.append(f"keypad locked is {_tf(seen.locked)}, not {_tf(cond.locked)}")
        if cond.result is not None:
            result = self.target.cloud.results.get(self.last_cloud_id or "")
            if self.last_cloud_id is None:
                wrong.append("no cloud step before this expectation")
            elif result is None:
                wrong.append(f"no result yet for command {self.last_cloud_id}")
            elif not includes(result, cond.result):
                wrong.append(f"result is {flow(result)}")
        if cond.event is not None and not any(includes(e, cond.event) for e in events):
            wrong.append(f"no event {flow(cond.event)} on the cloud")
        if cond.events is not None:
            found = in_order(events, cond.events)
            if found < len(cond.events):
                wrong.append(f"no event {flow(cond.events[found])} after the ones before it")
        return wrong

    async def _expect(self, index: int, line: int | None, text: str, step: Expect) -> StepOutcome:
        target, cond = self.target, step.conditions

        def window() -> list[dict[str, Any]]:
            return self.events[self.window_start :]

        def holds() -> bool:
            return not self.mismatches(cond, window())

        await target.settle()
        if step.negate:
            # Fails as soon as everything it names holds at once.
            if step.within is not None and not holds():
                await target.run_for(step.within, holds)
            if holds():
                return self._failure(index, line, text, step, ["all of it happened"])
            return StepOutcome(index, line, text, True)
        if not holds() and step.within is not None:
            await target.run_for(step.within, holds)
        if not holds():
            # Whatever is still in flight gets a short real-time grace, never simulated time.
            deadline = time.monotonic() + self.grace_s
            while not holds() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
                await target.settle()
        wrong = self.mismatches(cond, window())
        if wrong:
            return self._failure(index, line, text, step, wrong)
        return StepOutcome(index, line, text, True)

    def _failure(
        self, index: int, line: int | None, text: str, step: Expect, wrong: list[str]
    ) -> StepOutcome:
        target = self.target
        seen = target.observe()
        detail = [
            f"expected{' not' if step.negate else ''}: {step.conditions.describe()}"
            + (f" within {step.within:g} s" if step.within is not None else ""),
            f"but:      {'; '.join(wrong)}",
            f"seen:     {observed_line(seen, target.now_ms())}",
        ]
        if self.last_cloud_id is not None:
            result = target.cloud.results.get(self.last_cloud_id)
            detail.append(f"result:   {flow(result) if result else 'none'} ({self.last_cloud_id})")
        since = f"since steps[{self.window_step}]" if self.window_step is not None else "so far"
        window = self.events[self.window_start :]
        if window:
            detail.append(f"events {since} (on the cloud):")
            detail.extend(f"  {event_line(e)}" for e in window[-8:])
        else:
            detail.append(f"events {since}: none on the cloud")
            earlier = self.events[-3:]
            if earlier:
                detail.append("last events before that:")
                detail.extend(f"  {event_line(e)}" for e in earlier)
        return StepOutcome(index, line, text, False, "; ".join(wrong), detail)


def _onoff(value: bool | None) -> str:
    return "?" if value is None else ("on" if value else "off")


def _tf(value: bool | None) -> str:
    return "?" if value is None else str(value).lower()
