"""Two ``centinela cloud`` workers on one PostgreSQL behind one mosquitto, sharing the
ingest through MQTT 5 shared subscriptions; one is killed with SIGKILL mid-stream."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import httpx
import psycopg
import pytest

from sim.broker import Mosquitto
from tests.cloud_app import sign_up
from tests.cloud_workers import CONFIG, DEADLINE, Worker
from tests.pgserver import PgServer

EVENTS = 300
pytestmark = pytest.mark.timeout(900)


@pytest.fixture
def workers(
    tmp_path: Path, mosquitto: Mosquitto, postgres_url: str
) -> Iterator[tuple[Worker, Worker]]:
    tag = uuid.uuid4().hex[:8]
    config = tmp_path / "cloud.toml"
    config.write_text(
        CONFIG.format(
            broker=mosquitto.url, client_id=f"cloud-{tag}", group=f"g{tag}", store=postgres_url
        )
    )
    a, b = Worker(config, "a", tmp_path), Worker(config, "b", tmp_path)
    try:
        a.start()
        b.start()
        yield a, b
    finally:
        a.stop()
        b.stop()


def _stored(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT seq FROM events WHERE site = 'casa' ORDER BY seq").fetchall()
    return [int(r[0]) for r in rows]


def _wait_for(url: str, test: object, what: str) -> list[int]:
    deadline = time.monotonic() + DEADLINE
    while True:
        seqs = _stored(url)
        if test(seqs):  # type: ignore[operator]
            return seqs
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: {len(seqs)} events stored")
        time.sleep(0.1)  # poll interval for the database


def _event(seq: int) -> bytes:
    body = {
        "site": "casa",
        "panel": "p1",
        "seq": seq,
        "time": f"2026-11-01T10:{seq // 60:02d}:{seq % 60:02d}.000Z",
        "type": "armed",
        "mode": "away",
        "user": "alice",
        "method": "code",
    }
    return json.dumps(body).encode()


async def test_a_worker_killed_mid_stream_loses_nothing(
    workers: tuple[Worker, Worker], mosquitto: Mosquitto, postgres_url: str
) -> None:
    a, _b = workers
    async with aiomqtt.Client(mosquitto.host, mosquitto.port, identifier=None) as hub:
        for seq in range(1, EVENTS // 2 + 1):
            await hub.publish("centinela/casa/event", _event(seq), qos=1)
        # Both workers are taking events (shared, each message to one of them) ...
        before = _wait_for(postgres_url, lambda s: len(s) >= EVENTS // 10, "first events")
        a.kill()  # ... when one dies without a word, its last messages unacknowledged.
        for seq in range(EVENTS // 2 + 1, EVENTS + 1):
            await hub.publish("centinela/casa/event", _event(seq), qos=1)
        # The other worker goes on storing while the first is down.
        _wait_for(postgres_url, lambda s: max(s, default=0) > EVENTS // 2, "the survivor")
        assert len(before) < EVENTS
        a.start()  # back under its name: its session's messages are delivered again
        seqs = _wait_for(postgres_url, lambda s: len(s) >= EVENTS, "every event")
    assert seqs == list(range(1, EVENTS + 1))  # each stored once, none lost
    log_a = (a.tmp / "a.1.log").read_text()
    assert "Traceback" not in log_a


def _outage(server: PgServer, url: str, down: bool) -> None:
    """The database refuses every connection and drops those it has (``down``), or takes
    them again."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(server.url(), autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(not down).lower()}')
        if down:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )


