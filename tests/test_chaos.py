"""The short chaos run: a few thousand events, one broker restart, one hub and one panel SIGKILL."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from panel import store
from tests import chaos
from tests.procs import panel_last_seq


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_nothing_lost_nothing_repeated_while_everything_fails(
    tmp_path: Path, mosquitto: object
) -> None:
    report = await chaos.run(events=3000, faults=1, seed=20261126, workdir=tmp_path)
    report.print()
    assert report.faults == {"broker": 1, "hub": 1, "panel": 1}
    assert report.problems == []
    assert report.panel_last_seq >= 3000
    assert report.cloud.seen == set(range(1, report.panel_last_seq + 1))
    assert report.hub_count == report.panel_last_seq


def test_the_panel_seq_reader_never_races_the_store_schema(tmp_path: Path) -> None:
    """The harness polls the panel's store from its first moment: before, during, after schema."""
    db = tmp_path / "p1.db"
    assert panel_last_seq(db) == 0  # no file yet
    sqlite3.connect(db).close()  # the file exists, empty: the panel has just opened it
    assert panel_last_seq(db) == 0
    # The panel creating its schema in a transaction it has not committed yet.
    writer = sqlite3.connect(db, isolation_level=None)
    try:
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("BEGIN IMMEDIATE")
        for statement in filter(str.strip, store._SCHEMA.split(";")):
            writer.execute(statement)
        assert panel_last_seq(db) == 0
        writer.execute("COMMIT")
    finally:
        writer.close()
    assert panel_last_seq(db) == 0  # tables, no state row yet
    panel_store = store.PanelStore(db)
    panel_store.close()
    assert panel_last_seq(db) == 0
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.execute("INSERT INTO state (id, next_seq, snapshot) VALUES (1, 43, '{}')")
    assert panel_last_seq(db) == 42
