"""Serial stream framing: COBS + CRC-16/ARC, fed whole, byte by byte, back to back, in noise."""

from __future__ import annotations

import os
import random
import threading
import tty

import pytest
import serial
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import FrameTooLarge, ProtocolError, StreamError
from protocol.frame import MAX_FRAME, Direction, open_frame
from protocol.messages import Event, EventType, Heartbeat, Method, PhotoChunk
from protocol.session import Sender
from protocol.stream import (
    StreamDecoder,
    cobs_decode,
    cobs_encode,
    crc16_arc,
    encode_stream,
    max_encoded_size,
)

KEY = bytes(range(32))


def sample_frames() -> list[bytes]:
    sender = Sender("p1", Direction.PANEL_TO_HUB, KEY)
    rng = random.Random(5)
    frames = [
        sender.seal(Heartbeat(1, 2), 1000),
        sender.seal(Event(1, 2, EventType.ALARM, Method.SYSTEM, "1130", "BA", zone="hall"), 3),
        sender.seal(PhotoChunk("ph", 0, 2, bytes(4096)), 4),  # long runs of zeros
        sender.seal(PhotoChunk("ph", 1, 2, rng.randbytes(4096)), 5),
    ]
    # Raw byte strings at the COBS block boundaries, with and without zeros.
    frames += [b"\x01" * n for n in (1, 253, 254, 255, 508, 509)]
    frames += [b"\x00" * n for n in (1, 2, 254, 255)]
    frames += [bytes([0x11] * 253 + [0]), b"", rng.randbytes(MAX_FRAME)]
    return frames


FRAMES = sample_frames()


def test_crc16_arc_check_value() -> None:
    assert crc16_arc(b"123456789") == 0xBB3D  # the catalogued check value of CRC-16/ARC
    assert crc16_arc(b"") == 0


@given(st.binary(max_size=2000))
def test_cobs_round_trip_and_no_zeros(data: bytes) -> None:
    encoded = cobs_encode(data)
    assert 0 not in encoded
    assert len(encoded) <= len(data) + len(data) // 254 + 1
    assert cobs_decode(encoded) == data


@pytest.mark.parametrize("bad", [b"\x05ab", b"\x03a\x00", b"\x00", b"\x02a\x05"])
def test_cobs_decode_refuses_what_is_not_cobs(bad: bytes) -> None:
    with pytest.raises(StreamError):
        cobs_decode(bad)


def test_encoding_has_a_zero_only_at_both_ends() -> None:
    for frame in FRAMES:
        encoded = encode_stream(frame)
        assert encoded[0] == 0
        assert encoded[-1] == 0
        assert 0 not in encoded[1:-1]
        assert len(encoded) - 2 <= max_encoded_size(MAX_FRAME)


def test_fed_whole() -> None:
    decoder = StreamDecoder()
    assert decoder.feed(b"".join(encode_stream(f) for f in FRAMES)) == FRAMES
    assert (decoder.frames, decoder.discarded_bytes, decoder.bad_crc) == (len(FRAMES), 0, 0)
    assert decoder.pending == 0


def test_fed_one_byte_at_a_time() -> None:
    decoder = StreamDecoder()
    stream = b"".join(encode_stream(f) for f in FRAMES)
    found = [frame for i in range(len(stream)) for frame in decoder.feed(stream[i : i + 1])]
    assert found == FRAMES


def test_back_to_back_with_a_single_zero_between() -> None:
    # A sender that shares one zero between frames is understood as well.
    stream = b"".join(encode_stream(f)[1:] for f in FRAMES)
    assert StreamDecoder().feed(stream) == FRAMES


@given(st.lists(st.integers(1, 300), max_size=80), st.sampled_from([bytes, bytearray, memoryview]))
def test_fed_in_pieces_of_any_size(sizes: list[int], kind: type) -> None:
    stream = b"".join(encode_stream(f) for f in FRAMES[:6])
    decoder = StreamDecoder()
    found = []
    at = 0
    for size in [*sizes, len(stream)]:
        found += decoder.feed(kind(stream[at : at + size]))
        at += size
    assert found == FRAMES[:6]


