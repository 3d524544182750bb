"""The panel's transition table: (state, input kind) -> (effect, next state, guard).

Each row names the function of panel.effects that carries it out, so what happens for a
pair is one row here and one function there: "disarm during the entry delay" is the row
``(PENDING, DISARM)``, which runs ``effects.disarm`` and goes to ``DISARMED``. A pair that
is not in the table is an explicit refusal: the machine answers ``invalid_state`` to a
user, and ignores a zone, timer or device report that means nothing in that state.
"""

from __future__ import annotations

import enum
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeAlias

from panel import effects
from panel.config import Role
from panel.request import Kind, Request
from protocol.messages import State

if TYPE_CHECKING:
    from panel.machine import Machine

__all__ = [
    "ARMED_STATES",
    "DISARMABLE",
    "PERMISSIONS",
    "TABLE",
    "Effect",
    "Goto",
    "Guard",
    "Kind",
    "Transition",
    "allowed",
    "lookup",
]

Effect: TypeAlias = "Callable[[Machine, Request, State], None]"
"""What a transition does: ``effect(machine, request, previous_state)``."""


class Guard(enum.StrEnum):
    """A condition checked before a transition; failing it is a refusal with a reason."""

    ZONES_CLOSED = "zones_closed"  # no zone the mode watches is open, entry zones excepted
    LOCKED = "locked"  # the keypad is locked
    NOT_LISTENING = "not_listening"  # no silent call is in progress (one at a time)
    LISTENING = "listening"  # a silent call is in progress


class Goto(enum.StrEnum):
    """Next states that depend on the panel's mode."""

    SAME = "same"
    ARMED = "armed"  # the armed state of the current mode
    AFTER_ALARM = "after_alarm"  # re-armed in the mode it was in, or disarmed


@dataclass(frozen=True, slots=True)
class Transition:
    """One row of the table: run ``effect``, then the panel is in ``target``."""

    effect: Effect
    target: State | Goto
    guard: Guard | None = None


ARMED_STATES: Final = frozenset({State.ARMED_TOTAL, State.ARMED_PARTIAL, State.ARMED_NIGHT})
DISARMABLE: Final = ARMED_STATES | {State.ARMING, State.PENDING, State.TRIGGERED}
"""States a user can disarm from."""

_T = Transition


def _build() -> dict[tuple[State, Kind], Transition]:
    table: dict[tuple[State, Kind], Transition] = {
        # Arming and the exit delay.
        (State.DISARMED, Kind.ARM): _T(effects.start_exit, State.ARMING, Guard.ZONES_CLOSED),
        (State.ARMING, Kind.EXIT_END): _T(effects.armed, Goto.ARMED),
        # The entry delay.
        (State.PENDING, Kind.ENTRY_ZONE): _T(effects.nothing, Goto.SAME),
        (State.PENDING, Kind.INSTANT_ZONE): _T(effects.burglary, State.TRIGGERED),
        (State.PENDING, Kind.ENTRY_END): _T(effects.burglary, State.TRIGGERED),
        # The alarm.
        (State.TRIGGERED, Kind.ENTRY_ZONE): _T(effects.more_burglary, Goto.SAME),
        (State.TRIGGERED, Kind.INSTANT_ZONE): _T(effects.more_burglary, Goto.SAME),
        (State.TRIGGERED, Kind.SIREN_END): _T(effects.end_alarm, Goto.AFTER_ALARM),
    }
    for state in ARMED_STATES:
        table[(state, Kind.ENTRY_ZONE)] = _T(effects.start_entry, State.PENDING)
        table[(state, Kind.INSTANT_ZONE)] = _T(effects.burglary, State.TRIGGERED)
    for state in DISARMABLE:
        table[(state, Kind.DISARM)] = _T(effects.disarm, State.DISARMED)
    # Rows every state has: 24-hour alarms, queries and the panel's housekeeping.
    for state in State:
        for kind in (Kind.PANIC, Kind.FIRE, Kind.TAMPER):
            table[(state, kind)] = _T(effects.alarm_24h, State.TRIGGERED)
        table[(state, Kind.STATUS)] = _T(effects.nothing, Goto.SAME)
        table[(state, Kind.PHOTO)] = _T(effects.photo, Goto.SAME)
        table[(state, Kind.PHOTO_DONE)] = _T(effects.photo_ready, Goto.SAME)
        table[(state, Kind.LISTEN)] = _T(effects.listen, Goto.SAME, Guard.NOT_LISTENING)
        table[(state, Kind.LISTEN_STOP)] = _T(effects.listen_stop, Goto.SAME, Guard.LISTENING)
        table[(state, Kind.LISTEN_DONE)] = _T(effects.listen_ended, Goto.SAME)
        table[(state, Kind.CLIP)] = _T(effects.clip, Goto.SAME)
        table[(state, Kind.CLIP_DONE)] = _T(effects.clip_ready, Goto.SAME)
        table[(state, Kind.UNLOCK)] = _T(effects.unlock, Goto.SAME, Guard.LOCKED)
        table[(state, Kind.REVOKE_TAG)] = _T(effects.revoke_tag, Goto.SAME)
        table[(state, Kind.DEVICE_LOST)] = _T(effects.device_lost, Goto.SAME)
        table[(state, Kind.DEVICE_BACK)] = _T(effects.device_back, Goto.SAME)
    return table


TABLE: Final[Mapping[tuple[State, Kind], Transition]] = types.MappingProxyType(_build())

MEDIA_KINDS: Final = (Kind.LISTEN, Kind.LISTEN_STOP, Kind.CLIP)
"""Silent call and clips: master and user roles only (CONTRACT §9)."""

PERMISSIONS: Final[Mapping[Role, frozenset[Kind]]] = types.MappingProxyType(
    {
        Role.MASTER: frozenset(
            {
                Kind.ARM,
                Kind.DISARM,
                Kind.STATUS,
                Kind.PANIC,
                Kind.PHOTO,
                Kind.UNLOCK,
                Kind.REVOKE_TAG,
                *MEDIA_KINDS,
            }
        ),
        Role.USER: frozenset(
            {Kind.ARM, Kind.DISARM, Kind.STATUS, Kind.PANIC, Kind.PHOTO, *MEDIA_KINDS}
        ),
        Role.ARM_ONLY: frozenset({Kind.ARM, Kind.STATUS, Kind.PANIC}),
    }
)
"""What each role may ask for, from the keypad, a tag or remotely."""


def lookup(state: State, kind: Kind) -> Transition | None:
    """The row for ``(state, kind)``, or None: a refusal."""
    return TABLE.get((state, kind))


def allowed(role: Role, kind: Kind) -> bool:
    """Whether ``role`` may ask for ``kind``."""
    return kind in PERMISSIONS[role]
