"""SIA DC-09 codec: CRC, framing, AES, responses; published vectors and pysiaalarm's own parser."""

from __future__ import annotations

import contextlib
import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pysiaalarm import SIAAccount, SIAEvent
from pysiaalarm.event import BaseEvent
from pysiaalarm.utils import ResponseType

from hub.arc import dc09
from hub.arc.reports import ADM_CID, SIA_DCS, Numbering, UnreportableEvent, event_data
from protocol.messages import Event, EventType, Method, Mode

KEYS = {
    "none": None,
    "aes128": b"AAAAAAAAAAAAAAAA",
    "aes192": b"0123456789ABCDEF01234567",
    "aes256": b"0123456789ABCDEF0123456789ABCDEF",
}
NOW_MS = 1_790_000_000_000


def test_crc16_arc_check_value() -> None:
    # The catalogue check value of CRC-16/ARC.
    assert dc09.crc16_arc(b"123456789") == 0xBB3D


@pytest.mark.parametrize(
    ("crc", "body"),
    [
        # A closing report from pysiaalarm's test cases, with its CRC as sent.
        ("E5D5", '"SIA-DCS"6002L0#AAA[|Nri1/CL501]_14:12:04,09-25-2019'),
        # pysiaalarm's serialised event of this line records calc_crc E9A4 (the sent one is off).
        ("E9A4", '"SIA-DCS"5268L0#AAA[Nri1/WA000]_08:40:47,07-08-2020'),
        # The encrypted NULL below, with its CRC as sent.
        ("76D8", '"*NULL"0000R0L0#AAAB[B4BC8B40D0E6D959D6BEA78E88CC0B21'
                 '55741A3C44FBB96D476A3E557CAD64D9'),
    ],
)  # fmt: skip
def test_crc_of_published_lines(crc: str, body: str) -> None:
    assert f"{dc09.crc16_arc(body.encode()):04X}" == crc


@given(st.binary(max_size=200))
def test_crc_agrees_with_pysiaalarm(data: bytes) -> None:
    text = data.decode("latin-1").encode("ascii", "replace").decode()
    assert f"{dc09.crc16_arc(text.encode()):04X}" == BaseEvent._crc_calc(text)


def test_published_encrypted_null_decrypts() -> None:
    body = '"*NULL"0000R0L0#AAAB[B4BC8B40D0E6D959D6BEA78E88CC0B2155741A3C44FBB96D476A3E557CAD64D9'
    frame = b"\n76D80055" + body.encode() + b"\r"
    msg = dc09.parse(frame, b"AAAAAAAAAAAAAAAA")
    assert (msg.id, msg.seq, msg.account, msg.encrypted) == ("NULL", 0, "AAAB", True)
    assert msg.receiver == "0" and msg.line == "0" and msg.data == ""
    assert msg.timestamp_ms == dc09.parse_timestamp("_18:24:52,07-05-2020")
    assert dc09.format_timestamp(msg.timestamp_ms) == "_18:24:52,07-05-2020"
    with pytest.raises(dc09.Dc09Error):
        dc09.parse(frame, b"BBBBBBBBBBBBBBBB")  # wrong key: garbage, not a traceback
    with pytest.raises(dc09.Dc09Error):
        dc09.parse(frame)  # no key


def test_frame_layout_is_exact() -> None:
    raw = dc09.build("SIA-DCS", 1, "AAA1", "#AAA1|Nri1/CL001", timestamp_ms=0)
    body = b'"SIA-DCS"0001R0L0#AAA1[#AAA1|Nri1/CL001]_00:00:00,01-01-1970'
    assert raw == b"\n%04X%04X" % (dc09.crc16_arc(body), len(body)) + body + b"\r"


@pytest.mark.parametrize("key", KEYS.values(), ids=KEYS.keys())
@pytest.mark.parametrize("kind", ["SIA-DCS", "ADM-CID", "NULL"])
def test_round_trip(kind: str, key: bytes | None) -> None:
    data = {"SIA-DCS": "#AAA1|Nid2/ri1/BA003", "ADM-CID": "#AAA1|1130 01 003", "NULL": ""}[kind]
    raw = dc09.build(kind, 42, "AAA1", data, timestamp_ms=NOW_MS, key=key)
    msg = dc09.parse(raw, key)
    assert (msg.id, msg.seq, msg.account, msg.data) == (kind, 42, "AAA1", data)
    assert msg.timestamp_ms == NOW_MS // 1000 * 1000
    assert msg.encrypted is (key is not None)
    if key is not None:
        assert raw.count(b'"*') == 1 and (not data or data.encode() not in raw)
        hex_part = raw.split(b"[", 1)[1][:-1]
        assert len(hex_part) % 32 == 0  # whole AES blocks
        assert 1 <= len(msg.pad) <= 16 and not set(msg.pad) & set("|[]")


