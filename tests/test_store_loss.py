"""A lost or replaced store on either side (issue 10 item 2), end to end on a real mosquitto.

Panel and hub run with their real SQLite stores; an eavesdropper on the panel's
link topic captures every frame, and replays them after the loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiomqtt
import pytest

from common.mqtt import LinkState
from hub.process import HubProcess
from panel.process import PanelProcess
from sim.broker import BrokerSpec, Mosquitto
from tests.panel_site import Cloud, cloud_subscriber, make_configs

TAG = "04A1B2C3D4E5F6"
UP = "centinela-link/demo/p1/up"
DOWN = "centinela-link/demo/p1/down"


@contextlib.asynccontextmanager
async def eavesdropper(broker: Mosquitto, topic: str = UP) -> AsyncIterator[list[bytes]]:
    """Every frame on ``topic``, as an attacker on the broker would capture it."""
    frames: list[bytes] = []
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.subscribe(topic, qos=1)

        async def collect() -> None:
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                frames.append(message.payload)

        task = asyncio.create_task(collect())
        try:
            yield frames
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def replay(broker: Mosquitto, frames: list[bytes], times: int = 2, topic: str = UP) -> None:
    async with aiomqtt.Client(broker.host, broker.port) as attacker:
        for _ in range(times):
            for frame in frames:
                await attacker.publish(topic, frame, qos=1)


async def until(predicate: Callable[[], bool], timeout: float = 15) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def types(cloud: Cloud) -> list[str]:
    return [str(e["type"]) for e in cloud.events]


def forget(path: Path, *, leave_empty: bool) -> None:
    for side in ("", "-wal", "-shm"):
        path.with_name(path.name + side).unlink(missing_ok=True)
    if leave_empty:
        path.write_bytes(b"")


def assert_seqs_rise_by_one(cloud: Cloud) -> None:
    seqs = [int(e["seq"]) for e in cloud.events]  # type: ignore[call-overload]
    assert seqs == list(range(1, len(seqs) + 1)), seqs


@pytest.mark.parametrize("leave_empty", [False, True], ids=["deleted", "zero-length"])
async def test_a_panel_with_a_new_store_resumes_and_old_frames_stay_refused(
    broker_factory: Callable[[BrokerSpec], Mosquitto], tmp_path: Path, leave_empty: bool
) -> None:
    broker = broker_factory(BrokerSpec())
    panel_cfg, hub_cfg = make_configs(tmp_path, broker.url)
    async with (
        cloud_subscriber(broker.host, broker.port) as (client, cloud),
        eavesdropper(broker) as captured,
        eavesdropper(broker, DOWN) as captured_down,
        HubProcess(hub_cfg) as hub,
    ):
        async with PanelProcess(panel_cfg) as panel:
            await panel.keypad.twin.type("1234A")
            await panel.keypad.twin.type("1234D")
            await cloud.wait_for(lambda c: types(c) == ["arming", "disarmed"])
            revoke = {"id": "r1", "panel": "p1", "action": "revoke_tag", "tag": TAG,
                      "user": "alice", "via": "app"}  # fmt: skip
            await client.publish("centinela/demo/command", json.dumps(revoke), qos=1)
            await cloud.wait_for(lambda c: types(c) == ["arming", "disarmed", "tag_revoked"])
            await until(lambda: panel.idle())
        old_frames, old_down = list(captured), list(captured_down)
        forget(panel_cfg.store.path, leave_empty=leave_empty)
        async with PanelProcess(panel_cfg) as panel:
            link = panel.link
            assert link is not None
            # Recorded at once in the new store (its own seq 1), before the hub is heard.
            await panel.keypad.twin.type("1234A")
            await cloud.wait_for(
                lambda c: "store_reset" in types(c) and types(c).count("arming") == 2
            )
            reset = next(e for e in cloud.events if e["type"] == "store_reset")
            assert reset["detail"] == "panel"
            # The revocation came back from the hub: the tag stays refused.
            await cloud.wait_for(lambda c: types(c).count("tag_revoked") == 2)
            await panel.nfc.twin.tap(TAG)
            await cloud.wait_for(lambda c: "tag_rejected" in types(c))
            rejected = next(e for e in cloud.events if e["type"] == "tag_rejected")
            assert rejected["detail"] == "revoked"
            # Frames of the lost store, replayed twice: refused, nothing reaches the cloud.
            seen = len(cloud.events)
            before = hub.counters.get("replay", 0)
            await replay(broker, old_frames)
            await until(lambda: hub.counters.get("replay", 0) >= before + 2 * len(old_frames))
            # The hub's frames to the lost store (its acks, the revoke_tag command), replayed
            # to the new one: refused, never acted on.
            assert len(old_down) >= 3
            await replay(broker, old_down, topic=DOWN)
            await until(lambda: link.counters["stale_epoch"] >= 2 * len(old_down))
            await panel.keypad.twin.type("1234D")
            await cloud.wait_for(lambda c: types(c)[-1] == "disarmed")
            assert len(cloud.events) == seen + 1
            assert panel.handled["RemoteCommand"] == 1  # only the hub's own re-sent revocation
    assert_seqs_rise_by_one(cloud)  # no repeats: the new store numbers after the old one
    assert hub.counters.get("duplicate", 0) == 0  # no new event was taken for an old one
    assert hub.counters["store_resets"] == 1


async def test_a_hub_with_a_new_store_refuses_replays_and_loses_nothing(
    broker_factory: Callable[[BrokerSpec], Mosquitto], tmp_path: Path
) -> None:
    broker = broker_factory(BrokerSpec())
    panel_cfg, hub_cfg = make_configs(tmp_path, broker.url)
    async with (
        cloud_subscriber(broker.host, broker.port) as (_, cloud),
        eavesdropper(broker) as captured,
        PanelProcess(panel_cfg) as panel,
    ):
        async with HubProcess(hub_cfg) as hub:
            for keys in ("1234A", "1234D", "1234B", "1234D"):
                await panel.keypad.twin.type(keys)
            await cloud.wait_for(lambda c: len(c.events) == 4)
            await until(lambda: panel.idle())
        old_frames = list(captured)
        forget(hub_cfg.store, leave_empty=False)
        async with HubProcess(hub_cfg) as hub:
            await until(lambda: hub.local.state is LinkState.UP)  # subscribed: it hears them
            # The captured frames replayed twice at the new store: none is taken.
            await replay(broker, old_frames)
            await cloud.wait_for(lambda c: "store_reset" in types(c))
            reset = next(e for e in cloud.events if e["type"] == "store_reset")
            assert reset["detail"] == "hub"
            await panel.keypad.twin.type("1234A")
            await cloud.wait_for(lambda c: types(c)[-1] == "arming")
            # Every replayed frame was made for the lost hub store: refused, counted.
            await until(lambda: hub.counters.get("stale_epoch", 0) >= 2 * len(old_frames))
            assert hub.store is not None
            stored = [e.event.seq for e in hub.store.events(panel="p1")]
            assert stored == [5, 6]  # only what came after the loss: nothing stale
    assert len(old_frames) >= 4
    assert types(cloud)[:4] == ["arming", "disarmed", "arming", "disarmed"]
    assert_seqs_rise_by_one(cloud)  # each event once: no stale copy, no gap
