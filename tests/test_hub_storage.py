"""The hub's store under stress (issue 10): receipt times, a full disk, the media quota.

Real SQLite files throughout. A full disk is simulated with SQLite's own limit,
``PRAGMA max_page_count``, on the real store file: writes then fail with
``database or disk is full`` exactly as on a full file system, without root.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import pytest

from hub.cloudapi import iso_ms
from hub.events_cli import run_events
from tests.test_hub_fakepanel import T0, event
from tests.test_hub_relay import Rig


@pytest.fixture
def rig(tmp_path: Path) -> Any:
    rig = Rig(tmp_path)
    yield rig
    rig.store.close()


def _event_json(rig: Rig) -> list[dict[str, Any]]:
    return [
        json.loads(item.payload)
        for _, item in rig.store.outbox_head(1000)
        if item.topic.endswith("/event")
    ]


def test_the_hub_records_its_own_receipt_time(rig: Rig, tmp_path: Path) -> None:
    """Item 4, hub side: the panel's clock is a day behind; the hub's receipt time says so."""
    hub_now = T0 + 86_400_000
    rig.feed(event(1), now=hub_now)
    (sent,) = _event_json(rig)
    assert sent["time"] == iso_ms(T0 + 1000)  # the panel's clock, as recorded
    assert sent["received"] == iso_ms(hub_now)  # the hub's own
    (stored,) = rig.store.events(panel="p1")
    assert stored.received_ms == hub_now
    out = io.StringIO()
    args = argparse.Namespace(
        site="demo", panel=None, user=None, type=None, since=None, follow=False,
        json=True, db=str(tmp_path / "hub.db"), config=None,
    )  # fmt: skip
    rig.store.close()
    rig.store = type(rig.store)(tmp_path / "hub.db")
    assert run_events(args, out) == 0
    assert json.loads(out.getvalue().splitlines()[0])["received"] == iso_ms(hub_now)


def _photo(rig: Rig, photo_id: str, size: int, now: int) -> None:
    from protocol.messages import PhotoChunk

    rig.feed(PhotoChunk(photo_id, 0, 1, bytes([len(photo_id)]) * size), now=now)


def test_photos_are_kept_within_a_size_and_age_quota(rig: Rig) -> None:
    import dataclasses

    from hub.relay import Relay

    rig.config = dataclasses.replace(rig.config, media_max_bytes=10_000, media_max_days=1)
    rig.relay = Relay(rig.config, rig.store, rig.counters, rig._on_result)
    for i in range(5):  # 5 x 3000 bytes against a 10,000 byte quota
        _photo(rig, f"ph-{i}", 3000, T0 + i)
    kept = [i for i in range(5) if rig.store.photo("p1", f"ph-{i}") is not None]
    assert kept == [2, 3, 4]  # the newest that fit
    assert rig.store.media_bytes() <= 10_000
    assert rig.counters.counts["media_pruned"] == 2
    # Every photo still reached the cloud outbox when it arrived.
    assert sum("/photo/" in t for t in rig.outbox_topics()) == 5
    _photo(rig, "ph-late", 100, T0 + 86_400_000 + 10)  # a day later: the old ones expire
    assert [i for i in range(5) if rig.store.photo("p1", f"ph-{i}")] == []
    assert rig.store.photo("p1", "ph-late") is not None


def test_a_full_hub_store_acknowledges_nothing_and_recovers_without_loss(rig: Rig) -> None:
    import sqlite3

    seq = 0
    rig.store.set_quota(0)  # no growth beyond what the file has now
    failure = ""
    while not failure:
        try:
            rig.feed(*[event(s) for s in range(seq + 1, seq + 21)])
        except sqlite3.OperationalError as exc:
            failure = str(exc)
        else:
            seq += 20
    assert "full" in failure
    stored = rig.store.last_event_seq("p1")
    assert stored == (seq or None)  # every batch before the failing one, nothing of it
    assert rig.relay.last_seq["p1"] == stored
    # The panel resends (fresh frames) until the hub has room again; nothing is acked meanwhile.
    with pytest.raises(sqlite3.OperationalError, match="full"):
        rig.feed(*[event(s) for s in range(seq + 1, seq + 21)])
    rig.store.set_quota(None)
    outcome = rig.feed(*[event(s) for s in range(seq + 1, seq + 21)])
    assert outcome.acks == {"p1": seq + 20}
    assert [e.event.seq for e in rig.store.events(panel="p1")] == list(range(1, seq + 21))
    sent = [e["seq"] for e in _event_json(rig)]
    assert sent == list(range(1, seq + 21))


def test_frame_times_outside_the_skew_window_are_refused_when_asked(rig: Rig) -> None:
    import dataclasses

    from hub.relay import Relay

    rig.config = dataclasses.replace(rig.config, max_clock_skew=60)
    rig.relay = Relay(rig.config, rig.store, rig.counters, rig._on_result)
    rig.feed(event(1), now=T0 + 3_600_000)  # sealed at T0, an hour before the hub's clock
    assert rig.counters.counts["bad_frame.clock_skew"] == 1
    assert rig.store.last_event_seq("p1") is None
    rig.feed(event(1), now=T0 + 30_000)  # within the window
    assert rig.store.last_event_seq("p1") == 1