@pytest.mark.parametrize("pad_len", range(1, 17))
def test_padding_fills_whole_blocks(pad_len: int) -> None:
    key = KEYS["aes128"]
    # Data lengths chosen so that every pad length 1..16 occurs.
    base = len("|]") + len(dc09.format_timestamp(NOW_MS))
    data = "x" * ((16 - (base + pad_len) % 16) % 16 + 16)
    raw = dc09.build("SIA-DCS", 1, "AAA1", data, timestamp_ms=NOW_MS, key=key)
    msg = dc09.parse(raw, key)
    assert msg.data == data and len(msg.pad) == pad_len


def test_fixed_pad_gives_fixed_bytes() -> None:
    key = KEYS["aes128"]
    a = dc09.build("NULL", 7, "AAA1", "", timestamp_ms=NOW_MS, key=key, pad="p")
    b = dc09.build("NULL", 7, "AAA1", "", timestamp_ms=NOW_MS, key=key, pad="p")
    assert a == b
    with pytest.raises(dc09.Dc09Error):
        dc09.build("NULL", 7, "AAA1", "", timestamp_ms=NOW_MS, key=key, pad="|")


@pytest.mark.parametrize("key", KEYS.values(), ids=KEYS.keys())
@pytest.mark.parametrize(("kind", "data"), [
    ("SIA-DCS", "#AAA1|Nid2/ri1/CL002"),
    ("ADM-CID", "#AAA1|3401 01 002"),
    ("NULL", ""),
])  # fmt: skip
def test_pysiaalarm_parses_ours_and_we_parse_its_ack(
    kind: str, data: str, key: bytes | None
) -> None:
    now = int(datetime.datetime.now(datetime.UTC).timestamp() * 1000)
    raw = dc09.build(kind, 17, "AAA1", data, timestamp_ms=now, key=key)
    account = SIAAccount("AAA1", None if key is None else key.decode())
    event = SIAEvent.from_line(raw.decode().strip(), {"AAA1": account})
    assert event.valid_message and event.response is ResponseType.ACK
    assert event.sequence == "0017" and event.account == "AAA1"
    if kind == "SIA-DCS":
        assert (event.code, event.id, event.ri, event.message) == ("CL", "2", "1", "002")
    elif kind == "ADM-CID":
        assert (event.event_qualifier, event.event_type, event.ri) == ("3", "401", "002")
        assert event.code == "CL"
    ack = dc09.parse(event.create_response(), key)
    assert (ack.id, ack.seq, ack.account, ack.encrypted) == ("ACK", 17, "AAA1", key is not None)
    if key is not None:
        assert ack.timestamp_ms is not None and abs(ack.timestamp_ms - now) < 5000


def test_pysiaalarm_nak_carries_its_time() -> None:
    old = int(datetime.datetime.now(datetime.UTC).timestamp() * 1000) - 3_600_000
    raw = dc09.build("SIA-DCS", 3, "AAA1", "#AAA1|Nri1/CL001", timestamp_ms=old)
    event = SIAEvent.from_line(raw.decode().strip(), {"AAA1": SIAAccount("AAA1", None)})
    assert event.response is ResponseType.NAK
    nak = dc09.parse(event.create_response())
    assert nak.id == "NAK" and nak.seq == 0 and nak.timestamp_ms is not None
    assert nak.timestamp_ms - old > 3_500_000


def test_pysiaalarm_duh_for_an_unknown_code() -> None:
    raw = dc09.build("SIA-DCS", 4, "AAA1", "#AAA1|Nri1/ZX001", timestamp_ms=None)
    event = SIAEvent.from_line(raw.decode().strip(), {"AAA1": SIAAccount("AAA1", None)})
    duh = dc09.parse(event.create_response())
    assert (duh.id, duh.seq, duh.account) == ("DUH", 4, "AAA1")


def test_responses_as_the_standard_writes_them() -> None:
    ack = dc09.parse(dc09.frame('"ACK"0009R1L2#AAA1[]'))
    assert (ack.id, ack.seq, ack.receiver, ack.line, ack.account) == ("ACK", 9, "1", "2", "AAA1")
    nak = dc09.parse(dc09.frame('"NAK"0000R0L0A0[]_10:11:12,01-02-2026'))
    assert nak.id == "NAK" and nak.account is None
    assert nak.timestamp_ms == dc09.parse_timestamp("_10:11:12,01-02-2026")
    odd = dc09.parse(dc09.frame('"NAK"0000L0R0A0[]_10:11:12,01-02-2026'))
    assert odd.id == "NAK" and odd.receiver == "0"
    none = dc09.parse(dc09.frame('"ACK"0001NoneL0#AAA1[]'))
    assert none.id == "ACK" and none.receiver is None


