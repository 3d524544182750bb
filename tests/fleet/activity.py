"""``fleet_activity_api_ms`` and ``fleet_db_bytes_per_event``: one installation's activity
through the app API with 10 million events stored across 100,000 installations.

The events are written by PostgreSQL itself (``generate_series``: a year of a household's
events per installation, of the kinds and methods a panel reports) into the schema the
service migrates, with the secondary indexes built after the load as a restore would; a
worker with all 100,000 installations in its file then serves scripted customers. The
baseline is the store's own query sent straight through psycopg (the same SQL, the same
index, no HTTP, no JSON): what the database alone costs.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from cloud.store import PostgresStore
from sim.broker import Mosquitto
from tests.cloud_workers import Worker
from tests.fleet import sites as fleet
from tests.fleet.live import pct
from tests.pgserver import PgServer

# One row per (installation, n): n-th event of the year; kinds and methods cycle so that
# every filter of the activity page has rows to find.
LOAD_EVENTS = """
INSERT INTO events
SELECT site, 'p1', n, t, kind, CASE WHEN kind IN ('arming', 'armed') THEN 'total' END,
       who, how, CASE WHEN kind = 'alarm' THEN 'hall' END,
       CASE WHEN how = 'tag' THEN '04A1B2C3D4E5F6' END, NULL, NULL,
       json_strip_nulls(json_build_object(
           'site', site, 'panel', 'p1', 'seq', n, 'time', t, 'type', kind,
           'mode', CASE WHEN kind IN ('arming', 'armed') THEN 'total' END,
           'user', who, 'method', how, 'zone', CASE WHEN kind = 'alarm' THEN 'hall' END,
           'tag', CASE WHEN how = 'tag' THEN '04A1B2C3D4E5F6' END))::text
FROM (
    SELECT 's' || s AS site, n,
           to_char(timestamp '{start}' + n * (interval '360 days' / {per_site})
                   + (s % 86400) * interval '1 second', 'YYYY-MM-DD"T"HH24:MI:SS".000Z"') AS t,
           (ARRAY['arming', 'armed', 'disarmed', 'arming', 'armed', 'disarmed',
                  'code_rejected', 'alarm'])[1 + (n + s) % 8] AS kind,
           (ARRAY['alice', 'bob', NULL])[1 + (n * 7 + s) % 3] AS who,
           (ARRAY['keypad', 'tag', 'app', 'web'])[1 + (n * 3 + s) % 4] AS how
    FROM generate_series({first}, {last}) s, generate_series(1, {per_site}) n
    OFFSET 0  -- each row's time and kind worked out once, not once per use
) g
"""
LOAD_TELEMETRY = """
INSERT INTO telemetry
SELECT 's' || s, 'p1',
       to_char(timestamp '{start}' + n * interval '5 minutes', 'YYYY-MM-DD"T"HH24:MI:SS".000Z"'),
       19 + (s + n) % 50 / 10.0, 40 + (s + n) % 20