async def test_events_that_arrive_while_the_database_is_down_are_stored_when_it_is_back(
    workers: tuple[Worker, Worker],
    mosquitto: Mosquitto,
    postgres_server: PgServer,
    postgres_url: str,
) -> None:
    async with aiomqtt.Client(mosquitto.host, mosquitto.port, identifier=None) as hub:
        for seq in range(1, 11):
            await hub.publish("centinela/casa/event", _event(seq), qos=1)
        _wait_for(postgres_url, lambda s: len(s) == 10, "the first events")
        _outage(postgres_server, postgres_url, down=True)
        try:
            for seq in range(11, 41):
                await hub.publish("centinela/casa/event", _event(seq), qos=1)
            # Both workers find the store unavailable and acknowledge nothing.
            for worker in workers:
                deadline = time.monotonic() + DEADLINE
                while "the store is unavailable" not in worker.log.read_text():
                    assert time.monotonic() < deadline, worker.log.read_text()
                    await asyncio.sleep(0.1)  # poll interval for the log line
        finally:
            _outage(postgres_server, postgres_url, down=False)
        seqs = _wait_for(postgres_url, lambda s: len(s) >= 40, "every event")
    assert seqs == list(range(1, 41))  # none lost, each stored once
    for worker in workers:
        assert "bad_message" not in worker.log.read_text()


async def test_any_worker_serves_the_customer_and_its_live_page(
    workers: tuple[Worker, Worker], mosquitto: Mosquitto
) -> None:
    a, b = workers
    # Signed up on one worker, the session works on the other (it is in the store).
    async with httpx.AsyncClient(base_url=a.web_url(), timeout=60) as on_a:
        got = await sign_up(on_a, "ana@example.org")
        assert got.status_code in (200, 303), got.text
        cookies = on_a.cookies
    async with httpx.AsyncClient(base_url=b.web_url(), cookies=cookies, timeout=60) as on_b:
        assert (await on_b.get("/i/1234567")).status_code == 200
        seen: list[str] = []
        # The live page, read off the socket (Server-Sent Events, one line at a time).
        url = httpx.URL(b.web_url())
        reader, writer = await asyncio.open_connection(url.host, url.port)
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        writer.write(
            f"GET /i/1234567/live HTTP/1.1\r\nHost: {url.host}:{url.port}\r\n"
            f"Cookie: {cookie}\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        try:
            async with asyncio.timeout(DEADLINE):
                while not (await reader.readline()).startswith(b"event: state"):
                    pass  # the page is following once its first state is out
                async with aiomqtt.Client(mosquitto.host, mosquitto.port) as hub:
                    for seq in range(1, 7):  # shared: some stored by a, some by b
                        await hub.publish("centinela/casa/event", _event(seq), qos=1)
                while len(seen) < 6:
                    line = await reader.readline()
                    assert line, "the live page closed"
                    if line.startswith(b"event: event"):
                        seen.append(line.decode())
        finally:
            writer.close()
            await writer.wait_closed()
    assert len(seen) == 6  # every event, whichever worker stored it


def test_a_short_fleet_run_measures_every_part(tmp_path: Path, postgres_server: PgServer) -> None:
    """``make fleet`` in small: every event stored, every probe on its page, the API answers."""
    from tests.fleet import (
        QUICK,  # (the fixture above skips it where PostgreSQL is missing)
        run,
    )

    got = run(["ingest", "live", "activity"], QUICK, tmp_path, postgres_server)
    ingest = got["ingest"]
    assert ingest["events"] == 200
    assert ingest["baseline_events_per_s"] > 0
    assert ingest["fleet_ingest_events_per_s"]["2"] > 0  # run() waits for every event stored
    live = got["live"]["speed_100"]
    latency = live["fleet_event_to_browser_ms"]
    assert latency["lost"] == 0, live
    assert latency["samples"] == live["probes_sent"] > 0
    assert set(live["app_api_ms_p95"]) == {"state", "events", "climate"}
    assert live["cpu_s"]["postgresql"] > 0
    activity = got["activity"]
    assert activity["events"] == 200 * 20
    assert activity["telemetry_rows"] == 200 * 10
    assert activity["fleet_activity_api_ms"]["requests"] == 16
    assert activity["bytes_per_event"] > activity["heap_bytes_per_event"] > 0
