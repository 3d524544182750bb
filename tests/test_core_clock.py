"""A clock that cannot be trusted (a Pi without a battery-backed clock, NTP steps):
events say so with ``clock_unsynced``, in the core, the panel store and the cloud JSON."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from hub.cloudapi import event_json
from hub.process import HubProcess
from panel.durable import PanelSnapshot
from panel.inputs import ClockSync
from panel.process import PanelProcess
from panel.store import PanelStore
from protocol.messages import Event, EventType, Method, State
from sim.broker import BrokerSpec, Mosquitto
from tests.panel_site import cloud_subscriber, make_configs
from tests.test_core_support import T0, Rig

HOUR_MS = 3_600_000


def test_events_of_a_clock_that_looks_right_are_not_flagged() -> None:
    rig = Rig()
    rig.arm()
    rig.restart(gap_s=60)
    rig.press("1234D")
    assert rig.events
    assert not any(e.clock_unsynced for e in rig.events)


def test_after_a_restart_with_the_clock_behind_events_are_flagged_until_it_catches_up() -> None:
    rig = Rig()
    rig.arm()
    last = rig.events[-1].time_ms
    rig.restart(gap_s=-86_400)  # a day behind
    restart = rig.last_event(EventType.RESTART)
    assert restart.clock_unsynced
    rig.press("1234D")
    assert rig.last_event(EventType.DISARMED).clock_unsynced
    rig.now = last + 1000  # NTP has set the clock
    rig.press("1234A")
    arming = rig.last_event(EventType.ARMING)
    assert (arming.time_ms, arming.clock_unsynced) == (last + 1000, False)


def test_a_clock_set_back_within_a_boot_flags_the_events_it_clamps() -> None:
    rig = Rig()
    rig.press("1234A")
    arming = rig.last_event(EventType.ARMING)
    rig.now = T0 - HOUR_MS
    rig.press("2345D")
    disarmed = rig.last_event(EventType.DISARMED)
    assert (disarmed.time_ms, disarmed.clock_unsynced) == (arming.time_ms, True)
    assert not arming.clock_unsynced


def test_the_system_saying_its_clock_is_not_synchronised_flags_events() -> None:
    rig = Rig()
    assert rig.feed(ClockSync(synchronised=False)) == []
    rig.press("1234A")
    assert rig.last_event(EventType.ARMING).clock_unsynced
    rig.feed(ClockSync(synchronised=True))
    rig.press("2345D")
    assert not rig.last_event(EventType.DISARMED).clock_unsynced
    assert rig.state is State.DISARMED


def test_the_flag_is_stored_with_the_event_and_an_older_store_gains_the_column(
    tmp_path: Path,
) -> None:
    path = tmp_path / "p1.db"
    old = sqlite3.connect(path)  # the events table as it was before the flag
    old.executescript(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL,"
        " type TEXT NOT NULL, method TEXT NOT NULL, cid TEXT NOT NULL, sia TEXT NOT NULL,"
        " mode TEXT, user TEXT, zone TEXT, tag TEXT, photo TEXT, detail TEXT);"
    )
    old.execute(
        "INSERT INTO events VALUES (1, ?, 'armed', 'tag', '3401', 'CL',"
        " NULL, NULL, NULL, NULL, NULL, NULL)",
        (T0,),
    )
    old.commit()
    old.close()
    store = PanelStore(path)
    try:
        flagged = Event(2, T0, EventType.RESTART, Method.SYSTEM, "1305", "RR", clock_unsynced=True)
        store.commit(PanelSnapshot(next_seq=3), [flagged])
        first, second = store.pending()
        assert (first.seq, first.clock_unsynced) == (1, False)
        assert second == flagged
    finally:
        store.close()
    store = PanelStore(path)  # and it opens again as it is
    try:
        assert store.pending()[-1] == flagged
    finally:
        store.close()


def test_the_cloud_event_says_clock_unsynced_only_when_set() -> None:
    event = Event(7, T0, EventType.ARMED, Method.TAG, "3401", "CL")
    assert "clock_unsynced" not in event_json("demo", "p1", event)
    flagged = Event(7, T0, EventType.ARMED, Method.TAG, "3401", "CL", clock_unsynced=True)
    assert event_json("demo", "p1", flagged)["clock_unsynced"] is True


@pytest.fixture
def mosquitto(broker_factory: Callable[[BrokerSpec], Mosquitto]) -> Mosquitto:
    return broker_factory(BrokerSpec())


async def test_a_panel_whose_system_clock_is_not_synchronised_says_so_at_the_cloud(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    synchronised = [False]
    panel_cfg, hub_cfg = make_configs(tmp_path, mosquitto.url)
    async with (
        cloud_subscriber(mosquitto.host, mosquitto.port) as (_, cloud),
        HubProcess(hub_cfg),
        PanelProcess(panel_cfg, clock_check=lambda: synchronised[0]) as panel,
    ):
        await panel.keypad.twin.type("1234A")
        await cloud.wait_for(lambda c: any(e["type"] == "arming" for e in c.events))
        assert cloud.events[-1]["clock_unsynced"] is True
        synchronised[0] = True
        await panel._heartbeat()  # the periodic check finds the clock set by NTP
        await panel.keypad.twin.type("1234D")
        await cloud.wait_for(lambda c: any(e["type"] == "disarmed" for e in c.events))
        assert "clock_unsynced" not in cloud.events[-1]
