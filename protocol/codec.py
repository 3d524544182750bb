"""Message payloads <-> dataclasses, through one message table per protocol version.

construct's Containers stay inside protocol/: callers see the dataclasses of
``protocol.messages`` only. Decoding raises nothing but ``ProtocolError``.
"""

from __future__ import annotations

import struct
from typing import Final

from construct import ConstructError

from protocol import v1, v2
from protocol.errors import EncodeError, MalformedPayload, UnknownType
from protocol.messages import Message
from protocol.schema import MessageSpec

PROTOCOL_VERSION: Final = v2.VERSION
PHOTO_CHUNK_SIZE: Final = v1.PHOTO_CHUNK_SIZE

TABLES: Final[dict[int, dict[int, MessageSpec]]] = {v1.VERSION: v1.TABLE, v2.VERSION: v2.TABLE}
"""Protocol version -> (message type id -> spec)."""
_BY_CLASS: Final = {v: {s.cls: s for s in t.values()} for v, t in TABLES.items()}

_ENCODE_ERRORS: Final = (
    ConstructError,
    struct.error,
    UnicodeEncodeError,
    OverflowError,
    TypeError,
    AttributeError,
)
_DECODE_ERRORS: Final = (ConstructError, struct.error, ValueError, OverflowError, TypeError)


def spec_for_message(msg: Message, version: int = PROTOCOL_VERSION) -> MessageSpec:
    """The table entry for a message's class."""
    try:
        return _BY_CLASS[version][type(msg)]
    except KeyError:
        raise EncodeError(f"{type(msg).__name__} is not a v{version} message") from None


def spec_for_type(msg_type: int, version: int = PROTOCOL_VERSION) -> MessageSpec:
    """The table entry for a message type id."""
    try:
        return TABLES[version][msg_type]
    except KeyError:
        raise UnknownType(f"message type {msg_type} is not in protocol v{version}") from None


def encode_spec(spec: MessageSpec, msg: Message) -> bytes:
    """The payload bytes of ``msg`` under ``spec``; ``EncodeError`` if a value does not fit."""
    try:
        return spec.schema.build(spec.to_wire(msg))
    except _ENCODE_ERRORS as exc:
        raise EncodeError(f"cannot encode {type(msg).__name__}: {exc}") from exc


def decode_spec(spec: MessageSpec, payload: bytes) -> Message:
    """The message in ``payload`` under ``spec``; only ``MalformedPayload`` escapes."""
    try:
        return spec.from_wire(spec.schema.parse_exact(payload, spec.cls.__name__))
    except MalformedPayload:
        raise
    except struct.error:
        raise MalformedPayload(f"{spec.cls.__name__} payload ends inside a field") from None
    except _DECODE_ERRORS as exc:
        raise MalformedPayload(f"bad {spec.cls.__name__} payload: {exc}") from exc


def encode_message(msg: Message, version: int = PROTOCOL_VERSION) -> tuple[int, bytes]:
    """``(msg_type, payload)`` for a message dataclass."""
    spec = spec_for_message(msg, version)
    return spec.type_id, encode_spec(spec, msg)


def decode_message(msg_type: int, payload: bytes, version: int = PROTOCOL_VERSION) -> Message:
    """The message dataclass for a type id and payload; raises only ``ProtocolError``."""
    return decode_spec(spec_for_type(msg_type, version), payload)
