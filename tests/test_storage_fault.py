"""A panel whose store cannot be written (issue 10 item 1): the alarm still sounds, nothing is lost.

The full disk is SQLite's own limit on a real store file: ``[store] max_size``
(``PRAGMA max_page_count``) at the size the file already has, so every write that
needs a new page fails with ``database or disk is full``, exactly as on a full
file system, without root or a mount. "Space returns" by lifting the limit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from centinela.doctor import report
from panel.core import Panel
from panel.store import PanelStore
from protocol.messages import Event, EventType, Method, State
from sim.broker import BrokerSpec, Mosquitto
from tests.panel_site import cloud_subscriber, make_configs, running

QUOTA = 128 * 1024
T0 = 1_795_000_000_000


def fill_to_quota(config: Any) -> int:
    """Commit small acknowledged events until the store is at its quota; the next seq."""
    store = PanelStore(config.store.path, max_size=config.store.max_size)
    snapshot = Panel(config).snapshot()
    seq, batch = store.next_seq, 64
    try:
        while batch:
            events = [Event(s, T0, EventType.ARMED, Method.SYSTEM, "1", "C")
                      for s in range(seq, seq + batch)]  # fmt: skip
            try:
                store.commit(dataclasses.replace(snapshot, next_seq=seq + batch), events)
            except sqlite3.OperationalError as exc:
                if "full" not in str(exc):
                    raise
                batch //= 2
                continue
            seq += batch
        store.ack(seq - 1)  # delivered long ago: the hub need not see them
    finally:
        store.close()
    return seq


async def until(predicate: Callable[[], bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_a_full_store_never_silences_the_panic_and_recovers_in_order(
    broker_factory: Callable[[BrokerSpec], Mosquitto], tmp_path: Path
) -> None:
    broker = broker_factory(BrokerSpec())
    panel_cfg, hub_cfg = make_configs(tmp_path, broker.url)
    panel_cfg = dataclasses.replace(
        panel_cfg, store=dataclasses.replace(panel_cfg.store, max_size=QUOTA)
    )
    first = fill_to_quota(panel_cfg)
    async with (
        cloud_subscriber(broker.host, broker.port) as (client, cloud),
        running(panel_cfg, hub_cfg) as (panel, hub),
    ):
        # Even the start's `restart` event could not be written: the fault is raised.
        await until(lambda: panel.storage_fault is not None)
        assert "full" in (panel.storage_fault or "")
        await panel.keypad.twin.type("P")
        await until(lambda: panel.zones.twin.siren)  # the panic sounds
        assert panel.view().state is State.TRIGGERED
        # ... and reaches the cloud from memory, with the fault itself.
        await cloud.wait_for(lambda c: {"panic", "storage_fault"} <= {e["type"] for e in c.events})
        # Cloud commands are still answered.
        command = {"id": "s1", "panel": "p1", "action": "status", "user": "alice", "via": "app"}
        await client.publish("centinela/demo/command", json.dumps(command), qos=1)
        await cloud.wait_for(lambda c: any(r["id"] == "s1" for r in c.results))
        assert next(r for r in cloud.results if r["id"] == "s1")["ok"] is True
        await panel.keypad.twin.type("1234D")
        await until(lambda: not panel.zones.twin.siren)
        assert panel.view().state is State.DISARMED
        assert panel.journal is not None and panel.journal.holding >= 4
        # The doctor says so too (its own probe fails the same way).
        lines: list[str] = []
        config = tmp_path / "site.toml"
        config.write_text(
            f'[panel]\nid = "p1"\nsite = "demo"\n[[users]]\nname = "a"\ncode = "1234"\n'
            f'role = "master"\n[store]\npath = "p1.db"\nmax_size = {QUOTA}\n'
        )

        class Out:
            def write(self, text: str) -> None:
                lines.append(text)

            def flush(self) -> None:
                pass

        assert report(str(config), out=Out()) == 1  # type: ignore[arg-type]
        assert "storage_fault" in "".join(lines)
        # Space returns: the panel writes everything by itself, in seq order.
        panel.journal.store.set_quota(None)
        await until(lambda: panel.storage_fault is None and not panel.journal.dirty)
        await cloud.wait_for(lambda c: "storage_ok" in [e["type"] for e in c.events])
        await panel.keypad.twin.type("1234A")  # no SeqError: the core and store agree
        await cloud.wait_for(lambda c: "arming" in [e["type"] for e in c.events])
        stored = panel.journal.store.events(since_seq=first - 1)
        seqs = [e.seq for e in stored]
        assert seqs == list(range(first, first + len(seqs)))
        types = [str(e.type) for e in stored]
        assert types[:2] == ["restart", "storage_fault"]
        assert "panic" in types and "disarmed" in types
        assert types[-2:] == ["storage_ok", "arming"]
        assert [e["seq"] for e in cloud.events] == seqs  # each once, in order
        assert hub.counters.get("duplicate", 0) == 0
