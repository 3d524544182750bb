"""The hub's diagnostics: retained JSON every minute, on connect and on request."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Final

from common.clock import Clock, TimerHandle
from hub.cloudapi import dumps
from hub.mqttlink import LinkDown, MqttLink

_LOGGER = logging.getLogger(__name__)

EVERY_MS: Final = 60_000


class DiagnosticsPublisher:
    """Publishes ``snapshot()`` on ``topic``; asks while one goes out make one more, not many."""

    def __init__(
        self, clock: Clock, link: MqttLink, topic: str, snapshot: Callable[[], dict[str, Any]]
    ) -> None:
        self._clock = clock
        self._link = link
        self._topic = topic
        self._snapshot = snapshot
        self._timer: TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def start(self) -> None:
        """Publish every minute on the clock."""
        self._timer = self._clock.call_at(self._clock.now_ms() + EVERY_MS, self._tick)

    async def stop(self) -> None:
        """No more publishing."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def request(self) -> None:
        """Publish soon."""
        if self._task is not None and not self._task.done():
            self._again = True
        else:
            self._task = asyncio.create_task(self._publish())

    def _tick(self) -> None:
        self._timer = self._clock.call_at(self._clock.now_ms() + EVERY_MS, self._tick)
        self.request()

    async def _publish(self) -> None:
        again = True
        while again:
            self._again = False
            with contextlib.suppress(LinkDown):
                await self._link.say(self._topic, dumps(self._snapshot()), retain=True)
            again = self._again
