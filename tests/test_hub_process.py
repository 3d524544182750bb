"""The hub over real mosquitto: events in order, exactly once, across outages and restarts."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from common.clock import VirtualClock
from common.mqtt import LinkState
from hub.config import HubConfig, load_hub_mapping
from hub.process import HubProcess
from hub.store import HubStore
from protocol.messages import (
    EventType,
    Heartbeat,
    Method,
    Mode,
    PhotoChunk,
    State,
    Telemetry,
)
from sim.broker import BrokerSpec, Mosquitto
from tests.test_hub_fakepanel import (
    T0,
    Cloud,
    RawPanel,
    event,
    hub_mapping,
    new_key,
    new_site,
    snapshot,
    until,
)


@contextlib.asynccontextmanager
async def running(
    config: HubConfig, clock: VirtualClock | None = None
) -> AsyncIterator[HubProcess]:
    """A started hub whose two links are up."""
    hub = HubProcess(config, clock=clock or VirtualClock(T0), backoff_cap=0.3)
    await hub.start()
    try:
        await until(lambda: hub.local.state is LinkState.UP and hub.cloud.state is LinkState.UP)
        yield hub
    finally:
        await hub.stop()


def config_for(
    site: str, broker: Mosquitto, keys: dict[str, bytes], tmp: Path, **kw: Any
) -> HubConfig:
    return load_hub_mapping(hub_mapping(site, broker, keys, tmp / "hub.db", **kw), "<test>")


async def test_events_reach_the_cloud_as_json_in_order_with_qos1(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    site, key = new_site(), new_key()
    config = config_for(site, mosquitto, {"p1": key}, tmp_path)
    async with (
        Cloud(mosquitto, site) as cloud,
        running(config) as hub,
        RawPanel(mosquitto, site, "p1", key) as panel,
    ):
        events = [event(i) for i in range(1, 21)]
        events[3] = event(4, EventType.ALARM, zone="front_door", mode=None, user=None,
                          method=Method.SYSTEM, cid="1130", sia="BA")  # fmt: skip
        events[4] = event(5, EventType.TAG_REVOKED, tag="04A1B2C3D4E5F6", detail="by bob")
        await panel.send(*events)
        await panel.wait_acked(20)
        got = await cloud.wait_events(20)
        assert [e["seq"] for e in got] == list(range(1, 21))
        assert all(m.qos == 1 for m in cloud.on("event"))
        assert got[0] == {
            "site": site, "panel": "p1", "seq": 1, "time": "2026-11-18T11:06:41.000Z",
            "type": "armed", "mode": "total", "user": "alice", "method": "keypad",
            "zone": None, "cid": "3401", "sia": "CL",
            "received": "2026-11-18T11:06:40.000Z",  # the hub's own clock (virtual here)
        }  # fmt: skip
        assert got[3]["zone"] == "front_door"
        assert got[3]["mode"] is None
        assert got[3]["user"] is None
        assert "tag" not in got[3]
        assert got[4]["tag"] == "04A1B2C3D4E5F6"
        assert got[4]["detail"] == "by bob"
        await until(hub.idle)
        assert hub.counters["events"] == 20
        assert hub.store is not None
        assert hub.store.count_events("p1") == 20


async def test_duplicates_and_resends_are_stored_once_and_acked_again(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    site, key = new_site(), new_key()
    config = config_for(site, mosquitto, {"p1": key}, tmp_path)
    async with Cloud(mosquitto, site) as cloud, running(config) as hub:
        async with RawPanel(mosquitto, site, "p1", key) as panel:
            await panel.send(*(event(i) for i in range(1, 6)))
            await panel.wait_acked(5)
            acks_before = len(panel.acks)
            # The panel resends 3..5 in fresh frames (no ack seen, say): acked again, not stored.
            await panel.send(event(3), event(4), event(5))
            await panel.wait(lambda: len(panel.acks) > acks_before)
            assert panel.acks[-1] == 5
            await panel.send(event(6))
            got = await cloud.wait_events(6)
        assert [e["seq"] for e in got] == [1, 2, 3, 4, 5, 6]
        assert hub.counters["duplicate"] == 3
        assert hub.store is not None
        assert hub.store.count_events("p1") == 6


async def test_a_gap_is_dropped_until_the_missing_event_comes(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    site, key = new_site(), new_key()
    config = config_for(site, mosquitto, {"p1": key}, tmp_path)
    async with (
        Cloud(mosquitto, site) as cloud,
        running(config) as hub,
        RawPanel(mosquitto, site, "p1", key) as panel,
    ):
        await panel.send(event(1))
        await panel.wait_acked(1)
        await panel.send(event(3), event(4))  # 2 was lost in transit
        await until(lambda: hub.counters.get("gap", 0) == 2 and hub.idle())
        assert panel.acked == 1
        assert hub.store is not None
        assert hub.store.last_event_seq("p1") == 1
        await panel.send(event(2), event(3), event(4))
        await panel.wait_acked(4)
        got = await cloud.wait_events(4)
        assert [e["seq"] for e in got] == [1, 2, 3, 4]


async def test_hub_restart_mid_stream_loses_and_repeats_nothing(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Acks come only after the commit; a hub stopped mid-stream resumes from its store."""
    site, key = new_site(), new_key()
    config = config_for(site, mosquitto, {"p1": key}, tmp_path)
    unstored_acks: list[int] = []
    async with Cloud(mosquitto, site) as cloud, RawPanel(mosquitto, site, "p1", key) as panel:
        reader = HubStore(config.store)

        def check_ack() -> bool:
            # Every ack the panel has seen must already be in the hub's store, durably.
            stored = reader.last_event_seq("p1") or 0
            if panel.acked > stored:
                unstored_acks.append(panel.acked)
            return False

        events = [event(i) for i in range(1, 61)]
        delivery = asyncio.create_task(panel.deliver(events))
        try:
            async with running(config) as hub:
                await panel.wait(lambda: check_ack() or panel.acked >= 15)
                assert hub.counters["events"] >= 15
            # The hub is down: the panel keeps resending into the void (once at least).
            sent = panel.published
            await panel.wait(lambda: panel.published > sent, "a resend while the hub is down")
            check_ack()
            async with running(config) as hub2:
                await panel.wait(lambda: check_ack() or panel.acked >= 60)
                await delivery
                got = await cloud.wait_events(60)
                await until(hub2.idle)
        finally:
            delivery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await delivery
            reader.close()
    assert unstored_acks == []
    assert [e["seq"] for e in got] == list(range(1, 61))
    store = HubStore(config.store)
    try:
        assert store.count_events("p1") == 60
        assert store.outbox_size() == 0
    finally:
        store.close()


