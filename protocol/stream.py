"""Serial stream framing: COBS with a CRC-16/ARC, zero-delimited, resynchronising after garbage.

On the line a frame is ``00 || COBS(frame || crc16_arc(frame) little-endian) || 00``.
COBS leaves no zero byte inside, so a zero always marks a boundary: after line
noise, a dropped byte or a reader that starts mid-frame the decoder loses at
most the chunk in which the damage is and picks up again at the next zero. The
leading zero ends any garbage before the frame. Empty chunks (two zeros in a
row) are idle fill, not errors.
"""

from __future__ import annotations

import logging
from typing import Final

from protocol.errors import FrameTooLarge, StreamError
from protocol.frame import MAX_FRAME

_LOGGER = logging.getLogger(__name__)

CRC_SIZE: Final = 2


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE: Final = _crc_table()


def crc16_arc(data: bytes) -> int:
    """CRC-16/ARC (poly 0x8005 reflected, init 0, no final xor), as SIA DC-09 uses."""
    crc = 0
    table = _CRC_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


def max_encoded_size(max_frame: int) -> int:
    """The longest chunk (between zeros) that a frame of ``max_frame`` bytes encodes to."""
    body = max_frame + CRC_SIZE
    return body + body // 254 + 1


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing of ``data``: the result holds no zero byte."""
    out = bytearray()
    for piece in bytes(data).split(b"\x00"):
        while len(piece) >= 0xFE:
            out.append(0xFF)
            out += piece[:0xFE]
            piece = piece[0xFE:]
        out.append(len(piece) + 1)
        out += piece
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """The bytes ``cobs_encode`` made ``data`` from; ``StreamError`` if it is not COBS."""
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        end = i + code
        if code == 0 or end > n:
            raise StreamError("not a COBS chunk")
        block = data[i + 1 : end]
        if 0 in block:
            raise StreamError("zero byte inside a COBS chunk")
        out += block
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


def encode_stream(frame: bytes, max_frame: int = MAX_FRAME) -> bytes:
    """The bytes to write on a serial line for one frame."""
    if len(frame) > max_frame:
        raise FrameTooLarge(f"frame of {len(frame)} bytes is over {max_frame}")
    body = bytes(frame) + crc16_arc(frame).to_bytes(CRC_SIZE, "little")
    return b"\x00" + cobs_encode(body) + b"\x00"


class StreamDecoder:
    """Finds the frames in a byte stream fed in pieces of any size; never raises on bad input.

    Counters: ``frames`` found, ``discarded_bytes`` (garbage, bad chunks, over-long
    runs), ``bad_crc``, ``bad_cobs`` (not COBS, or too short for a CRC) and
    ``oversize`` runs.
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame: Final = max_frame
        self._max_chunk: Final = max_encoded_size(max_frame)
        self._buffer = bytearray()
        self._skipping = False  # inside an over-long run: drop until the next zero
        self.frames = 0
        self.discarded_bytes = 0
        self.bad_crc = 0
        self.bad_cobs = 0
        self.oversize = 0

    @property
    def pending(self) -> int:
        """Bytes held while waiting for the end of a chunk."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """The frames completed by ``data``, in order."""
        if isinstance(data, memoryview):
            data = data.tobytes()
        frames: list[bytes] = []
        start = 0
        while True:
            end = data.find(b"\x00", start)
            if end < 0:
                self._take(data[start:])
                return frames
            self._take(data[start:end])
            if self._skipping:
                self._skipping = False
            elif self._buffer:
                frame = self._chunk(bytes(self._buffer))
                self._buffer.clear()
                if frame is not None:
                    frames.append(frame)
            start = end + 1

    def _take(self, piece: bytes | bytearray) -> None:
        if not piece:
            return
        if self._skipping:
            self.discarded_bytes += len(piece)
            return
        self._buffer += piece
        if len(self._buffer) > self._max_chunk:
            self.oversize += 1
            self.discarded_bytes += len(self._buffer)
            _LOGGER.debug("stream: dropping a run of over %d bytes", self._max_chunk)
            self._buffer.clear()
            self._skipping = True

    def _chunk(self, chunk: bytes) -> bytes | None:
        try:
            body = cobs_decode(chunk)
        except StreamError:
            self.bad_cobs += 1
            self.discarded_bytes += len(chunk)
            return None
        if len(body) < CRC_SIZE:
            self.bad_cobs += 1
            self.discarded_bytes += len(chunk)
            return None
        frame = body[:-CRC_SIZE]
        if crc16_arc(frame) != int.from_bytes(body[-CRC_SIZE:], "little"):
            self.bad_crc += 1
            self.discarded_bytes += len(chunk)
            return None
        self.frames += 1
        return frame
