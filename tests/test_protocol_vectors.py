"""The test vectors of docs/protocol.md, checked against the code and an independent decoder.

The independent decoder below follows the document only: ``struct`` for the
layout, the ChaCha20-Poly1305 primitive for the AEAD, the code lists of §4.9.
It imports nothing from protocol/.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"
BLOCK = re.compile(r"```(vector|stream)\n(.*?)```", re.DOTALL)


def blocks(kind: str) -> list[dict[str, str]]:
    found = []
    for block_kind, body in BLOCK.findall(DOC.read_text(encoding="utf-8")):
        if block_kind == kind:
            fields = {}
            for line in body.strip().splitlines():
                name, _, value = line.partition(":")
                fields[name.strip()] = value.strip()
            found.append(fields)
    return found


VECTORS = blocks("vector")
STREAMS = blocks("stream")


def test_the_document_has_enough_vectors() -> None:
    assert len(VECTORS) >= 6
    assert len(STREAMS) >= 1
    kinds = {v["message"].split(" ", 1)[0] for v in VECTORS}
    assert kinds == {
        "Event",
        "Command",
        "Result",
        "StateSnapshot",
        "Telemetry",
        "Ack",
        "PhotoChunk",
        "Heartbeat",
        "Resume",
        "TagCounters",
        "MediaChunk",
    }


# ---- the independent implementation (docs/protocol.md only) ----

CODES = {
    "type": "arming armed disarmed entry alarm panic duress tamper fire code_rejected "
    "tag_rejected keypad_locked keypad_unlocked arm_refused tag_revoked photo_requested "
    "photo_ready restart alarm_end device_lost device_back storage_fault storage_ok store_reset "
    "listen_started listen_ended clip_requested clip_ready",
    "method": "keypad tag app web system",
    "mode": "total partial night",
    "state": "disarmed arming armed_total armed_partial armed_night pending triggered",
    "action": "arm disarm status photo sos unlock revoke_tag listen listen_stop clip",
    "kind": "audio clip",
    "via": "app web",
    "error": "bad_request unknown_user forbidden invalid_state panel_offline timeout busy",
}
TYPES = {
    1: "Event",
    2: "Command",
    3: "Result",
    4: "StateSnapshot",
    5: "Telemetry",
    6: "Ack",
    7: "PhotoChunk",
    8: "Heartbeat",
    9: "Resume",
    10: "TagCounters",
    11: "MediaChunk",
}


def code(enum: str, value: int) -> str:
    return CODES[enum].split()[value - 1]


class Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, fmt: str) -> Any:
        (value,) = struct.unpack_from(">" + fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return value

    def raw(self, size: int) -> bytes:
        value = self.data[self.at : self.at + size]
        assert len(value) == size
        self.at += size
        return value

    def str8(self) -> str:
        return self.raw(self.take("B")).decode()

    def str16(self) -> str:
        return self.raw(self.take("H")).decode()

    def done(self) -> None:
        assert self.at == len(self.data)


def optional(present: int, bit: int, read: Any) -> Any:
    return read() if present & bit else None


def decode_payload(kind: str, payload: bytes) -> dict[str, Any]:
    r = Reader(payload)
    out: dict[str, Any]
    if kind == "Event":
        out = {"seq": r.take("I"), "time_ms": r.take("Q")}
        out["type"] = code("type", r.take("B"))
        out["method"] = code("method", r.take("B"))
        p = r.take("B")
        out["cid"], out["sia"] = r.str8(), r.str8()
        out["mode"] = optional(p, 0x01, lambda: code("mode", r.take("B")))
        out["user"] = optional(p, 0x02, r.str8)
        out["zone"] = optional(p, 0x04, r.str8)
        out["tag"] = optional(p, 0x08, r.str8)
        out["photo"] = optional(p, 0x10, r.str8)
        out["detail"] = optional(p, 0x20, r.str16)
    elif kind == "Command":
        out = {"id": r.str8(), "action": code("action", r.take("B"))}
        out["via"] = code("via", r.take("B"))
        out["user"] = r.str8()
        p = r.take("B")
        out["mode"] = optional(p, 0x01, lambda: code("mode", r.take("B")))
        out["camera"] = optional(p, 0x02, r.str8)
        out["tag"] = optional(p, 0x04, r.str8)
        if p & 0x08:  # absent from the vectors
            out["code"] = r.str8()
        if p & 0x10:  # protocol 1.1: absent from the vectors of 1.0 commands
            out["deadline_ms"] = r.take("Q")
    elif kind == "Result":
        out = {"id": r.str8(), "ok": bool(r.take("B"))}
        p = r.take("B")
        out["state"] = optional(p, 0x01, lambda: code("state", r.take("B")))
        out["error"] = optional(p, 0x02, lambda: code("error", r.take("B")))
        out["detail"] = optional(p, 0x04, r.str16)
    elif kind == "StateSnapshot":
        out = {"state": code("state", r.take("B"))}
        flags = r.take("B")
        out["siren"], out["locked"] = bool(flags & 1), bool(flags & 2)
        out["since_ms"] = r.take("Q")
        p = r.take("B")
        out["locked_until_ms"] = optional(p, 0x01, lambda: r.take("Q"))
        out["mode"] = optional(p, 0x02, lambda: code("mode", r.take("B")))
        out["open_zones"] = [r.str8() for _ in range(r.take("B"))]
    elif kind == "Telemetry":
        out = {"time_ms": r.take("Q")}
        p = r.take("B")
        out["temperature"] = optional(p, 0x01, lambda: r.take("d"))
        out["humidity"] = optional(p, 0x02, lambda: r.take("d"))
    elif kind == "MediaChunk":
        out = {"kind": code("kind", r.take("B"))}
        flags = r.take("B")
        assert flags & ~1 == 0
        out["media_id"], out["index"] = r.str8(), r.take("I")
        out["last"] = bool(flags & 1)
        out["data"] = r.raw(r.take("H")).hex()
    elif kind == "Ack":
        out = {"upto_seq": r.take("I")}
    elif kind == "PhotoChunk":
        out = {"photo_id": r.str8(), "index": r.take("H"), "count": r.take("H")}
        out["data"] = r.raw(r.take("H")).hex()
    elif kind == "Resume":
        out = {"last_seq": r.take("I")}
    elif kind == "TagCounters":
        out = {"counters": [[r.str8(), r.take("I")] for _ in range(r.take("H"))]}
    else:
        assert kind == "Heartbeat"
        out = {"time_ms": r.take("Q"), "last_seq": r.take("I")}
    r.done()
    return out


def independent_open(key: bytes, frame: bytes) -> tuple[dict[str, Any], bytes, str]:
    """Header fields, plaintext payload and message kind, from the document's layout."""
    magic, version, msg_type, flags, direction, key_id, n = struct.unpack_from(">2s6B", frame)
    assert (magic, version, flags) == (b"CN", 2, 0)
    panel_id = frame[8 : 8 + n].decode("ascii")
    seq, timestamp_ms, epoch, peer_epoch, length = struct.unpack_from(">IQQQH", frame, 8 + n)
    assert epoch < 2**56 and peer_epoch < 2**56
    header_len = 38 + n
    assert len(frame) == header_len + length
    nonce = bytes([direction]) + epoch.to_bytes(7, "big") + struct.pack(">I", seq)
    payload = ChaCha20Poly1305(key).decrypt(nonce, frame[header_len:], frame[:header_len])
    header = {
        "panel_id": panel_id,
        "direction": direction,
        "key_id": key_id,
        "msg_type": msg_type,
        "seq": seq,
        "timestamp_ms": timestamp_ms,
        "epoch": epoch,
        "peer_epoch": peer_epoch,
    }
    return header, payload, TYPES[msg_type]