async def test_cloud_outage_loses_nothing(
    mosquitto: Mosquitto, broker_factory: Callable[[BrokerSpec], Mosquitto], tmp_path: Path
) -> None:
    site, key = new_site(), new_key()
    cloud_broker = broker_factory(BrokerSpec(persistence=True))
    config = config_for(site, mosquitto, {"p1": key}, tmp_path, cloud=cloud_broker)
    session = {
        "identifier": f"cloud-{site}",
        "clean_start": False,
        "properties": _session_expiry(3600),
    }
    async with running(config) as hub, RawPanel(mosquitto, site, "p1", key) as panel:
        async with Cloud(cloud_broker, site, **session) as cloud:
            await panel.send(*(event(i) for i in range(1, 6)))
            first = await cloud.wait_events(5)
            await until(hub.idle)
        cloud_broker.stop()
        await until(lambda: hub.cloud.state is not LinkState.UP)
        # Events keep coming while the cloud is away: stored, acked, queued.
        await panel.send(*(event(i) for i in range(6, 16)))
        await panel.wait_acked(15)
        # Idle although 10 publishes wait: nothing can go out while the cloud link is down.
        await until(lambda: hub.outbox_size == 10 and hub.idle())
        cloud_broker.start()
        async with Cloud(cloud_broker, site, **session) as cloud:
            await cloud.wait_events(10)
            await until(lambda: hub.outbox_size == 0)
            rest = cloud.events()
    assert [e["seq"] for e in first + rest] == list(range(1, 16))


