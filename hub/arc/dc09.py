"""SIA DC-09 messages as pure functions: framing, CRC-16/ARC, AES-CBC, responses.

A frame on the wire is ``LF crc length body CR``: ``crc`` is the CRC-16/ARC of
the body as 4 upper-case hex digits, ``length`` the body's length as 4 hex
digits, and the body is

    "<id>"<seq>R<receiver>L<line>#<account>[<data>]<extended data><timestamp>

where ``id`` is ``SIA-DCS``, ``ADM-CID``, ``NULL`` (a link test) or a response
(``ACK``, ``NAK``, ``DUH``, ``RSP``), ``seq`` four digits 0001-9999 and the
timestamp ``_HH:MM:SS,MM-DD-YYYY`` in UTC. Encrypted, the id carries a ``*``
(``"*SIA-DCS"``) and everything after ``[`` is the upper-case hex of
AES-CBC (zero IV) over ``<pad>|<data>]<extended data><timestamp>``, where the pad
makes the plain text a whole number of 16-byte blocks (1 to 16 bytes, none of
them ``|``, ``[`` or ``]``). docs/arc.md has examples as bytes.
"""

from __future__ import annotations

import datetime
import re
import secrets
from dataclasses import dataclass, field
from typing import Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from protocol.stream import crc16_arc as crc16_arc  # the same CRC the serial line uses

MAX_FRAME: Final = 1024
"""A longer frame is refused (DC-09 messages are short; receivers read 1000 bytes at once)."""
KEY_SIZES: Final = (16, 24, 32)
SEQ_MAX: Final = 9999
_IV: Final = bytes(16)
_PAD_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_EPOCH: Final = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)

_HEADER: Final = re.compile(
    r'"(?P<star>\*)?(?P<id>[A-Z][A-Z-]{1,15})"'
    r"(?P<seq>\d{4})"
    r"(?:R(?P<receiver>[0-9A-Fa-f]{1,6})|None)?"  # pysiaalarm writes None for a missing receiver
    r"L(?P<line>[0-9A-Fa-f]{1,6}?)"
    r"(?:R(?P<receiver2>[0-9A-Fa-f]{1,6}?))?"  # and a NAK of its own with L before R
    r"(?:#(?P<account>[0-9A-Fa-f]{3,16})|A0)?"
    r"\[(?P<rest>.*)",
    re.S,
)
_TIMESTAMP: Final = re.compile(r"_(\d{2}):(\d{2}):(\d{2}),(\d{2})-(\d{2})-(\d{4})")


class Dc09Error(ValueError):
    """A frame that is not a well-formed DC-09 message (or does not decrypt)."""


@dataclass(frozen=True, slots=True)
class Dc09Message:
    """One DC-09 message, decoded (and decrypted) from a frame."""

    id: str  # SIA-DCS | ADM-CID | NULL | ACK | NAK | DUH | RSP
    seq: int
    account: str | None
    data: str  # between "[" and "]", e.g. "#AAA1|Nri1/CL001"; empty in an ACK
    receiver: str | None = None
    line: str = "0"
    extended: str = ""  # extended data blocks, "[...][...]"
    timestamp_ms: int | None = None
    encrypted: bool = False
    pad: str = field(default="", repr=False)


def format_timestamp(time_ms: int) -> str:
    """``_HH:MM:SS,MM-DD-YYYY`` in UTC."""
    moment = _EPOCH + datetime.timedelta(milliseconds=time_ms)
    return moment.strftime("_%H:%M:%S,%m-%d-%Y")


def parse_timestamp(text: str) -> int:
    """Epoch ms of a ``_HH:MM:SS,MM-DD-YYYY`` timestamp (UTC)."""
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        raise Dc09Error(f"bad timestamp {text[:30]!r}")
    hh, mi, ss, mo, dd, yy = (int(g) for g in match.groups())
    try:
        moment = datetime.datetime(yy, mo, dd, hh, mi, ss, tzinfo=datetime.UTC)
    except ValueError as exc:
        raise Dc09Error(f"bad timestamp {text!r}: {exc}") from None
    return int((moment - _EPOCH).total_seconds()) * 1000


def check_key(key: bytes) -> None:
    """Raise ``Dc09Error`` unless ``key`` is an AES-128/192/256 key."""
    if len(key) not in KEY_SIZES:
        raise Dc09Error(f"an AES key has 16, 24 or 32 bytes, not {len(key)}")


def encrypt(key: bytes, plain: str) -> str:
    """AES-CBC with a zero IV; ``plain`` must be whole blocks. Upper-case hex."""
    check_key(key)
    raw = plain.encode("ascii")
    if len(raw) % 16:
        raise Dc09Error("the plain text is not a whole number of AES blocks")
    enc = Cipher(algorithms.AES(key), modes.CBC(_IV)).encryptor()
    return (enc.update(raw) + enc.finalize()).hex().upper()


def decrypt(key: bytes, hex_text: str) -> str:
    """The inverse of ``encrypt``."""
    check_key(key)
    try:
        raw = bytes.fromhex(hex_text)
    except ValueError:
        raise Dc09Error("encrypted content is not hex") from None
    if not raw or len(raw) % 16:
        raise Dc09Error("encrypted content is not a whole number of AES blocks")
    dec = Cipher(algorithms.AES(key), modes.CBC(_IV)).decryptor()
    plain = dec.update(raw) + dec.finalize()
    try:
        return plain.decode("ascii")
    except UnicodeDecodeError:
        raise Dc09Error("encrypted content does not decrypt to text (wrong key?)") from None


