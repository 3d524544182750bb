"""The typed steps of a scenario (CONTRACT §6) and how each reads when written back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from protocol.messages import State


@dataclass(frozen=True, slots=True)
class Press:
    """Keys typed on the keypad, as on the wire."""

    keys: str


@dataclass(frozen=True, slots=True)
class Tap:
    """A tag tapped on the reader: a user's first tag, or a UID in hex."""

    who: str


@dataclass(frozen=True, slots=True)
class SetZone:
    """A zone faulted (``open``) or restored."""

    zone: str
    open: bool


@dataclass(frozen=True, slots=True)
class Tamper:
    """The tamper switch of a zone, or of the keypad."""

    target: str


@dataclass(frozen=True, slots=True)
class Wait:
    """Let ``seconds`` of (simulated) time pass."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Cloud:
    """A command through the hub's cloud API; ``id`` and ``panel`` are filled in when absent."""

    command: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Broker:
    """The broker goes down (``up`` False) or comes back."""

    up: bool


@dataclass(frozen=True, slots=True)
class Restart:
    """Restart the panel or the hub process."""

    which: str


@dataclass(frozen=True, slots=True)
class Power:
    """(Extension) stop the panel or hub process and leave it down, or start it again."""

    which: str
    on: bool


@dataclass(frozen=True, slots=True)
class Conditions:
    """What an expectation checks; None means not checked."""

    state: State | None = None
    siren: bool | None = None
    locked: bool | None = None
    result: Mapping[str, Any] | None = None
    event: Mapping[str, Any] | None = None
    events: tuple[Mapping[str, Any], ...] | None = None  # in this order (others may come between)

    def describe(self) -> str:
        """The conditions as a short flow-style text."""
        parts: list[str] = []
        if self.state is not None:
            parts.append(f"state: {self.state.value}")
        if self.siren is not None:
            parts.append(f"siren: {'on' if self.siren else 'off'}")
        if self.locked is not None:
            parts.append(f"locked: {str(self.locked).lower()}")
        if self.result is not None:
            parts.append(f"result: {flow(self.result)}")
        if self.event is not None:
            parts.append(f"event: {flow(self.event)}")
        if self.events is not None:
            parts.append(f"events: {flow(self.events)}")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Expect:
    """Every condition holds now, or within ``within`` seconds."""

    conditions: Conditions
    within: float | None = None
    negate: bool = False


Step = Press | Tap | SetZone | Tamper | Wait | Cloud | Broker | Restart | Power | Expect


def flow(value: object) -> str:
    """A compact YAML-ish rendering of a value, for output lines."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def describe_step(step: Step) -> str:
    """A step as it would be written in the file."""
    match step:
        case Press(keys):
            return f'press: "{keys}"'
        case Tap(who):
            return f"tap: {who}"
        case SetZone(zone, is_open):
            return f"{'open' if is_open else 'close'}: {zone}"
        case Tamper(target):
            return f"tamper: {target}"
        case Wait(seconds):
            return f"wait: {seconds:g}"
        case Cloud(command):
            return f"cloud: {flow(command)}"
        case Broker(up):
            return f"broker: {'start' if up else 'stop'}"
        case Restart(which):
            return f"restart: {which}"
        case Power(which, on):
            return f"{'start' if on else 'stop'}: {which}"
        case Expect(conditions, within, negate):
            text = conditions.describe()
            if within is not None:
                text += f", within: {within:g}"
            return f"{'expect_not' if negate else 'expect'}: {{{text}}}"
    raise AssertionError(step)
