"""Hostile input on the panel link, broker ACLs per panel, and TLS for both hub clients."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from common.clock import VirtualClock
from hub.config import load_hub_mapping
from hub.linkkeys import derived_key_id
from hub.process import HubProcess
from protocol.frame import MAX_FRAME, Direction
from protocol.messages import Ack, Command, Result, State
from protocol.session import Sender
from sim.broker import BrokerSpec, Mosquitto, TlsFiles
from tests.test_hub_fakepanel import (
    T0,
    Cloud,
    RawPanel,
    event,
    hub_mapping,
    new_key,
    new_site,
    tls_client,
    until,
)
from tests.test_hub_process import config_for, running


async def test_bad_frames_are_dropped_counted_and_change_nothing(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    site, k1, k2 = new_site(), new_key(), new_key()
    config = config_for(site, mosquitto, {"p1": k1, "p2": k2}, tmp_path)
    async with RawPanel(mosquitto, site, "p1", k1) as early:
        # Left retained on the broker before the hub runs: delivered to it as retained.
        await early.publish_raw(early.seal(event(1)), retain=True)
    async with (
        Cloud(mosquitto, site) as cloud,
        running(config) as hub,
        RawPanel(mosquitto, site, "p1", k1) as panel,
    ):
        await until(lambda: hub.counters.get("retained_frame", 0) == 1)
        # Clears it; on the hub's MQTT 5 subscription (retain as published) it is one more
        # retained frame.
        await panel.publish_raw(b"", retain=True)
        await panel.join()
        panel.sender = Sender(
            "p1", Direction.PANEL_TO_HUB, k1, next_seq=10,
            epoch=panel.epoch, peer_epoch=panel.sender.peer_epoch,
        )  # fmt: skip
        good = panel.seal(event(1))
        forged = Sender("p1", Direction.PANEL_TO_HUB, new_key()).seal(event(1), T0)
        as_p2 = Sender("p2", Direction.PANEL_TO_HUB, k2).seal(event(1), T0)
        stranger = Sender("p9", Direction.PANEL_TO_HUB, new_key()).seal(event(1), T0)
        wrong_way = Sender("p1", Direction.HUB_TO_PANEL, k1, next_seq=5).seal(Ack(3), T0)
        unknown_key_id = Sender("p1", Direction.PANEL_TO_HUB, k1, key_id=77).seal(event(1), T0)
        cases = {
            "bad_frame.bad_magic": b"hello, hub",
            "bad_frame.truncated": good[:-5],
            "bad_frame.authentication_failed": forged,
            "oversized_frame": good + bytes(MAX_FRAME),
            "panel_mismatch": as_p2,
            "bad_frame.wrong_peer": wrong_way,
            "bad_frame.unknown_key": unknown_key_id,
        }
        for payload in cases.values():
            await panel.publish_raw(payload)
        await panel.publish_raw(stranger, topic=f"centinela-link/{site}/p9/up")
        await panel.publish_raw(b"maybe", topic=panel.status)
        expected = {**dict.fromkeys(cases, 1), "unknown_panel": 1, "bad_status": 1}
        expected["retained_frame"] = 2  # with the empty message that cleared the retained one
        await until(
            lambda: all(hub.counters.get(k, 0) == n for k, n in expected.items()),
            seen=lambda: {k: hub.counters.get(k, 0) for k in expected},
        )
        assert hub.store is not None
        assert hub.store.count_events() == 0
        assert panel.acks == []
        # Still alive: the good frame is stored and acked; the same frame again is a replay.
        await panel.publish_raw(good)
        await panel.wait_acked(1)
        await panel.publish_raw(good)
        await until(lambda: hub.counters.get("replay", 0) == 1)
        await panel.send(event(2))
        await panel.wait_acked(2)
        assert [e["seq"] for e in await cloud.wait_events(2)] == [1, 2]
        assert hub.store.count_events() == 2
        assert hub.availability.label("p1") == "online"  # the bad status changed nothing


def _acl(site: str) -> str:
    return f"""
user hub
topic read centinela-link/{site}/+/up
topic read centinela-link/{site}/+/status
topic write centinela-link/{site}/+/down
topic readwrite centinela/{site}/#

user cloud
topic readwrite centinela/{site}/#

