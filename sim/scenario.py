"""Scenario files (CONTRACT §6): typed steps loaded from YAML, errors naming file, step, reason."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from common.errors import ConfigError
from drivers.reports import KEYS
from hub.cloudapi import EVENT_FIELDS, RESULT_FIELDS
from protocol.messages import EventType, State
from sim.steps import (
    Broker,
    Cloud,
    Conditions,
    Expect,
    Power,
    Press,
    Restart,
    SetZone,
    Step,
    Tamper,
    Tap,
    Wait,
    describe_step,
    flow,
)

__all__ = [
    "Broker",
    "Cloud",
    "Conditions",
    "Expect",
    "Power",
    "Press",
    "Restart",
    "Scenario",
    "SetZone",
    "Step",
    "Tamper",
    "Tap",
    "Wait",
    "check_against_site",
    "describe_step",
    "flow",
    "load_scenario",
    "parse_scenario",
    "resolve_tag",
]

SPEC_VERSION = 1
STEP_TYPES = (
    "press",
    "tap",
    "open",
    "close",
    "tamper",
    "wait",
    "cloud",
    "broker",
    "restart",
    "stop",
    "start",
    "expect",
    "expect_not",
)
CONDITION_KEYS = ("state", "siren", "locked", "result", "event", "events")
_UID = re.compile(r"^[0-9A-Fa-f]{8,20}$")
_NAME = re.compile(r"^[a-z0-9_-]{1,32}$")


@dataclass(frozen=True, slots=True)
class Scenario:
    """A validated scenario file."""

    path: str
    name: str
    site: Mapping[str, Any] | None
    steps: tuple[Step, ...]
    lines: tuple[int, ...] = field(default=())  # 1-based line of each step in the file


class _Parser:
    """Turns loaded YAML into a Scenario; raises ConfigError on the first problem."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, reason: str, line: int | None = None) -> ConfigError:
        if line is not None:
            reason = f"{reason} (line {line})"
        return ConfigError(self.source, key, reason)

    def number(self, value: object, key: str, line: int | None, *, positive: bool) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise self.fail(key, f"expected a number of seconds, got {flow(value)!r}", line)
        if value < 0 or (positive and value == 0):
            raise self.fail(key, f"must be {'above' if positive else 'at least'} 0", line)
        return float(value)

    def name(self, value: object, key: str, line: int | None, what: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"expected {what}, got {flow(value)!r}", line)
        return value

    def step(self, raw: object, key: str, line: int | None) -> Step:
        if not isinstance(raw, Mapping) or len(raw) != 1:
            raise self.fail(key, "a step is a mapping with exactly one step type", line)
        ((kind, value),) = raw.items()
        if kind not in STEP_TYPES:
            close = difflib.get_close_matches(str(kind), STEP_TYPES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise self.fail(key, f'unknown step "{kind}"{hint}', line)
        key = f"{key}.{kind}"
        if kind == "press":
            if isinstance(value, int) and not isinstance(value, bool):
                raise self.fail(
                    key, f'quote the keys (press: "{value}"): YAML reads them as a number', line
                )
            keys = self.name(value, key, line, "keys as a string")
            bad = sorted({k for k in keys if k not in KEYS})
            if bad:
                raise self.fail(
                    key, f"not a keypad key: {''.join(bad)!r} (keys are 0-9 * # A-D P)", line
                )
            return Press(keys)
        if kind == "tap":
            if isinstance(value, int) and not isinstance(value, bool):
                raise self.fail(key, "quote the tag UID: YAML reads it as a number", line)
            return Tap(self.name(value, key, line, "a user name or a tag UID"))
        if kind in ("open", "close"):
            return SetZone(self.name(value, key, line, "a zone name"), kind == "open")
        if kind == "tamper":
            return Tamper(self.name(value, key, line, "a zone name or keypad"))
        if kind == "wait":
            return Wait(self.number(value, key, line, positive=False))
        if kind == "cloud":
            if not isinstance(value, Mapping) or not value:
                raise self.fail(key, "expected the command as a mapping (action, user, …)", line)
            return Cloud(dict(value))
        if kind == "broker":
            if value not in ("stop", "start"):
                raise self.fail(key, f"expected stop or start, got {flow(value)!r}", line)
            return Broker(value == "start")
        if kind in ("restart", "stop", "start"):
            if value not in ("panel", "hub"):
                raise self.fail(key, f"expected panel or hub, got {flow(value)!r}", line)
            return Restart(str(value)) if kind == "restart" else Power(str(value), kind == "start")
        return self.expect(value, key, line, negate=kind == "expect_not")

    def expect(self, value: object, key: str, line: int | None, *, negate: bool) -> Expect:
        if not isinstance(value, Mapping):
            raise self.fail(
                key, "expected a mapping of conditions (state, siren, locked, result, event)", line
            )
        unknown = [k for k in value if k not in (*CONDITION_KEYS, "within")]
        if unknown:
            close = difflib.get_close_matches(str(unknown[0]), (*CONDITION_KEYS, "within"), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise self.fail(key, f'unknown condition "{unknown[0]}"{hint}', line)
        if not any(k in value for k in CONDITION_KEYS):
            raise self.fail(
                key, "nothing to check: give state, siren, locked, result, event or events", line
            )
        state = None
        if "state" in value:
            try:
                state = State(value["state"])
            except ValueError:
                names = ", ".join(s.value for s in State)
                raise self.fail(
                    f"{key}.state", f"unknown state {flow(value['state'])!r} ({names})", line
                ) from None
        siren = None
        if "siren" in value:
            raw = value["siren"]
            if raw in ("on", "off"):
                siren = raw == "on"
            elif isinstance(raw, bool):
                siren = raw
            else:
                raise self.fail(f"{key}.siren", f'expected "on" or "off", got {flow(raw)!r}', line)
        locked = None
        if "locked" in value:
            if not isinstance(value["locked"], bool):
                raise self.fail(
                    f"{key}.locked", f"expected true or false, got {flow(value['locked'])!r}", line
                )
            locked = value["locked"]
        result = self.fields(value, "result", key, line, RESULT_FIELDS)
        event = self.fields(value, "event", key, line, EVENT_FIELDS)
        self.event_type(event, f"{key}.event", line)
        events = None
        if "events" in value:
            raw = value["events"]
            if not isinstance(raw, list) or not raw or not all(isinstance(e, Mapping) for e in raw):
                raise self.fail(f"{key}.events", "expected a list of event field mappings", line)
            events = tuple({str(k): v for k, v in e.items()} for e in raw)
            for i, item in enumerate(events):
                self.known_fields(item, f"{key}.events[{i}]", line, EVENT_FIELDS)
                self.event_type(item, f"{key}.events[{i}]", line)
        within = None
        if "within" in value:
            within = self.number(value["within"], f"{key}.within", line, positive=True)
        return Expect(Conditions(state, siren, locked, result, event, events), within, negate)

    def event_type(self, event: Mapping[str, Any] | None, key: str, line: int | None) -> None:
        if event is not None and "type" in event:
            try:
                EventType(event["type"])
            except ValueError:
                reason = f"unknown event type {flow(event['type'])!r}"
                raise self.fail(f"{key}.type", reason, line) from None

    def fields(
        self,
        value: Mapping[str, Any],
        name: str,
        key: str,
        line: int | None,
        known: frozenset[str],
    ) -> dict[str, Any] | None:
        if name not in value:
            return None
        raw = value[name]
        if not isinstance(raw, Mapping) or not raw:
            raise self.fail(f"{key}.{name}", "expected a mapping of fields", line)
        fields = {str(k): v for k, v in raw.items()}
        self.known_fields(fields, f"{key}.{name}", line, known)
        return fields

    def known_fields(
        self, fields: Mapping[str, Any], key: str, line: int | None, known: frozenset[str]
    ) -> None:
        """An unknown field could never match, so a check on it could never fail: refuse it."""
        for name in fields:
            if name not in known:
                close = difflib.get_close_matches(name, sorted(known), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise self.fail(
                    f"{key}.{name}",
                    f"unknown field (known: {', '.join(sorted(known))}){hint}",
                    line,
                )


def _step_lines(text: str) -> list[int]:
    """The 1-based line of each item under the top-level ``steps`` key."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(node, yaml.MappingNode):
        return []
    for key_node, value_node in node.value:
        if getattr(key_node, "value", None) == "steps" and isinstance(
            value_node, yaml.SequenceNode
        ):
            return [item.start_mark.line + 1 for item in value_node.value]
    return []


def parse_scenario(text: str, source: str) -> Scenario:
    """Validate the text of a scenario file; ``source`` names it in errors."""
    try:
        data = yaml.safe_load(text)
        lines = _step_lines(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        raise ConfigError(
            source, "", f"YAML syntax error at {where}: {exc.problem or exc.context}"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(source, "", f"YAML error: {exc}") from None
    parser = _Parser(source)
    if not isinstance(data, Mapping):
        raise parser.fail("", "a scenario is a mapping with spec, name, site and steps")
    unknown = [k for k in data if k not in ("spec", "name", "description", "site", "steps")]
    if unknown:
        raise parser.fail(str(unknown[0]), "unknown key (spec, name, description, site, steps)")
    if "spec" not in data:
        raise parser.fail("spec", f"missing: write spec: {SPEC_VERSION} at the top")
    if data["spec"] != SPEC_VERSION or isinstance(data["spec"], bool):
        raise parser.fail(
            "spec",
            f"unsupported version {flow(data['spec'])!r} (this runner reads spec: {SPEC_VERSION})",
        )
    name = data.get("name", Path(source).stem)
    if not isinstance(name, str):
        raise parser.fail("name", "expected a string")
    site = data.get("site")
    if site is not None and not isinstance(site, Mapping):
        raise parser.fail("site", "expected a mapping with the keys of a site file")
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise parser.fail("steps", "expected a non-empty list of steps")
    steps = tuple(
        parser.step(raw, f"steps[{i}]", lines[i] if i < len(lines) else None)
        for i, raw in enumerate(raw_steps)
    )
    return Scenario(source, name, site, steps, tuple(lines))


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, "", "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, "", f"cannot read: {exc}") from None
    return parse_scenario(text, source)


def check_against_site(
    scenario: Scenario, users: Mapping[str, tuple[str, ...]], zones: set[str]
) -> None:
    """Check the names a scenario uses against its site: users with tags, zones."""
    parser = _Parser(scenario.path)
    for i, step in enumerate(scenario.steps):
        line = scenario.lines[i] if i < len(scenario.lines) else None
        match step:
            case Tap(who) if who in users:
                if not users[who]:
                    raise parser.fail(f"steps[{i}].tap", f"user {who!r} has no tag", line)
            case Tap(who) if not _UID.match(who):
                raise parser.fail(
                    f"steps[{i}].tap",
                    f"no user {who!r} in the site, and not a tag UID in hex",
                    line,
                )
            case SetZone(zone, is_open) if zone not in zones:
                kind = "open" if is_open else "close"
                raise parser.fail(f"steps[{i}].{kind}", f"no zone {zone!r} in the site", line)
            case Tamper(target) if target != "keypad" and target not in zones:
                raise parser.fail(
                    f"steps[{i}].tamper", f"no zone {target!r} in the site (or keypad)", line
                )


def resolve_tag(who: str, users: Mapping[str, tuple[str, ...]]) -> str:
    """The UID a ``tap`` step presents: the user's first tag, or the UID itself, upper-case."""
    if users.get(who):
        return users[who][0].upper()
    return who.upper()