def make_pad(length: int, pad: str | None = None) -> str:
    """``length`` pad characters: random, or ``pad`` (one character) repeated; never | [ ]."""
    if pad is not None:
        if len(pad) != 1 or pad in "|[]" or not 32 < ord(pad) < 127:
            raise Dc09Error("a pad character is printable and not | [ or ]")
        return pad * length
    return "".join(secrets.choice(_PAD_ALPHABET) for _ in range(length))


def build(
    id: str,
    seq: int,
    account: str | None,
    data: str,
    *,
    receiver: str | None = "0",
    line: str = "0",
    extended: str = "",
    timestamp_ms: int | None = None,
    key: bytes | None = None,
    pad: str | None = None,
) -> bytes:
    """One framed DC-09 message (encrypted when ``key`` is given)."""
    if not 0 <= seq <= SEQ_MAX:
        raise Dc09Error(f"sequence {seq} is not 0000-9999")
    if any(c in data for c in "[]") or any(ord(c) > 126 or ord(c) < 32 for c in data):
        raise Dc09Error("data must be printable ASCII without [ or ]")
    stamp = "" if timestamp_ms is None else format_timestamp(timestamp_ms)
    head = f'"{"*" if key else ""}{id}"{seq:04d}'
    if receiver is not None:
        head += f"R{receiver}"
    head += f"L{line}"
    if account is not None:
        head += f"#{account}"
    head += "["
    if key is None:
        body = f"{head}{data}]{extended}{stamp}"
    else:
        tail = f"|{data}]{extended}{stamp}"
        pad_len = 16 - len(tail) % 16  # 1 to 16
        body = head + encrypt(key, make_pad(pad_len, pad) + tail)
    return frame(body)


def frame(body: str) -> bytes:
    """``LF crc length body CR``."""
    raw = body.encode("ascii")
    if len(raw) > MAX_FRAME - 10:
        raise Dc09Error(f"a body of {len(raw)} bytes is too long")
    return b"\n%04X%04X%s\r" % (crc16_arc(raw), len(raw), raw)


def unframe(frame_bytes: bytes) -> str:
    """The body of one frame, after checking CRC and length."""
    raw = frame_bytes.strip(b"\r\n\x00 ")
    if len(raw) > MAX_FRAME:
        raise Dc09Error(f"a frame of {len(raw)} bytes is too long")
    if len(raw) < 9:
        raise Dc09Error("too short for a DC-09 frame")
    try:
        crc, length = int(raw[:4], 16), int(raw[4:8], 16)
    except ValueError:
        raise Dc09Error("CRC and length must be hex") from None
    body = raw[8:]
    if crc16_arc(body) != crc:
        raise Dc09Error(f"CRC {raw[:4].decode('ascii', 'replace')} does not match the body")
    if length != len(body):
        raise Dc09Error(f"length {length} does not match the body ({len(body)} bytes)")
    try:
        return body.decode("ascii")
    except UnicodeDecodeError:
        raise Dc09Error("the body is not ASCII") from None


def parse(frame_bytes: bytes, key: bytes | None = None) -> Dc09Message:
    """Decode one frame (decrypting with ``key`` when the id carries ``*``)."""
    body = unframe(frame_bytes)
    match = _HEADER.fullmatch(body)
    if match is None:
        raise Dc09Error(f"not a DC-09 message: {body[:40]!r}")
    encrypted = match["star"] is not None
    rest = match["rest"]
    pad = ""
    if encrypted:
        if key is None:
            raise Dc09Error("an encrypted message, and no key")
        # Some receivers put a response qualifier before the hex; it is never hex-aligned text.
        hex_part = rest[len(rest) % 32 :] if len(rest) % 32 else rest
        plain = decrypt(key, hex_part)
        cut = min((i for i in (plain.find("|"), plain.find("]")) if i >= 0), default=-1)
        if cut < 0:
            raise Dc09Error("decrypted content has no data block")
        pad = plain[:cut]
        rest = plain[cut + 1 :] if plain[cut] == "|" else plain[cut:]
    end = rest.find("]")
    if end < 0:
        raise Dc09Error("no ] closes the data block")
    data, tail = rest[:end], rest[end + 1 :]
    extended = ""
    while tail.startswith("["):
        close = tail.find("]")
        if close < 0:
            raise Dc09Error("an extended data block is not closed")
        extended += tail[: close + 1]
        tail = tail[close + 1 :]
    stamp = parse_timestamp(tail) if tail else None
    if encrypted and stamp is None:
        raise Dc09Error("an encrypted message without a timestamp")
    return Dc09Message(
        id=match["id"],
        seq=int(match["seq"]),
        account=match["account"],
        data=data,
        receiver=match["receiver"] or match["receiver2"],
        line=match["line"],
        extended=extended,
        timestamp_ms=stamp,
        encrypted=encrypted,
        pad=pad,
    )


class FrameSplitter:
    """Cuts a byte stream into frames (``LF … CR``); junk between frames is skipped."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return every complete frame, oldest first."""
        self._buf += data
        out: list[bytes] = []
        while True:
            start = self._buf.find(b"\n")
            if start < 0:
                self._buf.clear()
                return out
            if start:
                del self._buf[:start]
            end = self._buf.find(b"\r")
            if end < 0:
                if len(self._buf) > MAX_FRAME:
                    self._buf.clear()
                return out
            nxt = self._buf.find(b"\n", 1, end)
            if nxt > 0:  # a frame cut short by a new one
                del self._buf[:nxt]
                continue
            out.append(bytes(self._buf[: end + 1]))
            del self._buf[: end + 1]
