"""The cloud outbox: publishes wait in the store and leave in order, removed only after PUBACK."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Final

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from common.mqtt import LinkState
from hub.counters import Counters
from hub.mqttlink import LinkDown, MqttLink
from hub.store import HubStore, OutboxItem

_LOGGER = logging.getLogger(__name__)

WINDOW: Final = 128
"""Most cloud publishes in flight at once."""
RETRY_S: Final = 0.2


class CloudOutbox:
    """Pumps the store's outbox to the cloud link, a window at a time, in order."""

    def __init__(
        self, store: HubStore, link: MqttLink, counters: Counters, notify: Callable[[], None]
    ) -> None:
        self._store = store
        self._link = link
        self._counters = counters
        self._notify = notify
        self.size = store.outbox_size()
        self._wake = asyncio.Event()
        self._wake.set()
        self._window = asyncio.Lock()  # held while a window of publishes is out

    def wake(self) -> None:
        """Something was queued, or the link came up."""
        self._wake.set()

    def added(self, n: int) -> None:
        """``n`` rows were queued inside someone else's transaction."""
        if n:
            self.size += n
            self._wake.set()

    def enqueue(self, items: list[OutboxItem]) -> None:
        """Queue publishes in a transaction of their own."""
        with self._store.transaction():
            for item in items:
                self._store.enqueue(item)
        self.added(len(items))

    async def settle(self, wait_s: float) -> None:
        """Let the window in flight finish (a clean stop then repeats nothing); keeps it held."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_s):
                await self._window.acquire()

    def release(self) -> None:
        """Undo ``settle``."""
        if self._window.locked():
            self._window.release()

    async def run(self) -> None:
        """Publish whenever the link is up and rows wait; until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._link.state is LinkState.UP:
                async with self._window:
                    complete = await self._publish_window()
                if complete is None:
                    break
                if not complete:
                    await asyncio.sleep(RETRY_S)  # the link is down or stalled: let it recover
                    break
            if self.size and self._link.state is LinkState.UP:
                self._wake.set()

    async def _publish_window(self) -> bool | None:
        """Publish the oldest rows at once; remove those acknowledged. None when empty."""
        rows = self._store.outbox_head(WINDOW)
        if not rows:
            self.size = 0
            return None
        outcomes = await asyncio.gather(
            *(self._publish(item) for _, item in rows), return_exceptions=True
        )
        done = [rid for (rid, _), res in zip(rows, outcomes, strict=True) if res is None]
        for (rid, item), res in zip(rows, outcomes, strict=True):
            if isinstance(res, Exception) and not isinstance(res, LinkDown):
                # A row the broker can never take must not block the rest forever.
                self._counters.drop("outbox_unpublishable", f"{item.topic}: {res!r}")
                done.append(rid)
        self._store.outbox_remove(done)
        self.size = max(0, self.size - len(done))
        self._counters.add("published", len(done))
        self._notify()
        return len(done) == len(rows)

    async def _publish(self, item: OutboxItem) -> None:
        properties = None
        if item.correlation is not None:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.CorrelationData = item.correlation
        await self._link.publish(
            item.topic, item.payload, qos=item.qos, retain=item.retain, properties=properties
        )
