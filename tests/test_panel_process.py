"""The panel process end to end: real mosquitto, real hub, simulated devices on their real wire."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import pytest

from common.configcheck import parse_key
from panel.process import PanelProcess
from protocol.frame import Direction, Header, seal_frame
from protocol.keys import generate_key, key_id
from protocol.messages import Action, Command, Mode, State, Via
from protocol.topics import link_topics
from sim.broker import BrokerSpec, Mosquitto, TlsFiles
from sim.lifeline import Supervised
from tests.panel_site import cloud_subscriber, make_configs, running, site_on


@pytest.fixture
def mosquitto(broker_factory: Callable[[BrokerSpec], Mosquitto]) -> Mosquitto:
    """A broker of this test's own: retained state of site "demo" stays here."""
    return broker_factory(BrokerSpec())


SUBSCRIBED = "test/subscribed"


def _types(events: list[dict[str, object]]) -> list[object]:
    return [e["type"] for e in events]


def _drops_but_replays(counters: dict[str, int]) -> int:
    """Frames the panel's link dropped for any reason but being a replay."""
    return sum(
        v for k, v in counters.items() if k.startswith("bad_frame") and k != "bad_frame_Replay"
    )


async def test_keypad_code_arms_and_the_cloud_sees_who_and_how(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    async with site_on(mosquitto, tmp_path) as site:
        panel, cloud = site.panel, site.cloud
        await panel.keypad.twin.type("1234A")
        await cloud.wait_for(lambda c: "arming" in _types(c.events))
        assert panel.view().state is State.ARMING
        event = cloud.events[-1]
        assert event | {"time": None, "received": None} == {
            "site": "demo",
            "panel": "p1",
            "seq": 1,
            "time": None,
            "received": None,
            "type": "arming",
            "mode": "total",
            "user": "alice",
            "method": "keypad",
            "zone": None,
            "cid": event["cid"],
            "sia": event["sia"],
        }
        # The code itself never leaves the panel.
        assert "1234" not in json.dumps(cloud.events)
        await panel.keypad.twin.type("1234D")
        await cloud.wait_for(lambda c: "disarmed" in _types(c.events))
        assert [e["seq"] for e in cloud.events] == [1, 2]


async def test_arming_works_with_the_broker_down_and_events_arrive_in_order(
    broker_factory: Callable[[BrokerSpec], Mosquitto], tmp_path: Path
) -> None:
    broker = broker_factory(BrokerSpec(persistence=True))
    panel_cfg, hub_cfg = make_configs(tmp_path, broker.url)
    async with cloud_subscriber(broker.host, broker.port, identifier="cloud-test") as (_, cloud):
        pass  # registers the persistent session so the broker queues for it
    async with running(panel_cfg, hub_cfg) as (panel, _hub):
        async with cloud_subscriber(broker.host, broker.port, identifier="cloud-test") as (
            _,
            cloud,
        ):
            await panel.keypad.twin.type("1234A")
            await cloud.wait_for(lambda c: len(c.events) == 1)
        broker.stop()
        for keys in ("1234D", "1234B", "1234D", "1234C"):
            await panel.keypad.twin.type(keys)
            await panel.keypad.twin.settle()
        async with asyncio.timeout(5):  # settled keys may still wait in the panel's queue
            while panel.view().state is not State.ARMING or panel.view().mode is not Mode.NIGHT:
                await asyncio.sleep(0.01)
        broker.start()
        async with cloud_subscriber(broker.host, broker.port, identifier="cloud-test") as (
            _,
            cloud,
        ):
            await cloud.wait_for(lambda c: len(c.events) >= 4, timeout=20)
            seqs = [e["seq"] for e in cloud.events]
            assert seqs == sorted(set(seqs)), seqs
            assert seqs[-4:] == [2, 3, 4, 5]
            assert _types(cloud.events)[-4:] == ["disarmed", "arming", "disarmed", "arming"]


async def test_restart_restores_state_and_records_restart(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    async with site_on(mosquitto, tmp_path) as site:
        panel, hub, cloud, panel_cfg = site.panel, site.hub, site.cloud, site.panel_config
        await panel.keypad.twin.type("1234B")
        await cloud.wait_for(lambda c: "arming" in _types(c.events))
        await panel.stop()
        async with PanelProcess(panel_cfg) as again:
            assert again.view().state is State.ARMING
            assert again.view().mode is not None and again.view().mode.value == "partial"
            await cloud.wait_for(lambda c: "restart" in _types(c.events))
        assert [e["seq"] for e in cloud.events] == [1, 2]
        assert hub.counters.get("gap", 0) == 0


async def test_cloud_commands_through_independent_mosquitto_clients(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    if shutil.which("mosquitto_pub") is None:
        pytest.skip("mosquitto-clients not installed")
    panel_cfg, hub_cfg = make_configs(tmp_path, mosquitto.url)
    # A retained message on a topic of the test's own: mosquitto_sub subscribes to all its
    # topics in one SUBSCRIBE, so once it prints this one, its subscriptions are live.
    async with aiomqtt.Client(mosquitto.host, mosquitto.port) as client:
        await client.publish(SUBSCRIBED, b"yes", qos=1, retain=True)
    async with running(panel_cfg, hub_cfg) as (panel, _hub):
        base = ["-h", mosquitto.host, "-p", str(mosquitto.port)]
        sub = Supervised(
            [
                "mosquitto_sub",
                *base,
                "-q",
                "1",
                "-t",
                SUBSCRIBED,
                "-t",
                "centinela/demo/result",
                "-t",
                "centinela/demo/event",
                "-C",
                "3",
                "-W",
                "30",
                "-v",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert sub.stdout is not None
            ready = await asyncio.to_thread(sub.stdout.readline)  # "" if it timed out
            assert ready == f"{SUBSCRIBED} yes\n", ready
            command = {
                "id": "c1",
                "panel": "p1",
                "action": "arm",
                "mode": "night",
                "user": "alice",
                "via": "web",
            }
            subprocess.run(
                [
                    "mosquitto_pub",
                    *base,
                    "-q",
                    "1",
                    "-t",
                    "centinela/demo/command",
                    "-m",
                    json.dumps(command),
                ],
                check=True,
            )
            out, _ = await asyncio.to_thread(sub.communicate, timeout=25)
        finally:
            if sub.poll() is None:
                sub.kill()
                sub.wait()
            if sub.stdout is not None:
                sub.stdout.close()
        lines = dict(line.split(" ", 1) for line in out.strip().splitlines())
        assert (
            json.loads(lines["centinela/demo/result"])
            == {"id": "c1", "ok": True, "panel": "p1", "state": "arming"}
            or json.loads(lines["centinela/demo/result"])["ok"] is True
        )
        event = json.loads(lines["centinela/demo/event"])
        assert (event["type"], event["mode"], event["user"], event["method"]) == (
            "arming",
            "night",
            "alice",
            "web",
        )
        assert panel.view().state is State.ARMING


async def test_forged_replayed_retained_and_garbage_frames_change_nothing(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    key_text = generate_key()
    panel_cfg, hub_cfg = make_configs(tmp_path, mosquitto.url, key=key_text)
    key = parse_key(key_text, file="t", key="k")
    _, down, _ = link_topics("demo", "p1")
    arm = Command("x1", Action.ARM, "alice", Via.APP, mode=Mode.TOTAL)

    epochs = {"hub": 0, "panel": 0}

    def frame(k: bytes, seq: int) -> bytes:
        header = Header(
            "p1", Direction.HUB_TO_PANEL, seq, 0, key_id=key_id(k),
            epoch=epochs["hub"], peer_epoch=epochs["panel"],
        )  # fmt: skip
        return seal_frame(k, header, arm)

    # A retained command waits on the broker before the panel subscribes: never acted on.
    async with aiomqtt.Client(mosquitto.host, mosquitto.port) as attacker:
        await attacker.publish(down, frame(key, 900_002), qos=1, retain=True)
    async with running(panel_cfg, hub_cfg) as (panel, hub):
        link = panel.link
        assert link is not None and hub.relay is not None
        # Sealed as the hub would seal it: its store's epoch, bound to the panel's.
        epochs.update(hub=hub.relay.epoch, panel=link.epoch)
        async with asyncio.timeout(10):
            while link.counters["retained_ignored"] < 1:
                await asyncio.sleep(0.02)
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as attacker:
            await attacker.publish(down, b"", qos=1, retain=True)  # clear it
            await attacker.publish(down, b"\x00garbage", qos=1)
            await attacker.publish(down, frame(bytes(32 * [7]), 900_000), qos=1)  # wrong key
            await attacker.publish(down, frame(key, 900_001)[:-3], qos=1)  # truncated
            await attacker.publish(down, b"C" * 20_000, qos=1)  # oversized
        async with asyncio.timeout(10):
            while sum(v for k, v in link.counters.items() if k.startswith("bad_frame")) < 4:
                await asyncio.sleep(0.02)
        before = panel.view()
        events_before = len(panel.recent_events)
        # A genuine frame, then the same frame replayed: acted on once. (Sealing with the
        # panel's key from here moves its window past the hub's own seqs: the hub's later
        # acks are refused as replays, as they must be.)
        genuine = frame(key, 900_010)
        commands_before = panel.handled["RemoteCommand"]
        marks_before = _drops_but_replays(link.counters)
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as attacker:
            await attacker.publish(down, genuine, qos=1)
            await attacker.publish(down, genuine, qos=1)
            # The marker: garbage after the replay, on the same connection, so the panel
            # takes it after the replay. (Replays alone cannot mark it: the hub's own
            # acks are refused as replays too.)
            await attacker.publish(down, b"\x00marker", qos=1)
        async with asyncio.timeout(10):
            while _drops_but_replays(link.counters) <= marks_before:
                await asyncio.sleep(0.02)
            while not panel.inputs_idle():  # the commands that got through are handled
                await asyncio.sleep(0.02)
        assert before.state is State.DISARMED
        assert panel.view().state is State.ARMING
        assert link.counters["bad_frame_Replay"] >= 1
        assert panel.handled["RemoteCommand"] == commands_before + 1  # the replay never arrived
        armed = [e for e in list(panel.recent_events)[events_before:] if e.type.value == "arming"]
        assert len(armed) == 1


async def test_panel_and_hub_with_passwords_acl_and_tls(
    broker_factory: Callable[[BrokerSpec], Mosquitto], tls_files: TlsFiles, tmp_path: Path
) -> None:
    acl = (
        "user p1\n"
        "topic write centinela-link/demo/p1/up\n"
        "topic readwrite centinela-link/demo/p1/status\n"
        "topic read centinela-link/demo/p1/down\n\n"
        "user p2\n"
        "topic write centinela-link/demo/p2/up\n"
        "topic read centinela-link/demo/p2/down\n\n"
        "user hub\n"
        "topic readwrite centinela-link/demo/#\n"
        "topic readwrite centinela/demo/#\n"
    )
    broker = broker_factory(
        BrokerSpec(users={"p1": "pw-p1", "p2": "pw-p2", "hub": "pw-hub"}, acl=acl, tls=tls_files)
    )
    panel_cfg, hub_cfg = make_configs(
        tmp_path,
        broker.url,
        panel_mqtt={"username": "p1", "password": "pw-p1", "ca": str(tls_files.ca)},
        hub_mqtt={"username": "hub", "password": "pw-hub", "ca": str(tls_files.ca)},
    )
    import ssl

    context = ssl.create_default_context(cafile=str(tls_files.ca))
    async with (
        cloud_subscriber(
            broker.host, broker.port, username="hub", password="pw-hub", tls_context=context
        ) as (_, cloud),
        running(panel_cfg, hub_cfg) as (panel, hub),
    ):
        await panel.keypad.twin.type("1234A")
        await cloud.wait_for(lambda c: "arming" in _types(c.events))
        # Another panel's credentials cannot speak for p1, nor read its commands.
        async with aiomqtt.Client(
            broker.host, broker.port, username="p2", password="pw-p2", tls_context=context
        ) as p2:
            # Acknowledged (then dropped by the ACL): had they been routed, they would be
            # queued for the hub and the cloud before anything published after this.
            await p2.publish("centinela-link/demo/p1/up", b"forged", qos=1)
            await p2.publish("centinela/demo/event", b"{}", qos=1)
        # The marker: the real panel's next event reaches the cloud after them.
        await panel.keypad.twin.type("1234D")
        await cloud.wait_for(lambda c: "disarmed" in _types(c.events))
        assert all(e.get("seq") is not None for e in cloud.events)
        assert (
            hub.counters.get("bad_frame", 0) == 0
            and sum(v for k, v in hub.counters.items() if "frame" in k and k != "frames") == 0
        )


async def test_commands_reach_the_panel_right_after_a_hub_restart(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """A restarted hub answers under key id 0 until the panel speaks; the panel accepts it."""
    from hub.mqttlink import LinkState
    from hub.process import HubProcess

    panel_cfg, hub_cfg = make_configs(tmp_path, mosquitto.url)
    async with (
        cloud_subscriber(mosquitto.host, mosquitto.port) as (client, cloud),
        PanelProcess(panel_cfg) as panel,
    ):
        async with HubProcess(hub_cfg):
            await panel.keypad.twin.type("1234A")
            await cloud.wait_for(lambda c: "arming" in _types(c.events))
        async with HubProcess(hub_cfg) as hub:
            # The hub's links come up (each subscribes before it says UP); the panel stays quiet.
            async with asyncio.timeout(10):
                while not (hub.local.state is LinkState.UP and hub.cloud.state is LinkState.UP):
                    await asyncio.sleep(0.01)
            command = {"id": "r1", "panel": "p1", "action": "disarm", "user": "alice", "via": "app"}
            await client.publish("centinela/demo/command", json.dumps(command), qos=1)
            await cloud.wait_for(lambda c: any(r["id"] == "r1" for r in c.results))
            result = next(r for r in cloud.results if r["id"] == "r1")
            assert result["ok"] is True, result
            assert panel.view().state is State.DISARMED


async def test_a_climate_sensor_that_stops_answering_is_reported(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    async with site_on(mosquitto, tmp_path) as site:
        panel, cloud = site.panel, site.cloud
        reading = await panel.climate.read()
        assert reading.temperature is not None
        panel.climate.twin.unplug()
        assert (await panel.climate.read()).temperature is None  # reported, never invented
        await cloud.wait_for(lambda c: any(e["zone"] == "climate" for e in c.events))
        lost = next(e for e in cloud.events if e["zone"] == "climate")
        assert lost["type"] in ("tamper", "device_lost")
        panel.climate.twin.plug()
        assert (await panel.climate.read()).temperature is not None
        await cloud.wait_for(lambda c: any(e["type"] == "device_back" for e in c.events))