def crc16_arc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def cobs(data: bytes) -> bytes:
    out = bytearray()
    block = bytearray()
    for byte in data:
        if byte:
            block.append(byte)
            if len(block) == 254:
                out += bytes([255]) + block
                block.clear()
        else:
            out += bytes([len(block) + 1]) + block
            block.clear()
    out += bytes([len(block) + 1]) + block
    return bytes(out)


# ---- the checks ----


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_with_the_independent_decoder(vector: dict[str, str]) -> None:
    key = bytes.fromhex(vector["key"])
    frame = bytes.fromhex(vector["frame"])
    kind, fields = vector["message"].split(" ", 1)
    header, payload, decoded_kind = independent_open(key, frame)
    assert header == json.loads(vector["header"])
    assert decoded_kind == kind
    assert payload.hex() == vector["payload"]
    assert frame[-len(payload) - 16 : -16] != payload  # it really is encrypted
    epoch = header["epoch"].to_bytes(7, "big")
    nonce = bytes([header["direction"]]) + epoch + struct.pack(">I", header["seq"])
    assert nonce.hex() == vector["nonce"]
    assert decode_payload(kind, payload) == json.loads(fields)


def message_from_json(kind: str, fields: dict[str, Any]) -> Any:
    from protocol import messages

    cls = getattr(messages, kind)
    enums = {
        "type": messages.EventType,
        "method": messages.Method,
        "mode": messages.Mode,
        "state": messages.State,
        "action": messages.Action,
        "via": messages.Via,
        "error": messages.ErrorCode,
        "kind": messages.MediaKind,
    }
    values: dict[str, Any] = {}
    for name, value in fields.items():
        if value is not None and name in enums:
            value = enums[name](value)
        elif name == "data":
            value = bytes.fromhex(value)
        elif name == "open_zones":
            value = tuple(value)
        elif name == "counters":
            value = tuple((tag, counter) for tag, counter in value)
        values[name] = value
    return cls(**values)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_with_the_code(vector: dict[str, str]) -> None:
    from protocol.codec import encode_message
    from protocol.frame import Direction, Header, nonce, open_frame, seal_frame

    key = bytes.fromhex(vector["key"])
    frame = bytes.fromhex(vector["frame"])
    kind, fields = vector["message"].split(" ", 1)
    message = message_from_json(kind, json.loads(fields))
    h = json.loads(vector["header"])
    header = Header(
        h["panel_id"],
        Direction(h["direction"]),
        h["seq"],
        h["timestamp_ms"],
        key_id=h["key_id"],
        msg_type=h["msg_type"],
        epoch=h["epoch"],
        peer_epoch=h["peer_epoch"],
    )
    assert seal_frame(key, header, message) == frame
    assert open_frame(key, frame) == (header, message)
    assert encode_message(message) == (h["msg_type"], bytes.fromhex(vector["payload"]))
    assert nonce(header.direction, header.seq, header.epoch).hex() == vector["nonce"]


