"""What the hub reports beyond the cloud API: an alarm receiving centre (SIA DC-09) and
Home Assistant (MQTT discovery on the cloud broker).

The hub process starts one ``Integrations`` after its store and stops it before
closing the store; every frame batch it handles wakes it, and messages on the
topics it asked for (``subscriptions``) are handed to ``on_cloud``.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from common.clock import Clock
from hub import homeassistant as ha
from hub.arc.transmitter import ArcTransmitter, LinkEvent
from hub.cloudapi import Topics, dumps, iso_ms
from hub.config import HubConfig
from hub.counters import Counters
from hub.store import OutboxItem
from protocol.messages import Command

_LOGGER = logging.getLogger(__name__)

# Contact ID 350 / SIA YC-YK: communication trouble with the centre, and its restore.
LINK_CODES = {LinkEvent.LOST: ("1350", "YC"), LinkEvent.RESTORED: ("3350", "YK")}

SendCommand = Callable[[str, Command], Awaitable[str | None]]
"""Sends a command to a panel; returns why it could not be sent, or None."""


def link_event_json(site: str, kind: LinkEvent, time_ms: int, detail: dict[str, Any]) -> bytes:
    """A hub event on the cloud event topic: no panel, no seq (docs/arc.md)."""
    cid, sia = LINK_CODES[kind]
    return dumps(
        {
            "site": site, "panel": None, "seq": None, "time": iso_ms(time_ms),
            "type": str(kind), "mode": None, "user": None, "method": "system",
            "zone": None, "cid": cid, "sia": sia, **detail,
        }
    )  # fmt: skip


class DiscoveryRecord:
    """The discovery config topics last published, kept in the hub's SQLite file."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout = 5000")
        self._db.execute("CREATE TABLE IF NOT EXISTS ha_discovery (topic TEXT PRIMARY KEY)")

    def topics(self) -> list[str]:
        return [str(r[0]) for r in self._db.execute("SELECT topic FROM ha_discovery")]

    def replace(self, topics: list[str]) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        self._db.execute("DELETE FROM ha_discovery")
        self._db.executemany("INSERT INTO ha_discovery VALUES (?)", [(t,) for t in topics])
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()


class Integrations:
    """The centre transmitter (``[arc]``) and Home Assistant discovery (``[homeassistant]``)."""

    def __init__(
        self,
        config: HubConfig,
        clock: Clock,
        counters: Counters,
        enqueue: Callable[[list[OutboxItem]], None],
    ) -> None:
        self.config = config
        self.topics = Topics(config.site)
        self._clock = clock
        self._counters = counters
        self._enqueue = enqueue
        self.send_command: SendCommand | None = None
        self._jobs: set[asyncio.Task[Any]] = set()
        self._record: DiscoveryRecord | None = None
        self.arc: ArcTransmitter | None = None
        if config.arc is not None:
            self.arc = ArcTransmitter(
                config.arc,
                config.store,
                [p.id for p in config.panels],
                counters,
                self._arc_link,
            )

    # -- life cycle ---------------------------------------------------------------------

    def subscriptions(self) -> list[str]:
        """Cloud-broker topics to subscribe to."""
        cfg = self.config.homeassistant
        if cfg is None:
            return []
        return [ha.command_subscription(self.config.site), f"{cfg.discovery_prefix}/status"]

    async def start(self) -> None:
        """Start reporting (the hub store is open)."""
        # Even without [homeassistant]: entities published before are removed.
        self._record = DiscoveryRecord(self.config.store)
        self.publish_discovery()
        if self.arc is not None:
            await self.arc.start()

    async def stop(self) -> None:
        """Stop reporting (before the hub store closes)."""
        if self.arc is not None:
            await self.arc.stop()
        jobs = list(self._jobs)
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        if self._record is not None:
            self._record.close()
            self._record = None

    def wake(self) -> None:
        """The hub handled a batch: new events may wait."""
        if self.arc is not None:
            self.arc.wake()

    def diagnostics(self) -> dict[str, Any]:
        """For the hub's diagnostics."""
        return {} if self.arc is None else {"arc": self.arc.status()}

    # -- Home Assistant -----------------------------------------------------------------

    def publish_discovery(self) -> None:
        """Queue every config (retained), and an empty retained config for each one dropped."""
        cfg = self.config.homeassistant
        if self._record is None:
            return
        configs = {} if cfg is None else ha.discovery(self.config.site, cfg)
        gone = ha.removals(self._record.topics(), configs)
        if not configs and not gone:
            return
        items = [OutboxItem(t, b"", retain=True) for t in gone]
        items += [OutboxItem(t, p, retain=True) for t, p in configs.items()]
        self._enqueue(items)
        self._record.replace(sorted(configs))
        self._counters.add("ha_discovery", len(configs))
        if gone:
            _LOGGER.info("home assistant: %d entit(ies) removed", len(gone))

    def on_cloud(self, topic: str, payload: bytes, retain: bool) -> bool:
        """Handle a message on one of ``subscriptions``; False when it is not ours."""
        cfg = self.config.homeassistant
        if cfg is None:
            return False
        if topic == f"{cfg.discovery_prefix}/status":
            if payload.strip() == b"online" and not retain:
                self.publish_discovery()  # HA restarted: it asks for the configs again
            return True
        if not topic.endswith("/ha/command"):
            return False
        if retain:
            self._counters.drop("retained_command", "a retained command is never executed")
            return True
        parsed = ha.parse_ha_command(topic, payload, self.config.site, cfg)
        if isinstance(parsed, ha.HaRefused):
            self._counters.drop(parsed.reason, parsed.detail)
            return True
        job = asyncio.create_task(self._send(parsed))
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)
        return True

    async def _send(self, parsed: ha.HaCommand) -> None:
        if self.send_command is None:
            return
        problem = await self.send_command(parsed.panel, parsed.command)
        if problem is None:
            self._counters.add("ha_commands")
        else:
            self._counters.drop("ha_command_not_sent", f"{parsed.command.id}: {problem}")

    # -- the centre ---------------------------------------------------------------------

    def _arc_link(self, kind: LinkEvent, detail: dict[str, Any]) -> None:
        payload = link_event_json(self.config.site, kind, self._clock.now_ms(), detail)
        self._enqueue([OutboxItem(self.topics.event, payload, qos=1)])
