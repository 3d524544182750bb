"""A simulated site with its customer area, run on an event loop in a thread of its own.

Browser tests are synchronous (Playwright's sync API); the site, the real hub and the
customer area run on this loop, and tests reach them with ``area.call(coro)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from common.clock import RealClock
from sim.site import DEMO_SITE, SimSite, read_site_file

T = TypeVar("T")


class LoopThread:
    """An asyncio loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def call(self, coro: Awaitable[T], timeout: float = 30) -> T:
        """Run ``coro`` on the loop and wait for its result."""
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        return fut.result(timeout)

    def close(self) -> None:
        """Stop the loop (everything on it must be stopped first)."""

        async def cancel_rest() -> None:
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in rest:
                t.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.call(cancel_rest(), 10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@dataclass
class Area:
    """The running site and customer area."""

    runner: LoopThread
    site: SimSite
    service: Any
    login: Any

    @property
    def url(self) -> str:
        return str(self.service.url)

    def call(self, coro: Awaitable[T], timeout: float = 30) -> T:
        return self.runner.call(coro, timeout)

    def press(self, keys: str) -> None:
        """Keys at the simulated keypad."""
        self.call(self.site.press(keys))

    def tap(self, uid: str) -> None:
        """A tag at the reader, then taken away."""

        async def tap() -> None:
            await self.site.present_tag(uid)
            await self.site.settle()
            await self.site.remove_tag()

        self.call(tap())

    def cloud_events(self) -> list[dict[str, Any]]:
        """What the cloud broker carried (the sim's own subscriber)."""
        cloud = self.site.cloud
        assert cloud is not None
        return list(cloud.events)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 15) -> None:
        """Poll ``predicate`` on the site's loop until it holds."""

        async def wait() -> None:
            async with asyncio.timeout(timeout):
                while not predicate():
                    await asyncio.sleep(0.02)

        self.call(wait(), timeout + 5)


def site_data(site: str) -> dict[str, Any]:
    """The demo site under another site name, with short delays and frequent telemetry."""
    data = copy.deepcopy(read_site_file(DEMO_SITE))
    data["panel"]["site"] = site
    data["timing"] = {"exit_delay": 2, "entry_delay": 15, "alarm_duration": 60}
    data["telemetry"] = {"interval": 1}
    return data


@contextlib.contextmanager
def running_area(broker_url: str, workdir: Path, site: str = "webdemo") -> Iterator[Area]:
    """Start the site (on ``broker_url``) and its customer area on a free port."""
    from sim.customer import start_customer_area

    runner = LoopThread()
    sim = SimSite(
        site_data(site), str(DEMO_SITE), clock=RealClock(), workdir=workdir, broker_url=broker_url
    )
    service = None
    try:

        async def start() -> tuple[Any, Any]:
            await sim.start()
            return await start_customer_area(sim, workdir, "127.0.0.1:0")

        service, login = runner.call(start(), 60)
        area = Area(runner, sim, service, login)
        area.wait_for(lambda: service.link.connected.is_set())
        yield area
    finally:

        async def stop() -> None:
            if service is not None:
                await service.stop()
            await sim.stop()

        with contextlib.suppress(Exception):
            runner.call(stop(), 60)
        runner.close()
