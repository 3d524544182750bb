"""The panel store on real SQLite files: log, outbox, acks, pruning, snapshot, meta."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from panel.actions import Emit
from panel.core import Panel, PanelSnapshot
from panel.store import (
    KEEP_EVENTS,
    PanelStore,
    SeqError,
    StoreError,
    snapshot_from_json,
    snapshot_to_json,
)
from protocol.messages import Event, EventType, Method, Mode, State
from tests.test_core_support import ALICE_TAG, T0, Rig, site_config


def event(seq: int, **fields: object) -> Event:
    base: dict[str, object] = {
        "seq": seq,
        "time_ms": T0 + seq,
        "type": EventType.ARMED,
        "method": Method.TAG,
        "cid": "3401",
        "sia": "CL",
    }
    base.update(fields)
    return Event(**base)  # type: ignore[arg-type]


def fill(store: PanelStore, count: int, batch: int = 500) -> None:
    """Commit ``count`` events after the last one, ``batch`` per transaction."""
    while count > 0:
        first = store.next_seq
        n = min(batch, count)
        events = [event(s) for s in range(first, first + n)]
        store.commit(PanelSnapshot(next_seq=first + n), events)
        count -= n


@pytest.fixture
def store(tmp_path: Path) -> Iterator[PanelStore]:
    s = PanelStore(tmp_path / "panel.db")
    yield s
    s.close()


FULL = PanelSnapshot(
    state=State.TRIGGERED,
    mode=Mode.NIGHT,
    since_ms=T0,
    armed_by="alice",
    armed_method=Method.TAG,
    armed_tag=ALICE_TAG,
    timers={"siren": T0 + 60_000, "lockout": T0 + 90_000},
    siren=True,
    alarm_cid="1131",
    alarm_sia="BA",
    alarm_zones=frozenset({"window", "hall"}),
    entry_zone="front_door",
    failed_attempts=2,
    locked_until_ms=T0 + 90_000,
    lockout_level=3,
    revoked_tags=frozenset({ALICE_TAG}),
    next_seq=1,
    open_zones=frozenset({"window"}),
)


def test_a_new_store_is_empty(store: PanelStore) -> None:
    assert store.load() is None
    assert store.next_seq == 1
    assert store.pending() == []
    assert store.events() == []
    assert store.acked_upto == 0


def test_wal_and_full_sync(store: PanelStore, tmp_path: Path) -> None:
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_snapshot_and_events_round_trip(store: PanelStore, tmp_path: Path) -> None:
    events = [
        event(1),
        event(2, type=EventType.ALARM, method=Method.SYSTEM, zone="window", mode=Mode.NIGHT),
        event(3, type=EventType.PHOTO_READY, photo="p1-3", user="bob", tag=ALICE_TAG, detail="d"),
    ]
    snap = dataclasses.replace(FULL, next_seq=4)
    store.commit(snap, events)
    store.close()
    again = PanelStore(tmp_path / "panel.db")
    try:
        assert again.load() == snap
        assert again.events() == events
        assert again.next_seq == 4
    finally:
        again.close()


def test_snapshot_json_is_stable_and_strict() -> None:
    text = snapshot_to_json(FULL)
    assert snapshot_from_json(text) == FULL
    assert snapshot_to_json(snapshot_from_json(text)) == text
    with pytest.raises(ValueError, match="unknown snapshot version"):
        snapshot_from_json('{"v": 99}')


def test_commit_refuses_a_gap_or_a_repeat_and_writes_nothing(store: PanelStore) -> None:
    store.commit(PanelSnapshot(next_seq=3), [event(1), event(2)])
    with pytest.raises(SeqError, match="event seq 2 where 3 was due"):
        store.commit(PanelSnapshot(next_seq=3), [event(2)])
    with pytest.raises(SeqError, match="event seq 5 where 3 was due"):
        store.commit(PanelSnapshot(next_seq=6), [event(5)])
    with pytest.raises(SeqError, match="snapshot next_seq 9 where 4 was due"):
        store.commit(PanelSnapshot(next_seq=9), [event(3)])
    assert [e.seq for e in store.events()] == [1, 2]
    assert store.load() == PanelSnapshot(next_seq=3)
    store.commit(PanelSnapshot(next_seq=4, state=State.ARMING), [event(3)])
    assert [e.seq for e in store.events()] == [1, 2, 3]


def test_pending_and_ack(store: PanelStore) -> None:
    fill(store, 10)
    assert [e.seq for e in store.pending(limit=3)] == [1, 2, 3]
    assert store.ack(4) == 4
    assert [e.seq for e in store.pending()] == [5, 6, 7, 8, 9, 10]
    assert store.ack(4) == 0  # repeated ack
    assert store.ack(2) == 0  # stale ack
    assert store.ack(99) == 6  # never beyond what exists
    assert store.acked_upto == 10
    assert store.pending() == []
    assert len(store.events()) == 10  # acknowledged but kept


def test_acknowledged_events_beyond_the_newest_10000_are_pruned(store: PanelStore) -> None:
    fill(store, KEEP_EVENTS + 500)
    last = KEEP_EVENTS + 500
    store.ack(100)  # only what the hub has acknowledged may go
    assert store.events(limit=1)[0].seq == 101
    assert store.ack(last) == last - 100
    kept = store.events(limit=KEEP_EVENTS + 1000)
    assert len(kept) == KEEP_EVENTS
    assert (kept[0].seq, kept[-1].seq) == (501, last)
    assert store.events(since_seq=last - 2) == [event(last - 1), event(last)]


def test_unacknowledged_events_are_never_pruned(store: PanelStore) -> None:
    fill(store, KEEP_EVENTS + 200)
    store.ack(0)
    assert len(store.events(limit=KEEP_EVENTS * 2)) == KEEP_EVENTS + 200
    assert len(store.pending(limit=KEEP_EVENTS * 2)) == KEEP_EVENTS + 200


def test_meta_is_durable(store: PanelStore, tmp_path: Path) -> None:
    assert store.get_meta("tx") is None
    store.set_meta("tx", "100")
    store.set_meta("tx", "200")
    store.close()
    again = PanelStore(tmp_path / "panel.db")
    try:
        assert again.get_meta("tx") == "200"
    finally:
        again.close()


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"junk\.db: not a usable panel store"):
        PanelStore(path)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(StoreError, match="newer centinela"):
        PanelStore(path)


def test_an_unreadable_snapshot_is_a_clear_error(store: PanelStore, tmp_path: Path) -> None:
    store.commit(PanelSnapshot(), [])
    store._db.execute("UPDATE state SET snapshot = '{\"v\": 1}'")
    with pytest.raises(StoreError, match="saved panel state cannot be read"):
        store.load()


def test_the_core_through_the_store_continues_after_a_restart(tmp_path: Path) -> None:
    config = site_config()
    path = tmp_path / "panel.db"
    store = PanelStore(path)
    rig = Rig(config, store.load())

    def committing_apply(actions: list[object]) -> list[object]:
        out = Rig.apply(rig, actions)  # type: ignore[arg-type]
        store.commit(rig.panel.snapshot(), [a.event for a in actions if isinstance(a, Emit)])
        return out  # type: ignore[return-value]

    rig.apply = committing_apply  # type: ignore[method-assign,assignment]
    rig.press("1234B")
    rig.wait(10)
    rig.command("revoke_tag", tag=ALICE_TAG)
    rig.press("0000A0000A0000A")
    store.close()

    store = PanelStore(path)
    try:
        panel = Panel(config, store.load())
        actions = panel.start(rig.now + 1000)
        events = [a.event for a in actions if isinstance(a, Emit)]
        store.commit(panel.snapshot(), events)
        assert [e.type for e in events] == [EventType.RESTART]
        assert events[0].seq == rig.events[-1].seq + 1
        view = panel.view()
        assert (view.state, view.locked) == (State.ARMED_PARTIAL, True)
        assert [e.seq for e in store.events()] == list(range(1, events[0].seq + 1))
        # Nothing derived from a code is in the file.
        blob = path.read_bytes() + Path(f"{path}-wal").read_bytes()
        for user in config.users:
            assert user.code_digest not in blob
        assert b"1234" not in blob
    finally:
        store.close()
