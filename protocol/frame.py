"""The envelope: a clear, authenticated header and a ChaCha20-Poly1305 sealed payload.

Layout (big-endian; docs/protocol.md has the table): magic ``CN``, version,
msg type, flags, direction, key id, panel id (u8 length + ASCII), seq u32,
timestamp ms u64, sender epoch u64, receiver epoch u64, ciphertext length u16,
then ciphertext + 16-byte tag. The whole header is the AEAD's associated data;
the 96-bit nonce is ``direction || sender epoch (7 bytes) || seq``, so it never
repeats under one key as long as each sender never reuses a seq within one epoch
(``protocol.session`` sees to it) and draws a fresh epoch with each new store.
"""

from __future__ import annotations

import enum
import functools
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from typing import Final

from construct import Const, ConstructError, Int8ub, Int16ub, Int32ub, Int64ub, Struct
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from protocol.codec import (
    PROTOCOL_VERSION,
    decode_spec,
    encode_spec,
    spec_for_message,
    spec_for_type,
)
from protocol.errors import (
    AuthenticationFailed,
    BadMagic,
    EncodeError,
    FrameTooLarge,
    MalformedHeader,
    MalformedPayload,
    Truncated,
    UnknownKey,
    UnknownType,
    UnsupportedVersion,
)
from protocol.messages import Message
from protocol.schema import CompiledStruct, LengthPrefixed, MessageSpec

MAGIC: Final = b"CN"
KEY_SIZE: Final = 32
TAG_SIZE: Final = 16
MAX_FRAME: Final = 8192
"""Hard cap on a whole frame in bytes; a 4 KiB photo chunk needs about 4.4 KiB."""
MAX_SEQ: Final = 0xFFFFFFFF
MAX_EPOCH: Final = (1 << 56) - 1
"""Epochs are 56-bit (7 bytes of the nonce)."""
MAX_PANEL_ID: Final = 32
TAIL_SIZE: Final = 30
"""Header bytes after the panel id: seq 4, timestamp 8, epoch 8, receiver epoch 8, length 2."""
FIXED_HEADER: Final = 8 + TAIL_SIZE
"""Header bytes besides the panel id: magic 2, version, type, flags, direction, key id and
panel id length 1 each, then the tail."""
MAX_HEADER: Final = FIXED_HEADER + MAX_PANEL_ID
MAX_PAYLOAD: Final = MAX_FRAME - MAX_HEADER - TAG_SIZE
"""The largest plaintext payload that fits any frame (8122 bytes)."""

Buffer = bytes | bytearray | memoryview
"""What a frame may arrive as."""

PANEL_ID_RE: Final = re.compile(r"[a-z0-9_-]{1,32}")


class Direction(enum.IntEnum):
    """Which way a frame travels; part of the nonce, so the two ways never collide."""

    PANEL_TO_HUB = 1
    HUB_TO_PANEL = 2


_DIRECTIONS: Final = {d.value: d for d in Direction}


@dataclass(frozen=True, slots=True)
class Header:
    """The clear part of a frame; ``msg_type`` 0 in ``seal_frame`` means "from the message"."""

    panel_id: str
    direction: Direction
    seq: int
    timestamp_ms: int
    key_id: int = 0
    msg_type: int = 0
    flags: int = 0
    version: int = PROTOCOL_VERSION
    epoch: int = 0  # the sender's epoch (its store's)
    peer_epoch: int = 0  # the receiver's epoch as the sender knows it (0: not known yet)


HEADER_PREFIX: Final = Struct(
    "magic" / Const(MAGIC),
    "version" / Int8ub,
    "msg_type" / Int8ub,
    "flags" / Int8ub,  # none defined: must be 0
    "direction" / Int8ub,
    "key_id" / Int8ub,
    "panel_id" / LengthPrefixed(1, text=True),  # ASCII [a-z0-9_-]{1,32}
)
HEADER_TAIL: Final = Struct(
    "seq" / Int32ub,
    "timestamp_ms" / Int64ub,
    "epoch" / Int64ub,  # the sender's epoch, below 2**56
    "peer_epoch" / Int64ub,  # the receiver's epoch as the sender knows it, below 2**56
    "length" / Int16ub,  # ciphertext + tag
)
# The header is built and parsed in two parts so that the part that stays the same
# from frame to frame (everything up to the panel id) is built and checked once.
_PREFIX = CompiledStruct(HEADER_PREFIX)
_TAIL = CompiledStruct(HEADER_TAIL)
_NONCE = struct.Struct(">QI")  # direction << 56 | epoch, then seq
_CACHE_SIZE = 16384  # distinct (panel, direction, key id, msg type) prefixes kept


