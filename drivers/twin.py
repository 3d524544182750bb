"""Base of the simulated devices: what each action must produce, so ``settle()`` can wait for it."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from drivers.reports import Report

if TYPE_CHECKING:
    from drivers.base import Driver

SETTLE_LIMIT = 10.0
"""Seconds an awaited twin action waits for the panel to take its inputs in."""


class Settled:
    """What a twin action returns: ignore it, or await it to wait until the panel took it in."""

    __slots__ = ("_twin",)

    def __init__(self, twin: Twin) -> None:
        self._twin = twin

    def __await__(self) -> Generator[Any, None, None]:
        return self._twin._settle_within(SETTLE_LIMIT).__await__()


class Twin:
    """A simulated device attached to the real driver that reads it.

    Every action (a key typed, a tag presented, a zone opened) records the input
    it must make the driver yield; ``await twin.settle()`` returns once the
    consumer of the driver has taken all of them in (asked for the next input).
    An action returns a ``Settled``: ignore it, or ``await`` it to settle (at
    most SETTLE_LIMIT seconds, then TimeoutError). Actions are called from the
    event-loop thread.
    """

    def __init__(self) -> None:
        self.driver: Driver | None = None
        self._expected: deque[tuple[int, Callable[[Report], bool]]] = deque()
        self._last_serial = 0

    def attach(self, driver: Driver) -> None:
        """Bind to the driver that reads this twin."""
        self.driver = driver

    def _expect(self, match: Callable[[Report], bool]) -> None:
        if self.driver is not None:
            self._expected.append((self.driver.stream.put_count, match))

    async def settle(self) -> None:
        """Wait until every input the actions so far must produce has been taken in.

        Bound it with ``asyncio.timeout``: an input the consumer never asks for never settles.
        """
        if self.driver is None:
            return
        stream = self.driver.stream
        while self._expected:
            after, match = self._expected[0]
            serial = await stream.wait_taken(max(after, self._last_serial), match)
            self._last_serial = serial
            self._expected.popleft()

    async def _settle_within(self, limit: float) -> None:
        try:
            async with asyncio.timeout(limit):
                await self.settle()
        except TimeoutError:
            pending = len(self._expected)
            self.forget()
            raise TimeoutError(
                f"the panel did not take in {pending} simulated input(s) within {limit:g} s"
            ) from None

    def _settled(self) -> Settled:
        return Settled(self)

    def forget(self) -> None:
        """Drop pending expectations (after a simulated fault that loses them)."""
        self._expected.clear()
        if self.driver is not None:
            self._last_serial = self.driver.stream.put_count
