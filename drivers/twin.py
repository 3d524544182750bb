"""Base of the simulated devices: what each action must produce, so ``settle()`` can wait for it."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from panel.inputs import Input

if TYPE_CHECKING:
    from drivers.base import Driver


class Twin:
    """A simulated device attached to the real driver that reads it.

    Every action (a key typed, a tag presented, a zone opened) records the input
    it must make the driver yield; ``await twin.settle()`` returns once the
    consumer of the driver has taken all of them in (asked for the next input).
    Actions are called from the event-loop thread.
    """

    def __init__(self) -> None:
        self.driver: Driver | None = None
        self._expected: deque[tuple[int, Callable[[Input], bool]]] = deque()
        self._last_serial = 0

    def attach(self, driver: Driver) -> None:
        """Bind to the driver that reads this twin."""
        self.driver = driver

    def _expect(self, match: Callable[[Input], bool]) -> None:
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

    def forget(self) -> None:
        """Drop pending expectations (after a simulated fault that loses them)."""
        self._expected.clear()
        if self.driver is not None:
            self._last_serial = self.driver.stream.put_count