# Vector V1 of protocol version 1 (before epochs): refused as a whole, never misread.
V1_FRAME_OF_VERSION_1 = bytes.fromhex(
    "434e010100010002703100000001000001a1ee565e7b003da14ff1821c8cfde0f03a4bb4bb8a351d0cbf7843"
    "78baca5dd0742cbd4cc7018a8183b151405027bdf7bbd471c0fd5073b4b8af095bb4cf5cedb66d3ff2"
)


def test_a_version_1_frame_is_refused_as_unsupported() -> None:
    from protocol.errors import UnsupportedVersion
    from protocol.frame import open_frame, peek_header

    key = bytes(range(32))
    for opener in (peek_header, lambda f: open_frame(key, f)):
        with pytest.raises(UnsupportedVersion, match="version 1"):
            opener(V1_FRAME_OF_VERSION_1)


@pytest.mark.parametrize("vector", STREAMS, ids=[v["name"] for v in STREAMS])
def test_stream_vector(vector: dict[str, str]) -> None:
    from protocol.stream import StreamDecoder, encode_stream

    frame = bytes.fromhex(vector["frame"])
    line = bytes.fromhex(vector["line"])
    crc = crc16_arc(frame)
    assert f"{crc:04x}" == vector["crc"]
    assert b"\x00" + cobs(frame + crc.to_bytes(2, "little")) + b"\x00" == line
    assert crc16_arc(b"123456789") == 0xBB3D
    assert encode_stream(frame) == line
    assert StreamDecoder().feed(line) == [frame]