def _session_expiry(seconds: int) -> Any:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = seconds
    return props


async def test_events_sent_while_the_hub_is_down_arrive_after_it_starts(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    site, key = new_site(), new_key()
    config = config_for(site, mosquitto, {"p1": key}, tmp_path)
    async with Cloud(mosquitto, site) as cloud, RawPanel(mosquitto, site, "p1", key) as panel:
        async with running(config):
            await panel.send(event(1))
            await panel.wait_acked(1)
        await panel.send(event(2), event(3))  # nobody listens: lost at the broker
        async with running(config):
            await panel.deliver([event(i) for i in range(2, 8)])
            got = await cloud.wait_events(7)
    assert [e["seq"] for e in got] == list(range(1, 8))


async def test_state_telemetry_photo_and_availability(mosquitto: Mosquitto, tmp_path: Path) -> None:
    site, key = new_site(), new_key()
    config = config_for(site, mosquitto, {"p1": key}, tmp_path)
    jpeg = b"\xff\xd8" + bytes(range(256)) * 40 + b"\xff\xd9"
    chunks = [jpeg[i : i + 4096] for i in range(0, len(jpeg), 4096)]
    async with (
        Cloud(mosquitto, site) as cloud,
        running(config) as hub,
        RawPanel(mosquitto, site, "p1", key) as panel,
    ):
        await panel.send(Heartbeat(T0, 0))  # availability follows authentic frames
        await cloud.wait(lambda: cloud.texts("p1/availability") == ["online"])
        await panel.send(
            snapshot(State.ARMED_NIGHT, mode=Mode.NIGHT, open_zones=("kitchen",), siren=True),
            Telemetry(T0 + 5, 21.5, None),
            *(PhotoChunk("ph-1", i, len(chunks), c) for i, c in enumerate(chunks)),
            event(1, EventType.PHOTO_READY, photo="ph-1", mode=None),
        )
        await cloud.wait(lambda: bool(cloud.on("p1/photo/ph-1")) and len(cloud.events()) == 1)
        state = cloud.on("p1/state")[-1]
        assert json.loads(state.payload) == {
            "state": "armed_night", "since": "2026-11-18T11:06:40.000Z",
            "open_zones": ["kitchen"], "siren": "on", "locked": False, "mode": "night",
        }  # fmt: skip
        assert cloud.json("p1/telemetry") == [
            {"time": "2026-11-18T11:06:40.005Z", "temperature": 21.5, "humidity": None}
        ]
        assert cloud.on("p1/photo/ph-1")[0].payload == jpeg
        assert cloud.events()[0]["photo"] == "ph-1"
        # The last will / an offline status: offline at once.
        await panel.say_status("offline")
        await cloud.wait(lambda: cloud.texts("p1/availability")[-1:] == ["offline"])
        assert hub.availability.is_offline("p1")
    # Retained for whoever subscribes later: state, availability.
    async with Cloud(mosquitto, site) as late:
        await late.wait(lambda: bool(late.on("p1/state")) and bool(late.on("p1/availability")))
        assert late.on("p1/state")[0].retain
        assert late.texts("p1/availability") == ["offline"]


async def test_silence_makes_a_panel_offline_and_a_frame_brings_it_back(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    site, key = new_site(), new_key()
    config = config_for(site, mosquitto, {"p1": key}, tmp_path, offline_after=90)
    clock = VirtualClock(T0)
    async with (
        Cloud(mosquitto, site) as cloud,
        running(config, clock) as hub,
        RawPanel(mosquitto, site, "p1", key) as panel,
    ):
        await panel.send(Heartbeat(T0, 0))
        await cloud.wait(lambda: cloud.texts("p1/availability") == ["online"])
        await clock.advance(89)
        assert hub.availability.label("p1") == "online"
        await clock.advance(1)
        await cloud.wait(lambda: cloud.texts("p1/availability") == ["online", "offline"])
        await panel.send(Heartbeat(T0, 0))
        await cloud.wait(lambda: cloud.texts("p1/availability")[-1:] == ["online"])


async def test_diagnostics_every_minute_and_on_request(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    site, key = new_site(), new_key()
    config = config_for(site, mosquitto, {"p1": key}, tmp_path)
    clock = VirtualClock(T0)
    async with (
        Cloud(mosquitto, site) as cloud,
        running(config, clock) as hub,
        RawPanel(mosquitto, site, "p1", key) as panel,
    ):
        await cloud.wait(lambda: len(cloud.on("hub/diagnostics")) >= 1)  # on connect
        await cloud.wait(lambda: cloud.texts("hub/availability") == ["online"])
        await panel.publish_raw(b"garbage")
        await until(lambda: hub.counters.get("bad_frame.bad_magic", 0) == 1)
        n = len(cloud.on("hub/diagnostics"))
        await clock.advance(60)
        await cloud.wait(lambda: len(cloud.on("hub/diagnostics")) == n + 1)
        await cloud.client.publish(f"centinela/{site}/hub/diagnostics/get", b"", qos=1)
        await cloud.wait(lambda: len(cloud.on("hub/diagnostics")) == n + 2)
        diag = cloud.json("hub/diagnostics")[-1]
        assert diag["counters"]["bad_frame.bad_magic"] == 1
        assert diag["links"] == {"local": "up", "cloud": "up"}
        assert diag["panels"]["p1"]["availability"] in ("unknown", "online")
    # A clean stop says so, retained.
    async with Cloud(mosquitto, site) as late:
        await late.wait(lambda: bool(late.on("hub/availability")))
        assert late.texts("hub/availability") == ["offline"]


async def test_nothing_is_published_twice_to_a_cloud_client_seeing_a_restart(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Outbox rows acknowledged before a clean stop are not sent again by the next hub."""
    site, key = new_site(), new_key()
    config = config_for(site, mosquitto, {"p1": key}, tmp_path)
    async with Cloud(mosquitto, site) as cloud, RawPanel(mosquitto, site, "p1", key) as panel:
        async with running(config):
            await panel.send(*(event(i) for i in range(1, 41)))
            await panel.wait_acked(40)
        async with running(config):
            await panel.send(event(41))
            await cloud.wait_events(41)
    assert [e["seq"] for e in cloud.events()] == list(range(1, 42))


async def test_the_hub_survives_its_local_broker_restarting(
    broker_factory: Callable[[BrokerSpec], Mosquitto], mosquitto: Mosquitto, tmp_path: Path
) -> None:
    site, key = new_site(), new_key()
    local = broker_factory(BrokerSpec())
    config = config_for(site, local, {"p1": key}, tmp_path, cloud=mosquitto)
    async with Cloud(mosquitto, site) as cloud, running(config) as hub:
        async with RawPanel(local, site, "p1", key) as panel:
            await panel.send(event(1))
            await panel.wait_acked(1)
            epoch = panel.epoch
        local.restart()
        await until(lambda: hub.local.state is LinkState.UP and hub.local.connects >= 2)
        async with RawPanel(local, site, "p1", key, epoch=epoch) as panel:
            # A panel restarted too: its frame seqs continue past its reservation, its outbox at 2.
            panel.sender = type(panel.sender)(
                "p1", panel.sender.direction, key, next_seq=1001, epoch=epoch
            )
            panel.acked = 1
            await panel.deliver([event(2), event(3)])
        got = await cloud.wait_events(3)
    assert [e["seq"] for e in got] == [1, 2, 3]


async def test_a_bug_in_a_worker_does_not_stop_the_hub(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site, key = new_site(), new_key()
    config = config_for(site, mosquitto, {"p1": key}, tmp_path)
    async with (
        Cloud(mosquitto, site) as cloud,
        running(config) as hub,
        RawPanel(mosquitto, site, "p1", key) as panel,
    ):
        assert hub.relay is not None
        real = hub.relay.handle_batch
        failures = iter([True])

        def buggy(*args: Any) -> Any:
            if next(failures, False):
                raise RuntimeError("a bug")
            return real(*args)

        monkeypatch.setattr(hub.relay, "handle_batch", buggy)
        await panel.deliver([event(1), event(2)])
        assert hub.counters["internal_error"] == 1
        assert [e["seq"] for e in await cloud.wait_events(2)] == [1, 2]
