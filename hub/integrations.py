"""What the hub reports beyond the cloud: an alarm receiving centre (SIA DC-09), Home Assistant.

The hub process starts one ``Integrations`` after its store and stops it before
closing the store; every frame batch it handles wakes it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from common.clock import Clock
from hub.arc.transmitter import ArcTransmitter, LinkEvent
from hub.cloudapi import Topics, dumps, iso_ms
from hub.config import HubConfig
from hub.counters import Counters
from hub.store import OutboxItem

_LOGGER = logging.getLogger(__name__)

# Contact ID 350 / SIA YC-YK: communication trouble with the centre, and its restore.
LINK_CODES = {LinkEvent.LOST: ("1350", "YC"), LinkEvent.RESTORED: ("3350", "YK")}


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


class Integrations:
    """The centre transmitter (when ``[arc]`` is configured)."""

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
        self._enqueue = enqueue
        self.arc: ArcTransmitter | None = None
        if config.arc is not None:
            self.arc = ArcTransmitter(
                config.arc,
                config.store,
                [p.id for p in config.panels],
                counters,
                self._arc_link,
            )

    async def start(self) -> None:
        """Start reporting (the hub store is open)."""
        if self.arc is not None:
            await self.arc.start()

    async def stop(self) -> None:
        """Stop reporting (before the hub store closes)."""
        if self.arc is not None:
            await self.arc.stop()

    def wake(self) -> None:
        """The hub handled a batch: new events may wait."""
        if self.arc is not None:
            self.arc.wake()

    def diagnostics(self) -> dict[str, Any]:
        """For the hub's diagnostics."""
        return {} if self.arc is None else {"arc": self.arc.status()}

    def _arc_link(self, kind: LinkEvent, detail: dict[str, Any]) -> None:
        payload = link_event_json(self.config.site, kind, self._clock.now_ms(), detail)
        self._enqueue([OutboxItem(self.topics.event, payload, qos=1)])
