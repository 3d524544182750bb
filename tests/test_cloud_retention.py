"""The retention rule in the running service: purged at start, and what the pages show
of an event whose image the rule deleted. (The rule itself, on both engines, is in
test_cloud_store.py; its configuration in test_cloud_config.py.)"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cloud.store import EventFilter, iso
from tests.cloud_app import client_for, event, service_for, sign_up


def _ago(days: float) -> str:
    return iso(datetime.now(UTC) - timedelta(days=days))


class _Lines(logging.Handler):
    """The service's retention lines, and an event set when one arrives."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self.arrived = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("retention:"):
            self.lines.append(record.getMessage())
            self.arrived.set()


@pytest.fixture
def retention_log() -> Iterator[_Lines]:
    logger = logging.getLogger("cloud.service")
    handler, level = _Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_the_service_purges_at_start_and_says_what_went(
    tmp_path: Path, retention_log: _Lines
) -> None:
    svc = service_for(tmp_path)
    old = {"site": "demo", "panel": "p1", "type": "armed", "method": "keypad"}
    svc.store.add_event({**old, "seq": 1, "time": _ago(400)})
    svc.store.add_event({**old, "seq": 2, "time": _ago(1)})
    svc.store.add_telemetry("demo", "p1", {"time": _ago(100), "temperature": 20.0})
    async with svc:
        await asyncio.wait_for(retention_log.arrived.wait(), 60)
        assert retention_log.lines == [
            "retention: deleted events 1, telemetry 1 (kept: events 365 days, telemetry 31,"
            " images 30)"
        ]
        assert [e["seq"] for e in svc.store.events("demo", EventFilter(), 10)] == [2]
        again = await svc.purge()  # the next round finds nothing and says nothing
        assert again is not None and not any(again.values())
        assert len(retention_log.lines) == 1


async def test_the_retention_days_come_from_the_store_section(
    tmp_path: Path, retention_log: _Lines
) -> None:
    store = {"url": f"sqlite:///{tmp_path / 'cloud.db'}", "keep_events_days": 7}
    svc = service_for(tmp_path, {"store": store})
    base = {"site": "demo", "panel": "p1", "type": "armed", "method": "keypad"}
    svc.store.add_event({**base, "seq": 1, "time": _ago(8)})
    svc.store.add_event({**base, "seq": 2, "time": _ago(6)})
    async with svc:
        await asyncio.wait_for(retention_log.arrived.wait(), 60)
        assert "events 1" in retention_log.lines[0] and "events 7 days" in retention_log.lines[0]
        assert [e["seq"] for e in svc.store.events("demo", EventFilter(), 10)] == [2]


async def test_an_event_whose_photo_was_deleted_says_so_instead_of_linking(
    tmp_path: Path,
) -> None:
    svc = service_for(tmp_path)
    try:
        for seq, photo, days in ((1, "p1-1", 40), (3, "p1-3", 1)):
            common: dict[str, Any] = {"photo": photo, "zone": "hall", "method": "web"}
            svc.link.take(*event(seq, type="photo_requested", time=_ago(days), **common))
            svc.link.take(f"centinela/demo/p1/photo/{photo}", b"\xff\xd8jpeg")
            svc.link.take(*event(seq + 1, type="photo_ready", time=_ago(days), **common))
        store: Any = svc.store  # the image of 40 days ago was stored then
        store.db.execute("UPDATE photos SET stored = ? WHERE photo_id = 'p1-1'", (_ago(40),))
        counts = svc.store.purge(svc.config.retention)
        assert counts is not None and counts["photos"] == 1 and counts["events"] == 0
        async with client_for(svc) as c:
            await sign_up(c, "alice@example.org")
            page = await c.get("/i/1234567/activity")
            assert page.status_code == 200
            assert page.text.count("photo deleted after 30 days") == 2  # requested and ready
            assert "photos#p-p1-1" not in page.text and "photos#p-p1-3" in page.text
            assert (await c.get("/i/1234567/photos/p1-1.jpg")).status_code == 404
            photos = await c.get("/i/1234567/photos")
            assert "p-p1-3" in photos.text and "p-p1-1" not in photos.text
            assert "Photos and clips are deleted after 30 days." in photos.text
        async with client_for(svc, headers={"accept-language": "es"}) as c:
            await sign_up(c, "bob@example.org", keyword="amapola")
            page = await c.get("/i/1234567/activity")
            assert "foto borrada a los 30 días" in page.text
            photos = await c.get("/i/1234567/photos")
            assert "Las fotos y los vídeos se borran a los 30 días." in photos.text
    finally:
        svc.store.close()
