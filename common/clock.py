"""Clocks: the process's only source of time. Real for deployments, virtual for scenarios.

The pure core gets ``now_ms`` as an argument; the processes ask a ``Clock`` for
it and schedule timers through it, so a scenario can run an hour of simulated
time in well under a second.
"""

from __future__ import annotations

import asyncio
import ctypes
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Protocol


class TimerHandle(Protocol):
    """Something that can be cancelled."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """Two time lines: the wall clock (epoch ms), which can jump when it is corrected,
    and elapsed time (monotonic ms, from an arbitrary origin), which never jumps.

    ``call_at`` takes a wall-clock deadline, turned into a delay when it is set;
    ``call_at_mono`` takes a deadline on the elapsed line, which a wall-clock jump
    (NTP on a Pi without RTC, a hand-set date) does not move.
    """

    def now_ms(self) -> int: ...

    def mono_ms(self) -> int: ...

    def call_at(self, when_ms: int, callback: Callable[[], None]) -> TimerHandle: ...

    def call_at_mono(self, when_ms: int, callback: Callable[[], None]) -> TimerHandle: ...

    async def sleep(self, seconds: float) -> None: ...


_TIME_ERROR = 5
"""adjtimex(2) clock state: the kernel's clock is not synchronised."""


def system_clock_synchronised() -> bool | None:
    """Whether the kernel says its clock is synchronised (adjtimex); None if it cannot tell."""
    try:
        adjtimex = ctypes.CDLL(None, use_errno=True).adjtimex
    except (OSError, AttributeError):
        return None
    timex = ctypes.create_string_buffer(512)  # struct timex, modes 0: only read the state
    state = int(adjtimex(timex))
    return None if state < 0 else state != _TIME_ERROR


class RealClock:
    """Wall-clock time; timers on the running event loop."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def mono_ms(self) -> int:
        # the event loop's own clock (time.monotonic), so call_at_mono is loop.call_at
        return time.monotonic_ns() // 1_000_000

    def call_at(self, when_ms: int, callback: Callable[[], None]) -> TimerHandle:
        delay = max(0.0, (when_ms - self.now_ms()) / 1000)
        return asyncio.get_running_loop().call_later(delay, callback)

    def call_at_mono(self, when_ms: int, callback: Callable[[], None]) -> TimerHandle:
        return asyncio.get_running_loop().call_at(when_ms / 1000, callback)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class _VirtualTimer:
    __slots__ = ("callback", "cancelled", "when_ms")

    def __init__(self, when_ms: int, callback: Callable[[], None]) -> None:
        self.when_ms = when_ms
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualClock:
    """Simulated time that moves only when ``advance``/``advance_to`` is awaited.

    Timers fire in deadline order (ties in the order they were set); after each
    one the optional ``settle`` coroutine runs so that whatever the timer set
    off (frames, MQTT hops) is finished before time moves on.

    Elapsed time starts equal to the wall clock; ``jump_wall`` moves the wall clock
    alone (a clock corrected while running), as a test of wrong clocks needs.
    """

    def __init__(self, start_ms: int) -> None:
        self._now = start_ms  # the elapsed (monotonic) line; timers live on it
        self._wall_offset = 0  # wall clock minus elapsed time
        self._heap: list[tuple[int, int, _VirtualTimer]] = []
        self._order = itertools.count()

    def now_ms(self) -> int:
        return self._now + self._wall_offset

    def mono_ms(self) -> int:
        return self._now

    def jump_wall(self, delta_ms: int) -> None:
        """Move the wall clock by ``delta_ms`` (either way); elapsed time does not move."""
        self._wall_offset += delta_ms

    def call_at(self, when_ms: int, callback: Callable[[], None]) -> TimerHandle:
        return self.call_at_mono(when_ms - self._wall_offset, callback)

    def call_at_mono(self, when_ms: int, callback: Callable[[], None]) -> TimerHandle:
        timer = _VirtualTimer(max(when_ms, self._now), callback)
        heapq.heappush(self._heap, (timer.when_ms, next(self._order), timer))
        return timer

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        handle = self.call_at(self._now + round(seconds * 1000), wake)
        try:
            await fut
        finally:
            handle.cancel()

    def next_deadline(self) -> int | None:
        """The deadline of the earliest live timer, if any."""
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    async def advance_to(
        self, when_ms: int, settle: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """Move time to ``when_ms``, firing every timer due on the way, in order."""
        while True:
            deadline = self.next_deadline()
            if deadline is None or deadline > when_ms:
                break
            _, _, timer = heapq.heappop(self._heap)
            self._now = max(self._now, deadline)
            timer.callback()
            # Let woken coroutines run before the next timer.
            await asyncio.sleep(0)
            if settle is not None:
                await settle()
        self._now = max(self._now, when_ms)
        await asyncio.sleep(0)
        if settle is not None:
            await settle()

    async def advance(
        self, seconds: float, settle: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """Move time forward by ``seconds``."""
        await self.advance_to(self._now + round(seconds * 1000), settle)
