"""Protocol version 1: wire codes, message schemas and the type-id table.

Enums travel as small ints from explicit code tables (never from declaration
order), optional fields behind a ``present`` bitmask, strings as UTF-8 after a
u8 length (u16 for free text), integers big-endian. docs/protocol.md has the
byte layout of every message. A new message type or enum member is appended
with a new code; a published code never changes meaning.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

from construct import Float64b, If, Int8ub, Int16ub, Int32ub, Int64ub, PrefixedArray, Struct, this

from protocol.errors import EncodeError, MalformedPayload
from protocol.messages import (
    Ack,
    Action,
    Command,
    ErrorCode,
    Event,
    EventType,
    Heartbeat,
    MediaChunk,
    MediaKind,
    Message,
    Method,
    Mode,
    PhotoChunk,
    Result,
    State,
    StateSnapshot,
    Telemetry,
    Via,
)
from protocol.schema import Codes, CompiledStruct, LengthPrefixed, MessageSpec, Parsed, Wire

VERSION: Final = 1
PHOTO_CHUNK_SIZE: Final = 4096
MEDIA_CHUNK_SIZE: Final = 4096
"""Most media bytes in one MediaChunk, as for photos."""
"""Most JPEG bytes in one PhotoChunk; a full chunk fits the frame cap with room to spare."""

MODE_CODES: Final = Codes([Mode.TOTAL, Mode.PARTIAL, Mode.NIGHT])
STATE_CODES: Final = Codes(
    [
        State.DISARMED,
        State.ARMING,
        State.ARMED_TOTAL,
        State.ARMED_PARTIAL,
        State.ARMED_NIGHT,
        State.PENDING,
        State.TRIGGERED,
    ]
)
EVENT_TYPE_CODES: Final = Codes(
    [
        EventType.ARMING,
        EventType.ARMED,
        EventType.DISARMED,
        EventType.ENTRY,
        EventType.ALARM,
        EventType.PANIC,
        EventType.DURESS,
        EventType.TAMPER,
        EventType.FIRE,
        EventType.CODE_REJECTED,
        EventType.TAG_REJECTED,
        EventType.KEYPAD_LOCKED,
        EventType.KEYPAD_UNLOCKED,
        EventType.ARM_REFUSED,
        EventType.TAG_REVOKED,
        EventType.PHOTO_REQUESTED,
        EventType.PHOTO_READY,
        EventType.RESTART,
        EventType.ALARM_END,
        EventType.DEVICE_LOST,
        EventType.DEVICE_BACK,
        EventType.STORAGE_FAULT,
        EventType.STORAGE_OK,
        EventType.STORE_RESET,
        EventType.LISTEN_STARTED,
        EventType.LISTEN_ENDED,
        EventType.CLIP_REQUESTED,
        EventType.CLIP_READY,
    ]
)
METHOD_CODES: Final = Codes([Method.KEYPAD, Method.TAG, Method.APP, Method.WEB, Method.SYSTEM])
ACTION_CODES: Final = Codes(
    [
        Action.ARM,
        Action.DISARM,
        Action.STATUS,
        Action.PHOTO,
        Action.SOS,
        Action.UNLOCK,
        Action.REVOKE_TAG,
        Action.LISTEN,
        Action.LISTEN_STOP,
        Action.CLIP,
    ]
)
VIA_CODES: Final = Codes([Via.APP, Via.WEB])
MEDIA_KIND_CODES: Final = Codes([MediaKind.AUDIO, MediaKind.CLIP])
ERROR_CODES: Final = Codes(
    [
        ErrorCode.BAD_REQUEST,
        ErrorCode.UNKNOWN_USER,
        ErrorCode.FORBIDDEN,
        ErrorCode.INVALID_STATE,
        ErrorCode.PANEL_OFFLINE,
        ErrorCode.TIMEOUT,
        ErrorCode.BUSY,
    ]
)
ALL_CODES: Final = (
    MODE_CODES,
    STATE_CODES,
    EVENT_TYPE_CODES,
    METHOD_CODES,
    ACTION_CODES,
    VIA_CODES,
    ERROR_CODES,
    MEDIA_KIND_CODES,
)


_STR8 = LengthPrefixed(1, text=True)
_STR16 = LengthPrefixed(2, text=True)

EVENT_SCHEMA: Final = Struct(
    "seq" / Int32ub,
    "time_ms" / Int64ub,
    "type" / Int8ub,
    "method" / Int8ub,
    "present" / Int8ub,  # 1 mode, 2 user, 4 zone, 8 tag, 16 photo, 32 detail, 64 clock_unsynced
    "cid" / _STR8,
    "sia" / _STR8,
    "mode" / If(this.present & 0x01, Int8ub),
    "user" / If(this.present & 0x02, _STR8),
    "zone" / If(this.present & 0x04, _STR8),
    "tag" / If(this.present & 0x08, _STR8),
    "photo" / If(this.present & 0x10, _STR8),
    "detail" / If(this.present & 0x20, _STR16),
)
COMMAND_SCHEMA: Final = Struct(
    "id" / _STR8,
    "action" / Int8ub,
    "via" / Int8ub,
    "user" / _STR8,
    "present" / Int8ub,  # 1 mode, 2 camera, 4 tag, 8 code, 10 deadline_ms, 20 seconds
    "mode" / If(this.present & 0x01, Int8ub),
    "camera" / If(this.present & 0x02, _STR8),
    "tag" / If(this.present & 0x04, _STR8),
    "code" / If(this.present & 0x08, _STR8),
    "deadline_ms" / If(this.present & 0x10, Int64ub),
    "seconds" / If(this.present & 0x20, Int16ub),  # listen, clip (protocol 1.1)
)
RESULT_SCHEMA: Final = Struct(
    "id" / _STR8,
    "ok" / Int8ub,  # 0 or 1
    "present" / Int8ub,  # 1 state, 2 error, 4 detail
    "state" / If(this.present & 0x01, Int8ub),
    "error" / If(this.present & 0x02, Int8ub),
    "detail" / If(this.present & 0x04, _STR16),
)
STATE_SCHEMA: Final = Struct(
    "state" / Int8ub,
    "flags" / Int8ub,  # 1 siren, 2 locked
    "since_ms" / Int64ub,
    "present" / Int8ub,  # 1 locked_until_ms, 2 mode
    "locked_until_ms" / If(this.present & 0x01, Int64ub),
    "mode" / If(this.present & 0x02, Int8ub),
    "open_zones" / PrefixedArray(Int8ub, _STR8),
)
TELEMETRY_SCHEMA: Final = Struct(
    "time_ms" / Int64ub,
    "present" / Int8ub,  # 1 temperature, 2 humidity
    "temperature" / If(this.present & 0x01, Float64b),
    "humidity" / If(this.present & 0x02, Float64b),
)
ACK_SCHEMA: Final = Struct("upto_seq" / Int32ub)
PHOTO_CHUNK_SCHEMA: Final = Struct(
    "photo_id" / _STR8,
    "index" / Int16ub,
    "count" / Int16ub,
    "data" / LengthPrefixed(2, text=False),
)
MEDIA_CHUNK_SCHEMA: Final = Struct(
    "kind" / Int8ub,  # MEDIA_KIND_CODES
    "flags" / Int8ub,  # 1 last
    "media_id" / _STR8,
    "index" / Int32ub,
    "data" / LengthPrefixed(2, text=False),
)
HEARTBEAT_SCHEMA: Final = Struct("time_ms" / Int64ub, "last_seq" / Int32ub)


def _check_present(present: int, known: int) -> None:
    if present & ~known:
        raise MalformedPayload(f"unknown optional-field bits {present & ~known:#04x}")


def _event_out(m: Event) -> Wire:
    return {
        "seq": m.seq,
        "time_ms": m.time_ms,
        "type": EVENT_TYPE_CODES.to_wire(m.type),
        "method": METHOD_CODES.to_wire(m.method),
        "present": (m.mode is not None)
        | (m.user is not None) << 1
        | (m.zone is not None) << 2
        | (m.tag is not None) << 3
        | (m.photo is not None) << 4
        | (m.detail is not None) << 5
        | m.clock_unsynced << 6,  # a flag: no field follows
        "cid": m.cid,
        "sia": m.sia,
        "mode": MODE_CODES.opt_to_wire(m.mode),
        "user": m.user,
        "zone": m.zone,
        "tag": m.tag,
        "photo": m.photo,
        "detail": m.detail,
    }


def _event_in(c: Parsed) -> Event:
    _check_present(c["present"], 0x7F)
    mode = c["mode"]
    return Event(
        c["seq"],
        c["time_ms"],
        EVENT_TYPE_CODES.from_wire(c["type"]),
        METHOD_CODES.from_wire(c["method"]),
        c["cid"],
        c["sia"],
        None if mode is None else MODE_CODES.from_wire(mode),
        c["user"],
        c["zone"],
        c["tag"],
        c["photo"],
        c["detail"],
        bool(c["present"] & 0x40),
    )


def _command_out(m: Command) -> Wire:
    return {
        "id": m.id,
        "action": ACTION_CODES.to_wire(m.action),
        "via": VIA_CODES.to_wire(m.via),
        "user": m.user,
        "present": (m.mode is not None)
        | (m.camera is not None) << 1
        | (m.tag is not None) << 2
        | (m.code is not None) << 3
        | (m.deadline_ms is not None) << 4
        | (m.seconds is not None) << 5,
        "mode": MODE_CODES.opt_to_wire(m.mode),
        "camera": m.camera,
        "tag": m.tag,
        "code": m.code,
        "deadline_ms": m.deadline_ms,
        "seconds": m.seconds,
    }


def _command_in(c: Parsed) -> Command:
    _check_present(c["present"], 0x3F)
    return Command(
        id=c["id"],
        action=ACTION_CODES.from_wire(c["action"]),
        user=c["user"],
        via=VIA_CODES.from_wire(c["via"]),
        mode=MODE_CODES.opt_from_wire(c["mode"]),
        camera=c["camera"],
        tag=c["tag"],
        code=c["code"],
        deadline_ms=c["deadline_ms"],
        seconds=c["seconds"],
    )


def _result_out(m: Result) -> Wire:
    return {
        "id": m.id,
        "ok": int(m.ok),
        "present": (m.state is not None) | (m.error is not None) << 1 | (m.detail is not None) << 2,
        "state": STATE_CODES.opt_to_wire(m.state),
        "error": ERROR_CODES.opt_to_wire(m.error),
        "detail": m.detail,
    }


def _result_in(c: Parsed) -> Result:
    _check_present(c["present"], 0x07)
    if c["ok"] > 1:
        raise MalformedPayload(f"ok must be 0 or 1, not {c['ok']}")
    return Result(
        id=c["id"],
        ok=bool(c["ok"]),
        state=STATE_CODES.opt_from_wire(c["state"]),
        error=ERROR_CODES.opt_from_wire(c["error"]),
        detail=c["detail"],
    )


def _state_out(m: StateSnapshot) -> Wire:
    return {
        "state": STATE_CODES.to_wire(m.state),
        "flags": int(m.siren) | int(m.locked) << 1,
        "since_ms": m.since_ms,
        "present": (m.locked_until_ms is not None) | (m.mode is not None) << 1,
        "locked_until_ms": m.locked_until_ms,
        "mode": MODE_CODES.opt_to_wire(m.mode),
        "open_zones": list(m.open_zones),
    }


def _state_in(c: Parsed) -> StateSnapshot:
    _check_present(c["present"], 0x03)
    flags = c["flags"]
    if flags & ~0x03:
        raise MalformedPayload(f"unknown state flag bits {flags & ~0x03:#04x}")
    return StateSnapshot(
        state=STATE_CODES.from_wire(c["state"]),
        since_ms=c["since_ms"],
        siren=bool(flags & 0x01),
        open_zones=tuple(c["open_zones"]),
        locked=bool(flags & 0x02),
        locked_until_ms=c["locked_until_ms"],
        mode=MODE_CODES.opt_from_wire(c["mode"]),
    )


def _finite(value: float | None, name: str, error: type[Exception]) -> float | None:
    if value is not None and not math.isfinite(value):
        raise error(f"{name} must be a finite number or absent")
    return value


def _telemetry_out(m: Telemetry) -> Wire:
    return {
        "time_ms": m.time_ms,
        "present": (m.temperature is not None) | (m.humidity is not None) << 1,
        "temperature": _finite(m.temperature, "temperature", EncodeError),
        "humidity": _finite(m.humidity, "humidity", EncodeError),
    }


def _telemetry_in(c: Parsed) -> Telemetry:
    _check_present(c["present"], 0x03)
    return Telemetry(
        time_ms=c["time_ms"],
        temperature=_finite(c["temperature"], "temperature", MalformedPayload),
        humidity=_finite(c["humidity"], "humidity", MalformedPayload),
    )


def _check_chunk(index: int, count: int, size: int, error: type[Exception]) -> None:
    if not 0 <= index < count:
        raise error(f"chunk index {index} not in 0..{count - 1}")
    if size > PHOTO_CHUNK_SIZE:
        raise error(f"chunk of {size} bytes is over {PHOTO_CHUNK_SIZE}")


def _photo_out(m: PhotoChunk) -> Wire:
    _check_chunk(m.index, m.count, len(m.data), EncodeError)
    return {"photo_id": m.photo_id, "index": m.index, "count": m.count, "data": bytes(m.data)}


def _photo_in(c: Parsed) -> PhotoChunk:
    _check_chunk(c["index"], c["count"], len(c["data"]), MalformedPayload)
    return PhotoChunk(photo_id=c["photo_id"], index=c["index"], count=c["count"], data=c["data"])


def _media_out(m: MediaChunk) -> Wire:
    if len(m.data) > MEDIA_CHUNK_SIZE:
        raise EncodeError(f"media chunk of {len(m.data)} bytes is over {MEDIA_CHUNK_SIZE}")
    return {
        "kind": MEDIA_KIND_CODES.to_wire(m.kind),
        "flags": int(m.last),
        "media_id": m.media_id,
        "index": m.index,
        "data": bytes(m.data),
    }


def _media_in(c: Parsed) -> MediaChunk:
    if c["flags"] & ~0x01:
        raise MalformedPayload(f"unknown media flag bits {c['flags'] & ~0x01:#04x}")
    if len(c["data"]) > MEDIA_CHUNK_SIZE:
        raise MalformedPayload(f"media chunk of {len(c['data'])} bytes is over {MEDIA_CHUNK_SIZE}")
    return MediaChunk(
        kind=MEDIA_KIND_CODES.from_wire(c["kind"]),
        media_id=c["media_id"],
        index=c["index"],
        last=bool(c["flags"] & 0x01),
        data=c["data"],
    )


def _spec(
    type_id: int,
    cls: type[Any],
    schema: Any,
    to_wire: Callable[[Any], Wire],
    from_wire: Callable[[Parsed], Message],
    *,
    panel: bool,
    hub: bool,
) -> MessageSpec:
    return MessageSpec(type_id, cls, CompiledStruct(schema), to_wire, from_wire, panel, hub)


TABLE: Final[dict[int, MessageSpec]] = {
    s.type_id: s
    for s in (
        _spec(1, Event, EVENT_SCHEMA, _event_out, _event_in, panel=True, hub=False),
        _spec(2, Command, COMMAND_SCHEMA, _command_out, _command_in, panel=False, hub=True),
        _spec(3, Result, RESULT_SCHEMA, _result_out, _result_in, panel=True, hub=False),
        _spec(4, StateSnapshot, STATE_SCHEMA, _state_out, _state_in, panel=True, hub=False),
        _spec(5, Telemetry, TELEMETRY_SCHEMA, _telemetry_out, _telemetry_in, panel=True, hub=False),
        _spec(
            6,
            Ack,
            ACK_SCHEMA,
            lambda m: {"upto_seq": m.upto_seq},
            lambda c: Ack(upto_seq=c["upto_seq"]),
            panel=False,
            hub=True,
        ),
        _spec(7, PhotoChunk, PHOTO_CHUNK_SCHEMA, _photo_out, _photo_in, panel=True, hub=False),
        _spec(
            8,
            Heartbeat,
            HEARTBEAT_SCHEMA,
            lambda m: {"time_ms": m.time_ms, "last_seq": m.last_seq},
            lambda c: Heartbeat(time_ms=c["time_ms"], last_seq=c["last_seq"]),
            panel=True,
            hub=True,
        ),
        _spec(11, MediaChunk, MEDIA_CHUNK_SCHEMA, _media_out, _media_in, panel=True, hub=False),
    )
}
