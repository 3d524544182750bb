"""Only authenticated messages decide availability and where results go; oversized packets
never reach the hub or the panel."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import pytest

from common.clock import VirtualClock
from common.errors import ConfigError
from common.mqtt import LinkState
from hub.config import load_hub_mapping
from protocol.messages import Command, Heartbeat, Result, State
from sim.broker import BrokerSpec, Mosquitto
from tests.panel_site import site_on
from tests.test_hub_fakepanel import (
    T0,
    Cloud,
    RawPanel,
    hub_mapping,
    new_key,
    new_site,
    response_properties,
    until,
)
from tests.test_hub_process import config_for, running


@pytest.fixture
def own_broker(broker_factory: Callable[[BrokerSpec], Mosquitto]) -> Mosquitto:
    """A broker of this test's own: the retained state of site "demo" stays there."""
    return broker_factory(BrokerSpec())


STATUS = {"panel": "p1", "action": "status", "user": "alice", "via": "app"}


async def test_an_online_status_never_makes_a_silent_panel_available(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Issue 10 item 6: `online` on the status topic kept a killed panel "online"."""
    site, key = new_site(), new_key()
    config = config_for(site, mosquitto, {"p1": key}, tmp_path, offline_after=90)
    clock = VirtualClock(T0)
    async with (
        Cloud(mosquitto, site) as cloud,
        running(config, clock) as hub,
        RawPanel(mosquitto, site, "p1", key) as panel,
        RawPanel(mosquitto, site, "p1", new_key()) as attacker,
    ):
        await panel.send(Heartbeat(T0, 0))
        await cloud.wait(lambda: cloud.texts("p1/availability") == ["online"])
        await until(hub.idle)  # every frame the panel sent is handled before time moves on
        await clock.advance(90)  # the panel died without a will reaching the hub
        await cloud.wait(lambda: cloud.texts("p1/availability") == ["online", "offline"])

        # Anyone may write the status topic: `online` there changes nothing.
        for _ in range(3):
            await attacker.say_status("online")
        await attacker.publish_raw(b"sync")  # ordered after the statuses on one connection
        await until(lambda: hub.counters.get("bad_frame.bad_magic", 0) == 1)
        await until(hub.idle)
        assert hub.availability.label("p1") == "offline"
        await cloud.command({**STATUS, "id": "c1"})
        assert (await cloud.wait_result("c1"))["error"] == "panel_offline"

        # A frame that verifies brings it back; the will (offline) still takes it down.
        await panel.send(Heartbeat(T0, 0))
        await cloud.wait(lambda: cloud.texts("p1/availability")[-1:] == ["online"])
        await panel.say_status("offline")
        await cloud.wait(lambda: cloud.texts("p1/availability")[-1:] == ["offline"])
        assert cloud.texts("p1/availability") == ["online", "offline", "online", "offline"]


async def test_response_topics_outside_the_result_prefix_get_the_default_result_topic(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Issue 10 item 6: a command could make the hub publish on the event and state topics."""
    site, key = new_site(), new_key()
    config = config_for(site, mosquitto, {"p1": key}, tmp_path)

    def answer(command: Command) -> Result:
        return Result(command.id, True, State.DISARMED)

    async with (
        Cloud(mosquitto, site) as cloud,
        running(config) as hub,
        RawPanel(mosquitto, site, "p1", key, answer=answer),
    ):
        hostile = [
            f"centinela/{site}/event",
            f"centinela/{site}/p1/state",
            f"centinela/{site}/p1/availability",
            f"centinela/{site}/hub/availability",
            f"centinela/{site}/result2",
            f"centinela/{site}/result/",
            "centinela-link/" + site + "/p1/down",
        ]
        for i, topic in enumerate(hostile):
            props = response_properties(topic, b"evil")
            await cloud.command({**STATUS, "id": f"EVIL{i}"}, properties=props)
        good = f"centinela/{site}/result/app/alice"
        await cloud.command({**STATUS, "id": "ok"}, properties=response_properties(good, b"7"))
        await cloud.wait(lambda: any(str(m.topic) == good for m in cloud.messages))
        for i in range(len(hostile)):
            assert (await cloud.wait_result(f"EVIL{i}"))["ok"] is True  # answered, by default
        await until(hub.idle)
        assert hub.counters["bad_response_topic"] == len(hostile)
        evil = [
            m for m in cloud.messages
            if b"EVIL" in bytes(m.payload) and not str(m.topic).endswith("/command")
        ]  # fmt: skip
        assert {str(m.topic) for m in evil} == {f"centinela/{site}/result"}
        answer_msg = next(m for m in cloud.messages if str(m.topic) == good)
        assert json.loads(answer_msg.payload)["id"] == "ok"
        assert getattr(answer_msg.properties, "CorrelationData", None) == b"7"


def test_the_result_prefix_is_configurable_and_cannot_reach_the_hubs_own_topics(
    tmp_path: Path,
) -> None:
    broker = Mosquitto()
    try:
        base = hub_mapping("demo", broker, {"p1": new_key()}, tmp_path / "hub.db")
    finally:
        broker.close()
    assert load_hub_mapping(base, "<t>").response_prefix == "centinela/demo/result/"
    mine = {**base, "hub": {**base["hub"], "response_prefix": "app/replies/"}}
    assert load_hub_mapping(mine, "<t>").response_prefix == "app/replies/"
    for bad in ("centinela/demo/", "centinela/", "centinela/demo/p1/", "app/#/", "app", "",
                "centinela-link/demo/"):  # fmt: skip
        with pytest.raises(ConfigError, match=r"\[hub\] response_prefix|hub.response_prefix"):
            load_hub_mapping({**base, "hub": {**base["hub"], "response_prefix": bad}}, "<t>")


async def test_the_broker_refuses_oversized_packets_before_hub_or_panel_buffer_them(
    own_broker: Mosquitto, tmp_path: Path
) -> None:
    """Issue 10 item 6: a 100 MB command was read whole into the hub's memory."""
    huge = b"{" + b" " * (4 * 65_536) + b"}"  # four times common.mqtt.MAX_PACKET
    async with site_on(own_broker, tmp_path) as s:
        hub, panel = s.hub, s.panel
        assert panel.link is not None
        await until(lambda: hub.availability.label("p1") == "online")
        await until(lambda: panel.link is not None and panel.link.state is LinkState.UP)
        async with aiomqtt.Client(own_broker.host, own_broker.port) as attacker:
            await attacker.publish("centinela/demo/command", huge, qos=1)
            await attacker.publish("centinela-link/demo/p1/up", huge, qos=1)
            await attacker.publish("centinela-link/demo/p1/down", huge, qos=1)
            # Then small garbage on each, in order on the same connection: once the small
            # ones are counted, the huge ones would have been too.
            await attacker.publish("centinela/demo/command", b"{", qos=1)
            await attacker.publish("centinela-link/demo/p1/up", b"x", qos=1)
            await attacker.publish("centinela-link/demo/p1/down", b"x", qos=1)
        await until(lambda: hub.counters.get("bad_command", 0) == 1)
        await until(lambda: hub.counters.get("bad_frame.bad_magic", 0) == 1)
        await until(lambda: panel.link.counters["bad_frame_BadMagic"] == 1)  # type: ignore[union-attr]
        assert hub.counters.get("oversized_command", 0) == 0
        assert hub.counters.get("oversized_frame", 0) == 0
        assert sum(v for k, v in panel.link.counters.items() if k.startswith("bad_frame")) == 1
