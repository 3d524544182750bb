"""What an installer reads about a link: why it is down, at a falling rate, and when it is back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import pytest

from common.linklog import LinkLog, reason
from common.mqtt import BrokerConfig, LinkState
from hub.mqttlink import MqttLink
from sim.broker import BrokerSpec, Mosquitto

LOGGER = logging.getLogger("test.linklog")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_outage_is_said_at_once_then_at_a_falling_rate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    log = LinkLog(LOGGER, "hub local link", "mqtt://127.0.0.1:1", "hub", "c1", clock=clock)
    caplog.set_level(logging.INFO, logger=LOGGER.name)
    refused = ConnectionRefusedError(111, "Connection refused")
    for _ in range(2000):  # one attempt every 0.5 s for 1000 s
        log.failed(refused)
        clock.now += 0.5
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings[0].getMessage() == (
        "hub local link: cannot connect to mqtt://127.0.0.1:1 as 'hub': "
        "[Errno 111] Connection refused"
    )
    # 0, then 10, 30, 70, 150, 310, 630 s: seven lines in 1000 s, not two thousand.
    assert len(warnings) == 7
    assert "after 21 attempts in 10 s" in warnings[1].getMessage()
    log.connected()
    back = caplog.records[-1]
    assert back.levelno == logging.INFO
    assert back.getMessage().startswith(
        "hub local link: connected again to mqtt://127.0.0.1:1 as 'hub' after 1000 s"
    )
    log.failed(refused)
    assert caplog.records[-1].getMessage().startswith("hub local link: lost mqtt://")


def _link(broker: BrokerConfig, identifier: str, sleeps: list[float] | None = None) -> MqttLink:
    async def sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)
        await asyncio.sleep(min(seconds, 0.05))

    return MqttLink(
        "local",
        broker,
        identifier=identifier,
        subscriptions=["t/#"],
        on_message=lambda message: None,
        sleep=sleep,
    )


async def _wait_for(
    caplog: pytest.LogCaptureFixture, words: str, level: int = logging.WARNING
) -> str:
    async with asyncio.timeout(20):
        while True:
            for record in caplog.records:
                if record.levelno == level and words in record.getMessage():
                    return record.getMessage()
            await asyncio.sleep(0.02)


async def test_a_refused_password_names_broker_user_and_reason(
    caplog: pytest.LogCaptureFixture, broker_factory: Callable[[BrokerSpec], Mosquitto]
) -> None:
    caplog.set_level(logging.INFO)
    broker = broker_factory(BrokerSpec(users={"hub": "right"}, acl="user hub\ntopic read #\n"))
    config = BrokerConfig("127.0.0.1", broker.port, False, "hub", "wrong")
    link = _link(config, "centinela-hub-test")
    task = asyncio.create_task(link.run())
    try:
        line = await _wait_for(caplog, "cannot connect to")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert line == f"hub local link: cannot connect to {broker.url} as 'hub': not authorized"
    assert "wrong" not in caplog.text  # never the password


async def test_a_second_copy_with_the_same_client_id_is_named_and_waits(
    caplog: pytest.LogCaptureFixture, broker_factory: Callable[[], Mosquitto]
) -> None:
    caplog.set_level(logging.INFO)
    mosquitto = broker_factory()
    config = BrokerConfig("127.0.0.1", mosquitto.port, False)
    first_sleeps: list[float] = []
    first = _link(config, "centinela-hub-twin", first_sleeps)
    second = _link(config, "centinela-hub-twin")
    tasks = [asyncio.create_task(first.run())]
    try:
        async with asyncio.timeout(20):
            while first.state is not LinkState.UP:
                await asyncio.sleep(0.02)
        tasks.append(asyncio.create_task(second.run()))
        line = await _wait_for(caplog, "within seconds of connecting")
        assert "same client id 'centinela-hub-twin'" in line
        assert "a second copy of this program" in line
        async with asyncio.timeout(20):
            while not any(pause >= 5.0 for pause in first_sleeps):
                await asyncio.sleep(0.02)  # the one kicked off waits before it retries
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def test_reason_reads_the_broker_reason_behind_an_error() -> None:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.reasoncodes import ReasonCode

    cause = aiomqtt.MqttCodeError(ReasonCode(PacketTypes.CONNACK, identifier=135))
    outer = aiomqtt.MqttError("Disconnected during message iteration")
    outer.__cause__ = cause
    assert reason(outer) == "not authorized"
    assert reason(ConnectionRefusedError(111, "Connection refused")) == (
        "[Errno 111] Connection refused"
    )


async def test_a_panel_whose_key_the_hub_lacks_says_so(
    caplog: pytest.LogCaptureFixture,
    broker_factory: Callable[[], Mosquitto],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import panel.link
    from protocol.keys import fingerprint, generate_key
    from tests.panel_site import make_configs, running

    monkeypatch.setattr(panel.link, "ANSWER_WITHIN_S", 1.0)
    caplog.set_level(logging.INFO)
    mosquitto = broker_factory()  # its own broker: the hub leaves retained state behind
    panel_key, hub_key = generate_key(), generate_key()
    panel_cfg, _ = make_configs(tmp_path, mosquitto.url, key=panel_key)
    _, hub_cfg = make_configs(tmp_path, mosquitto.url, key=hub_key)
    async with running(panel_cfg, hub_cfg):
        line = await _wait_for(caplog, "panel link: no answer from the hub")
    assert f"fingerprint {fingerprint(bytes.fromhex(panel_key))}" in line
    assert panel_key not in caplog.text and hub_key not in caplog.text


async def test_a_panel_the_hub_answers_says_nothing_about_keys(
    caplog: pytest.LogCaptureFixture,
    broker_factory: Callable[[], Mosquitto],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import panel.link
    from tests.panel_site import make_configs, running

    monkeypatch.setattr(panel.link, "ANSWER_WITHIN_S", 1.0)
    caplog.set_level(logging.INFO)
    mosquitto = broker_factory()  # its own broker: the hub leaves retained state behind
    panel_cfg, hub_cfg = make_configs(tmp_path, mosquitto.url)
    async with running(panel_cfg, hub_cfg) as (panel_process, _hub):
        link = panel_process.link
        assert link is not None
        async with asyncio.timeout(20):
            while not link._answered.is_set():
                await asyncio.sleep(0.02)
        # The watch ends when the answer comes: after it, no warning can follow.
        async with asyncio.timeout(20):
            while any(t.get_name() == panel.link.ANSWER_WATCH for t in asyncio.all_tasks()):
                await asyncio.sleep(0.02)
    assert "does not accept this panel's key" not in caplog.text
    assert "no answer from the hub" not in caplog.text
