"""The sealed envelope: round trips, and every way a frame can be damaged or forged."""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.codec import PHOTO_CHUNK_SIZE, spec_for_message
from protocol.errors import (
    AuthenticationFailed,
    BadMagic,
    EncodeError,
    FrameTooLarge,
    MalformedHeader,
    ProtocolError,
    Truncated,
    UnknownKey,
    UnknownType,
    UnsupportedVersion,
)
from protocol.frame import (
    MAX_FRAME,
    MAX_PAYLOAD,
    MAX_SEQ,
    TAG_SIZE,
    Direction,
    Header,
    nonce,
    open_frame,
    peek_header,
    seal_frame,
)
from protocol.messages import (
    Ack,
    Action,
    Command,
    Event,
    EventType,
    Heartbeat,
    Message,
    Method,
    Mode,
    PhotoChunk,
    Via,
)
from tests.test_protocol_codec import MESSAGES

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
EVENT = Event(
    42,
    1_795_000_000_123,
    EventType.ARMED,
    Method.TAG,
    "3401",
    "CL",
    mode=Mode.TOTAL,
    user="alice",
    tag="04A1B2C3D4E5F6",
)
UP = Header("p1", Direction.PANEL_TO_HUB, seq=7, timestamp_ms=1_795_000_000_000)
DOWN = Header("p1", Direction.HUB_TO_PANEL, seq=7, timestamp_ms=1_795_000_000_000, key_id=3)


def direction_for(msg: Message) -> Direction:
    spec = spec_for_message(msg)
    return Direction.PANEL_TO_HUB if spec.from_panel else Direction.HUB_TO_PANEL


@given(
    msg=MESSAGES,
    panel_id=st.from_regex(r"[a-z0-9_-]{1,32}", fullmatch=True),
    seq=st.integers(1, MAX_SEQ),
    timestamp_ms=st.integers(0, 2**64 - 1),
    key_id=st.integers(0, 255),
    key=st.binary(min_size=32, max_size=32),
)
def test_seal_open_round_trip(
    msg: Message, panel_id: str, seq: int, timestamp_ms: int, key_id: int, key: bytes
) -> None:
    header = Header(panel_id, direction_for(msg), seq, timestamp_ms, key_id)
    frame = seal_frame(key, header, msg)
    assert len(frame) <= MAX_FRAME
    opened_header, opened = open_frame(key, frame)
    assert opened == msg
    assert opened_header == dataclasses.replace(header, msg_type=spec_for_message(msg).type_id)
    assert peek_header(frame) == opened_header


def test_header_is_in_clear_and_payload_is_not() -> None:
    frame = seal_frame(KEY, UP, EVENT)
    assert frame.startswith(b"CN\x02\x01\x00\x01\x00\x02p1")
    assert b"alice" not in frame
    assert b"04A1B2C3D4E5F6" not in frame
    assert peek_header(frame).panel_id == "p1"


def test_key_lookup_gets_the_unverified_header() -> None:
    frame = seal_frame(KEY, DOWN, Ack(5))
    seen: list[Header] = []

    def lookup(header: Header) -> bytes | None:
        seen.append(header)
        return {("p1", 3): KEY}.get((header.panel_id, header.key_id))

    assert open_frame(lookup, frame) == (dataclasses.replace(DOWN, msg_type=6), Ack(5))
    assert seen[0].key_id == 3
    with pytest.raises(UnknownKey):
        open_frame(lambda header: None, frame)


def test_nonce_is_unique_per_direction_and_seq() -> None:
    nonces = {nonce(d, s) for d in Direction for s in (1, 2, 255, 256, MAX_SEQ)}
    assert len(nonces) == 10
    assert all(len(n) == 12 for n in nonces)


def test_same_seq_in_the_two_directions_gives_different_ciphertext() -> None:
    up = seal_frame(KEY, dataclasses.replace(UP, seq=9), Heartbeat(1, 2))
    down = seal_frame(KEY, dataclasses.replace(DOWN, seq=9, key_id=0), Heartbeat(1, 2))
    assert up[-TAG_SIZE - 12 :] != down[-TAG_SIZE - 12 :]


@pytest.mark.parametrize(
    "msg",
    [
        EVENT,
        Command("c1", Action.ARM, "alice", Via.APP, mode=Mode.NIGHT),
        PhotoChunk("ph-1", 0, 3, bytes(range(256)) * 2),
    ],
    ids=lambda m: type(m).__name__,
)
def test_every_single_bit_flip_is_rejected(msg: Message) -> None:
    header = Header(
        "panel-7", direction_for(msg), 1234, 1_795_000_000_000, key_id=1,
        epoch=0x0102030405060708 >> 8, peer_epoch=42,
    )  # fmt: skip
    frame = seal_frame(KEY, header, msg)
    header_len = 38 + len("panel-7")
    for i in range(len(frame)):
        for bit in range(8):
            damaged = bytearray(frame)
            damaged[i] ^= 1 << bit
            with pytest.raises(ProtocolError) as info:
                open_frame(KEY, bytes(damaged))
            if i < 2:
                assert isinstance(info.value, BadMagic)
            elif i == 2:
                assert isinstance(info.value, UnsupportedVersion)
            elif i >= header_len:
                assert isinstance(info.value, AuthenticationFailed)