pattern write centinela-link/{site}/%u/up
pattern readwrite centinela-link/{site}/%u/status
pattern read centinela-link/{site}/%u/down
"""


async def test_a_panel_reaches_only_its_own_link_topics(
    broker_factory: Callable[[BrokerSpec], Mosquitto], tmp_path: Path
) -> None:
    site, k1, k2 = new_site(), new_key(), new_key()
    users = {"hub": "hub-pw", "cloud": "cloud-pw", "p1": "p1-pw", "p2": "p2-pw"}
    broker = broker_factory(BrokerSpec(users=users, acl=_acl(site)))
    mapping = hub_mapping(site, broker, {"p1": k1, "p2": k2}, tmp_path / "hub.db")
    mapping["local"].update(username="hub", password="hub-pw")
    config = load_hub_mapping(mapping, "<test>")

    def answer(command: Command) -> Result:
        return Result(command.id, True, State.DISARMED)

    p1_args = {"username": "p1", "password": "p1-pw"}
    p2_args = {"username": "p2", "password": "p2-pw"}
    async with (
        Cloud(broker, site, username="cloud", password="cloud-pw") as cloud,
        running(config) as hub,
        RawPanel(broker, site, "p1", k1, client_args=p1_args) as p1,
        RawPanel(broker, site, "p2", k2, client_args=p2_args, answer=answer) as p2,
    ):
        await p2.join()
        # Its own topics work both ways.
        await p1.send(event(1))
        await p1.wait_acked(1)
        await p1.say_status("online")
        await until(lambda: hub.availability.label("p1") == "online")
        # It cannot publish on another panel's topics: the broker drops it, the hub never sees it.
        await p1.publish_raw(b"forged", topic=p2.up)
        await p1.publish_raw(p1.seal(event(2)), topic=p2.up)
        await p1.publish_raw(b"offline", topic=p2.status, retain=True)
        # ...nor read another panel's commands.
        await p1.client.subscribe(p2.down, qos=1)
        await cloud.command({"id": "c1", "panel": "p2", "action": "status", "user": "alice",
                             "via": "app"})  # fmt: skip
        assert (await cloud.wait_result("c1"))["ok"] is True
        # A frame of its own after all that: once acked, anything p1 sent before was handled.
        await p1.publish_raw(b"own garbage")
        await p1.send(event(2))
        await p1.wait_acked(2)
        # In order on one subscription: everything p1 published before event 2 is handled.
        assert hub.counters.get("bad_frame.bad_magic", 0) == 1  # its own garbage only
        assert p2.commands[0].id == "c1"
        assert p1.commands == []
        assert p1.bad_down == 0  # nothing of p2's reached p1
        assert hub.store is not None
        assert hub.store.count_events("p2") == 0
        assert hub.counters.get("panel_mismatch", 0) == 0
        assert hub.availability.label("p2") != "offline"


async def test_the_hub_speaks_mutual_tls_to_both_brokers(
    broker_factory: Callable[[BrokerSpec], Mosquitto], tls_files: TlsFiles, tmp_path: Path
) -> None:
    site, key = new_site(), new_key()
    folder = tls_files.ca.parent
    mutual = dataclasses.replace(tls_files, require_certificate=True)
    local, cloud_broker = (
        broker_factory(BrokerSpec(tls=mutual)),
        broker_factory(BrokerSpec(tls=mutual)),
    )
    tls = {"ca": "tls/ca.pem", "cert": "tls/hub.pem", "key": "tls/hub.key"}
    mapping = hub_mapping(site, local, {"p1": key}, tmp_path / "hub.db", cloud=cloud_broker)
    mapping["local"].update(tls)
    mapping["cloud"].update(tls)
    config = load_hub_mapping(mapping, str(tmp_path / "hub.toml"))
    assert config.local.tls
    assert config.cloud.cert == folder / "hub.pem"
    context = {"tls_context": tls_client(tls_files.ca, folder / "p1.pem", folder / "p1.key")}
    async with (
        Cloud(cloud_broker, site, **context) as cloud,
        running(config),
        RawPanel(local, site, "p1", key, client_args=context) as panel,
    ):
        await panel.send(event(1))
        await panel.wait_acked(1)
        assert [e["seq"] for e in await cloud.wait_events(1)] == [1]


def test_derived_key_ids_are_1_to_255() -> None:
    ids = {derived_key_id(new_key()) for _ in range(300)}
    assert 0 not in ids
    assert ids <= set(range(1, 256))


async def test_unusable_tls_files_keep_the_link_down_not_the_hub(
    broker_factory: Callable[[BrokerSpec], Mosquitto],
    mosquitto: Mosquitto,
    tls_files: TlsFiles,
    tmp_path: Path,
) -> None:
    site, key = new_site(), new_key()
    local = broker_factory(BrokerSpec(tls=tls_files))
    (tmp_path / "junk.pem").write_text("not a certificate")
    mapping = hub_mapping(site, local, {"p1": key}, tmp_path / "hub.db", cloud=mosquitto)
    mapping["local"]["ca"] = "junk.pem"
    config = load_hub_mapping(mapping, str(tmp_path / "hub.toml"))
    hub = HubProcess(config, clock=VirtualClock(T0), backoff_cap=0.1)
    await hub.start()
    try:
        await until(lambda: hub.cloud.state.value == "up")
        async with Cloud(mosquitto, site) as cloud:
            await cloud.command({"id": "c1", "panel": "p1", "action": "status",
                                 "user": "alice", "via": "app"})  # fmt: skip
            result = await cloud.wait_result("c1")
        assert result["error"] == "panel_offline"
        assert hub.local.state.value != "up"
        assert hub.counters.get("internal_error", 0) == 0
    finally:
        await hub.stop()
