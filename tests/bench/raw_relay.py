"""Same-run baselines for the link benchmarks: plain aiomqtt relays with no framing or storage."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import aiomqtt

from common.mqtt import NODELAY

_QUIET_ARGS = {"socket_options": NODELAY}


@contextlib.asynccontextmanager
async def relay(host: str, port: int, pairs: list[tuple[str, str]]) -> AsyncIterator[None]:
    """A client that republishes every message of each ``src`` topic to its ``dst`` (QoS 1)."""
    async with aiomqtt.Client(host, port, **_QUIET_ARGS) as client:  # type: ignore[arg-type]
        client.pending_calls_threshold = 10_000
        routes = dict(pairs)
        for src in routes:
            await client.subscribe(src, qos=1)

        async def forward() -> None:
            async for message in client.messages:
                await client.publish(routes[str(message.topic)], message.payload, qos=1)

        task = asyncio.create_task(forward())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def two_hop_latency(host: str, port: int, n: int) -> list[float]:
    """Milliseconds from publish to receipt through a relay (two broker hops), one at a time."""
    samples: list[float] = []
    async with (
        relay(host, port, [("bench/raw/in", "bench/raw/out")]),
        aiomqtt.Client(host, port, **_QUIET_ARGS) as sub,  # type: ignore[arg-type]
        aiomqtt.Client(host, port, **_QUIET_ARGS) as pub,  # type: ignore[arg-type]
    ):
        await sub.subscribe("bench/raw/out", qos=1)
        messages = sub.messages
        for i in range(n + 20):
            start = time.perf_counter()
            await pub.publish("bench/raw/in", str(i).encode(), qos=1)
            async for _ in messages:
                break
            if i >= 20:  # warm-up excluded
                samples.append((time.perf_counter() - start) * 1000)
    return samples


async def four_hop_rtt(host: str, port: int, n: int) -> list[float]:
    """Milliseconds for a request to go cloud -> relay -> responder -> relay -> cloud."""
    samples: list[float] = []
    async with (
        relay(host, port, [("bench/rtt/cmd", "bench/rtt/down"), ("bench/rtt/up", "bench/rtt/res")]),
        aiomqtt.Client(host, port, **_QUIET_ARGS) as responder,  # type: ignore[arg-type]
        aiomqtt.Client(host, port, **_QUIET_ARGS) as cloud,  # type: ignore[arg-type]
    ):
        await responder.subscribe("bench/rtt/down", qos=1)
        await cloud.subscribe("bench/rtt/res", qos=1)

        async def respond() -> None:
            async for message in responder.messages:
                await responder.publish("bench/rtt/up", message.payload, qos=1)

        task = asyncio.create_task(respond())
        try:
            for i in range(n + 20):
                start = time.perf_counter()
                await cloud.publish("bench/rtt/cmd", str(i).encode(), qos=1)
                async for _ in cloud.messages:
                    break
                if i >= 20:
                    samples.append((time.perf_counter() - start) * 1000)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return samples


async def relay_throughput(host: str, port: int, n: int) -> float:
    """Messages per second through a relay with the publisher keeping many in flight."""
    async with (
        relay(host, port, [("bench/tp/in", "bench/tp/out")]),
        aiomqtt.Client(host, port, **_QUIET_ARGS) as sub,  # type: ignore[arg-type]
        aiomqtt.Client(host, port, **_QUIET_ARGS) as pub,  # type: ignore[arg-type]
    ):
        pub.pending_calls_threshold = 10_000
        await sub.subscribe("bench/tp/out", qos=1)
        start = time.perf_counter()

        async def produce() -> None:
            window = asyncio.Semaphore(64)

            async def one(i: int) -> None:
                async with window:
                    await pub.publish("bench/tp/in", str(i).encode(), qos=1)

            await asyncio.gather(*(one(i) for i in range(n)))

        producer = asyncio.create_task(produce())
        got = 0
        async for _ in sub.messages:
            got += 1
            if got == n:
                break
        await producer
        return n / (time.perf_counter() - start)
