"""Fan-out of what happens at an installation to the pages that follow it live."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

QUEUE_SIZE = 64


class Live:
    """Per-site subscribers; a slow page loses its oldest messages, never blocks the others."""

    def __init__(self) -> None:
        self._subs: dict[str, set[asyncio.Queue[tuple[str, Any]]]] = {}

    def publish(self, site: str, kind: str, value: Any) -> None:
        """Hand ``(kind, value)`` to every page following ``site``."""
        for queue in list(self._subs.get(site, ())):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait((kind, value))

    @contextlib.asynccontextmanager
    async def follow(self, site: str) -> AsyncIterator[asyncio.Queue[tuple[str, Any]]]:
        """A queue of what happens at ``site`` while the context is open."""
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._subs.setdefault(site, set()).add(queue)
        try:
            yield queue
        finally:
            self._subs[site].discard(queue)
