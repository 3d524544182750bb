"""``make chaos``: nothing lost, nothing repeated, while everything fails.

Panel, hub and mosquitto run as separate processes. A serial keypad (a pty)
makes the panel produce events — arm/disarm cycles and alarm bursts — while the
harness restarts the broker, SIGKILLs the hub and SIGKILLs the panel at random
moments. At the end the cloud side must hold every event the panel recorded,
exactly once after the hub's dedup, in seq order, with no gaps, and the hub's
store must agree.

Usage: ``python -m tests.chaos [--events N] [--faults K] [--seed S]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt

from protocol.keys import generate_key
from sim.broker import BrokerSpec, Mosquitto
from tests.procs import Proc, PtyKeypad, write_configs

CLOUD_ID = "chaos-cloud"


@dataclass
class CloudLog:
    """What the cloud subscriber received."""

    first_seen: list[int] = field(default_factory=list)  # seqs in arrival order, first time only
    seen: set[int] = field(default_factory=set)
    duplicates: int = 0
    received: int = 0
    sentinel: int | None = None  # seq of the wrong code typed after the last cycle

    def add(self, seq: int, event_type: str = "") -> None:
        self.received += 1
        if event_type == "code_rejected":
            self.sentinel = seq
        if seq in self.seen:
            self.duplicates += 1
            return
        self.seen.add(seq)
        self.first_seen.append(seq)


@dataclass
class Report:
    """The outcome of one chaos run."""

    panel_last_seq: int
    hub_count: int
    hub_min: int | None
    hub_max: int | None
    cloud: CloudLog
    faults: dict[str, int]
    seconds: float
    problems: list[str]

    def print(self) -> None:
        c = self.cloud
        print(f"chaos: {self.seconds:.1f} s, faults {self.faults}")
        print(f"  panel recorded      {self.panel_last_seq} events (seq 1..{self.panel_last_seq})")
        print(f"  hub stored          {self.hub_count} (seq {self.hub_min}..{self.hub_max})")
        print(
            f"  cloud received      {c.received} messages, {len(c.seen)} distinct events,"
            f" {c.duplicates} redelivered duplicates"
        )
        if self.problems:
            for problem in self.problems:
                print(f"  FAIL: {problem}")
        else:
            print("  OK: every event exactly once after dedup, in seq order, no gaps; hub agrees")


async def _cloud(broker: Mosquitto, log: CloudLog, stop: asyncio.Event) -> None:
    """A persistent-session cloud subscriber that rides out broker restarts."""
    while not stop.is_set():
        try:
            async with aiomqtt.Client(
                broker.host, broker.port, identifier=CLOUD_ID, clean_session=False, timeout=5
            ) as client:
                await client.subscribe("centinela/chaos/event", qos=1)
                async for message in client.messages:
                    event = json.loads(message.payload)  # type: ignore[arg-type]
                    log.add(int(event["seq"]), str(event.get("type")))
        except aiomqtt.MqttError:
            await asyncio.sleep(0.1)


def _panel_last_seq(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        try:
            row = conn.execute("SELECT next_seq FROM state WHERE id = 1").fetchone()
        except sqlite3.OperationalError:
            return 0  # the panel is still creating its schema
    return int(row[0]) - 1 if row else 0


def _hub_events(db: Path) -> list[int]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute("SELECT seq FROM events WHERE panel = 'p1' ORDER BY seq").fetchall()
    return [int(r[0]) for r in rows]


async def run(events: int, faults: int, seed: int, workdir: Path | None = None) -> Report:
    """One chaos run; ``faults`` of each kind (broker restart, hub kill, panel kill)."""
    rng = random.Random(seed)
    workdir = workdir or Path(tempfile.mkdtemp(prefix="centinela-chaos-"))
    broker = Mosquitto(BrokerSpec(persistence=True)).start()
    kp = PtyKeypad()
    key = generate_key()
    panel_toml, hub_toml = write_configs(
        workdir, broker.url, key, kp.url, site="chaos", exit_delay=600, max_attempts=50
    )
    hub = Proc(["hub", "--config", str(hub_toml)], workdir / "hub.log")
    panel = Proc(["panel", "--config", str(panel_toml)], workdir / "panel.log")
    log = CloudLog()
    stop = asyncio.Event()
    done = {"broker": 0, "hub": 0, "panel": 0}
    started = time.monotonic()
    # Register the persistent session before anything is published.
    async with aiomqtt.Client(
        broker.host, broker.port, identifier=CLOUD_ID, clean_session=False
    ) as c:
        await c.subscribe("centinela/chaos/event", qos=1)
    cloud = asyncio.create_task(_cloud(broker, log, stop))
    hub.start()
    panel.start()
    try:
        plan = [kind for kind in ("broker", "hub", "panel") for _ in range(faults)]
        rng.shuffle(plan)
        # Faults spread over the run: each one when the cloud count passes its mark.
        marks = sorted(rng.uniform(0.1, 0.85) * events for _ in plan)
        typed = 0
        panel_db = workdir / "p1.db"
        while True:
            recorded = _panel_last_seq(panel_db) if panel_db.exists() else 0
            if recorded >= events:
                break
            if plan and recorded >= marks[0]:
                marks.pop(0)
                kind = plan.pop(0)
                done[kind] += 1
                print(f"  fault: {kind} at panel seq {recorded}", file=sys.stderr)
                if kind == "broker":
                    broker.stop()
                    await asyncio.sleep(rng.uniform(0.2, 2.0))
                    broker.start()
                elif kind == "hub":
                    hub.kill()
                    await asyncio.sleep(rng.uniform(0.1, 2.0))
                    hub.start()
                else:
                    panel.kill()
                    await asyncio.sleep(rng.uniform(0.1, 1.0))
                    panel.start()
            # A cycle: arm, disarm; now and then an alarm burst (panic, disarm, panic, disarm).
            if rng.random() < 0.1:
                kp.type("*P*1234D*P*1234D")
            else:
                kp.type("*1234A*1234D")
            typed += 1
            if typed % 20 == 0:
                kp.drain()
                await asyncio.sleep(0.05)
        # Keys typed may still wait in the line: a wrong code typed last is the marker.
        # Keys are taken in order and events delivered in seq order, so once the cloud
        # has its code_rejected event, every event recorded before it was sent too.
        kp.type("*9999A")
        print(f"  {events} events recorded; waiting for delivery", file=sys.stderr)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (
            log.sentinel is None or not log.seen.issuperset(range(1, log.sentinel + 1))
        ):
            await asyncio.sleep(0.2)
            kp.drain()
        panel.stop()
        hub.stop()
        last = _panel_last_seq(panel_db)
    finally:
        stop.set()
        cloud.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await cloud
        panel.stop()
        hub.stop()
        broker.close()
        kp.close()
    hub_seqs = _hub_events(workdir / "hub.db")
    problems = []
    if log.first_seen != list(range(1, last + 1)):
        missing = sorted(set(range(1, last + 1)) - log.seen)
        out_of_order = sum(1 for a, b in itertools.pairwise(log.first_seen) if b < a)
        problems.append(
            f"cloud: {len(missing)} missing (first {missing[:10]}), {out_of_order} out of order"
        )
    if hub_seqs != list(range(1, last + 1)):
        problems.append(f"hub store holds {len(hub_seqs)} events, not 1..{last} exactly")
    if last < events:
        problems.append(f"the panel recorded only {last} events")
    return Report(
        last,
        len(hub_seqs),
        hub_seqs[0] if hub_seqs else None,
        hub_seqs[-1] if hub_seqs else None,
        log,
        done,
        time.monotonic() - started,
        problems,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--faults", type=int, default=3, help="faults of each kind")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args(argv)
    print(f"chaos: {args.events} events, {args.faults} faults of each kind, seed {args.seed}")
    report = asyncio.run(run(args.events, args.faults, args.seed))
    report.print()
    return 1 if report.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
