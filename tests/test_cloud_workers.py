"""Two ``centinela cloud`` workers on one PostgreSQL behind one mosquitto, sharing the
ingest through MQTT 5 shared subscriptions; one is killed with SIGKILL mid-stream."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import psycopg
import pytest

from sim.broker import Mosquitto

EVENTS = 300
DEADLINE = 180.0  # seconds; generous for a loaded 2-core machine
pytestmark = pytest.mark.timeout(900)

CONFIG = """\
[broker]
url = "{broker}"
client_id = "{client_id}"
share_group = "{group}"
session_expiry = 600

[store]
url = "{store}"

[web]
listen = "127.0.0.1:0"

[[installations]]
number = "1234567"
site = "casa"
panel = "p1"
[[installations.holders]]
user = "alice"
keyword = "girasol"
role = "master"
"""


class Worker:
    """One ``centinela cloud --worker NAME`` process; its log in a file."""

    def __init__(self, config: Path, name: str, tmp: Path) -> None:
        self.config, self.name, self.tmp = config, name, tmp
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tmp / f"{name}.log"
        self.starts = 0

    def start(self) -> Worker:
        self.starts += 1
        self.log = self.tmp / f"{self.name}.{self.starts}.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "centinela",
                    "cloud",
                    "--config",
                    str(self.config),
                    "--worker",
                    self.name,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + DEADLINE
        while "cloud link up" not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"worker {self.name} did not come up: {self.log.read_text()}")
            time.sleep(0.05)  # poll interval for the log line
        return self

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


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