@pytest.mark.parametrize("seed", range(8))
def test_garbage_between_frames(seed: int) -> None:
    rng = random.Random(seed)
    stream = bytearray()
    garbage_bytes = 0
    for frame in FRAMES:
        garbage = rng.randbytes(rng.randrange(0, 600))
        if seed % 2:  # half the runs: garbage without a single zero
            garbage = garbage.replace(b"\x00", b"\x01")
        stream += garbage + encode_stream(frame)
        garbage_bytes += len(garbage) - garbage.count(0)  # zeros are boundaries
    stream += rng.randbytes(50).replace(b"\x00", b"")  # trailing noise stays pending
    decoder = StreamDecoder()
    found = []
    at = 0
    while at < len(stream):
        step = rng.randrange(1, 700)
        found += decoder.feed(bytes(stream[at : at + step]))
        at += step
    assert found == FRAMES
    assert decoder.discarded_bytes == garbage_bytes
    assert decoder.bad_crc + decoder.bad_cobs > 0


def test_damaged_frame_is_dropped_and_its_neighbours_are_not() -> None:
    rng = random.Random(3)
    frames = [os.urandom(40) for _ in range(30)]
    encoded = [bytearray(encode_stream(f)) for f in frames]
    damaged = set(rng.sample(range(30), 10))
    for i in damaged:
        at = rng.randrange(1, len(encoded[i]) - 1)
        encoded[i][at] = (encoded[i][at] + rng.randrange(1, 255)) % 256 or 1
    decoder = StreamDecoder()
    found = decoder.feed(b"".join(bytes(e) for e in encoded))
    assert found == [f for i, f in enumerate(frames) if i not in damaged]
    assert decoder.bad_crc + decoder.bad_cobs == 10


def test_starting_mid_frame() -> None:
    a, b = encode_stream(FRAMES[0]), encode_stream(FRAMES[1])
    decoder = StreamDecoder()
    assert decoder.feed(a[7:] + b) == [FRAMES[1]]
    assert decoder.discarded_bytes == len(a) - 7 - 1


def test_over_long_runs_are_dropped_without_growing_the_buffer() -> None:
    decoder = StreamDecoder(max_frame=100)
    limit = max_encoded_size(100)
    frame = bytes(range(1, 90))
    noise = b"\x07" * (limit * 5)
    found = []
    for i in range(0, len(noise), 64):
        found += decoder.feed(noise[i : i + 64])
        assert decoder.pending <= limit
    found += decoder.feed(encode_stream(frame, max_frame=100))
    assert found == [frame]
    assert decoder.oversize == 1
    assert decoder.discarded_bytes == len(noise)
    with pytest.raises(FrameTooLarge):
        encode_stream(bytes(101), max_frame=100)


def test_random_streams_never_raise() -> None:
    rng = random.Random(11)
    decoder = StreamDecoder()
    for _ in range(2000):
        for frame in decoder.feed(rng.randbytes(rng.randrange(0, 64))):
            with pytest.raises(ProtocolError):
                open_frame(KEY, frame)


def test_over_a_real_serial_line() -> None:
    # A pty pair in raw mode stands in for the UART: pyserial on both ends.
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    try:
        port = serial.Serial(os.ttyname(slave), baudrate=115200, timeout=0.5)
        frames = FRAMES[:4]
        stream = b"noise" + b"".join(encode_stream(f) for f in frames)

        def write() -> None:
            for i in range(0, len(stream), 97):
                os.write(master, stream[i : i + 97])

        thread = threading.Thread(target=write)
        thread.start()
        decoder = StreamDecoder()
        found: list[bytes] = []
        while len(found) < len(frames):
            data = port.read(1)  # waits for the line, then takes what is there
            if not data:
                break
            data += port.read(port.in_waiting)
            found += decoder.feed(data)
        thread.join()
        port.close()
        assert found == frames
        assert decoder.discarded_bytes == len(b"noise")
    finally:
        os.close(master)
        os.close(slave)
