"""Shared fixtures: private mosquitto brokers, and the hygiene every test must pass."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sim.broker import BrokerSpec, Mosquitto, find_mosquitto, make_ca

if TYPE_CHECKING:
    from tests.pgserver import PgServer


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("centinela", "real hardware (opt-in)")
    group.addoption("--keypad-url", help="run keypad driver tests against this device URL")
    group.addoption("--nfc-url", help="run NFC driver tests against this nfcpy path")
    group.addoption("--climate-url", help="run climate driver tests against this bme280: URL")
    group.addoption("--camera-url", help="run camera driver tests against this v4l2: URL")


def _children() -> set[int]:
    """PIDs of this process's direct children (from /proc, no extra dependency)."""
    pids: set[int] = set()
    task_dir = Path(f"/proc/{os.getpid()}/task")
    for task in task_dir.iterdir():
        try:
            text = (task / "children").read_text()
        except OSError:
            continue
        pids.update(int(p) for p in text.split())
    return pids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


_SESSION_CHILDREN: set[int] = set()


@pytest.fixture(autouse=True)
def _no_leftover_processes() -> Iterator[None]:
    """Fail a test that leaves child processes running (session brokers excepted)."""
    before = _children()
    yield
    leftover = {p for p in _children() - before - _SESSION_CHILDREN if _alive(p)}
    if leftover:
        names = []
        for pid in leftover:
            try:
                names.append(f"{pid} {Path(f'/proc/{pid}/cmdline').read_bytes()[:80]!r}")
            except OSError:
                names.append(str(pid))
        pytest.fail(f"test left child processes behind: {', '.join(names)}")


@pytest.fixture(autouse=True)
async def _no_leftover_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks running on its loop."""
    current = asyncio.current_task()
    before = asyncio.all_tasks() - {current}
    yield
    for _ in range(3):
        await asyncio.sleep(0)
    # Teardown runs in a task of its own.
    leftover = [
        t for t in asyncio.all_tasks() - before - {current, asyncio.current_task()} if not t.done()
    ]
    if leftover:
        for task in leftover:
            task.cancel()
        pytest.fail(f"test left asyncio tasks behind: {[t.get_coro() for t in leftover]}")


def _require_mosquitto() -> None:
    if find_mosquitto() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("mosquitto is not installed: CI must install it (make setup)")
        pytest.skip("mosquitto is not installed (run make setup)")


@pytest.fixture(scope="session")
def mosquitto() -> Iterator[Mosquitto]:
    """A private anonymous mosquitto on a free 127.0.0.1 port for the whole session."""
    _require_mosquitto()
    broker = Mosquitto().start()
    assert broker.proc is not None
    _SESSION_CHILDREN.add(broker.proc.pid)
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PgServer]:
    """A private PostgreSQL on a free 127.0.0.1 port for the whole session."""
    from tests.pgserver import PgServer, find_bin

    if find_bin("initdb") is None or find_bin("postgres") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL is not installed: CI must install it (make setup)")
        pytest.skip("PostgreSQL is not installed (run make setup)")
    pytest.importorskip("psycopg")
    server = PgServer().start()
    assert server.proc is not None
    _SESSION_CHILDREN.add(server.proc.pid)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def postgres_url(postgres_server: PgServer) -> Iterator[str]:
    """A new empty database on the session's PostgreSQL, dropped after the test."""
    url = postgres_server.create_db()
    try:
        yield url
    finally:
        postgres_server.drop_db(url)


@pytest.fixture
def broker_factory() -> Iterator[object]:
    """Start a mosquitto with a given BrokerSpec for one test; all stopped at its end."""
    _require_mosquitto()
    started: list[Mosquitto] = []

    def start(spec: BrokerSpec | None = None) -> Mosquitto:
        broker = Mosquitto(spec).start()
        started.append(broker)
        return broker

    yield start
    for broker in started:
        broker.close()


@pytest.fixture
def tls_files(tmp_path: Path) -> object:
    """A CA made for this test, a server certificate for 127.0.0.1 and client certificates."""
    return make_ca(tmp_path / "tls", clients=("p1", "hub"))