def test_truncation_at_every_length_is_rejected() -> None:
    frame = seal_frame(KEY, UP, EVENT)
    for cut in range(len(frame)):
        with pytest.raises(ProtocolError) as info:
            open_frame(KEY, frame[:cut])
        if cut >= 2:
            assert isinstance(info.value, Truncated), cut


@pytest.mark.parametrize("extra", [b"\x00", b"\xff" * 16, bytes(range(200))])
def test_appended_bytes_are_rejected(extra: bytes) -> None:
    frame = seal_frame(KEY, UP, EVENT)
    with pytest.raises(MalformedHeader, match="after the frame"):
        open_frame(KEY, frame + extra)


def test_wrong_key_is_rejected() -> None:
    frame = seal_frame(KEY, UP, EVENT)
    with pytest.raises(AuthenticationFailed):
        open_frame(OTHER_KEY, frame)


def test_header_fields_are_authenticated() -> None:
    # Forge a header with a valid layout: only the AEAD can notice.
    frame = bytearray(seal_frame(KEY, UP, EVENT))
    frame[6] = 9  # key id
    with pytest.raises(AuthenticationFailed):
        open_frame(KEY, bytes(frame))
    frame = bytearray(seal_frame(KEY, UP, EVENT))
    frame[8:10] = b"p2"  # panel id
    with pytest.raises(AuthenticationFailed):
        open_frame(KEY, bytes(frame))


def test_message_type_must_match_its_direction() -> None:
    with pytest.raises(EncodeError, match="do not travel panel->hub"):
        seal_frame(KEY, UP, Ack(1))
    with pytest.raises(EncodeError, match="do not travel hub->panel"):
        seal_frame(KEY, DOWN, EVENT)
    # Heartbeats go both ways.
    assert open_frame(KEY, seal_frame(KEY, DOWN, Heartbeat(1, 1)))[1] == Heartbeat(1, 1)
    # A frame that claims the wrong direction for its type is refused before decryption.
    frame = bytearray(seal_frame(KEY, DOWN, Ack(1)))
    frame[5] = Direction.PANEL_TO_HUB
    with pytest.raises(UnknownType):
        open_frame(KEY, bytes(frame))


def test_unknown_message_type_is_rejected() -> None:
    frame = bytearray(seal_frame(KEY, UP, EVENT))
    frame[3] = 0xEE
    assert peek_header(bytes(frame)).msg_type == 0xEE
    with pytest.raises(UnknownType):
        open_frame(KEY, bytes(frame))


@pytest.mark.parametrize(
    ("header", "match"),
    [
        (dataclasses.replace(UP, panel_id="P1"), "panel id"),
        (dataclasses.replace(UP, panel_id=""), "panel id"),
        (dataclasses.replace(UP, panel_id="x" * 33), "panel id"),
        (dataclasses.replace(UP, seq=0), "seq"),
        (dataclasses.replace(UP, seq=MAX_SEQ + 1), "seq"),
        (dataclasses.replace(UP, timestamp_ms=-1), "header"),
        (dataclasses.replace(UP, timestamp_ms=2**64), "header"),
        (dataclasses.replace(UP, key_id=256), "header"),
        (dataclasses.replace(UP, msg_type=2), "msg_type"),
        (dataclasses.replace(UP, flags=1), "flags"),
        (dataclasses.replace(UP, version=1), "v1"),
        (dataclasses.replace(UP, epoch=2**56), "epoch"),
        (dataclasses.replace(UP, peer_epoch=-1), "epoch"),
        (dataclasses.replace(UP, direction=3), "direction"),  # type: ignore[arg-type]
    ],
)
def test_bad_headers_are_refused_on_seal(header: Header, match: str) -> None:
    with pytest.raises(EncodeError, match=match):
        seal_frame(KEY, header, EVENT)


