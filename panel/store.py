"""The panel's durable store: event log, outbox, seq counter and core snapshot in one SQLite file.

WAL journal with ``synchronous=FULL``: a commit is on disk when ``commit`` returns, and a
``kill -9`` at any moment leaves either the whole commit or none of it. A state change and
its events go in one transaction, so after a restart the seq counter, the log and the state
always agree. Nothing derived from a user code is ever written here.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

from common.errors import UsageError
from common.files import private_file
from panel import durable
from panel.durable import PanelSnapshot
from protocol.messages import Event, EventType, Method, Mode

_LOGGER = logging.getLogger(__name__)

KEEP_EVENTS: Final = 10_000
"""Acknowledged events beyond the newest this many are pruned."""

MAX_PAGES: Final = 0xFFFFFFFE
"""SQLite's largest ``max_page_count``: no quota."""

SCHEMA_VERSION: Final = 1

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS events (
    seq     INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    type    TEXT NOT NULL,
    method  TEXT NOT NULL,
    cid     TEXT NOT NULL,
    sia     TEXT NOT NULL,
    mode    TEXT,
    user    TEXT,
    zone    TEXT,
    tag     TEXT,
    photo   TEXT,
    detail  TEXT,
    clock_unsynced INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS state (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    next_seq INTEGER NOT NULL,
    snapshot TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS delivery (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    acked_upto INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

_INSERT_EVENT: Final = (
    "INSERT INTO events"
    " (seq, time_ms, type, method, cid, sia, mode, user, zone, tag, photo, detail, clock_unsynced)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_EVENTS: Final = (
    "SELECT seq, time_ms, type, method, cid, sia, mode, user, zone, tag, photo, detail,"
    " clock_unsynced FROM events WHERE seq > ? ORDER BY seq LIMIT ?"
)


class StoreError(UsageError):
    """The store file cannot be used (not a database, newer schema, corrupt snapshot)."""


class SeqError(ValueError):
    """A commit would skip or repeat a seq: a bug in the caller, refused."""


def snapshot_to_json(snap: PanelSnapshot) -> str:
    """The snapshot as a JSON document (sets sorted, enums by value): panel.durable.to_json."""
    return durable.to_json(snap)


def snapshot_from_json(text: str) -> PanelSnapshot:
    """The snapshot from ``snapshot_to_json``; raises ValueError when it cannot be read."""
    return durable.from_json(text)


def _row(event: Event) -> tuple[object, ...]:
    return (
        event.seq,
        event.time_ms,
        event.type.value,
        event.method.value,
        event.cid,
        event.sia,
        None if event.mode is None else event.mode.value,
        event.user,
        event.zone,
        event.tag,
        event.photo,
        event.detail,
        int(event.clock_unsynced),
    )


def _event(row: sqlite3.Row | tuple[Any, ...]) -> Event:
    seq, time_ms, type_, method, cid, sia, mode, user, zone, tag, photo, detail, unsynced = row
    return Event(
        seq=seq,
        time_ms=time_ms,
        type=EventType(type_),
        method=Method(method),
        cid=cid,
        sia=sia,
        mode=None if mode is None else Mode(mode),
        user=user,
        zone=zone,
        tag=tag,
        photo=photo,
        detail=detail,
        clock_unsynced=bool(unsynced),
    )


class PanelStore:
    """One panel's SQLite store; calls are serialised, so a worker thread may share it."""

    def __init__(self, path: str | os.PathLike[str], *, max_size: int | None = None) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        try:
            private_file(self.path)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot create the panel store: {exc}") from None
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the panel store: {exc}") from None
        try:
            self._setup()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(f"{self.path}: not a usable panel store: {exc}") from None
        self._next_seq = self._read_next_seq()
        self.set_quota(max_size)

    def set_quota(self, max_size: int | None) -> None:
        """Let the file grow to ``max_size`` bytes at most (None: no limit but the disk's).

        SQLite's ``max_page_count``: a write beyond it fails with ``database or disk is
        full``, exactly as on a full file system. Below the current size it means "no
        growth at all".
        """
        with self._lock:
            if max_size is None:
                pages = MAX_PAGES
            else:
                page_size = int(self._db.execute("PRAGMA page_size").fetchone()[0])
                pages = max(1, max_size // page_size)
            self._db.execute(f"PRAGMA max_page_count = {int(pages)}")

    def _setup(self) -> None:
        db = self._db
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            _LOGGER.warning("%s: WAL journal not available (got %s)", self.path, mode)
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA busy_timeout=5000")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: written by a newer centinela (schema {version})")
        with self._transaction():
            for statement in filter(str.strip, _SCHEMA.split(";")):
                db.execute(statement)
            columns = {row[1] for row in db.execute("PRAGMA table_info(events)")}
            if "clock_unsynced" not in columns:  # a store from before the flag
                db.execute(
                    "ALTER TABLE events ADD COLUMN clock_unsynced INTEGER NOT NULL DEFAULT 0"
                )
            db.execute("INSERT OR IGNORE INTO delivery (id, acked_upto) VALUES (1, 0)")
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            if self._db.in_transaction:  # SQLite rolls back by itself on a full disk
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _read_next_seq(self) -> int:
        row = self._db.execute("SELECT next_seq FROM state WHERE id = 1").fetchone()
        top = self._db.execute("SELECT MAX(seq) FROM events").fetchone()[0] or 0
        if row is None:
            return int(top) + 1
        if int(row[0]) <= top:
            raise StoreError(f"{self.path}: seq counter {row[0]} behind the event log ({top})")
        return int(row[0])

    @property
    def next_seq(self) -> int:
        """The seq the next committed event must carry."""
        return self._next_seq

    def load(self) -> PanelSnapshot | None:
        """The last committed core snapshot, or None for a new store."""
        with self._lock:
            row = self._db.execute("SELECT snapshot FROM state WHERE id = 1").fetchone()
        if row is None:
            return None
        try:
            return snapshot_from_json(row[0])
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{self.path}: the saved panel state cannot be read: {exc}") from None

    def commit(self, snapshot: PanelSnapshot, events: Sequence[Event]) -> None:
        """Store the snapshot and its events in one transaction (all or nothing, on disk)."""
        with self._lock:
            expected = self._next_seq
            for event in events:
                if event.seq != expected:
                    raise SeqError(f"event seq {event.seq} where {expected} was due")
                expected += 1
            if snapshot.next_seq != expected:
                raise SeqError(f"snapshot next_seq {snapshot.next_seq} where {expected} was due")
            with self._transaction() as db:
                db.executemany(
                    _INSERT_EVENT,
                    [_row(e) for e in events],
                )
                db.execute(
                    "INSERT INTO state (id, next_seq, snapshot) VALUES (1, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET next_seq = excluded.next_seq, "
                    "snapshot = excluded.snapshot",
                    (expected, snapshot_to_json(snapshot)),
                )
            self._next_seq = expected

    def pending(self, limit: int = 100) -> list[Event]:
        """The outbox: events the hub has not acknowledged yet, oldest first."""
        with self._lock:
            acked = self._db.execute("SELECT acked_upto FROM delivery").fetchone()[0]
            rows = self._db.execute(_SELECT_EVENTS, (acked, limit)).fetchall()
        return [_event(r) for r in rows]

    @property
    def acked_upto(self) -> int:
        """The newest seq the hub has acknowledged."""
        with self._lock:
            return int(self._db.execute("SELECT acked_upto FROM delivery").fetchone()[0])

    def ack(self, upto_seq: int) -> int:
        """Mark events up to ``upto_seq`` delivered; returns how many were newly acknowledged.

        Acknowledged events older than the newest ``KEEP_EVENTS`` are pruned.
        """
        with self._lock:
            upto = min(upto_seq, self._next_seq - 1)
            with self._transaction() as db:
                acked = int(db.execute("SELECT acked_upto FROM delivery").fetchone()[0])
                if upto <= acked:
                    return 0
                db.execute("UPDATE delivery SET acked_upto = ? WHERE id = 1", (upto,))
                keep_from = self._next_seq - KEEP_EVENTS
                db.execute("DELETE FROM events WHERE seq <= ? AND seq < ?", (upto, keep_from))
            return upto - acked

    def events(self, since_seq: int = 0, limit: int = 1000) -> list[Event]:
        """Logged events with seq above ``since_seq``, oldest first."""
        with self._lock:
            rows = self._db.execute(_SELECT_EVENTS, (since_seq, limit)).fetchall()
        return [_event(r) for r in rows]

    def get_meta(self, key: str) -> str | None:
        """A small durable value, or None."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Store a small value durably (its own transaction)."""
        with self._lock, self._transaction() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def rebase(self, offset: int, marker: str) -> None:
        """Renumber every event ``offset`` higher (a new store continuing an old one's seq).

        The log, the delivery mark, the seq counter and the snapshot move together, in one
        transaction; ``marker`` is recorded (meta ``store.rebased``) so it happens once.
        """
        with self._lock, self._transaction() as db:
            row = db.execute("SELECT next_seq, snapshot FROM state WHERE id = 1").fetchone()
            db.execute("UPDATE events SET seq = seq + ?", (offset,))
            db.execute("UPDATE delivery SET acked_upto = acked_upto + ?", (offset,))
            if row is not None:
                snap = snapshot_from_json(row[1])
                moved = dataclasses.replace(snap, next_seq=snap.next_seq + offset)
                db.execute(
                    "UPDATE state SET next_seq = ?, snapshot = ? WHERE id = 1",
                    (int(row[0]) + offset, snapshot_to_json(moved)),
                )
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('store.rebased', ?)", (marker,)
            )
        self._next_seq += offset

    def probe(self, size: int = 16384) -> None:
        """Raise if ``size`` more bytes could not be written now (nothing is kept)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("INSERT INTO meta (key, value) VALUES ('probe', ?)", ("x" * size,))
            finally:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")

    def close(self) -> None:
        """Close the database (everything committed is already on disk)."""
        with self._lock:
            self._db.close()
