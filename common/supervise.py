"""Long-lived tasks that never die silently: each end or failure is logged and the task restarted.

The panel and the hub run their links, workers and device pumps under one
``Supervisor`` each. A task that raises (or returns, which a long-lived task
never should) is logged with the reason and started again after a backoff
delay that grows while it keeps failing; ``restarts`` counts it by task name.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Coroutine
from typing import Any, Final

from common.backoff import Backoff

_LOGGER = logging.getLogger(__name__)

HEALTHY_S: Final = 60.0
"""A task that ran this long before failing starts again from the shortest delay."""

TaskFactory = Callable[[], Coroutine[Any, Any, Any]]


class Supervisor:
    """Runs named tasks for ever; cancel them all with ``stop()``."""

    def __init__(
        self,
        owner: str,
        *,
        base: float = 0.1,
        cap: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self.owner = owner
        self.restarts: Counter[str] = Counter()
        self._base = base
        self._cap = cap
        self._sleep = sleep
        self._on_failure = on_failure
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def spawn(self, name: str, factory: TaskFactory) -> None:
        """Run ``factory()`` as task ``name``, again after every end or failure."""
        if name in self._tasks:
            raise ValueError(f"{self.owner} already runs a task {name!r}")
        task = asyncio.create_task(self._run(name, factory), name=f"{self.owner}-{name}")
        task.add_done_callback(self._gone)
        self._tasks[name] = task

    def running(self) -> list[str]:
        """Names of the tasks still supervised."""
        return [name for name, task in self._tasks.items() if not task.done()]

    async def stop(self, *, keep: Collection[str] = ()) -> None:
        """Cancel every task (but those named in ``keep``) and wait for them to end."""
        tasks = [task for name, task in self._tasks.items() if name not in keep]
        self._tasks = {name: task for name, task in self._tasks.items() if name in keep}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, name: str, factory: TaskFactory) -> None:
        backoff = Backoff(self._base, self._cap)
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            failed = True
            try:
                await factory()
                failed = False
            except Exception:
                _LOGGER.exception("%s task %s failed; restarting it", self.owner, name)
            if not failed:
                _LOGGER.error("%s task %s ended; restarting it", self.owner, name)
            self.restarts[name] += 1
            if self._on_failure is not None:
                self._on_failure(name)
            if loop.time() - started >= HEALTHY_S:
                backoff.reset()
            await self._sleep(backoff.next())

    def _gone(self, task: asyncio.Task[None]) -> None:
        # Only cancellation or a BaseException (SystemExit, KeyboardInterrupt) ends _run.
        if not task.cancelled() and task.exception() is not None:
            _LOGGER.critical(
                "%s: supervisor of %s stopped: %r", self.owner, task.get_name(), task.exception()
            )
