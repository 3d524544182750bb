"""Contact ID (qualifier + event code) and SIA codes of each event, as a table (docs/events.md)."""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Final, NamedTuple

from panel.config import ZoneKind
from protocol.messages import EventType, Method, Mode

REMOTE: Final = frozenset({Method.APP, Method.WEB})


class Codes(NamedTuple):
    """Contact ID ``cid`` (4 digits: qualifier + code) and SIA ``sia`` (2 letters)."""

    cid: str
    sia: str


# Events whose codes never depend on the context.
FIXED: Final[Mapping[EventType, Codes]] = types.MappingProxyType(
    {
        EventType.ARMING: Codes("3400", "CG"),
        EventType.ENTRY: Codes("6134", "BG"),
        EventType.PANIC: Codes("1120", "PA"),
        EventType.DURESS: Codes("1121", "HA"),
        EventType.FIRE: Codes("1110", "FA"),
        EventType.CODE_REJECTED: Codes("1421", "DD"),
        EventType.TAG_REJECTED: Codes("1421", "DD"),
        EventType.KEYPAD_LOCKED: Codes("1461", "JA"),
        EventType.KEYPAD_UNLOCKED: Codes("3461", "DG"),
        EventType.ARM_REFUSED: Codes("1454", "CI"),
        EventType.TAG_REVOKED: Codes("1306", "YG"),
        EventType.PHOTO_REQUESTED: Codes("1609", "VI"),
        EventType.PHOTO_READY: Codes("3609", "VR"),
        EventType.RESTART: Codes("1305", "RR"),
        # Listen-in to follow / ended; clips are reported like photos.
        EventType.LISTEN_STARTED: Codes("1606", "LF"),
        EventType.LISTEN_ENDED: Codes("3606", "LE"),
        EventType.CLIP_REQUESTED: Codes("1609", "VI"),
        EventType.CLIP_READY: Codes("3609", "VR"),
        EventType.DEVICE_LOST: Codes("1145", "EM"),
        EventType.DEVICE_BACK: Codes("3145", "EN"),
        EventType.STORAGE_FAULT: Codes("1300", "IA"),  # system trouble / equipment failure
        EventType.STORAGE_OK: Codes("3300", "IR"),  # its restore
        EventType.STORE_RESET: Codes("1305", "RR"),  # a system reset that lost memory
    }
)

BURGLARY: Final[Mapping[ZoneKind, Codes]] = types.MappingProxyType(
    {
        ZoneKind.ENTRY: Codes("1134", "BA"),
        ZoneKind.PERIMETER: Codes("1131", "BA"),
        ZoneKind.INTERIOR: Codes("1132", "BA"),
    }
)

RESTORE_SIA: Final[Mapping[str, str]] = types.MappingProxyType(
    {"BA": "BR", "PA": "PR", "HA": "HR", "TA": "TR", "FA": "FR", "EM": "EN"}
)


def armed_codes(mode: Mode | None, method: Method) -> Codes:
    """``armed``: 3401 by a user at the keypad/tag, 3407 remote, 3463 system re-arm after alarm."""
    sia = "CL" if mode in (Mode.TOTAL, None) else "NL"
    if method in REMOTE:
        return Codes("3407", "CQ" if sia == "CL" else sia)
    if method is Method.SYSTEM:
        return Codes("3463", sia)
    if mode in (Mode.PARTIAL, Mode.NIGHT):
        return Codes("3441", sia)
    return Codes("3401", sia)


def disarmed_codes(method: Method, *, from_alarm: bool) -> Codes:
    """``disarmed``: 1401 local, 1407 remote; SIA OP/OQ, or OR when it ends an alarm."""
    remote = method in REMOTE
    sia = "OR" if from_alarm else ("OQ" if remote else "OP")
    return Codes("1407" if remote else "1401", sia)


def alarm_codes(kind: ZoneKind | None) -> Codes:
    """``alarm``: burglary by zone kind (1134 entry/exit, 1131 perimeter, 1132 interior)."""
    if kind is None:
        return Codes("1130", "BA")
    return BURGLARY.get(kind, Codes("1130", "BA"))


def tamper_codes(*, device_lost: bool) -> Codes:
    """``tamper``: 1137 TA for a tamper switch or zone, 1145 EM for a device that went missing."""
    return FIXED[EventType.DEVICE_LOST] if device_lost else Codes("1137", "TA")


def restore_codes(alarm: Codes) -> Codes:
    """``alarm_end``: the restore (qualifier 3) of the alarm that ended."""
    return Codes("3" + alarm.cid[1:], RESTORE_SIA.get(alarm.sia, alarm.sia))


def fixed_codes(event_type: EventType) -> Codes:
    """Codes of an event type that does not depend on context."""
    return FIXED[event_type]
