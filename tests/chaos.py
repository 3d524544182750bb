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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt

from protocol.keys import generate_key
from sim.broker import BrokerSpec, Mosquitto
from tests.procs import Proc, PtyKeypad, panel_last_seq, write_configs

CLOUD_ID = "chaos-cloud"
EVENTS = "centinela/chaos/event"
HUB_AVAILABILITY = "centinela/chaos/hub/availability"
# A wrong code: the chaos keys never produce ``code_rejected``, so its event marks the moment
# the panel has handled every key typed before it.
MARKER_KEYS = "*9999D"
MARKER_TYPE = "code_rejected"
WINDOW = 200
"""Events typed ahead of what the panel has recorded."""
STALL_S = 120


@dataclass
class CloudLog:
    """What the cloud subscriber received."""

    first_seen: list[int] = field(default_factory=list)  # seqs in arrival order, first time only
    seen: set[int] = field(default_factory=set)
    duplicates: int = 0
    received: int = 0
    markers: int = 0  # marker events (MARKER_TYPE) received
    hub_offline: int = 0  # live (not retained) "offline" messages from the hub

    def add(self, seq: int, kind: str = "") -> None:
        self.received += 1
        if kind == MARKER_TYPE:
            self.markers += 1
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
                await client.subscribe([(EVENTS, 1), (HUB_AVAILABILITY, 1)])
                async for message in client.messages:
                    if message.topic.matches(HUB_AVAILABILITY):
                        if message.payload == b"offline" and not message.retain:
                            log.hub_offline += 1
                        continue
                    event = json.loads(message.payload)  # type: ignore[arg-type]
                    log.add(int(event["seq"]), str(event.get("type")))
        except aiomqtt.MqttError:
            await asyncio.sleep(0.1)


async def _until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll ``condition`` until it holds; TimeoutError naming ``what`` after ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            while not condition():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise TimeoutError(f"not within {seconds} s: {what}") from None


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
        await c.subscribe([(EVENTS, 1), (HUB_AVAILABILITY, 1)])
    cloud = asyncio.create_task(_cloud(broker, log, stop))
    hub.start()
    panel.start()
    try:
        await kp.opened()
        plan = [kind for kind in ("broker", "hub", "panel") for _ in range(faults)]
        rng.shuffle(plan)
        # Faults spread over the run: each one when the cloud count passes its mark.
        marks = sorted(rng.uniform(0.1, 0.85) * events for _ in plan)
        typed = 0
        typed_events = 0  # events the typed keys make, as counted by the panel's seq
        panel_db = workdir / "p1.db"
        progress = (0, time.monotonic())
        while True:
            recorded = panel_last_seq(panel_db)
            if recorded >= events:
                break
            if recorded != progress[0]:
                progress = (recorded, time.monotonic())
            assert time.monotonic() - progress[1] < STALL_S, f"no event for {STALL_S} s"
            if typed_events - recorded > WINDOW:
                # Flow control: the panel takes keys in faster than it handles them; typing
                # far ahead would only grow its backlog, not the chaos.
                kp.drain()
                await asyncio.sleep(0.02)
                continue
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
                    kp.drain()
                    await asyncio.sleep(rng.uniform(0.1, 1.0))
                    panel.start()
                    await kp.opened()
                    typed_events = recorded  # keys the killed panel held are gone with it
            # A cycle: arm, disarm; now and then an alarm burst (panic, disarm, panic, disarm).
            if rng.random() < 0.1:
                kp.type("*P*1234D*P*1234D")  # panic, disarmed, panic, disarmed
                typed_events += 4
            else:
                kp.type("*1234A*1234D")  # arming, disarmed
                typed_events += 2
            typed += 1
            if typed % 20 == 0:
                kp.drain()
                await asyncio.sleep(0.05)
        print(f"  {events} events recorded; waiting for delivery", file=sys.stderr)
        # The marker comes after every key typed: once the cloud has it, the panel has
        # handled them all. (Typed again if a panel restart lost it: the panel may still
        # have been starting after the last fault.)
        deadline = time.monotonic() + 120
        while not log.markers:
            assert time.monotonic() < deadline, "the marker event never reached the cloud"
            kp.drain()
            kp.type(MARKER_KEYS)
            with contextlib.suppress(TimeoutError):
                await _until(lambda: log.markers > 0, 10, "the marker event")
        last = panel_last_seq(panel_db)
        await _until(lambda: bool(log.seen) and max(log.seen) >= last, 120, f"seq {last} delivered")
        offline = log.hub_offline
        panel.stop()
        hub.stop()
        # The hub says "offline" (or its will does) on the connection its events use, after
        # them: once it is here, anything late — a duplicate, a straggler — is here too.
        await _until(lambda: log.hub_offline > offline, 60, "the hub's offline after its events")
        last = panel_last_seq(panel_db)  # a clean stop records nothing new
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
