"""Seal + open of an event frame: the construct codec against the same frame done with ``struct``.

The baseline builds the identical bytes (checked below) by hand with ``struct``,
seals them with the same cached ChaCha20-Poly1305 object, and decodes them back
into the same ``Header`` and ``Event`` dataclasses, so the ratio is the price of
the declarative schema alone.
"""

from __future__ import annotations

import struct

from protocol.codec import decode_message, encode_message
from protocol.frame import (
    PROTOCOL_VERSION,
    Direction,
    Header,
    aead_for_key,
    open_frame,
    seal_frame,
)
from protocol.messages import Event, EventType, Method, Mode
from protocol.session import Receiver, Sender
from protocol.v1 import EVENT_TYPE_CODES, METHOD_CODES, MODE_CODES
from tests.bench.harness import Metric, rate

KEY = bytes(range(32))
HEADER = Header(
    "p1",
    Direction.PANEL_TO_HUB,
    seq=1042,
    timestamp_ms=1_795_000_000_123,
    epoch=0x1234_5678_9ABC,
    peer_epoch=0x0FED_CBA9_8765,
)
EVENT = Event(
    seq=42,
    time_ms=1_795_000_000_123,
    type=EventType.ARMED,
    method=Method.TAG,
    cid="3401",
    sia="CL",
    mode=Mode.TOTAL,
    user="alice",
    tag="04A1B2C3D4E5F6",
)
TARGET = ">= 30000/s and >= 0.25x struct"

_H1 = struct.Struct(">2sBBBBBB")
_H2 = struct.Struct(">IQQQH")  # seq, timestamp, sender epoch, receiver epoch, length
_NONCE = struct.Struct(">QI")  # direction << 56 | sender epoch, then seq
_FIXED = struct.Struct(">IQBBB")
_LEN16 = struct.Struct(">H")
_TYPE_IN = EVENT_TYPE_CODES.decode
_TYPE_OUT = EVENT_TYPE_CODES.encode
_METHOD_IN = METHOD_CODES.decode
_METHOD_OUT = METHOD_CODES.encode
_MODE_IN = MODE_CODES.decode
_MODE_OUT = MODE_CODES.encode
_DIRECTIONS = {d.value: d for d in Direction}


def _text(value: str) -> bytes:
    data = value.encode()
    return bytes((len(data),)) + data


def struct_seal(header: Header, m: Event) -> bytes:
    """The frame ``seal_frame`` makes, with hand-written ``struct`` calls."""
    present = (
        (m.mode is not None)
        | (m.user is not None) << 1
        | (m.zone is not None) << 2
        | (m.tag is not None) << 3
        | (m.photo is not None) << 4
        | (m.detail is not None) << 5
    )
    parts = [
        _FIXED.pack(m.seq, m.time_ms, _TYPE_OUT[m.type], _METHOD_OUT[m.method], present),
        _text(m.cid),
        _text(m.sia),
    ]
    if m.mode is not None:
        parts.append(bytes((_MODE_OUT[m.mode],)))
    for value in (m.user, m.zone, m.tag, m.photo):
        if value is not None:
            parts.append(_text(value))
    if m.detail is not None:
        data = m.detail.encode()
        parts.append(_LEN16.pack(len(data)) + data)
    payload = b"".join(parts)
    panel = header.panel_id.encode()
    head = (
        _H1.pack(b"CN", PROTOCOL_VERSION, 1, 0, header.direction, header.key_id, len(panel))
        + panel
        + _H2.pack(
            header.seq, header.timestamp_ms, header.epoch, header.peer_epoch, len(payload) + 16
        )
    )
    return head + aead_for_key(KEY).encrypt(
        _NONCE.pack(header.direction << 56 | header.epoch, header.seq), payload, head
    )


def _read_text(data: bytes, at: int) -> tuple[str, int]:
    end = at + 1 + data[at]
    return data[at + 1 : end].decode(), end


def struct_open(frame: bytes) -> tuple[Header, Event]:
    """``open_frame`` for an event frame, with hand-written ``struct`` calls."""
    _, version, msg_type, flags, direction, key_id, id_len = _H1.unpack_from(frame)
    panel_id = frame[8 : 8 + id_len].decode()
    seq, timestamp_ms, epoch, peer_epoch, _ = _H2.unpack_from(frame, 8 + id_len)
    header_len = 8 + id_len + _H2.size
    header = Header(
        panel_id,
        _DIRECTIONS[direction],
        seq,
        timestamp_ms,
        key_id,
        msg_type,
        flags,
        version,
        epoch,
        peer_epoch,
    )
    p = aead_for_key(KEY).decrypt(
        _NONCE.pack(direction << 56 | epoch, seq), frame[header_len:], frame[:header_len]
    )
    event_seq, time_ms, type_code, method_code, present = _FIXED.unpack_from(p)
    cid, at = _read_text(p, _FIXED.size)
    sia, at = _read_text(p, at)
    mode = user = zone = tag = photo = detail = None
    if present & 1:
        mode = _MODE_IN[p[at]]
        at += 1
    if present & 2:
        user, at = _read_text(p, at)
    if present & 4:
        zone, at = _read_text(p, at)
    if present & 8:
        tag, at = _read_text(p, at)
    if present & 16:
        photo, at = _read_text(p, at)
    if present & 32:
        (size,) = _LEN16.unpack_from(p, at)
        detail = p[at + 2 : at + 2 + size].decode()
    event = Event(
        event_seq,
        time_ms,
        _TYPE_IN[type_code],
        _METHOD_IN[method_code],
        cid,
        sia,
        mode,
        user,
        zone,
        tag,
        photo,
        detail,
    )
    return header, event


def run() -> list[Metric]:
    """``codec_roundtrip_per_s`` with its ``struct`` baseline, and the session path as extra."""
    frame = seal_frame(KEY, HEADER, EVENT)
    assert struct_seal(HEADER, EVENT) == frame, "the baseline must build the same bytes"
    assert struct_open(frame) == open_frame(KEY, frame)

    codec = rate(lambda: open_frame(KEY, seal_frame(KEY, HEADER, EVENT)))
    baseline = rate(lambda: struct_open(struct_seal(HEADER, EVENT)))

    sender = Sender("p1", Direction.PANEL_TO_HUB, KEY)
    receiver = Receiver("p1", Direction.PANEL_TO_HUB, {0: KEY})
    session = rate(lambda: receiver.open(sender.seal(EVENT, 1_795_000_000_123)))
    payload = rate(lambda: decode_message(*encode_message(EVENT)))
    return [
        Metric(
            "codec_roundtrip_per_s",
            codec,
            "1/s",
            baseline=baseline,
            target=TARGET,
            met=codec >= 30_000 and codec >= 0.25 * baseline,
            extra={"session_roundtrip_per_s": session, "payload_only_per_s": payload},
        )
    ]
