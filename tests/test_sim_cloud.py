"""The cloud stand-in on real brokers: mosquitto (across a restart) and the embedded amqtt."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable

import aiomqtt

from common.mqtt import BrokerConfig
from sim.broker import Mosquitto
from sim.cloud import CloudStandIn
from sim.embedded import EmbeddedBroker, MosquittoBroker, private_broker


def _config(url: str) -> BrokerConfig:
    host, port = url.removeprefix("mqtt://").split(":")
    return BrokerConfig(host, int(port))


async def _publish(url: str, topic: str, payload: bytes | str, retain: bool = False) -> None:
    cfg = _config(url)
    async with aiomqtt.Client(cfg.host, cfg.port) as client:
        await client.publish(topic, payload, qos=1, retain=retain)


async def _exercise(url: str) -> None:
    cloud = CloudStandIn(_config(url), "demo")
    seen: list[str] = []
    cloud.listeners.append(lambda kind, _value: seen.append(kind))
    await cloud.start()
    try:
        cfg = _config(url)
        async with aiomqtt.Client(cfg.host, cfg.port) as hub:
            await hub.subscribe("centinela/demo/command", qos=1)
            assert await cloud.send({"id": "c1", "action": "status", "user": "alice", "via": "app"})
            async for message in hub.messages:
                assert json.loads(message.payload)["id"] == "c1"  # type: ignore[arg-type]
                break
            event = {"site": "demo", "panel": "p1", "seq": 1, "type": "armed", "user": "alice"}
            await hub.publish("centinela/demo/event", json.dumps(event), qos=1)
            await hub.publish("centinela/demo/result", json.dumps({"id": "c1", "ok": True}), qos=1)
            await hub.publish(
                "centinela/demo/p1/state", '{"state": "armed_total"}', qos=1, retain=True
            )
            await hub.publish("centinela/demo/p1/availability", "online", qos=1, retain=True)
            await hub.publish("centinela/demo/p1/telemetry", '{"temperature": 21.5}', qos=1)
            await hub.publish("centinela/demo/p1/photo/ph1", b"\xff\xd8jpeg", qos=1)
            await hub.publish("centinela/other/event", json.dumps(event), qos=1)
            await hub.publish("centinela/demo/event", b"not json", qos=1)
        assert await cloud.flush()
        assert cloud.events == [event]
        assert cloud.results["c1"]["ok"] is True
        assert cloud.states["p1"]["state"] == "armed_total"
        assert cloud.availability["p1"] == "online"
        assert cloud.telemetry["p1"]["temperature"] == 21.5
        assert cloud.photos["ph1"] == b"\xff\xd8jpeg"
        assert seen == ["event", "result", "state", "availability", "telemetry", "photo"]
    finally:
        await cloud.stop()


async def test_cloud_stand_in_on_mosquitto(broker_factory: Callable[[], Mosquitto]) -> None:
    # A broker of its own: retained state left by another test would arrive first.
    await _exercise(broker_factory().url)


async def test_cloud_stand_in_on_the_embedded_broker_bound_to_loopback() -> None:
    broker = EmbeddedBroker()
    await broker.start()
    try:
        with socket.socket() as s:
            # Only 127.0.0.1 listens: another local address of this host is refused.
            s.settimeout(1)
            hostname_ip = socket.gethostbyname(socket.gethostname())
            if not hostname_ip.startswith("127."):
                assert s.connect_ex((hostname_ip, broker.port)) != 0
        await _exercise(broker.url)
    finally:
        await broker.close()


async def test_cloud_stand_in_keeps_its_session_across_a_broker_restart() -> None:
    broker = private_broker("mosquitto")
    assert isinstance(broker, MosquittoBroker)
    await broker.start()
    cloud = CloudStandIn(_config(broker.url), "demo")
    await cloud.start()
    try:
        await broker.stop()
        assert not await cloud.send({"id": "c1"})
        await broker.start()
        await _publish(broker.url, "centinela/demo/event", '{"seq": 7, "type": "restart"}')
        await cloud.connected.wait()
        for _ in range(100):
            if cloud.events:
                break
            await cloud.flush()
        assert cloud.events == [{"seq": 7, "type": "restart"}]
    finally:
        await cloud.stop()
        await broker.close()