@pytest.mark.parametrize(
    "bad",
    [
        b"\n0000000A0123456789\r",  # CRC wrong
        b"\nZZZZ0001x\r",
        b"\n",
        dc09.frame('"ACK"0001L0#AAA1').replace(b"\r", b"") + b"\r",  # no [
        dc09.frame('"*ACK"0001L0#AAA1[00]'),  # encrypted, not blocks
        dc09.frame('"ACK"0001L0#AAA1[]_99:99:99,99-99-9999'),
    ],
)
def test_malformed_frames_raise_the_codec_error(bad: bytes) -> None:
    with pytest.raises(dc09.Dc09Error):
        dc09.parse(bad, KEYS["aes128"])


def test_length_must_match() -> None:
    good = dc09.frame('"ACK"0001L0#AAA1[]')
    with pytest.raises(dc09.Dc09Error, match="length"):
        dc09.parse(good[:5] + b"0FFF" + good[9:])


@given(st.binary(max_size=300))
def test_garbage_never_raises_anything_else(data: bytes) -> None:
    for key in (None, KEYS["aes128"]):
        with contextlib.suppress(dc09.Dc09Error):
            dc09.parse(data, key)


@given(
    st.sampled_from(["SIA-DCS", "ADM-CID", "NULL", "ACK"]),
    st.integers(0, 9999),
    st.from_regex(r"[0-9A-F]{3,16}", fullmatch=True),
    st.text(st.characters(min_codepoint=32, max_codepoint=126, exclude_characters="[]"),
            max_size=60),
    st.sampled_from(list(KEYS.values())),
    st.integers(0, 4_000_000_000_000),
)  # fmt: skip
def test_round_trip_property(
    kind: str, seq: int, account: str, data: str, key: bytes | None, ms: int
) -> None:
    raw = dc09.build(kind, seq, account, data, timestamp_ms=ms, key=key)
    msg = dc09.parse(raw, key)
    assert (msg.id, msg.seq, msg.account, msg.data) == (kind, seq, account, data)
    assert msg.timestamp_ms == ms // 1000 * 1000


def test_splitter_whole_bytewise_back_to_back_and_junk() -> None:
    frames = [dc09.build("NULL", i, "AAA1", "", timestamp_ms=NOW_MS) for i in range(1, 4)]
    stream = b"junk" + b"".join(frames) + b"\n1234"
    s = dc09.FrameSplitter()
    assert s.feed(stream) == frames
    s2 = dc09.FrameSplitter()
    got: list[bytes] = []
    for i in range(len(stream)):
        got += s2.feed(stream[i : i + 1])
    assert got == frames
    s3 = dc09.FrameSplitter()
    assert s3.feed(b"\nABC" + frames[0]) == [frames[0]]  # a frame cut short by a new one


def _event(type_: EventType, **kw: object) -> Event:
    base: dict[str, object] = {
        "seq": 5, "time_ms": NOW_MS, "type": type_, "method": Method.KEYPAD,
        "cid": "3401", "sia": "CL", "mode": Mode.TOTAL, "user": "bob", "zone": None,
    }  # fmt: skip
    base.update(kw)
    return Event(**base)  # type: ignore[arg-type]


NUMBERS = Numbering({"alice": 1, "bob": 2}, {"front_door": 1, "hall": 2})


def test_report_data_for_users_and_zones() -> None:
    armed = _event(EventType.ARMED)
    assert event_data(SIA_DCS, "AAA1", armed, NUMBERS) == "#AAA1|Nid2/ri1/CL002"
    assert event_data(ADM_CID, "AAA1", armed, NUMBERS) == "#AAA1|3401 01 002"
    alarm = _event(EventType.ALARM, user=None, zone="hall", cid="1132", sia="BA")
    assert event_data(SIA_DCS, "AAA1", alarm, NUMBERS) == "#AAA1|Nri1/BA002"
    assert event_data(ADM_CID, "AAA1", alarm, NUMBERS) == "#AAA1|1132 01 002"
    refused = _event(EventType.ARM_REFUSED, zone="front_door", cid="1454", sia="CI")
    assert event_data(SIA_DCS, "AAA1", refused, NUMBERS) == "#AAA1|Nid2/ri1/CI001"
    stranger = _event(EventType.ARMED, user="zoe", zone=None)
    assert event_data(SIA_DCS, "AAA1", stranger, NUMBERS) == "#AAA1|Nri1/CL000"
    with pytest.raises(UnreportableEvent):
        event_data(SIA_DCS, "AAA1", _event(EventType.ARMED, sia="C"), NUMBERS)
    with pytest.raises(UnreportableEvent):
        event_data(ADM_CID, "AAA1", _event(EventType.ARMED, cid="9x"), NUMBERS)
