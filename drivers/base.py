"""What every driver shares: the input stream, lost/back bookkeeping, backoff, the edge thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Self

from common.backoff import Backoff as Backoff  # the drivers' retry policy
from drivers.reports import DeviceBack, DeviceLost, Report

_LOGGER = logging.getLogger(__name__)


def reason_of(exc: BaseException) -> str:
    """A short one-line reason for a DeviceLost."""
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:120]


class InputStream:
    """The queue between a driver and its consumer, with the consumer's progress tracked.

    An input counts as *taken in* once the consumer, having received it, asks for
    the next one: that is how a simulated twin knows the panel has processed it.
    """

    LIMIT = 1024
    """Inputs kept for a consumer that does not read; the oldest go first beyond this."""

    def __init__(self) -> None:
        self.dropped = 0
        self._items: deque[tuple[int, Report]] = deque()
        self._recent: deque[tuple[int, Report]] = deque(maxlen=512)
        self._getter: asyncio.Future[None] | None = None
        self._watchers: list[asyncio.Future[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._error: BaseException | None = None
        self.put_count = 0
        self.handed_count = 0
        self.taken_count = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach to the loop that consumes the stream (done by ``async with driver``)."""
        self._loop = loop
        self._closed = False
        self._error = None

    @property
    def closed(self) -> bool:
        """True once the driver has stopped."""
        return self._closed

    def put(self, item: Report) -> None:
        """Queue one input (event-loop thread only)."""
        if self._closed:
            return
        self.put_count += 1
        if len(self._items) >= self.LIMIT:
            self._items.popleft()
            self.dropped += 1
            if self.dropped == 1:
                _LOGGER.warning("nobody reads this driver's inputs: dropping the oldest")
        self._items.append((self.put_count, item))
        self._recent.append((self.put_count, item))
        if self._getter is not None and not self._getter.done():
            self._getter.set_result(None)
        self._notify()

    def put_threadsafe(self, items: Iterable[Report]) -> None:
        """Queue inputs from a thread at the edge."""
        batch = list(items)
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        # The loop may close between the check and the call: the consumer is then gone.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._put_many, batch)

    def _put_many(self, items: list[Report]) -> None:
        for item in items:
            self.put(item)

    def close(self, error: BaseException | None = None) -> None:
        """End the stream: the consumer gets StopAsyncIteration, or ``error`` if given."""
        self._closed = True
        self._error = error
        if self._getter is not None and not self._getter.done():
            self._getter.set_result(None)
        self._notify()

    async def get(self) -> Report:
        """The next input; raises StopAsyncIteration once the stream is closed and empty."""
        # Coming back for more means everything handed out so far has been taken in.
        self.taken_count = self.handed_count
        self._notify()
        while not self._items:
            if self._closed:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            self._getter = asyncio.get_running_loop().create_future()
            try:
                await self._getter
            finally:
                self._getter = None
        serial, item = self._items.popleft()
        self.handed_count = serial
        return item

    def _notify(self) -> None:
        watchers, self._watchers = self._watchers, []
        for fut in watchers:
            if not fut.done():
                fut.set_result(None)

    async def _changed(self) -> None:
        fut = asyncio.get_running_loop().create_future()
        self._watchers.append(fut)
        await fut

    def find(self, after: int, match: Callable[[Report], bool]) -> int | None:
        """Serial number of the first recent input after ``after`` that matches, if any."""
        for serial, item in self._recent:
            if serial > after and match(item):
                return serial
        return None

    async def wait_taken(self, after: int, match: Callable[[Report], bool]) -> int:
        """Wait until an input put after serial ``after`` that matches has been taken in."""
        while True:
            serial = self.find(after, match)
            if serial is not None and self.taken_count >= serial:
                return serial
            if self._closed:
                raise RuntimeError("the driver stopped before the input was taken in")
            await self._changed()


class Driver:
    """Base of every driver: ``async with``, ``async for``, and lost/back bookkeeping."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.stream = InputStream()
        self.connected = False
        self.twin: Any = None
        self._lost_reported = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = False
        self._connected_event = asyncio.Event()

    async def __aenter__(self) -> Self:
        self._loop = asyncio.get_running_loop()
        self.stream.bind(self._loop)
        self._running = True
        try:
            await self._start()
        except BaseException:
            self._running = False
            self.stream.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._running = False
        try:
            await self._stop()
        finally:
            self.stream.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Report:
        return await self.stream.get()

    async def _start(self) -> None:
        """Open the device and start whatever watches it."""

    async def _stop(self) -> None:
        """Stop everything ``_start`` started."""

    def _lost(self, reason: str) -> None:
        """The device stopped answering: one DeviceLost per outage (event-loop thread)."""
        self.connected = False
        self._connected_event.clear()
        if not self._lost_reported and self._running:
            self._lost_reported = True
            _LOGGER.warning("%s lost: %s", self.device, reason)
            self.stream.put(DeviceLost(self.device, reason))

    def _back(self) -> None:
        """The device answers (again): DeviceBack if it had been reported lost."""
        self.connected = True
        self._connected_event.set()
        if self._lost_reported and self._running:
            self._lost_reported = False
            _LOGGER.info("%s back", self.device)
            self.stream.put(DeviceBack(self.device))

    async def wait_connected(self) -> None:
        """Wait until the device is open and answering (for simulators and tests)."""
        await self._connected_event.wait()


class ThreadedDriver(Driver):
    """A driver whose blocking library runs in one thread at the edge."""

    def __init__(self, device: str) -> None:
        super().__init__(device)
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_done = asyncio.Event()

    async def _start(self) -> None:
        self._stop_event.clear()
        self._thread_done.clear()
        self._thread = threading.Thread(
            target=self._thread_entry, name=f"centinela-{self.device}", daemon=True
        )
        self._thread.start()

    def _thread_entry(self) -> None:
        try:
            self._thread_main()
        except Exception as exc:
            _LOGGER.exception("%s: the driver thread failed", self.device)
            self._call_in_loop(self.stream.close, exc)
        finally:
            self._call_in_loop(self._thread_done.set)

    async def _stop(self) -> None:
        self._stop_event.set()
        self._interrupt()
        thread, self._thread = self._thread, None
        if thread is None:
            return
        try:
            async with asyncio.timeout(10):
                await self._thread_done.wait()
        except TimeoutError:
            # A library call that never returns (a wedged USB transfer): the thread is a
            # daemon, so it cannot keep the process alive; say so and go on stopping.
            _LOGGER.warning("%s: the driver thread did not stop within 10 s", self.device)
            return
        thread.join()

    def _interrupt(self) -> None:
        """Wake the edge thread out of a blocking call (called after the stop flag is set)."""

    def _thread_main(self) -> None:
        raise NotImplementedError

    def _emit(self, *items: Report) -> None:
        """Hand inputs to the loop (edge thread)."""
        self.stream.put_threadsafe(items)

    def _emit_lost(self, reason: str) -> None:
        self._call_in_loop(self._lost, reason)

    def _emit_back(self) -> None:
        self._call_in_loop(self._back)

    def _call_in_loop(self, func: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(func, *args)

    def _sleep(self, seconds: float) -> bool:
        """Sleep in the edge thread; False if the driver is stopping."""
        return not self._stop_event.wait(seconds)
