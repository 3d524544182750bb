"""The pieces every driver shares: backoff, the input stream, lost/back bookkeeping."""

from __future__ import annotations

import asyncio
import random

import pytest

from drivers.base import Backoff, Driver, InputStream
from panel.inputs import DeviceBack, DeviceLost, KeyPressed


def test_backoff_doubles_by_a_real_power_and_caps() -> None:
    backoff = Backoff(base=0.25, cap=10.0, rng=random.Random(1))
    assert [backoff.ceiling(n) for n in range(7)] == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 10.0]
    # 2 XOR 3 would be 1: the power is a power.
    assert backoff.ceiling(3) == 0.25 * 8


def test_backoff_jitter_stays_within_half_and_whole_ceiling() -> None:
    backoff = Backoff(base=1.0, cap=30.0, rng=random.Random(7))
    delays = [backoff.delay(4) for _ in range(500)]
    assert all(8.0 <= d <= 16.0 for d in delays)
    assert len({round(d, 6) for d in delays}) > 400  # jittered, not constant


def test_backoff_survives_absurd_attempt_counts() -> None:
    backoff = Backoff(base=0.5, cap=20.0)
    assert backoff.ceiling(10_000) == 20.0
    assert backoff.ceiling(-3) == 0.5
    with pytest.raises(ValueError):
        Backoff(base=0, cap=1)


async def test_stream_counts_an_input_taken_in_when_the_consumer_asks_again() -> None:
    stream = InputStream()
    stream.bind(asyncio.get_running_loop())
    stream.put(KeyPressed("1"))
    stream.put(KeyPressed("2"))
    assert await stream.get() == KeyPressed("1")
    assert stream.taken_count == 0  # handed out, not yet processed
    assert await stream.get() == KeyPressed("2")
    assert stream.taken_count == 1
    waiter = asyncio.create_task(stream.wait_taken(0, lambda i: i == KeyPressed("2")))
    await asyncio.sleep(0)
    assert not waiter.done()
    getter = asyncio.create_task(stream.get())  # the consumer comes back for more
    assert await waiter == 2
    stream.close()
    with pytest.raises(StopAsyncIteration):
        await getter


async def test_stream_raises_the_drivers_error_instead_of_ending_silently() -> None:
    stream = InputStream()
    stream.bind(asyncio.get_running_loop())
    stream.close(RuntimeError("reader thread died"))
    with pytest.raises(RuntimeError, match="reader thread died"):
        await stream.get()


async def test_stream_accepts_inputs_from_another_thread() -> None:
    stream = InputStream()
    stream.bind(asyncio.get_running_loop())
    await asyncio.to_thread(stream.put_threadsafe, [KeyPressed("5"), KeyPressed("6")])
    assert [await stream.get(), await stream.get()] == [KeyPressed("5"), KeyPressed("6")]


class _Flaky(Driver):
    async def _start(self) -> None:
        self._lost("unplugged")


async def test_one_lost_per_outage_and_back_only_after_lost() -> None:
    async with _Flaky("thing") as driver:
        driver._lost("still unplugged")
        driver._back()
        driver._back()
        driver._lost("again")
        seen = [await anext(driver) for _ in range(3)]
    assert seen == [
        DeviceLost("thing", "unplugged"),
        DeviceBack("thing"),
        DeviceLost("thing", "again"),
    ]
    assert [i async for i in driver] == []  # closed: the stream ends


async def test_an_unread_stream_keeps_only_the_newest_inputs() -> None:
    stream = InputStream()
    stream.bind(asyncio.get_running_loop())
    for i in range(InputStream.LIMIT + 5):
        stream.put(KeyPressed(str(i % 10)))
    assert stream.dropped == 5
    assert await stream.get() == KeyPressed("5")
