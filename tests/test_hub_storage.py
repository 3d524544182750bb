"""The hub's store under stress (issue 10): receipt times, a full disk, the media quota.

Real SQLite files throughout. A full disk is simulated with SQLite's own limit,
``PRAGMA max_page_count``, on the real store file: writes then fail with
``database or disk is full`` exactly as on a full file system, without root.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import pytest

from hub.cloudapi import iso_ms
from hub.events_cli import run_events
from tests.test_hub_fakepanel import T0, event
from tests.test_hub_relay import Rig


@pytest.fixture
def rig(tmp_path: Path) -> Any:
    rig = Rig(tmp_path)
    yield rig
    rig.store.close()


def _event_json(rig: Rig) -> list[dict[str, Any]]:
    return [
        json.loads(item.payload)
        for _, item in rig.store.outbox_head(1000)
        if item.topic.endswith("/event")
    ]


def test_the_hub_records_its_own_receipt_time(rig: Rig, tmp_path: Path) -> None:
    """Item 4, hub side: the panel's clock is a day behind; the hub's receipt time says so."""
    hub_now = T0 + 86_400_000
    rig.feed(event(1), now=hub_now)
    (sent,) = _event_json(rig)
    assert sent["time"] == iso_ms(T0 + 1000)  # the panel's clock, as recorded
    assert sent["received"] == iso_ms(hub_now)  # the hub's own
    (stored,) = rig.store.events(panel="p1")
    assert stored.received_ms == hub_now
    out = io.StringIO()
    args = argparse.Namespace(
        site=None, panel=None, user=None, type=None, since=None, follow=False,
        json=True, db=str(tmp_path / "hub.db"), config=None,
    )  # fmt: skip
    rig.store.close()
    rig.store = type(rig.store)(tmp_path / "hub.db")
    assert run_events(args, out) == 0
    assert json.loads(out.getvalue().splitlines()[0])["received"] == iso_ms(hub_now)
