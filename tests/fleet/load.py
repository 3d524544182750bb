"""The background fleet: one MQTT client speaking for many hubs (sites are topics).

    python -m tests.fleet.load HOST PORT --sites N [--quiet-sites K] [--speed X] [--seconds S]

First every site's retained state and availability (what a broker holds for each hub),
then "burst done" on stdout; once a line comes on stdin (the cloud side has caught up),
the daily traffic of ``tests.fleet.sites.RATES`` for
every site, ``--speed`` times faster than real, for ``--seconds``; then one JSON line
with what was sent. Sites below ``--quiet-sites`` get telemetry and state but no events
(their events come from the probe, so that each one's latency is known).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
import time
from collections import Counter

import aiomqtt

from tests.fleet import sites as fleet

TICK_S = 0.1


class Fleet:
    def __init__(self, client: aiomqtt.Client, sites: int, quiet: int, seed: int = 7) -> None:
        self.client, self.sites, self.quiet = client, sites, quiet
        self.rng = random.Random(seed)
        self.seq: dict[int, int] = {}
        self.armed: set[int] = set()
        self.sent: Counter[str] = Counter()
        self.jpeg = fleet.jpeg()
        self.next_reading = 0
        self.photos = 0

    async def send(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        await self.client.publish(topic, payload, qos=1, retain=retain)
        self.sent[topic.rsplit("/", 2)[-1] if "/photo/" not in topic else "photo"] += 1

    def _next_seq(self, site: int) -> int:
        self.seq[site] = self.seq.get(site, 0) + 1
        return self.seq[site]

    async def burst(self) -> None:
        now = time.time()
        for start in range(0, self.sites, 500):
            await asyncio.gather(
                *(
                    self.send(f"centinela/s{i}/p1/{what}", body, retain=True)
                    for i in range(start, min(start + 500, self.sites))
                    for what, body in (
                        ("state", fleet.state("disarmed", now)),
                        ("availability", b"online"),
                    )
                )
            )

    def _event_site(self) -> int:
        return self.rng.randrange(self.quiet, self.sites)

    async def one_event(self, t: float) -> None:
        site = self._event_site()
        actions = fleet.RATES.actions()
        kind = self.rng.choices(list(actions), weights=list(actions.values()))[0]
        base = f"centinela/s{site}"
        if kind == "arm" and site in self.armed:
            kind = "disarm"
        elif kind == "disarm" and site not in self.armed:
            kind = "arm"
        if kind == "arm":
            self.armed.add(site)
            who = {"user": "alice", "method": "tag", "tag": "04A1B2C3D4E5F6"}
            for word, event in (("arming", "arming"), ("armed_total", "armed")):
                body = fleet.event(site, self._next_seq(site), event, t, mode="total", **who)
                await self.send(f"{base}/event", body)
                await self.send(f"{base}/p1/state", fleet.state(word, t), retain=True)
        elif kind == "disarm":
            self.armed.discard(site)
            body = fleet.event(
                site, self._next_seq(site), "disarmed", t, user="alice", method="keypad"
            )
            await self.send(f"{base}/event", body)
            await self.send(f"{base}/p1/state", fleet.state("disarmed", t), retain=True)
        elif kind == "code_rejected":
            body = fleet.event(site, self._next_seq(site), "code_rejected", t, method="keypad")
            await self.send(f"{base}/event", body)
        elif kind == "alarm":
            body = fleet.event(site, self._next_seq(site), "alarm", t, zone="hall", method="system")
            await self.send(f"{base}/event", body)
            await self.send(f"{base}/p1/state", fleet.state("triggered", t), retain=True)
        else:
            self.photos += 1
            photo = f"ph{self.photos}"
            asked = {"zone": "hall", "user": "alice", "method": "app", "photo": photo}
            seq = self._next_seq(site)
            await self.send(f"{base}/event", fleet.event(site, seq, "photo_requested", t, **asked))
            await self.send(f"{base}/p1/photo/{photo}", self.jpeg)
            ready = {"zone": "hall", "photo": photo, "method": "app"}
            seq = self._next_seq(site)
            await self.send(f"{base}/event", fleet.event(site, seq, "photo_ready", t, **ready))

    async def reading(self, t: float) -> None:
        site = self.next_reading
        self.next_reading = (site + 1) % self.sites
        await self.send(f"centinela/s{site}/p1/telemetry", fleet.telemetry(t, site))

    async def run(self, speed: float, seconds: float) -> None:
        scale = self.sites / 86_400 * speed
        due = {"event": 0.0, "telemetry": 0.0}
        rate = {
            "event": sum(fleet.RATES.actions().values())
            * (self.sites - self.quiet)
            / 86_400
            * speed,
            "telemetry": fleet.RATES.per_day()["telemetry"] * scale,
        }
        end = time.monotonic() + seconds
        tick_at = time.monotonic()
        while (now := time.monotonic()) < end:
            tasks = []
            for kind in due:
                due[kind] += rate[kind] * TICK_S
                while due[kind] >= 1:
                    due[kind] -= 1
                    act = self.one_event if kind == "event" else self.reading
                    tasks.append(act(time.time()))
            await asyncio.gather(*tasks)
            tick_at += TICK_S
            await asyncio.sleep(max(0.0, tick_at - now))


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fleet.load", description=__doc__)
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--sites", type=int, required=True)
    parser.add_argument("--quiet-sites", type=int, default=0)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    quiet = logging.getLogger("fleet.load")
    quiet.setLevel(logging.ERROR)  # a full in-flight window is the point here, not news
    async with aiomqtt.Client(
        args.host, args.port, max_inflight_messages=200, logger=quiet, identifier="fleet-load"
    ) as client:
        load = Fleet(client, args.sites, args.quiet_sites)
        await load.burst()
        print("burst done", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        started = time.monotonic()
        await load.run(args.speed, args.seconds)
        elapsed = time.monotonic() - started
    print(json.dumps({"sent": dict(load.sent), "seconds": round(elapsed, 1)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
