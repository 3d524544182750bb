"""Message payloads: round trips of every type, the code tables, and hostile payloads."""

from __future__ import annotations

import dataclasses
import math
import random
import typing
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import v1
from protocol.codec import (
    PHOTO_CHUNK_SIZE,
    PROTOCOL_VERSION,
    TABLES,
    decode_message,
    encode_message,
)
from protocol.errors import EncodeError, MalformedPayload, ProtocolError, UnknownType
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
    Resume,
    State,
    StateSnapshot,
    TagCounters,
    Telemetry,
    Via,
)
from protocol.schema import Codes

U32 = st.integers(0, 2**32 - 1)
U64 = st.integers(0, 2**64 - 1)
# At most 4 UTF-8 bytes a character, so these always fit a u8 / u16 length.
NAME = st.text(max_size=63)
TEXT = st.text(max_size=2000)
FLOAT = st.floats(allow_nan=False, allow_infinity=False)


def opt(strategy: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.none() | strategy


EVENTS = st.builds(
    Event,
    seq=U32,
    time_ms=U64,
    type=st.sampled_from(EventType),
    method=st.sampled_from(Method),
    cid=NAME,
    sia=NAME,
    mode=opt(st.sampled_from(Mode)),
    user=opt(NAME),
    zone=opt(NAME),
    tag=opt(NAME),
    photo=opt(NAME),
    detail=opt(TEXT),
)
COMMANDS = st.builds(
    Command,
    id=NAME,
    action=st.sampled_from(Action),
    user=NAME,
    via=st.sampled_from(Via),
    mode=opt(st.sampled_from(Mode)),
    camera=opt(NAME),
    tag=opt(NAME),
    code=opt(st.from_regex(r"[0-9]{4,8}", fullmatch=True)),
    seconds=opt(st.integers(0, 0xFFFF)),
)
RESULTS = st.builds(
    Result,
    id=NAME,
    ok=st.booleans(),
    state=opt(st.sampled_from(State)),
    error=opt(st.sampled_from(ErrorCode)),
    detail=opt(TEXT),
)
SNAPSHOTS = st.builds(
    StateSnapshot,
    state=st.sampled_from(State),
    since_ms=U64,
    siren=st.booleans(),
    open_zones=st.lists(NAME, max_size=40).map(tuple),
    locked=st.booleans(),
    locked_until_ms=opt(U64),
    mode=opt(st.sampled_from(Mode)),
)
TELEMETRY = st.builds(Telemetry, time_ms=U64, temperature=opt(FLOAT), humidity=opt(FLOAT))
ACKS = st.builds(Ack, upto_seq=U32)


@st.composite
def photo_chunks(draw: st.DrawFn) -> PhotoChunk:
    count = draw(st.integers(1, 0xFFFF))
    return PhotoChunk(
        photo_id=draw(NAME),
        index=draw(st.integers(0, count - 1)),
        count=count,
        data=draw(st.binary(max_size=PHOTO_CHUNK_SIZE)),
    )


HEARTBEATS = st.builds(Heartbeat, time_ms=U64, last_seq=U32)
MEDIA = st.builds(
    MediaChunk,
    kind=st.sampled_from(MediaKind),
    media_id=NAME,
    index=U32,
    last=st.booleans(),
    data=st.binary(max_size=4096),
)

STRATEGIES: dict[type, st.SearchStrategy[Message]] = {
    Event: EVENTS,
    Command: COMMANDS,
    Result: RESULTS,
    StateSnapshot: SNAPSHOTS,
    Telemetry: TELEMETRY,
    Ack: ACKS,
    PhotoChunk: photo_chunks(),
    Heartbeat: HEARTBEATS,
    MediaChunk: MEDIA,
    Resume: st.builds(Resume, last_seq=U32),
    TagCounters: st.builds(
        TagCounters,
        st.lists(st.tuples(st.from_regex(r"[0-9A-F]{14}", fullmatch=True), U32), max_size=20).map(
            tuple
        ),
    ),
}
MESSAGES: st.SearchStrategy[Message] = st.one_of(*STRATEGIES.values())


def test_every_message_type_has_a_strategy_and_a_table_entry() -> None:
    classes = {spec.cls for spec in TABLES[PROTOCOL_VERSION].values()}
    assert classes == set(STRATEGIES)
    assert {spec.cls for spec in TABLES[1].values()} == classes - {
        Resume,
        TagCounters,
    }  # v2 added them
    assert classes == set(typing.get_args(Message))


@pytest.mark.parametrize("cls", list(STRATEGIES), ids=lambda c: c.__name__)
@given(data=st.data())
def test_round_trip(cls: type, data: st.DataObject) -> None:
    msg = data.draw(STRATEGIES[cls])
    msg_type, payload = encode_message(msg)
    assert TABLES[PROTOCOL_VERSION][msg_type].cls is cls
    assert decode_message(msg_type, payload) == msg


def test_every_event_field_travels() -> None:
    event = Event(
        seq=4_000_000_000,
        time_ms=1_795_000_000_123,
        type=EventType.ARM_REFUSED,
        method=Method.WEB,
        cid="1401",
        sia="CI",
        mode=Mode.NIGHT,
        user="álice",
        zone="front_door",
        tag="04A1B2C3D4E5F6",
        photo="ph-7",
        detail="open: front_door, hall" * 100,
        clock_unsynced=True,
    )
    decoded = decode_message(*encode_message(event))
    assert dataclasses.asdict(decoded) == dataclasses.asdict(event)
    # An absent optional field and an empty one are different on the wire.
    empty = dataclasses.replace(event, user="", zone="", tag="", photo="", detail="")
    assert decode_message(*encode_message(empty)) == empty


def test_the_clock_unsynced_flag_is_one_bit_and_absent_by_default() -> None:
    event = Event(42, 1_795_000_000_123, EventType.ARMED, Method.TAG, "3401", "CL", Mode.TOTAL)
    _, plain = encode_message(event)
    _, flagged = encode_message(dataclasses.replace(event, clock_unsynced=True))
    assert plain[14] == 0x01  # present: mode only, as before the flag existed
    assert flagged == plain[:14] + bytes([0x41]) + plain[15:]
    assert decode_message(1, flagged).clock_unsynced
    assert not decode_message(1, plain).clock_unsynced


@pytest.mark.parametrize("codes", v1.ALL_CODES, ids=lambda c: c.enum.__name__)
def test_every_enum_member_has_one_wire_code(codes: Codes[Any]) -> None:
    members = set(codes.enum.__members__.values())
    assert set(codes.encode) == members, "append the new member to the code table"
    assert sorted(codes.decode) == list(range(1, len(members) + 1))


def test_published_codes_do_not_move() -> None:
    # Spot checks of docs/protocol.md: a published code never changes.
    assert v1.EVENT_TYPE_CODES.encode[EventType.ARMING] == 1
    assert v1.EVENT_TYPE_CODES.encode[EventType.RESTART] == 18
    assert v1.EVENT_TYPE_CODES.encode[EventType.DEVICE_BACK] == 21
    assert v1.STATE_CODES.encode[State.TRIGGERED] == 7
    assert v1.METHOD_CODES.encode[Method.SYSTEM] == 5
    assert v1.ACTION_CODES.encode[Action.REVOKE_TAG] == 7
    assert v1.ERROR_CODES.encode[ErrorCode.TIMEOUT] == 6
    assert {s.cls: t for t, s in TABLES[1].items()} == {
        Event: 1,
        Command: 2,
        Result: 3,
        StateSnapshot: 4,
        Telemetry: 5,
        Ack: 6,
        PhotoChunk: 7,
        Heartbeat: 8,
        MediaChunk: 11,
    }
    assert {s.cls: t for t, s in TABLES[2].items() if t not in TABLES[1]} == {
        Resume: 9,
        TagCounters: 10,
    }
    assert v1.EVENT_TYPE_CODES.encode[EventType.CLIP_READY] == 28
    assert v1.ACTION_CODES.encode[Action.CLIP] == 10
    assert v1.MEDIA_KIND_CODES.encode[MediaKind.CLIP] == 2


@pytest.mark.parametrize(
    "msg",
    [
        Event(-1, 0, EventType.ARMED, Method.TAG, "3401", "CL"),
        Event(2**32, 0, EventType.ARMED, Method.TAG, "3401", "CL"),
        Event(1, 2**64, EventType.ARMED, Method.TAG, "3401", "CL"),
        Event(1, 0, EventType.ARMED, Method.TAG, "x" * 256, "CL"),
        Event(1, 0, EventType.ARMED, Method.TAG, "3401", "CL", user="é" * 128),
        Event(1, 0, EventType.ARMED, Method.TAG, "3401", "CL", detail="x" * 65536),
        Event(1, 0, EventType.ARMED, Method.TAG, "\ud800", "CL"),
        Command("c1", Action.ARM, "alice", Via.APP, camera="x" * 300),
        StateSnapshot(State.DISARMED, 0, open_zones=("z",) * 256),
        Telemetry(0, temperature=math.nan),
        Telemetry(0, humidity=math.inf),
        PhotoChunk("p", 0, 1, b"x" * (PHOTO_CHUNK_SIZE + 1)),
        PhotoChunk("p", 1, 1, b""),
        PhotoChunk("p", 0, 0, b""),
        PhotoChunk("p", 0, 2**16, b""),
        Ack(-1),
        Heartbeat(0, 2**32),
    ],
    ids=lambda m: type(m).__name__,
)
def test_values_that_do_not_fit_are_refused_on_encode(msg: Message) -> None:
    with pytest.raises(EncodeError):
        encode_message(msg)


def test_encode_error_is_a_value_error_too() -> None:
    with pytest.raises(ValueError, match="cannot encode"):
        encode_message(Ack(-1))


def test_not_a_message_is_refused() -> None:
    with pytest.raises(EncodeError):
        encode_message("hello")  # type: ignore[arg-type]


def _event_payload() -> bytes:
    event = Event(42, 1_795_000_000_123, EventType.ARMED, Method.TAG, "3401", "CL", Mode.TOTAL)
    return encode_message(event)[1]


@pytest.mark.parametrize(
    ("msg_type", "payload", "match"),
    [
        (1, _event_payload()[:-1], "ends inside"),
        (1, _event_payload() + b"\x00", "1 bytes after"),
        (1, b"", "ends inside"),
        (1, bytes.fromhex("0000002a000001a1ee565e7b") + bytes([99, 2, 0, 0, 0]), "EventType"),
        (1, bytes.fromhex("0000002a000001a1ee565e7b") + bytes([2, 0, 0, 0, 0]), "Method"),
        (1, bytes.fromhex("0000002a000001a1ee565e7b") + bytes([2, 2, 0x80, 0, 0]), "bits"),
        (1, bytes.fromhex("0000002a000001a1ee565e7b") + bytes([2, 2, 0, 1, 0xFF, 0]), "Event"),
        (3, bytes([1]) + b"c" + bytes([2, 0]), "ok must be"),
        (4, bytes([1, 4]) + bytes(8) + bytes([0, 0]), "flag"),
        (5, bytes(8) + bytes([1]) + bytes.fromhex("7ff8000000000000"), "finite"),
        (7, bytes([1]) + b"p" + bytes([0, 1, 0, 1, 0, 0]), "index"),
        (7, bytes([1]) + b"p" + bytes([0, 0, 0, 0, 0, 0]), "index"),
        (7, bytes([1]) + b"p" + bytes([0, 0, 0, 1, 0x10, 1]) + bytes(4097), "over"),
    ],
)
def test_malformed_payloads_are_refused(msg_type: int, payload: bytes, match: str) -> None:
    with pytest.raises(MalformedPayload, match=match):
        decode_message(msg_type, payload)


def test_unknown_type_and_version() -> None:
    with pytest.raises(UnknownType):
        decode_message(0, b"")
    with pytest.raises(UnknownType):
        decode_message(200, b"")
    with pytest.raises(UnknownType):
        decode_message(1, _event_payload(), version=9)


def test_random_payloads_raise_only_protocol_errors_and_decode_canonically() -> None:
    rng = random.Random(20261126)
    decoded = 0
    for i in range(100_000):
        msg_type = rng.randrange(0, 10)
        payload = rng.randbytes(rng.randrange(0, 40 if i % 2 else 400))
        try:
            msg = decode_message(msg_type, payload)
        except ProtocolError:
            continue
        decoded += 1
        # Whatever decodes is canonical: it encodes back to the very same bytes.
        assert encode_message(msg) == (msg_type, payload)
    assert decoded > 100  # the short fixed-size types (Ack, Heartbeat) do decode


@given(msg=MESSAGES, data=st.data())
def test_damaged_payloads_raise_only_protocol_errors(msg: Message, data: st.DataObject) -> None:
    msg_type, payload = encode_message(msg)
    damaged = bytearray(payload)
    if damaged:
        index = data.draw(st.integers(0, len(damaged) - 1))
        damaged[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(damaged)))
    for candidate in (bytes(damaged), bytes(damaged[:cut]), bytes(damaged) + b"\x01"):
        try:
            decoded = decode_message(msg_type, candidate)
        except ProtocolError:
            continue
        assert encode_message(decoded) == (msg_type, candidate)


def test_a_command_code_never_shows_in_a_repr() -> None:
    command = Command("c1", Action.DISARM, "", Via.APP, code="4711")
    assert "4711" not in repr(command)
