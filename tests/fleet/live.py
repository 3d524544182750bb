"""``fleet_event_to_browser_ms``: how soon a followed installation's event is on its page
while the whole fleet's traffic runs.

Workers on PostgreSQL share one mosquitto. The background fleet (``tests.fleet.load``, a
process of its own) sends every installation's retained state, then its daily traffic.
Scripted customers have signed up on the web and follow their installation's live page,
half of them on each worker, and use the app API every few seconds. A probe publishes an
event for each followed installation in turn and times it from just before the publish
until the page's ``event`` line arrives (same clock, same process). Whichever worker
stores an event, the page hears of it through PostgreSQL ``NOTIFY``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import httpx

from sim.broker import Mosquitto
from tests.cloud_app import sign_up
from tests.cloud_workers import Worker
from tests.fleet import sites as fleet
from tests.pgserver import PgServer

PROBE_EVERY_S = 0.1  # one probe event every 100 ms, each followed installation in turn
API_EVERY_S = 5.0  # each customer's app calls the API this often
PAGE_TIMEOUT_S = 120.0


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """``pid`` and its child processes (a PostgreSQL server and its backends)."""
    found = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[1]) == pid:
                    found.append(int(entry.name))
    return found


@dataclass
class Follower:
    """One customer: a live page on one worker, the app API on the other."""

    site: int
    page: httpx.AsyncClient
    api: httpx.AsyncClient
    states: set[str] = field(default_factory=set)
    seen: asyncio.Event = field(default_factory=asyncio.Event)

    async def follow(self, on_event: Callable[[int, int], None], ready: asyncio.Event) -> None:
        async with self.page.stream("GET", f"/i/{fleet.number(self.site)}/live") as response:
            kind = ""
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                    if kind == "state":
                        self.states.add(str(data.get("key")))
                        ready.set()
                        self.seen.set()
                    elif kind == "event":
                        on_event(self.site, int(data["seq"]))


@dataclass
class Probe:
    sent: dict[tuple[int, int], float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    when: list[float] = field(default_factory=list)  # each latency's publish, from the start
    counting: bool = False
    started: float = 0.0

    def arrived(self, site: int, seq: int) -> None:
        start = self.sent.pop((site, seq), None)
        if start is not None and self.counting:
            self.latencies.append((time.monotonic() - start) * 1000)
            self.when.append(start - self.started)

    def by_window(self, seconds: float = 10.0) -> list[float]:
        """The p99 of each ``seconds`` of the run: a queue that grows shows here."""
        windows: dict[int, list[float]] = {}
        for at, latency in zip(self.when, self.latencies, strict=True):
            windows.setdefault(int(at // seconds), []).append(latency)
        return [round(pct(windows[w], 99), 1) for w in sorted(windows)]


async def _customers(urls: list[str], count: int) -> list[Follower]:
    followers = []
    for i in range(count):
        page = httpx.AsyncClient(base_url=urls[i % len(urls)], timeout=PAGE_TIMEOUT_S)
        api = httpx.AsyncClient(base_url=urls[(i + 1) % len(urls)], timeout=PAGE_TIMEOUT_S)
        email = f"customer{i}@fleet.example"
        got = await sign_up(
            page, email, number=fleet.number(i), keyword=fleet.KEYWORD, password=fleet.PASSWORD
        )
        if got.status_code != 303 or not page.cookies.get("centinela_session"):
            raise RuntimeError(f"sign-up of {email} failed: HTTP {got.status_code}")
        login = await api.post("/api/v1/login", json={"email": email, "password": fleet.PASSWORD})
        login.raise_for_status()
        api.headers["authorization"] = f"Bearer {login.json()['token']}"
        followers.append(Follower(i, page, api))
    return followers


async def _use_api(f: Follower, times: dict[str, list[float]], stop: asyncio.Event) -> None:
    base = f"/api/v1/installations/{fleet.number(f.site)}"
    while not stop.is_set():
        for name, path in (("state", "/state"), ("events", "/events"), ("climate", "/climate")):
            start = time.monotonic()
            got = await f.api.get(base + path)
            got.raise_for_status()
            times[name].append((time.monotonic() - start) * 1000)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), API_EVERY_S)


async def _measure(
    broker: Mosquitto,
    urls: list[str],
    followers_n: int,
    load: subprocess.Popen[bytes],
    seconds: float,
    cpu: Callable[[], dict[str, float]],
) -> dict[str, Any]:
    followers = await _customers(urls, followers_n)
    probe = Probe()
    tasks = []
    try:
        for f in followers:
            ready = asyncio.Event()
            tasks.append(asyncio.create_task(f.follow(probe.arrived, ready)))
            await asyncio.wait_for(ready.wait(), PAGE_TIMEOUT_S)
        # The fleet's retained state first: every worker stores every installation's.
        assert load.stdout is not None
        line = await asyncio.to_thread(load.stdout.readline)
        if line.strip() != b"burst done":
            raise RuntimeError(f"the fleet load did not start: {line!r}")
        burst_done = time.monotonic()
        async with aiomqtt.Client(broker.host, broker.port, identifier="fleet-probe") as hub:
            # A state no other message sets, on every followed installation: once each page
            # has shown it, its worker has worked through the burst before it.
            now = time.time()
            for f in followers:
                f.seen.clear()
                await hub.publish(
                    f"centinela/s{f.site}/p1/state",
                    fleet.state("armed_night", now),
                    qos=1,
                    retain=True,
                )
            for f in followers:
                while "armed_night" not in f.states:
                    await asyncio.wait_for(f.seen.wait(), PAGE_TIMEOUT_S)
                    f.seen.clear()
            caught_up = time.monotonic() - burst_done
            assert load.stdin is not None
            load.stdin.write(b"go\n")  # the daily traffic, from a cloud side that caught up
            load.stdin.flush()
            stop = asyncio.Event()
            api_times: dict[str, list[float]] = {"state": [], "events": [], "climate": []}
            users = [asyncio.create_task(_use_api(f, api_times, stop)) for f in followers]
            before = cpu()
            probe.counting = True
            started = probe.started = time.monotonic()
            seq = 0
            sent = 0
            while time.monotonic() - started < seconds:
                f = followers[sent % len(followers)]
                if sent % len(followers) == 0:
                    seq += 1
                body = fleet.event(
                    f.site, seq, "armed", time.time(), mode="total", user="alice", method="app"
                )
                probe.sent[(f.site, seq)] = time.monotonic()
                await hub.publish(f"centinela/s{f.site}/event", body, qos=1)
                sent += 1
                await asyncio.sleep(PROBE_EVERY_S)
            elapsed = time.monotonic() - started
            # The last probes' pages: wait until each has come or is clearly lost.
            deadline = time.monotonic() + 30
            while probe.sent and time.monotonic() < deadline:
                await asyncio.sleep(0.05)  # poll interval for the pages' readers
            after = cpu()
            stop.set()
            await asyncio.gather(*users)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t
        for f in followers:
            await f.page.aclose()
            await f.api.aclose()
    lat = probe.latencies
    return {
        "fleet_event_to_browser_ms": {
            "p50": round(statistics.median(lat), 1) if lat else None,
            "p99": round(pct(lat, 99), 1) if lat else None,
            "max": round(max(lat), 1) if lat else None,
            "samples": len(lat),
            "lost": len(probe.sent),
            "p99_each_10_s": probe.by_window(),
        },
        "probes_sent": sent,
        "retained_burst_caught_up_s": round(caught_up, 1),
        "app_api_ms_p95": {k: round(pct(v, 95), 1) for k, v in api_times.items() if v},
        "cpu_s": {k: round(after[k] - before[k], 2) for k in after},
        "measured_s": round(elapsed, 1),
    }


def run(
    pg: PgServer,
    broker: Mosquitto,
    tmp: Path,
    *,
    sites: int = 10_000,
    workers: int = 2,
    followers: int = 20,
    seconds: float = 60.0,
    speed: float = 1.0,
) -> dict[str, Any]:
    """The figures of one run (see the module docstring)."""
    url = pg.create_db()
    tag = uuid.uuid4().hex[:6]
    config = fleet.write_config(tmp / f"live-{tag}.toml", broker.url, url, sites, tag)
    started: list[Worker] = []
    load: subprocess.Popen[bytes] | None = None
    try:
        t0 = time.monotonic()
        for i in range(workers):
            started.append(Worker(config, f"w{i}", tmp).start())
        startup = time.monotonic() - t0
        urls = [w.web_url() for w in started]
        load = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.fleet.load",
                broker.host,
                str(broker.port),
                "--sites",
                str(sites),
                "--quiet-sites",
                str(followers),
                "--speed",
                str(speed),
                "--seconds",
                str(seconds + 600),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        pids = {f"worker {w.name}": [w.proc.pid] for w in started if w.proc is not None}
        assert pg.proc is not None and broker.proc is not None

        def cpu() -> dict[str, float]:
            got = {name: cpu_seconds(p) for name, p in pids.items()}
            got["postgresql"] = cpu_seconds(children(pg.server_pid()))
            got["mosquitto"] = cpu_seconds(children(broker.proc.pid))  # type: ignore[union-attr]
            got["fleet load"] = cpu_seconds([load.pid])  # type: ignore[union-attr]
            return got

        result = asyncio.run(_measure(broker, urls, followers, load, seconds, cpu))
        result.update(sites=sites, workers=workers, followers=followers, speed=speed)
        result["worker_start_s"] = round(startup, 1)
        per_day = fleet.RATES.per_day()
        offered = sum(per_day.values()) * sites / 86_400 * speed + 1 / PROBE_EVERY_S
        result["offered_messages_per_s"] = round(offered, 1)
        messages = offered * result["measured_s"]
        result["cpu_ms_per_message"] = {
            name: round(seconds * 1000 / messages, 3) for name, seconds in result["cpu_s"].items()
        }
        return result
    finally:
        if load is not None and load.poll() is None:
            load.terminate()
            load.wait()
        for w in started:
            w.stop()
        pg.drop_db(url)