def test_frame_size_cap() -> None:
    # The largest photo chunk fits with room to spare.
    biggest = PhotoChunk("p" * 255, 0xFFFE, 0xFFFF, b"\xff" * PHOTO_CHUNK_SIZE)
    frame = seal_frame(KEY, Header("x" * 32, Direction.PANEL_TO_HUB, MAX_SEQ, 2**64 - 1), biggest)
    assert len(frame) < MAX_FRAME
    assert open_frame(KEY, frame)[1] == biggest
    # A message that would not fit is refused before anything is sent.
    huge = Event(1, 0, EventType.ALARM, Method.SYSTEM, "1130", "BA", detail="x" * MAX_FRAME)
    with pytest.raises(FrameTooLarge):
        seal_frame(KEY, UP, huge)
    # The cap counts the whole frame: the largest payload fits with the longest panel id.
    limit = Header("x" * 32, Direction.PANEL_TO_HUB, 1, 0)
    longest = "x" * (MAX_PAYLOAD - 25)  # 25: the other fields of the event
    assert len(seal_frame(KEY, limit, dataclasses.replace(huge, detail=longest))) == MAX_FRAME
    with pytest.raises(FrameTooLarge):
        seal_frame(KEY, limit, dataclasses.replace(huge, detail=longest + "x"))
    # Over-long input is refused before parsing, and so is a header that declares it.
    with pytest.raises(FrameTooLarge):
        open_frame(KEY, frame + bytes(MAX_FRAME))
    declared = bytearray(seal_frame(KEY, UP, EVENT))
    declared[36 + 2 : 38 + 2] = (0xFFFF).to_bytes(2, "big")
    with pytest.raises(FrameTooLarge):
        open_frame(KEY, bytes(declared))


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (b"", Truncated),
        (b"C", Truncated),
        (b"X", BadMagic),
        (b"CN", Truncated),
        (b"CN\x01", UnsupportedVersion),  # version 1: a clear refusal (docs/protocol.md)
        (b"CN\x03", UnsupportedVersion),
        (b"CN\x02\x01\x00\x01", Truncated),
        (b"CN\x02\x01\x00\x01\x00\x00" + bytes(30), MalformedHeader),  # empty panel id
        (b"CN\x02\x01\x00\x03\x00\x01p" + bytes(30), MalformedHeader),  # direction 3
        (b"CN\x02\x01\x80\x01\x00\x01p" + bytes(30), MalformedHeader),  # flags
        (b"CN\x02\x01\x00\x01\x00\x01P" + bytes(30), MalformedHeader),  # upper case
        (b"CN\x02\x01\x00\x01\x00\x01\xff" + bytes(30), MalformedHeader),  # not ASCII
        (b"CN\x02\x01\x00\x01\x00\x01p" + bytes(30), MalformedHeader),  # seq 0
        (b"CN\x02\x01\x00\x01\x00\x01p" + bytes(3) + b"\x01" + bytes(26), MalformedHeader),
    ],
)
def test_bad_headers_are_rejected_on_open(frame: bytes, error: type[ProtocolError]) -> None:
    with pytest.raises(error):
        open_frame(KEY, frame)
    with pytest.raises(error):
        peek_header(frame)


def test_frames_may_be_any_bytes_like() -> None:
    frame = seal_frame(KEY, UP, EVENT)
    assert open_frame(KEY, bytearray(frame))[1] == EVENT
    assert open_frame(KEY, memoryview(frame))[1] == EVENT


def _mutate(rng: random.Random, frame: bytes) -> bytes:
    data = bytearray(frame)
    for _ in range(rng.randrange(1, 4)):
        choice = rng.randrange(4)
        if choice == 0 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif choice == 1:
            del data[rng.randrange(len(data) + 1) :]
        elif choice == 2:
            data += rng.randbytes(rng.randrange(1, 8))
        elif data:
            at = rng.randrange(len(data))
            data[at:at] = rng.randbytes(rng.randrange(1, 4))
    return bytes(data)


def test_random_bytes_raise_only_protocol_errors() -> None:
    rng = random.Random(1126)
    frames = [
        seal_frame(KEY, UP, EVENT),
        seal_frame(KEY, DOWN, Command("c9", Action.PHOTO, "bob", Via.WEB, camera="hall")),
        seal_frame(KEY, UP, PhotoChunk("ph", 1, 2, rng.randbytes(300))),
    ]
    prefixes = [f[: 22 + 2] for f in frames]
    opened = 0
    for i in range(100_000):
        kind = i % 4
        if kind == 0:
            data = rng.randbytes(rng.randrange(0, 120))
        elif kind == 1:
            data = b"CN\x01" + rng.randbytes(rng.randrange(0, 120))
        elif kind == 2:
            data = _mutate(rng, rng.choice(frames))
        else:  # a plausible header in front of garbage: reaches the AEAD
            body = rng.randbytes(rng.randrange(TAG_SIZE, 200))
            prefix = bytearray(rng.choice(prefixes))
            prefix[-2:] = len(body).to_bytes(2, "big")
            data = bytes(prefix) + body
        try:
            open_frame(KEY, data)
        except ProtocolError:
            continue
        opened += 1
    # Only mutations that left a frame intact (for example deleting nothing) open.
    assert opened < 100_000 // 4 // 10