@functools.lru_cache(maxsize=1024)
def aead_for_key(key: bytes) -> ChaCha20Poly1305:
    """The (cached) AEAD object for a 256-bit key."""
    if len(key) != KEY_SIZE:
        raise ValueError(f"a panel key is {KEY_SIZE} bytes, not {len(key)}")
    return ChaCha20Poly1305(key)


def nonce(direction: int, seq: int, epoch: int = 0) -> bytes:
    """The 96-bit nonce of frame ``seq`` of sender epoch ``epoch`` travelling ``direction``."""
    return _pack_nonce(direction, epoch, seq)


def _pack_nonce(direction: int, epoch: int, seq: int) -> bytes:
    # direction (1 byte) || epoch (7 bytes) || seq (4 bytes)
    return _NONCE.pack(direction << 56 | epoch, seq)


def check_panel_id(panel_id: str) -> str:
    """``panel_id`` if it is 1-32 of ``[a-z0-9_-]``, else ``EncodeError``."""
    if not isinstance(panel_id, str) or not PANEL_ID_RE.fullmatch(panel_id):
        raise EncodeError(f"panel id {panel_id!r} is not 1-32 of [a-z0-9_-]")
    return panel_id


def check_direction(spec: MessageSpec, direction: int, error: type[Exception]) -> None:
    """Raise ``error`` when ``spec``'s message does not travel ``direction``."""
    if not (spec.from_panel if direction == Direction.PANEL_TO_HUB else spec.from_hub):
        way = "panel->hub" if direction == Direction.PANEL_TO_HUB else "hub->panel"
        raise error(f"{spec.cls.__name__} messages do not travel {way}")


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _build_prefix(panel_id: str, direction: Direction, key_id: int, msg_type: int) -> bytes:
    spec = spec_for_type(msg_type)
    check_panel_id(panel_id)
    if direction not in _DIRECTIONS:
        raise EncodeError(f"direction {direction} is not 1 or 2")
    check_direction(spec, direction, EncodeError)
    try:
        return _PREFIX.build(
            {
                "version": PROTOCOL_VERSION,
                "msg_type": msg_type,
                "flags": 0,
                "direction": direction,
                "key_id": key_id,
                "panel_id": panel_id,
            }
        )
    except (ConstructError, struct.error, OverflowError) as exc:
        raise EncodeError(f"cannot encode header: {exc}") from exc


def seal_with(
    aead: ChaCha20Poly1305,
    panel_id: str,
    direction: Direction,
    key_id: int,
    seq: int,
    timestamp_ms: int,
    message: Message,
    epoch: int = 0,
    peer_epoch: int = 0,
) -> bytes:
    """Seal ``message`` as frame ``seq`` of ``panel_id``'s ``epoch`` travelling ``direction``."""
    spec = spec_for_message(message)
    if not 0 < seq <= MAX_SEQ:
        raise EncodeError(f"seq {seq} not in 1..{MAX_SEQ}")
    if not (0 <= epoch <= MAX_EPOCH and 0 <= peer_epoch <= MAX_EPOCH):
        raise EncodeError(f"epochs are 0..2**56-1, not {epoch} / {peer_epoch}")
    prefix = _build_prefix(panel_id, direction, key_id, spec.type_id)
    payload = encode_spec(spec, message)
    length = len(payload) + TAG_SIZE
    if len(prefix) + TAIL_SIZE + length > MAX_FRAME:
        raise FrameTooLarge(f"{spec.cls.__name__} needs a frame over {MAX_FRAME} bytes")
    try:
        header = prefix + _TAIL.build(
            {
                "seq": seq,
                "timestamp_ms": timestamp_ms,
                "epoch": epoch,
                "peer_epoch": peer_epoch,
                "length": length,
            }
        )
    except (ConstructError, struct.error) as exc:
        raise EncodeError(f"cannot encode header: {exc}") from exc
    return header + aead.encrypt(_pack_nonce(direction, epoch, seq), payload, header)


