"""The DC-09 transmitter against pysiaalarm: order, ACK checks, NAK, DUH, failover, supervision."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from hub.arc import dc09
from hub.arc.config import ArcConfig, Receiver
from hub.arc.outbox import read_status
from hub.arc.transmitter import ArcTransmitter, LinkEvent, wall_clock_ms
from hub.counters import Counters
from hub.store import HubStore
from protocol.messages import Event, EventType, Method, Mode
from tests.arc_receiver import ArcReceiver

KEY = "0123456789ABCDEF"
USERS = {"alice": 1, "bob": 2}
ZONES = {"front_door": 1, "hall_pir": 3}

# (type, method, cid, sia, user, zone): one of each event type the panel records.
EVENTS: list[tuple[EventType, Method, str, str, str | None, str | None]] = [
    (EventType.ARMING, Method.KEYPAD, "3400", "CG", "alice", None),
    (EventType.ARMED, Method.KEYPAD, "3401", "CL", "alice", None),
    (EventType.ENTRY, Method.SYSTEM, "6134", "BG", None, "front_door"),
    (EventType.ALARM, Method.SYSTEM, "1132", "BA", None, "hall_pir"),
    (EventType.ALARM_END, Method.SYSTEM, "3132", "BR", None, "hall_pir"),
    (EventType.DISARMED, Method.KEYPAD, "1401", "OR", "bob", None),
    (EventType.PANIC, Method.KEYPAD, "1120", "PA", None, "keypad"),
    (EventType.DURESS, Method.KEYPAD, "1121", "HA", "alice", None),
    (EventType.FIRE, Method.SYSTEM, "1110", "FA", None, "front_door"),
    (EventType.TAMPER, Method.SYSTEM, "1137", "TA", None, "hall_pir"),
    (EventType.DEVICE_LOST, Method.SYSTEM, "1145", "EM", None, "keypad"),
    (EventType.DEVICE_BACK, Method.SYSTEM, "3145", "EN", None, "keypad"),
    (EventType.CODE_REJECTED, Method.KEYPAD, "1421", "DD", None, None),
    (EventType.TAG_REJECTED, Method.TAG, "1421", "DD", None, None),
    (EventType.KEYPAD_LOCKED, Method.KEYPAD, "1461", "JA", None, None),
    (EventType.KEYPAD_UNLOCKED, Method.APP, "3461", "DG", "alice", None),
    (EventType.ARM_REFUSED, Method.KEYPAD, "1454", "CI", "bob", "front_door"),
    (EventType.TAG_REVOKED, Method.APP, "1306", "YG", "alice", None),
    (EventType.PHOTO_REQUESTED, Method.APP, "1609", "VI", "alice", "hall"),
    (EventType.PHOTO_READY, Method.APP, "3609", "VR", "alice", "hall"),
    (EventType.RESTART, Method.SYSTEM, "1305", "RR", None, None),
]


def make_event(seq: int, spec: tuple[Any, ...] | None = None) -> Event:
    t, m, cid, sia, user, zone = spec or EVENTS[(seq - 1) % len(EVENTS)]
    return Event(seq, 1_790_000_000_000 + seq, t, m, cid, sia, Mode.TOTAL, user, zone)


class Hub:
    """A hub store with a transmitter on it, and what the transmitter told the cloud."""

    def __init__(self, path: Path, config: ArcConfig, **kwargs: Any) -> None:
        self.store = HubStore(path)
        self.counters = Counters(wall_clock_ms)
        self.links: list[tuple[LinkEvent, dict[str, Any]]] = []
        self.tx = ArcTransmitter(
            config, path, ["p1"], self.counters, lambda k, d: self.links.append((k, d)), **kwargs
        )
        self.seq = 0

    def add(self, n: int = 1, spec: tuple[Any, ...] | None = None) -> list[Event]:
        events = []
        with self.store.transaction():
            for _ in range(n):
                self.seq += 1
                events.append(make_event(self.seq, spec))
                self.store.add_event("demo", "p1", events[-1], 0)
        self.tx.wake()
        return events

    async def drained(self, timeout: float = 20) -> None:
        async with asyncio.timeout(timeout):
            while self.tx.backlog:
                await asyncio.sleep(0.01)

    async def until(self, predicate: Callable[[], bool], timeout: float = 20) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.01)


def arc_config(receivers: list[ArcReceiver], **kw: Any) -> ArcConfig:
    base: dict[str, Any] = {
        "receivers": tuple(Receiver("127.0.0.1", r.port) for r in receivers),
        "account": "AAA1", "users": USERS, "zones": ZONES,
        "ack_timeout": 2.0, "attempts": 2, "retry": 0.02, "supervision": 3600,
    }  # fmt: skip
    base.update(kw)
    return ArcConfig(**base)


@pytest.fixture
async def receiver() -> AsyncIterator[ArcReceiver]:
    r = await ArcReceiver().start()
    yield r
    await r.stop()


@pytest.fixture
async def make_hub(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    hubs: list[Hub] = []

    async def make(config: ArcConfig, **kwargs: Any) -> Hub:
        hub = Hub(tmp_path / f"hub{len(hubs)}.db", config, **kwargs)
        await hub.tx.start()
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        await hub.tx.stop()
        hub.store.close()


def expected_fields(event: Event, fmt: str) -> dict[str, Any]:
    user = USERS.get(event.user or "", 0)
    unit = ZONES.get(event.zone, 0) if event.zone is not None else user
    if fmt == "SIA-DCS":
        return {"code": event.sia, "ri": "1", "id": str(user) if user else None,
                "message": f"{unit:03d}"}  # fmt: skip
    return {"cid": event.cid, "ri": f"{min(unit, 999):03d}"}


@pytest.mark.parametrize(
    "key", [None, KEY, KEY + "01234567", KEY * 2], ids=["plain", "aes128", "aes192", "aes256"]
)
@pytest.mark.parametrize("fmt", ["SIA-DCS", "ADM-CID"])
async def test_every_event_type_arrives_with_its_code_zone_user_account(
    make_hub: Callable[..., Any], fmt: str, key: str | None
) -> None:
    receiver = await ArcReceiver(key=key).start()
    try:
        hub = await make_hub(
            arc_config([receiver], format=fmt, key=None if key is None else key.encode())
        )
        sent = hub.add(len(EVENTS))
        await hub.drained()
        got = receiver.events
        assert len(got) == len(sent)
        for event, rec in zip(sent, got, strict=True):
            assert rec.kind == fmt and rec.account == "AAA1"
            assert rec.encrypted is (key is not None)
            fields = expected_fields(event, fmt)
            actual = {k: getattr(rec, k) for k in fields}
            assert actual == fields, event
        assert hub.counters.get("arc_delivered") == len(sent)
        assert receiver.counts["valid_events"] == len(sent)
        # DC-09 sequence numbers rise by one from 0001.
        assert [int(r.sequence) for r in got] == list(range(1, len(sent) + 1))
    finally:
        await receiver.stop()


async def test_receiver_down_then_back_gets_every_event_once_in_order(
    make_hub: Callable[..., Any],
) -> None:
    receiver = await ArcReceiver(key=KEY).start()
    hub = await make_hub(arc_config([receiver], key=KEY.encode()))
    first = hub.add(5)
    await hub.drained()
    await receiver.stop()
    later = hub.add(40)
    await hub.until(lambda: hub.tx.lost)
    assert hub.links[-1][0] is LinkEvent.LOST
    status = read_status(hub.store.path)  # what `centinela doctor` shows
    assert status is not None and status["link"] == "lost"
    assert hub.tx.backlog == 40
    await receiver.start()
    await hub.drained(30)
    await hub.until(lambda: not hub.tx.lost)
    assert [k for k, _ in hub.links] == [LinkEvent.LOST, LinkEvent.RESTORED]
    got = receiver.events
    assert len(got) == len(first) + len(later)
    assert [r.message for r in got] == [
        expected_fields(e, "SIA-DCS")["message"] for e in first + later
    ]
    assert len({r.sequence for r in got}) == len(got)  # once each
    await receiver.stop()


async def test_backup_takes_over_and_the_primary_comes_back(make_hub: Callable[..., Any]) -> None:
    primary = await ArcReceiver().start()
    backup = await ArcReceiver().start()
    try:
        hub = await make_hub(arc_config([primary, backup], primary_retry=0.3))
        hub.add(3)
        await hub.drained()
        assert len(primary.events) == 3 and not backup.events
        await primary.stop()
        hub.add(10)
        await hub.drained()
        assert len(backup.events) == 10 and hub.tx.active == 1
        assert not hub.links  # the centre was reachable all along
        assert hub.counters.get("arc_failover") == 1
        await primary.start()
        await asyncio.sleep(0.35)  # past primary_retry: the next message tries the primary
        hub.add(2)
        await hub.drained()
        assert hub.tx.active == 0 and len(primary.events) == 5
    finally:
        await primary.stop()
        await backup.stop()


async def test_nak_with_time_resynchronises_and_resends(make_hub: Callable[..., Any]) -> None:
    receiver = await ArcReceiver(key=KEY).start()
    try:
        hub = await make_hub(
            arc_config([receiver], key=KEY.encode()),
            wall_ms=lambda: wall_clock_ms() - 600_000,  # ten minutes slow
        )
        hub.add(3)
        await hub.drained()
        assert len(receiver.events) == 3
        assert hub.counters.get("arc_nak") == 1  # once: then the offset holds
        assert 590_000 < hub.tx.offset_ms < 610_000
        assert receiver.counts["error_timestamp"] == 1
    finally:
        await receiver.stop()


async def test_duh_is_not_retried_for_ever(
    make_hub: Callable[..., Any], receiver: ArcReceiver
) -> None:
    hub = await make_hub(arc_config([receiver]))
    hub.add(1, (EventType.ARMED, Method.KEYPAD, "3401", "ZX", "alice", None))  # no such SIA code
    good = hub.add(1)
    await hub.drained()
    assert hub.counters.get("arc_duh") == 3 and hub.counters.get("arc_refused") == 1
    assert [r.code for r in receiver.events] == [good[0].sia]


async def test_null_messages_supervise_an_idle_link(
    make_hub: Callable[..., Any], receiver: ArcReceiver
) -> None:
    await make_hub(arc_config([receiver], supervision=0.2, key=None))
    await receiver.wait_for(lambda r: sum(x.kind == "NULL" for x in r.received) >= 2)
    assert not receiver.events


async def test_wrong_acks_do_not_count(make_hub: Callable[..., Any]) -> None:
    """A receiver answering with the wrong sequence, account or CRC never acknowledges."""
    answers = iter(
        [
            lambda m: dc09.frame(f'"ACK"{(m.seq % 9999) + 1:04d}R0L0#{m.account}[]'),
            lambda m: dc09.frame(f'"ACK"{m.seq:04d}R0L0#BBB2[]'),
            lambda m: dc09.frame(f'"ACK"{m.seq:04d}R0L0#{m.account}[]')[:-3] + b"X]\r",
        ]
    )
    seen: list[dc09.Dc09Message] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        splitter = dc09.FrameSplitter()
        while data := await reader.read(1024):
            for raw in splitter.feed(data):
                msg = dc09.parse(raw)
                seen.append(msg)
                answer = next(answers, None)
                writer.write(
                    answer(msg) if answer else dc09.frame(f'"ACK"{msg.seq:04d}R0L0#AAA1[]')
                )
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    fake = dataclasses.replace(ArcReceiver(), port=port)
    try:
        hub = await make_hub(arc_config([fake], attempts=10))
        hub.add(1)
        await hub.drained()
        assert hub.counters.get("arc_bad_ack") == 2
        assert hub.counters.get("arc_no_ack") == 1  # the CRC
        assert len({m.seq for m in seen}) == 1 and len(seen) == 4  # the same message each time
    finally:
        server.close()
        await server.wait_closed()


async def test_an_encrypted_message_needs_an_encrypted_ack_with_a_fresh_timestamp(
    make_hub: Callable[..., Any],
) -> None:
    key = KEY.encode()

    def ack(m: dc09.Dc09Message, *, encrypt: bool, age_ms: int = 0) -> bytes:
        return dc09.build(
            "ACK", m.seq, m.account, "", timestamp_ms=wall_clock_ms() - age_ms,
            key=key if encrypt else None,
        )  # fmt: skip

    answers = iter(
        [
            lambda m: ack(m, encrypt=False),  # in clear: refused
            lambda m: ack(m, encrypt=True, age_ms=600_000),  # ten minutes old: refused
        ]
    )
    seen: list[dc09.Dc09Message] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        splitter = dc09.FrameSplitter()
        while data := await reader.read(1024):
            for raw in splitter.feed(data):
                msg = dc09.parse(raw, key)
                seen.append(msg)
                answer = next(answers, None)
                writer.write(answer(msg) if answer else ack(msg, encrypt=True))
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    fake = dataclasses.replace(ArcReceiver(), port=server.sockets[0].getsockname()[1])
    try:
        hub = await make_hub(arc_config([fake], attempts=10, key=key))
        hub.add(1)
        await hub.drained()
        assert hub.counters.get("arc_bad_ack") == 2 and hub.tx.delivered == 1
        assert all(m.encrypted for m in seen) and len({m.seq for m in seen}) == 1
    finally:
        server.close()
        await server.wait_closed()
