"""The hub's DC-09 transmitter against a pysiaalarm receiver over loopback.

arc_event_ms — an event committed to the hub store -> acknowledged by pysiaalarm
(the transmitter's ACK checks done and the cursor committed), p50/p99;
baseline: a minimal client writing one ready-made DC-09 frame and reading the
ACK, over the same loopback to the same receiver.
arc_backlog_drain_s — 10,000 events stored while the receiver was down, all
acknowledged after it returns; baseline: the minimal client sending 10,000
frames one ACK at a time.
Both with AES-128, as a centre would ask; the plain figures are extras.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from hub.arc import dc09
from hub.arc.config import ArcConfig, Receiver
from hub.arc.transmitter import ArcTransmitter, wall_clock_ms
from hub.counters import Counters
from hub.store import HubStore
from protocol.messages import Event, EventType, Method, Mode
from tests.arc_receiver import ArcReceiver
from tests.bench.harness import Metric, percentiles

EVENTS = 500
BACKLOG = 10_000
KEY = "0123456789ABCDEF"


def _event(seq: int) -> Event:
    return Event(seq, seq, EventType.ALARM, Method.SYSTEM, "1131", "BA", Mode.TOTAL, None, "z1")


async def _raw_client(port: int, n: int, key: bytes | None) -> list[float]:
    """Send ``n`` frames, one at a time, each after the previous ACK; seconds per exchange."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    splitter = dc09.FrameSplitter()
    samples: list[float] = []
    try:
        for i in range(n):
            frame = dc09.build(
                "SIA-DCS", i % 9999 + 1, "AAA1", "#AAA1|Nri1/BA001",
                timestamp_ms=wall_clock_ms(), key=key,
            )  # fmt: skip
            start = time.perf_counter()
            writer.write(frame)
            while not (got := splitter.feed(await reader.read(1024))):
                pass
            samples.append(time.perf_counter() - start)
            assert dc09.parse(got[0], key).id == "ACK"
    finally:
        writer.close()
        await writer.wait_closed()
    return samples


class _Hub:
    def __init__(self, path: Path, port: int, key: bytes | None) -> None:
        self.store = HubStore(path)
        config = ArcConfig(
            receivers=(Receiver("127.0.0.1", port),), account="AAA1", key=key,
            zones={"z1": 1}, retry=0.05, ack_timeout=5, supervision=3600,
        )  # fmt: skip
        self.tx = ArcTransmitter(config, path, ["p1"], Counters(wall_clock_ms), lambda k, d: None)
        self.acked = asyncio.Event()
        self.tx.listeners.append(self.acked.set)
        self.seq = 0

    def add(self, n: int) -> None:
        with self.store.transaction():
            for _ in range(n):
                self.seq += 1
                self.store.add_event("demo", "p1", _event(self.seq), 0)
        self.tx.wake()


async def _event_latency(
    workdir: Path, key: bytes | None
) -> tuple[list[float], list[float], list[float]]:
    receiver = await ArcReceiver(key=None if key is None else key.decode()).start()
    hub = _Hub(workdir / f"latency-{bool(key)}.db", receiver.port, key)
    await hub.tx.start()
    samples: list[float] = []
    after_commit: list[float] = []
    try:
        for _ in range(EVENTS + 20):
            hub.acked.clear()
            start = time.perf_counter()
            hub.add(1)  # the relay's commit of the event (fsync), as in the hub
            committed = time.perf_counter()
            await asyncio.wait_for(hub.acked.wait(), 10)
            samples.append(time.perf_counter() - start)
            after_commit.append(time.perf_counter() - committed)
        baseline = await _raw_client(receiver.port, EVENTS + 20, key)
    finally:
        await hub.tx.stop()
        hub.store.close()
        await receiver.stop()
    return tuple([s * 1000 for s in x[20:]] for x in (samples, baseline, after_commit))  # type: ignore[return-value]


async def _drain(workdir: Path, key: bytes | None) -> tuple[float, float]:
    receiver = ArcReceiver(key=None if key is None else key.decode())
    hub = _Hub(workdir / f"drain-{bool(key)}.db", receiver.port, key)
    await hub.tx.start()
    try:
        hub.add(BACKLOG)
        async with asyncio.timeout(30):
            while not hub.tx.lost:  # the centre is down: the events wait in the store
                await asyncio.sleep(0.05)
        await receiver.start()
        start = time.perf_counter()
        async with asyncio.timeout(600):
            while hub.tx.delivered < BACKLOG:
                hub.acked.clear()
                await hub.acked.wait()
        drained = time.perf_counter() - start
        assert len(receiver.events) >= BACKLOG
        start = time.perf_counter()
        await _raw_client(receiver.port, BACKLOG, key)
        baseline = time.perf_counter() - start
    finally:
        await hub.tx.stop()
        hub.store.close()
        await receiver.stop()
    return drained, baseline


async def run() -> list[Metric]:
    workdir = Path(tempfile.mkdtemp(prefix="centinela-bench-arc-"))
    key = KEY.encode()
    lat, base, sent = _p(await _event_latency(workdir, key))
    plain, plain_base, _ = _p(await _event_latency(workdir, None))
    drain, drain_base = await _drain(workdir, key)
    return [
        Metric(
            "arc_event_ms", lat[0], "ms", base[0], "p99 <= 50 ms",
            {"p99": lat[1], "baseline_p99": base[1], "after_commit_p50": sent[0],
             "after_commit_p99": sent[1], "plain_p50": plain[0], "plain_p99": plain[1],
             "plain_baseline_p50": plain_base[0]},
            met=lat[1] <= 50,
        ),
        Metric(
            "arc_backlog_drain_s", drain, "s", drain_base, f"<= 30 s for {BACKLOG} events",
            {"events_per_s": BACKLOG / drain},
            met=drain <= 30,
        ),
    ]  # fmt: skip


def _p(
    runs: tuple[list[float], list[float], list[float]],
) -> tuple[tuple[float, float], tuple[float, float], tuple[float, float]]:
    return percentiles(runs[0]), percentiles(runs[1]), percentiles(runs[2])
