"""The panel's transition table: (state, input kind) -> (guard, effect, next state).

A pair that is not in the table is an explicit refusal: the core answers ``invalid_state``
to a user, and ignores a zone, timer or device report that means nothing in that state.
"""

from __future__ import annotations

import enum
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from panel.config import Role
from protocol.messages import State


class Kind(enum.StrEnum):
    """What an input means once the keypad grammar, credentials and zone kinds are resolved."""

    ARM = "arm"  # a user asks to arm: code/tag + A/B/C, or a remote arm
    DISARM = "disarm"  # code + D, a tag tap while not disarmed, a remote disarm
    PANIC = "panic"  # key P, a remote sos, a panic zone
    FIRE = "fire"  # a fire zone
    TAMPER = "tamper"  # a tamper zone or tamper switch
    ENTRY_ZONE = "entry_zone"  # a watched entry zone opened
    INSTANT_ZONE = "instant_zone"  # a watched perimeter or interior zone opened
    EXIT_END = "exit_end"  # exit delay over
    ENTRY_END = "entry_end"  # entry delay over
    SIREN_END = "siren_end"  # alarm duration over
    STATUS = "status"  # a remote status query
    PHOTO = "photo"  # a remote photo request
    PHOTO_DONE = "photo_done"  # the camera delivered a requested photo
    UNLOCK = "unlock"  # a master clears a keypad lockout remotely
    REVOKE_TAG = "revoke_tag"  # a master revokes a tag remotely
    DEVICE_LOST = "device_lost"  # a device stopped answering
    DEVICE_BACK = "device_back"  # a lost device answers again


class Guard(enum.StrEnum):
    """A condition checked before a transition; failing it is a refusal with a reason."""

    ZONES_CLOSED = "zones_closed"  # no zone the mode watches is open, entry zones excepted
    LOCKED = "locked"  # the keypad is locked


class Effect(enum.StrEnum):
    """What a transition does (events, timers, siren), implemented by the core."""

    START_EXIT = "start_exit"
    DISARM = "disarm"
    ALARM_24H = "alarm_24h"  # panic, fire, tamper: alarm in any state
    START_ENTRY = "start_entry"
    BURGLARY = "burglary"
    MORE_BURGLARY = "more_burglary"  # another zone while triggered: reported once per zone
    ARMED = "armed"
    END_ALARM = "end_alarm"
    STATUS = "status"
    PHOTO = "photo"
    PHOTO_READY = "photo_ready"
    UNLOCK = "unlock"
    REVOKE_TAG = "revoke_tag"
    DEVICE_LOST = "device_lost"
    DEVICE_BACK = "device_back"
    NOTHING = "nothing"  # accepted, no effect (an entry zone while already pending)


class Goto(enum.StrEnum):
    """Next states that depend on the panel's mode."""

    SAME = "same"
    ARMED = "armed"  # the armed state of the current mode
    AFTER_ALARM = "after_alarm"  # re-armed in the mode it was in, or disarmed


@dataclass(frozen=True, slots=True)
class Transition:
    """One row of the table."""

    effect: Effect
    target: State | Goto
    guard: Guard | None = None


ARMED_STATES: Final = frozenset({State.ARMED_TOTAL, State.ARMED_PARTIAL, State.ARMED_NIGHT})
DISARMABLE: Final = ARMED_STATES | {State.ARMING, State.PENDING, State.TRIGGERED}
"""States a user can disarm from."""


def _build() -> dict[tuple[State, Kind], Transition]:
    table: dict[tuple[State, Kind], Transition] = {
        (State.DISARMED, Kind.ARM): Transition(Effect.START_EXIT, State.ARMING, Guard.ZONES_CLOSED),
        (State.ARMING, Kind.EXIT_END): Transition(Effect.ARMED, Goto.ARMED),
        (State.PENDING, Kind.ENTRY_ZONE): Transition(Effect.NOTHING, Goto.SAME),
        (State.PENDING, Kind.INSTANT_ZONE): Transition(Effect.BURGLARY, State.TRIGGERED),
        (State.PENDING, Kind.ENTRY_END): Transition(Effect.BURGLARY, State.TRIGGERED),
        (State.TRIGGERED, Kind.ENTRY_ZONE): Transition(Effect.MORE_BURGLARY, Goto.SAME),
        (State.TRIGGERED, Kind.INSTANT_ZONE): Transition(Effect.MORE_BURGLARY, Goto.SAME),
        (State.TRIGGERED, Kind.SIREN_END): Transition(Effect.END_ALARM, Goto.AFTER_ALARM),
    }
    for state in ARMED_STATES:
        table[(state, Kind.ENTRY_ZONE)] = Transition(Effect.START_ENTRY, State.PENDING)
        table[(state, Kind.INSTANT_ZONE)] = Transition(Effect.BURGLARY, State.TRIGGERED)
    for state in DISARMABLE:
        table[(state, Kind.DISARM)] = Transition(Effect.DISARM, State.DISARMED)
    for state in State:
        for kind in (Kind.PANIC, Kind.FIRE, Kind.TAMPER):
            table[(state, kind)] = Transition(Effect.ALARM_24H, State.TRIGGERED)
        table[(state, Kind.STATUS)] = Transition(Effect.STATUS, Goto.SAME)
        table[(state, Kind.PHOTO)] = Transition(Effect.PHOTO, Goto.SAME)
        table[(state, Kind.PHOTO_DONE)] = Transition(Effect.PHOTO_READY, Goto.SAME)
        table[(state, Kind.UNLOCK)] = Transition(Effect.UNLOCK, Goto.SAME, Guard.LOCKED)
        table[(state, Kind.REVOKE_TAG)] = Transition(Effect.REVOKE_TAG, Goto.SAME)
        table[(state, Kind.DEVICE_LOST)] = Transition(Effect.DEVICE_LOST, Goto.SAME)
        table[(state, Kind.DEVICE_BACK)] = Transition(Effect.DEVICE_BACK, Goto.SAME)
    return table


TABLE: Final[Mapping[tuple[State, Kind], Transition]] = types.MappingProxyType(_build())

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
            }
        ),
        Role.USER: frozenset({Kind.ARM, Kind.DISARM, Kind.STATUS, Kind.PANIC, Kind.PHOTO}),
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
