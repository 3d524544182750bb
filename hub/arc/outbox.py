"""The centre's durable outbox: a cursor per panel over the events the hub store already holds.

Every event the relay commits is in the store's ``events`` table, in panel seq
order; this adds which of them the centre has acknowledged (``arc_cursor``),
the DC-09 sequence number given to the message in flight (``arc_inflight``,
so that a message resent after a restart carries the number it first had and
the receiver can tell the repeat) and the link state shown by ``centinela
doctor`` (``arc_meta``). Its own connection to the same SQLite file; each
write is one short transaction.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from protocol.messages import Event, EventType, Method, Mode

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS arc_cursor (panel TEXT PRIMARY KEY, acked INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS arc_inflight (
    id INTEGER PRIMARY KEY CHECK (id = 1), panel TEXT NOT NULL, seq INTEGER NOT NULL,
    msg_seq INTEGER NOT NULL, next_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS arc_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_COLUMNS: Final = ", ".join(
    f"e.{c}"
    for c in [
        "panel",
        "seq",
        "time_ms",
        "type",
        "method",
        "cid",
        "sia",
        "mode",
        "user",
        "zone",
        "tag",
        "photo",
        "detail",
    ]
)


@dataclass(frozen=True, slots=True)
class Pending:
    """One event waiting for the centre's ACK."""

    panel: str
    event: Event


class ArcStore:
    """Cursor, message numbers and link state of the centre, in the hub's SQLite file."""

    def __init__(self, path: str | Path, panels: Iterable[str]) -> None:
        self._db = sqlite3.connect(Path(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout = 5000")
        self._db.execute("PRAGMA journal_mode = WAL")
        # Commits survive the hub process being killed; only a power cut can undo the last
        # ones, and that makes the centre receive an event again, never miss one (the events
        # themselves are committed with synchronous=FULL by the hub store). FULL would cost
        # an fsync, ~5 ms here, twice per event.
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.executescript(_SCHEMA)
        row = self._db.execute(
            "SELECT panel, seq, msg_seq FROM arc_inflight WHERE id = 1"
        ).fetchone()
        self._inflight: tuple[str, int, int] | None = (
            None if row is None else (str(row[0]), int(row[1]), int(row[2]))
        )
        with self._txn():
            for panel in panels:
                # A panel first reported from here on starts after what the store already holds.
                self._db.execute(
                    "INSERT OR IGNORE INTO arc_cursor "
                    "SELECT ?, coalesce(max(seq), 0) FROM events WHERE panel = ?",
                    (panel, panel),
                )

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    @contextlib.contextmanager
    def _txn(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def head(self, limit: int = 1) -> list[Pending]:
        """The oldest events not yet acknowledged, in the order they were stored."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM events e JOIN arc_cursor c ON c.panel = e.panel "  # noqa: S608
            "WHERE e.seq > c.acked ORDER BY e.rowid LIMIT ?",
            (limit,),
        ).fetchall()
        return [Pending(str(r[0]), _event(r)) for r in rows]

    def backlog(self) -> int:
        """How many events wait for the centre."""
        row = self._db.execute(
            "SELECT count(*) FROM events e JOIN arc_cursor c ON c.panel = e.panel "
            "WHERE e.seq > c.acked"
        ).fetchone()
        return int(row[0])

    def acked(self, panel: str) -> int:
        """The newest seq of ``panel`` the centre acknowledged."""
        row = self._db.execute("SELECT acked FROM arc_cursor WHERE panel = ?", (panel,)).fetchone()
        return 0 if row is None else int(row[0])

    def message_seq(self, panel: str, seq: int, next_seq: int) -> tuple[int, bool]:
        """The DC-09 sequence number of event (panel, seq): the one it was first sent with, or
        ``next_seq``, recorded before it leaves. The flag says whether it is a resend."""
        if self._inflight is not None and self._inflight[:2] == (panel, seq):
            return self._inflight[2], True
        # One statement: its own transaction.
        self._db.execute(
            "INSERT OR REPLACE INTO arc_inflight VALUES (1, ?, ?, ?, ?)",
            (panel, seq, next_seq, next_seq % 9999 + 1),
        )
        self._inflight = (panel, seq, next_seq)
        return next_seq, False

    def acknowledge(self, panel: str, seq: int) -> None:
        """The centre acknowledged (or refused for good) event (panel, seq)."""
        self._db.execute(
            "UPDATE arc_cursor SET acked = max(acked, ?) WHERE panel = ?", (seq, panel)
        )

    def next_seq(self) -> int:
        """The DC-09 sequence number for the next new message (1-9999)."""
        row = self._db.execute("SELECT next_seq FROM arc_inflight WHERE id = 1").fetchone()
        return 1 if row is None else int(row[0])

    def get(self, key: str) -> str | None:
        """A stored value of the link state."""
        row = self._db.execute("SELECT value FROM arc_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put_status(self, status: dict[str, Any]) -> None:
        """Keep the link status for ``centinela doctor``."""
        with self._txn():
            self._put("status", json.dumps(status, sort_keys=True))

    def _put(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO arc_meta VALUES (?, ?)", (key, value))


def read_status(path: str | Path) -> dict[str, Any] | None:
    """The link status a hub left in its store (None when there is none); read-only."""
    uri = f"{Path(path).resolve().as_uri()}?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True)
    except sqlite3.Error:
        return None
    try:
        row = db.execute("SELECT value FROM arc_meta WHERE key = 'status'").fetchone()
    except sqlite3.Error:
        return None
    finally:
        db.close()
    if row is None:
        return None
    value = json.loads(str(row[0]))
    return value if isinstance(value, dict) else None


def _event(r: tuple[Any, ...]) -> Event:
    def opt(v: object) -> str | None:
        return None if v is None else str(v)

    return Event(
        seq=int(r[1]),
        time_ms=int(r[2]),
        type=EventType(str(r[3])),
        method=Method(str(r[4])),
        cid=str(r[5]),
        sia=str(r[6]),
        mode=None if r[7] is None else Mode(str(r[7])),
        user=opt(r[8]),
        zone=opt(r[9]),
        tag=opt(r[10]),
        photo=opt(r[11]),
        detail=opt(r[12]),
    )
