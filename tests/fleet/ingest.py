"""``fleet_ingest_events_per_s``: how fast 1, 2 and 4 workers store a stream of events.

One publisher speaks for many sites (sites are topics, not connections) and sends their
events, QoS 1, up to 200 in flight; each figure is from the first publish until the last
event is in the database. The baseline, measured in the same run, is a bare subscriber
that inserts each event into the same table with a plain ``INSERT … ON CONFLICT DO
NOTHING``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import psycopg

from cloud.store import PostgresStore
from sim.broker import Mosquitto
from tests.cloud_workers import DEADLINE, Worker
from tests.fleet import sites as fleet
from tests.fleet.live import children, cpu_seconds
from tests.pgserver import PgServer

BASELINE = """
import asyncio, json, sys
import aiomqtt, psycopg
SQL = ("INSERT INTO events VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
       " ON CONFLICT DO NOTHING")
async def main(host, port, url):
    with psycopg.connect(url, autocommit=True) as db:
        async with aiomqtt.Client(host, int(port)) as c:
            await c.subscribe("centinela/+/event", qos=1)
            print("ready", flush=True)
            async for m in c.messages:
                e = json.loads(m.payload)
                db.execute(SQL, (e["site"], e["panel"], e["seq"], e["time"], e["type"],
                    e.get("mode"), e.get("user"), e.get("method") or "system", e.get("zone"),
                    e.get("tag"), e.get("photo"), e.get("detail"), m.payload.decode()))
asyncio.run(main(*sys.argv[1:]))
"""


def _event(site: int, seq: int) -> bytes:
    kind = "armed" if seq % 2 else "disarmed"
    return fleet.event(site, seq, kind, time.time(), mode="total", user="alice", method="keypad")


async def _publish(broker: Mosquitto, events: int, sites: int) -> None:
    quiet = logging.getLogger("fleet.publisher")
    quiet.setLevel(logging.ERROR)  # a full in-flight window is the point here, not news
    async with aiomqtt.Client(
        broker.host, broker.port, max_inflight_messages=200, logger=quiet
    ) as hub:
        batch = []
        for n in range(events):
            site, seq = n % sites, n // sites + 1
            batch.append(hub.publish(f"centinela/s{site}/event", _event(site, seq), qos=1))
            if len(batch) == 200:
                await asyncio.gather(*batch)
                batch = []
        await asyncio.gather(*batch)


def _count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM events").fetchone()
    return int(row[0]) if row else 0


def _stored_rate(
    broker: Mosquitto, url: str, events: int, sites: int, stores: dict[str, list[int]]
) -> tuple[float, dict[str, float]]:
    """Events stored per second, and the cores each part kept busy meanwhile."""
    assert broker.proc is not None
    parts = {**stores, "mosquitto": children(broker.proc.pid), "publisher": [os.getpid()]}
    before = {name: cpu_seconds(pids) for name, pids in parts.items()}
    start = time.monotonic()
    asyncio.run(_publish(broker, events, sites))
    deadline = start + DEADLINE
    while (n := _count(url)) < events:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {n} of {events} events stored in {DEADLINE:.0f} s")
        time.sleep(0.05)  # poll interval for the database
    elapsed = time.monotonic() - start
    cores = {
        name: round((cpu_seconds(pids) - before[name]) / elapsed, 2) for name, pids in parts.items()
    }
    return events / elapsed, cores


def run(
    pg: PgServer, broker: Mosquitto, tmp: Path, *, events: int, sites: int, workers: list[int]
) -> dict[str, Any]:
    """Measure; the figures as written to build/fleet.json."""
    results: dict[str, Any] = {"events": events, "sites": sites}
    url = pg.create_db()
    PostgresStore(url, max_size=1).close()  # the schema
    proc = subprocess.Popen(
        [sys.executable, "-c", BASELINE, broker.host, str(broker.port), url],
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != b"ready":
            raise RuntimeError("the baseline subscriber did not start")
        stores = {"subscriber": [proc.pid], "postgresql": children(pg.server_pid())}
        baseline, cores = _stored_rate(broker, url, events, sites, stores)
        results["baseline_cores"] = cores
    finally:
        proc.terminate()
        proc.wait()
    pg.drop_db(url)
    results["baseline_events_per_s"] = round(baseline, 1)
    per_workers: dict[str, float] = {}
    busy: dict[str, dict[str, float]] = {}
    for n in workers:
        url = pg.create_db()
        tag = uuid.uuid4().hex[:6]
        config = fleet.write_config(tmp / f"cloud-{tag}.toml", broker.url, url, sites, tag)
        started: list[Worker] = []
        try:
            for i in range(n):
                started.append(Worker(config, f"w{i}", tmp).start())
            stores = {
                "workers": [w.proc.pid for w in started if w.proc is not None],
                "postgresql": children(pg.server_pid()),
            }
            rate, cores = _stored_rate(broker, url, events, sites, stores)
            busy[str(n)] = cores
        finally:
            for w in started:
                w.stop()
        pg.drop_db(url)
        per_workers[str(n)] = round(rate, 1)
        print(
            f"  {n} worker(s): {rate:9.1f}/s, baseline {baseline:9.1f}/s,"
            f" ratio {rate / baseline:5.2f}; cores busy: "
            + ", ".join(f"{k} {v}" for k, v in cores.items()),
            flush=True,
        )
    results["fleet_ingest_events_per_s"] = per_workers
    results["ratio_to_baseline"] = {k: round(v / baseline, 3) for k, v in per_workers.items()}
    results["cores_busy"] = busy  # CPU seconds per second of each part: where the time went
    return results