FROM generate_series(0, {last}) s, generate_series(1, {per_site}) n
"""
BASELINE = "SELECT body FROM events WHERE site = %s ORDER BY time DESC, seq DESC LIMIT 51"
CHUNK = 10_000  # installations per INSERT: progress is shown, no statement runs for minutes


def _load(url: str, sites: int, per_site: int, telemetry_per_site: int) -> dict[str, float]:
    """Fill the events and telemetry tables; seconds taken by each step.

    As a restore does it: the table's indexes (its primary key too) are dropped, the rows
    written by two connections at once (two cores), then every index is built anew."""
    took: dict[str, float] = {}
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    # Inside the retention rule's reach: a worker purging at start must find nothing.
    year_ago, yesterday = now - timedelta(days=361), now - timedelta(days=1)
    with psycopg.connect(url, autocommit=True) as db:
        key = db.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'events_pkey'"
        ).fetchone()
        indexes = db.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'events'"
            " AND indexname <> 'events_pkey'"
        ).fetchall()
        assert key is not None
        db.execute("ALTER TABLE events DROP CONSTRAINT events_pkey")
        for name, _definition in indexes:
            db.execute(f'DROP INDEX "{name}"')
        start = time.monotonic()
        chunks = [
            LOAD_EVENTS.format(
                first=first, last=min(sites, first + CHUNK) - 1, per_site=per_site, start=year_ago
            )
            for first in range(0, sites, CHUNK)
        ]
        done = 0
        with ThreadPoolExecutor(2) as pool:
            for _ in pool.map(lambda sql: _execute(url, sql), chunks):
                done += 1
                loaded = min(sites, done * CHUNK) * per_site
                print(f"  events: {loaded:,} of {sites * per_site:,}", flush=True)
        took["load_events_s"] = time.monotonic() - start
        start = time.monotonic()
        db.execute("SET maintenance_work_mem = '256MB'")
        db.execute("SET max_parallel_maintenance_workers = 2")
        db.execute(f"ALTER TABLE events ADD CONSTRAINT events_pkey {key[0]}".encode())
        for _name, definition in indexes:
            db.execute(definition.encode())
        took["build_indexes_s"] = time.monotonic() - start
        start = time.monotonic()
        sql = LOAD_TELEMETRY.format(last=sites - 1, per_site=telemetry_per_site, start=yesterday)
        db.execute(sql.encode())
        took["load_telemetry_s"] = time.monotonic() - start
        db.execute("VACUUM ANALYZE events")
        db.execute("VACUUM ANALYZE telemetry")
    return {k: round(v, 1) for k, v in took.items()}


def _execute(url: str, sql: str) -> None:
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(sql.encode())


def _sizes(url: str) -> dict[str, float]:
    with psycopg.connect(url) as db:
        ev = db.execute(
            "SELECT count(*), pg_total_relation_size('events'), pg_relation_size('events'),"
            " pg_indexes_size('events') FROM events"
        ).fetchone()
        tm = db.execute(
            "SELECT count(*), pg_total_relation_size('telemetry') FROM telemetry"
        ).fetchone()
    assert ev is not None and tm is not None
    return {
        "events": ev[0],
        "bytes_per_event": round(ev[1] / ev[0], 1),
        "heap_bytes_per_event": round(ev[2] / ev[0], 1),
        "index_bytes_per_event": round(ev[3] / ev[0], 1),
        "telemetry_rows": tm[0],
        "bytes_per_reading": round(tm[1] / tm[0], 1),
    }


async def _customers(url: str, count: int, sites: int) -> list[tuple[str, httpx.AsyncClient]]:
    out = []
    for i in range(count):
        site = i * (sites // count)  # spread over the whole table
        client = httpx.AsyncClient(base_url=url, timeout=60)
        got = await client.post(
            "/api/v1/signup",
            json={
                "number": fleet.number(site),
                "keyword": fleet.KEYWORD,
                "name": f"Customer {i}",
                "mobile": "+34 600 000 000",
                "email": f"c{i}@fleet.example",
                "password": fleet.PASSWORD,
            },
        )
        if got.status_code != 201:
            raise RuntimeError(f"sign-up {i} failed: {got.status_code} {got.text}")
        client.headers["authorization"] = f"Bearer {got.json()['token']}"
        out.append((f"/api/v1/installations/{fleet.number(site)}/events", client))
    return out


HALF_YEAR_AGO = (datetime.now(UTC) - timedelta(days=180)).strftime("%Y-%m-%dT00:00:00.000Z")
QUERIES = {  # what the activity page asks: the latest, a filter, an older page
    "latest": "",
    "by_user": "?user=alice",
    "by_type": "?type=alarm",
    "older_page": f"?before={HALF_YEAR_AGO}|1000",
}


async def _api(url: str, customers: int, sites: int, requests: int) -> dict[str, Any]:
    who = await _customers(url, customers, sites)
    samples: dict[str, list[float]] = {name: [] for name in QUERIES}
    names = list(QUERIES)
    try:
        for r in range(requests):
            path, client = who[r % len(who)]
            name = names[r // len(who) % len(names)]
            query = QUERIES[name]
            start = time.monotonic()
            got = await client.get(path + query)
            elapsed = (time.monotonic() - start) * 1000
            got.raise_for_status()
            if not got.json()["events"]:
                raise RuntimeError(f"no events on {path}{query}")
            samples[name].append(elapsed)
    finally:
        for _path, client in who:
            await client.aclose()
    every = [x for v in samples.values() for x in v]
    return {
        "p50": round(pct(every, 50), 1),
        "p95": round(pct(every, 95), 1),
        "requests": len(every),
        "p95_by_query": {k: round(pct(v, 95), 1) for k, v in samples.items()},
    }


def _baseline(url: str, sites: int, customers: int, requests: int) -> float:
    times = []
    with psycopg.connect(url) as db:
        for r in range(requests):
            site = (r % customers) * (sites // customers)
            start = time.monotonic()
            db.execute(BASELINE, (f"s{site}",)).fetchall()
            times.append((time.monotonic() - start) * 1000)
    return round(pct(times, 95), 2)


def run(
    pg: PgServer,
    broker: Mosquitto,
    tmp: Path,
    *,
    sites: int = 100_000,
    per_site: int = 100,
    telemetry_per_site: int = 10,
    customers: int = 20,
    requests: int = 400,
) -> dict[str, Any]:
    """The figures of one run (see the module docstring)."""
    url = pg.create_db()
    try:
        PostgresStore(url, max_size=1).close()  # the service's schema, all migrations
        took = _load(url, sites, per_site, telemetry_per_site)
        sizes = _sizes(url)
        tag = uuid.uuid4().hex[:6]
        config = fleet.write_config(tmp / f"activity-{tag}.toml", broker.url, url, sites, tag)
        start = time.monotonic()
        worker = Worker(config, "a0", tmp).start()
        worker_start = time.monotonic() - start
        try:
            api = asyncio.run(_api(worker.web_url(), customers, sites, requests))
        finally:
            worker.stop()
        baseline = _baseline(url, sites, customers, requests)
    finally:
        pg.drop_db(url)
    return {
        "sites": sites,
        **sizes,
        **took,
        "worker_start_s": round(worker_start, 1),
        "fleet_activity_api_ms": api,
        "baseline_query_ms_p95": baseline,
    }
