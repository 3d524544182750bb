"""The cloud link handles what arrived together in one go: its events stored in one
statement, every message still handled in order and counted as when taken one by one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cloud.config import load_cloud_mapping
from cloud.service import CloudService
from cloud.store import EventFilter
from tests.cloud_app import event, mapping


@pytest.fixture(params=["sqlite", "postgresql"])
async def svc(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CloudService]:
    data = mapping(tmp_path)
    if request.param == "postgresql":
        data["store"] = {"url": request.getfixturevalue("postgres_url")}
    service = CloudService(load_cloud_mapping(data, "<test>"))
    loop = asyncio.get_running_loop()
    # Every worker's pages hear of what is stored: through the store when it is shared.
    stop = service.store.listen(
        lambda site, kind, value: loop.call_soon_threadsafe(service.live.publish, site, kind, value)
    )
    try:
        yield service
    finally:
        if stop is not None:
            stop()
        service.store.close()


async def _heard(queue: asyncio.Queue[tuple[str, Any]], count: int) -> dict[str, list[Any]]:
    """The first ``count`` events and readings a page hears, by kind."""
    seen: dict[str, list[Any]] = {"event": [], "telemetry": []}
    while sum(map(len, seen.values())) < count:
        kind, value = await asyncio.wait_for(queue.get(), 60)
        if kind == "event":
            seen[kind].append(value["seq"])
        elif kind == "telemetry":
            seen[kind].append(value["temperature"])
    return seen


async def test_a_lot_is_handled_in_order_and_counted_as_one_by_one(svc: CloudService) -> None:
    async with svc.live.follow("demo") as page:
        svc.link.take_all(
            [
                event(1),
                event(1, type="disarmed"),  # the same event twice in one lot
                (
                    "centinela/demo/p1/telemetry",
                    b'{"time": "2026-11-26T10:00:00.000Z", "temperature": 21.5}',
                ),
                ("centinela/demo/event", event(2, site="other")[1]),  # on demo's topic: refused
                ("centinela/demo/event", b"not json"),
                event(3, type="photo_requested", photo="p1-3", zone="hall"),  # an image's
                event(4, site="nowhere"),  # a site nobody configured
                event(5, user="bob"),
            ]
        )
        assert await _heard(page, 4) == {"event": [1, 3, 5], "telemetry": [21.5]}
    rows = svc.store.events("demo", EventFilter(), 10)
    assert [(r["seq"], r["type"]) for r in rows] == [
        (5, "armed"),
        (3, "photo_requested"),
        (1, "armed"),
    ]
    assert [p["photo_id"] for p in svc.store.photos("demo")] == ["p1-3"]
    assert sorted(svc.store.event_users("demo")) == ["alice", "bob"]
    counters = svc.link.counters
    assert counters == {
        "duplicate_event": 1,
        "bad_event": 1,
        "bad_message": 1,
        "unknown_topic": 1,
    }
    svc.link.take_all([event(5), event(6)])  # a redelivery beside a new one
    assert svc.link.counters["duplicate_event"] == 2
    assert [r["seq"] for r in svc.store.events("demo", EventFilter(), 2)] == [6, 5]
