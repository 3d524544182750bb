"""The broker fixtures really speak MQTT: QoS 1 delivery, ACL denial, TLS."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

import aiomqtt
import pytest

from sim.broker import BrokerSpec, Mosquitto, TlsFiles


async def _roundtrip(client_kwargs: dict[str, object], broker: Mosquitto, topic: str) -> bytes:
    async with aiomqtt.Client(broker.host, broker.port, **client_kwargs) as sub:  # type: ignore[arg-type]
        await sub.subscribe(topic, qos=1)
        async with aiomqtt.Client(broker.host, broker.port, **client_kwargs) as pub:  # type: ignore[arg-type]
            await pub.publish(topic, b"hello", qos=1)
        async with asyncio.timeout(5):
            async for message in sub.messages:
                return bytes(message.payload)  # type: ignore[arg-type]
    raise AssertionError("no message")


async def test_session_broker_delivers_qos1(mosquitto: Mosquitto) -> None:
    assert await _roundtrip({}, mosquitto, "centinela/test/qos1") == b"hello"


async def test_acl_denies_other_topics(broker_factory: Callable[[BrokerSpec], Mosquitto]) -> None:
    acl = "user p1\ntopic readwrite centinela/demo/p1/#\n\nuser hub\ntopic readwrite centinela/#\n"
    broker = broker_factory(BrokerSpec(users={"p1": "pw1", "hub": "pwh"}, acl=acl))
    got: list[str] = []
    async with aiomqtt.Client(broker.host, broker.port, username="hub", password="pwh") as hub:
        await hub.subscribe("centinela/#", qos=1)
        async with aiomqtt.Client(broker.host, broker.port, username="p1", password="pw1") as p1:
            # Denied publishes are acknowledged by mosquitto and dropped.
            await p1.publish("centinela/demo/p2/up", b"forged", qos=1)
            await p1.publish("centinela/demo/p1/up", b"own", qos=1)
        async with asyncio.timeout(5):
            async for message in hub.messages:
                got.append(str(message.topic))
                if message.payload == b"own":
                    break
    assert got == ["centinela/demo/p1/up"]


async def test_wrong_password_is_refused(broker_factory: Callable[[BrokerSpec], Mosquitto]) -> None:
    broker = broker_factory(BrokerSpec(users={"p1": "pw1"}, acl="user p1\ntopic readwrite #\n"))
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(broker.host, broker.port, username="p1", password="nope"):
            pass


async def test_tls_broker(
    broker_factory: Callable[[BrokerSpec], Mosquitto], tls_files: TlsFiles
) -> None:
    broker = broker_factory(BrokerSpec(tls=tls_files))
    assert broker.url.startswith("mqtts://")
    context = ssl.create_default_context(cafile=str(tls_files.ca))
    assert await _roundtrip({"tls_context": context}, broker, "centinela/tls") == b"hello"
    # A client that does not trust the test CA is refused.
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(
            broker.host, broker.port, tls_context=ssl.create_default_context()
        ):
            pass
