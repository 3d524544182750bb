"""The hub's synchronous core on a real SQLite store: batches are atomic, photos, first contact."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from hub.cloudapi import iso_ms
from hub.config import HubConfig, load_hub_mapping
from hub.counters import Counters
from hub.relay import Inbound, Relay
from hub.store import MAX_PHOTO_CHUNKS, HubStore, OutboxItem
from protocol.frame import Direction
from protocol.messages import Message, PhotoChunk, Result, State, Telemetry
from protocol.session import Sender
from tests.test_hub_fakepanel import T0, event, new_key

SITE = "demo"
UP = f"centinela-link/{SITE}/p1/up"


class Rig:
    """A relay over a store file, and a panel sender to feed it."""

    def __init__(self, tmp: Path) -> None:
        tmp.mkdir(exist_ok=True)
        self.key = new_key()
        self.config: HubConfig = load_hub_mapping(
            {"hub": {"site": SITE, "store": str(tmp / "hub.db")},
             "panels": [{"id": "p1", "key": self.key.hex()}]},
            "<test>",
        )  # fmt: skip
        self.store = HubStore(self.config.store)
        self.counters = Counters(lambda: T0)
        self.results: list[Result] = []
        self.relay = Relay(self.config, self.store, self.counters, self._on_result)
        # A panel store (its epoch) that has already learnt the hub store's epoch.
        self.sender = Sender(
            "p1", Direction.PANEL_TO_HUB, self.key, epoch=0x5EED, peer_epoch=self.store.own_epoch()
        )

    def _on_result(self, panel: str, result: Result) -> list[OutboxItem]:
        self.results.append(result)
        return [] if result.id == "late" else [OutboxItem("r", b"{}")]

    def feed(self, *messages: Message, now: int = T0) -> Any:
        items = [Inbound(UP, self.sender.seal(m, T0)) for m in messages]
        return self.relay.handle_batch(items, now)

    def outbox_topics(self) -> list[str]:
        return [item.topic for _, item in self.store.outbox_head(1000)]


@pytest.fixture
def rig(tmp_path: Path) -> Any:
    rig = Rig(tmp_path)
    yield rig
    rig.store.close()


def test_a_batch_is_one_transaction(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    rig.feed(event(1))
    calls = 0
    real = rig.store.add_event

    def failing(*args: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise sqlite3.OperationalError("disk I/O error")
        real(*args)

    monkeypatch.setattr(rig.store, "add_event", failing)
    with pytest.raises(sqlite3.OperationalError):
        rig.feed(event(2), event(3), event(4))
    # Nothing of the failed batch is stored or queued, and the relay still expects 2.
    assert rig.store.last_event_seq("p1") == 1
    assert rig.outbox_topics() == [f"centinela/{SITE}/event"]
    assert rig.relay.last_seq["p1"] == 1
    monkeypatch.setattr(rig.store, "add_event", real)
    outcome = rig.feed(event(2), event(3), event(4))  # the panel resends in fresh frames
    assert outcome.acks == {"p1": 4}
    assert rig.store.count_events("p1") == 4


def test_first_contact_starts_at_1_or_at_the_oldest_resent_event(tmp_path: Path) -> None:
    first = Rig(tmp_path / "a")
    assert first.feed(event(1)).acks == {"p1": 1}
    first.store.close()
    later = Rig(tmp_path / "b")  # a new hub store meeting a panel whose outbox starts at 7
    out = later.feed(event(8), event(9))  # 7 went out before the hub subscribed
    assert out.acks == {}
    assert later.counters.get("gap") == 2
    assert later.feed(event(7), event(8), event(9)).acks == {}  # 7 is the lowest seen so far
    assert later.feed(event(7), event(8), event(9)).acks == {"p1": 9}  # resent: the oldest
    assert [e.event.seq for e in later.store.events()] == [7, 8, 9]
    later.store.close()


def test_photos_are_assembled_in_any_order_once(rig: Rig) -> None:
    chunks = [PhotoChunk("ph1", i, 3, bytes([i]) * 10) for i in range(3)]
    rig.feed(chunks[2], chunks[0])
    assert rig.store.photo("p1", "ph1") is None
    out = rig.feed(chunks[1])
    assert out.queued == 1
    assert rig.store.photo("p1", "ph1") == b"\x00" * 10 + b"\x01" * 10 + b"\x02" * 10
    assert rig.outbox_topics() == [f"centinela/{SITE}/p1/photo/ph1"]
    rig.feed(chunks[1])  # resent after completion: nothing new
    assert rig.outbox_topics() == [f"centinela/{SITE}/p1/photo/ph1"]
    assert rig.counters.get("photo_chunk_repeated") == 1


@pytest.mark.parametrize(
    "chunk",
    [
        PhotoChunk("../etc", 0, 1, b"x"),
        PhotoChunk("a/b", 0, 1, b"x"),
        PhotoChunk("a+b", 0, 1, b"x"),
        PhotoChunk("", 0, 1, b"x"),
        PhotoChunk("big", 0, MAX_PHOTO_CHUNKS + 1, b"x"),
    ],
)
def test_bad_photo_chunks_are_dropped(rig: Rig, chunk: PhotoChunk) -> None:
    rig.feed(chunk)
    assert rig.counters.get("bad_photo") == 1
    assert rig.outbox_topics() == []


def test_a_chunk_disagreeing_on_the_count_is_dropped(rig: Rig) -> None:
    rig.feed(PhotoChunk("ph", 0, 3, b"a"))
    rig.feed(PhotoChunk("ph", 1, 2, b"b"))
    assert rig.counters.get("bad_photo") == 1
    rig.feed(PhotoChunk("ph", 1, 3, b"b"), PhotoChunk("ph", 2, 3, b"c"))
    assert rig.store.photo("p1", "ph") == b"abc"


def test_results_go_through_the_hook_and_late_ones_are_counted(rig: Rig) -> None:
    out = rig.feed(Result("c1", True, State.ARMING), Result("late", True))
    assert [r.id for r in rig.results] == ["c1", "late"]
    assert out.queued == 1
    assert rig.counters.get("late_result") == 1


def test_messages_on_foreign_topics_are_counted(rig: Rig) -> None:
    frame = rig.sender.seal(event(1), T0)
    out = rig.relay.handle_batch(
        [
            Inbound("centinela-link/other/p1/up", frame),
            Inbound(f"centinela-link/{SITE}/p1/down", frame),
            Inbound(f"centinela-link/{SITE}/p1/up/extra", frame),
        ],
        T0,
    )
    assert rig.counters.get("bad_topic") == 3
    assert out.seen == set()
    assert rig.store.count_events() == 0


def test_old_telemetry_and_unfinished_photos_are_pruned_by_time_of_receipt(rig: Rig) -> None:
    day = 86_400_000
    # The panel's clock says 1970 (no RTC): what counts is when the hub received it.
    rig.feed(Telemetry(0, 20.0, 50.0), PhotoChunk("half", 0, 2, b"x"))
    rig.feed(Telemetry(0, 21.0, 50.0), now=T0 + 2 * day)
    db = sqlite3.connect(rig.config.store)
    try:

        def count(table: str) -> int:
            return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608

        assert count("telemetry") == 2
        assert count("photo_chunks") == 0  # a day old, never completed
        rig.feed(Telemetry(0, 22.0, 50.0), now=T0 + 40 * day)
        assert count("telemetry") == 1  # the two received over 31 days ago went
    finally:
        db.close()


def test_iso_times_are_utc_milliseconds_and_clamped() -> None:
    assert iso_ms(0) == "1970-01-01T00:00:00.000Z"
    assert iso_ms(1_795_000_000_123) == "2026-11-18T11:06:40.123Z"
    assert iso_ms(-5) == "1970-01-01T00:00:00.000Z"
    assert iso_ms(2**64 - 1) == "9999-12-31T23:59:59.999Z"
