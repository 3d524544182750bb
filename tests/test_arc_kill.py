"""`centinela hub` SIGKILLed while it reports to pysiaalarm: nothing lost, no event reported twice.

A message in flight when the hub dies is sent again after the restart with the
DC-09 sequence number it first had (the outbox records it before sending), so a
receiver that has it already sees a repeat of the same message, which DC-09
receivers discard; the test asserts exactly that, and that every event arrives.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from hub.arc.outbox import read_status
from hub.store import HubStore
from protocol.keys import generate_key
from protocol.messages import Event, EventType, Method, Mode
from sim.broker import Mosquitto
from tests.arc_receiver import ArcReceiver
from tests.procs import Proc

N = 240
KILLS = 4


def hub_toml(directory: Path, broker: str, receiver: str) -> Path:
    zones = "\n".join(f"z{i} = {i}" for i in range(1, N + 1))
    path = directory / "hub.toml"
    path.write_text(
        f"""
[hub]
site = "arc-kill"  # its own topics: the session broker is shared
store = "{directory / "hub.db"}"

[local]
broker = "{broker}"

[[panels]]
id = "p1"
key = "{generate_key()}"

[arc]
receivers = ["{receiver}"]
account = "AAA1"
key = "0123456789ABCDEF"
supervision = 0.5
retry = 0.05
ack_timeout = 2

[arc.zones]
{zones}
"""
    )
    return path


async def test_hub_killed_mid_stream_loses_and_duplicates_nothing(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    rng = random.Random(14)
    receiver = await ArcReceiver(key="0123456789ABCDEF").start()
    config = hub_toml(tmp_path, mosquitto.url, receiver.url)
    log = tmp_path / "hub.log"
    hub = Proc(["hub", "--config", str(config)], log).start()
    try:
        async with asyncio.timeout(20):
            while read_status(tmp_path / "hub.db") is None:
                await asyncio.sleep(0.05)
        store = HubStore(tmp_path / "hub.db")
        with store.transaction():
            for i in range(1, N + 1):
                event = Event(i, i, EventType.ALARM, Method.SYSTEM, "1131", "BA", Mode.TOTAL,
                              None, f"z{i}")  # fmt: skip
                store.add_event("arc-kill", "p1", event, 0)
        store.close()
        for _ in range(KILLS):
            target = len(receiver.events) + rng.randint(10, 40)
            await receiver.wait_for(lambda r, t=target: len(r.events) >= t, timeout=30)
            hub.kill()
            hub = Proc(["hub", "--config", str(config)], log).start()
        await receiver.wait_for(
            lambda r: {int(x.message or 0) for x in r.events} >= set(range(1, N + 1)), timeout=60
        )
    finally:
        hub.stop()
        await receiver.stop()
    got = [(int(r.message or 0), r.sequence) for r in receiver.events]
    first: dict[int, str] = {}
    order: list[int] = []
    for zone, seq in got:
        if zone in first:
            # A repeat is the same DC-09 message again (same sequence), right after a kill.
            assert first[zone] == seq, (zone, seq, first[zone])
            assert order[-1] == zone
            continue
        first[zone] = seq
        order.append(zone)
    assert order == list(range(1, N + 1))  # every event, in order
    assert len(got) - N <= KILLS  # at most the message in flight at each kill