def seal_frame(key: bytes, header: Header, message: Message) -> bytes:
    """The frame carrying ``message`` under ``header``, sealed with ``key``."""
    spec = spec_for_message(message, header.version)
    if header.msg_type not in (0, spec.type_id):
        raise EncodeError(f"header msg_type {header.msg_type} but message is {spec.cls.__name__}")
    if header.version != PROTOCOL_VERSION:
        raise EncodeError(f"cannot seal protocol v{header.version}")
    if header.flags:
        raise EncodeError(f"no header flags are defined in protocol v{PROTOCOL_VERSION}")
    return seal_with(
        aead_for_key(key),
        header.panel_id,
        header.direction,
        header.key_id,
        header.seq,
        header.timestamp_ms,
        message,
        header.epoch,
        header.peer_epoch,
    )


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _parse_prefix(prefix: bytes) -> tuple[str, Direction, int, int]:
    try:
        c = _PREFIX.parse_exact(prefix, "header")
    except (ConstructError, struct.error, ValueError, MalformedPayload) as exc:
        raise MalformedHeader(f"bad header: {exc}") from exc
    panel_id = c["panel_id"]
    if not PANEL_ID_RE.fullmatch(panel_id):
        raise MalformedHeader(f"panel id {panel_id!r} is not 1-32 of [a-z0-9_-]")
    direction = _DIRECTIONS.get(c["direction"])
    if direction is None:
        raise MalformedHeader(f"direction {c['direction']} is not 1 or 2")
    if c["flags"]:
        raise MalformedHeader(f"unknown header flags {c['flags']:#04x}")
    return panel_id, direction, c["key_id"], c["msg_type"]


def parse_header(frame: Buffer) -> tuple[Header, int]:
    """``(header, header length)`` of an unverified frame; checks sizes and ranges only."""
    n = len(frame)
    if n > MAX_FRAME:
        raise FrameTooLarge(f"frame of {n} bytes is over {MAX_FRAME}")
    if frame[:2] != MAGIC[: min(n, 2)]:
        raise BadMagic(f"frame starts {bytes(frame[:2]).hex()}, not {MAGIC.hex()}")
    if n < 3:
        raise Truncated(f"frame of {n} bytes has no header")
    if frame[2] != PROTOCOL_VERSION:
        raise UnsupportedVersion(
            f"protocol version {frame[2]} (this side speaks {PROTOCOL_VERSION})"
        )
    if n < 8:
        raise Truncated(f"frame of {n} bytes ends inside the header")
    prefix_len = 8 + frame[7]
    header_len = prefix_len + TAIL_SIZE
    if n < header_len:
        raise Truncated(f"frame of {n} bytes ends inside the header")
    panel_id, direction, key_id, msg_type = _parse_prefix(bytes(frame[:prefix_len]))
    stream = BytesIO(frame)
    stream.seek(prefix_len)
    tail = _TAIL.parse_stream(stream)
    seq = tail["seq"]
    if not seq:
        raise MalformedHeader("seq 0 is never sent")
    if tail["epoch"] > MAX_EPOCH or tail["peer_epoch"] > MAX_EPOCH:
        raise MalformedHeader("an epoch is 56-bit at most")
    length = tail["length"]
    if length < TAG_SIZE:
        raise MalformedHeader(f"ciphertext length {length} is shorter than the tag")
    if header_len + length > MAX_FRAME:
        raise FrameTooLarge(f"header declares a frame of {header_len + length} bytes")
    if n < header_len + length:
        raise Truncated(f"frame of {n} bytes, header declares {header_len + length}")
    if n > header_len + length:
        raise MalformedHeader(f"{n - header_len - length} bytes after the frame")
    header = Header(
        panel_id, direction, seq, tail["timestamp_ms"], key_id, msg_type, 0, PROTOCOL_VERSION,
        tail["epoch"], tail["peer_epoch"],
    )  # fmt: skip
    return header, header_len


def peek_header(frame: Buffer) -> Header:
    """The header of a frame, NOT authenticated: only to choose the key to open it with."""
    return parse_header(frame)[0]


def open_with(
    aead: ChaCha20Poly1305, header: Header, header_len: int, frame: Buffer
) -> tuple[MessageSpec, bytes]:
    """Verify and decrypt a parsed frame: ``(spec, plaintext payload)``."""
    spec = spec_for_type(header.msg_type, header.version)
    check_direction(spec, header.direction, UnknownType)
    try:
        payload = aead.decrypt(
            _pack_nonce(header.direction, header.epoch, header.seq),
            frame[header_len:],
            frame[:header_len],
        )
    except InvalidTag:
        raise AuthenticationFailed(
            f"frame {header.seq} from {header.panel_id} does not verify"
        ) from None
    return spec, payload


def open_frame(
    key: bytes | Callable[[Header], bytes | None], frame: Buffer
) -> tuple[Header, Message]:
    """Verify, decrypt and decode a frame; ``key`` may be a lookup from the header to a key.

    No replay or peer check here: ``protocol.session.Receiver`` adds them.
    """
    header, header_len = parse_header(frame)
    if callable(key):
        found = key(header)
        if found is None:
            raise UnknownKey(f"no key {header.key_id} for panel {header.panel_id}")
        key = found
    spec, payload = open_with(aead_for_key(key), header, header_len, frame)
    return header, decode_spec(spec, payload)
