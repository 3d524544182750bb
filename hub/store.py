"""The hub's durable store (SQLite, WAL, synchronous=FULL): events, states, photos, cloud outbox.

Everything a batch of frames produces is written in one transaction: the events,
the receiver's highest frame seq, and the cloud outbox rows that carry them on.
The panel is acknowledged only after that transaction commits (docs/link.md).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from common.files import private_file
from protocol.messages import (
    Event,
    EventType,
    Method,
    Mode,
    PhotoChunk,
    State,
    StateSnapshot,
    Telemetry,
)

SCHEMA_VERSION: Final = 1
MAX_PHOTO_CHUNKS: Final = 1024
"""A photo of more chunks than this (4 MiB) is refused."""

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    site TEXT NOT NULL, panel TEXT NOT NULL, seq INTEGER NOT NULL, time_ms INTEGER NOT NULL,
    type TEXT NOT NULL, method TEXT NOT NULL, cid TEXT NOT NULL, sia TEXT NOT NULL,
    mode TEXT, user TEXT, zone TEXT, tag TEXT, photo TEXT, detail TEXT,
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (panel, seq)
);
CREATE INDEX IF NOT EXISTS events_time ON events (time_ms);
CREATE TABLE IF NOT EXISTS states (
    panel TEXT PRIMARY KEY, state TEXT NOT NULL, since_ms INTEGER NOT NULL, siren INTEGER NOT NULL,
    open_zones TEXT NOT NULL, locked INTEGER NOT NULL, locked_until_ms INTEGER, mode TEXT,
    received_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS telemetry (
    panel TEXT NOT NULL, time_ms INTEGER NOT NULL, temperature REAL, humidity REAL,
    received_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS telemetry_received ON telemetry (received_ms);
CREATE TABLE IF NOT EXISTS photo_chunks (
    panel TEXT NOT NULL, photo TEXT NOT NULL, idx INTEGER NOT NULL, count INTEGER NOT NULL,
    data BLOB NOT NULL, received_ms INTEGER NOT NULL, PRIMARY KEY (panel, photo, idx)
);
CREATE TABLE IF NOT EXISTS photos (
    panel TEXT NOT NULL, photo TEXT NOT NULL, received_ms INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (panel, photo)
);
CREATE TABLE IF NOT EXISTS rx_seqs (
    panel TEXT NOT NULL, key_fp TEXT NOT NULL, key_id INTEGER NOT NULL, highest INTEGER NOT NULL,
    PRIMARY KEY (panel, key_fp, key_id)
);
CREATE TABLE IF NOT EXISTS tx_seqs (
    panel TEXT NOT NULL, key_fp TEXT NOT NULL, reserved INTEGER NOT NULL,
    PRIMARY KEY (panel, key_fp)
);
CREATE TABLE IF NOT EXISTS tag_counters (
    panel TEXT NOT NULL, tag TEXT NOT NULL, counter INTEGER NOT NULL, PRIMARY KEY (panel, tag)
);
CREATE TABLE IF NOT EXISTS panel_epochs (
    panel TEXT NOT NULL, epoch INTEGER NOT NULL, retired INTEGER NOT NULL,
    resume_after INTEGER, PRIMARY KEY (panel, epoch)
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL,
    qos INTEGER NOT NULL, retain INTEGER NOT NULL, correlation BLOB
);
"""

EVENT_COLUMNS: Final = (
    "site, panel, seq, time_ms, type, method, cid, sia, mode, user, zone, tag, photo, detail"
)


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One publish waiting for the cloud broker's PUBACK."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
    correlation: bytes | None = None  # MQTT 5 correlation data (results to a response topic)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as the store holds it."""

    rowid: int
    site: str
    panel: str
    event: Event
    received_ms: int | None = None  # the hub's clock when it stored the event


class StoreError(Exception):
    """The store file cannot be opened or used."""


def _connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    if readonly:
        uri = f"{path.resolve().as_uri()}?mode=ro"
        return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False)


class HubStore:
    """The hub's SQLite store; every method is synchronous and quick."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        try:
            if not readonly:
                private_file(self.path)
            self._db = _connect(self.path, readonly=readonly)
            self._db.execute("PRAGMA busy_timeout = 5000")
            if not readonly:
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = FULL")
                self._db.executescript(_SCHEMA)
                self._db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
                )
            else:
                self._db.execute("SELECT 1 FROM events LIMIT 1")
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"{self.path}: {exc}") from None
        self._in_txn = False

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic, durable write: committed on success, rolled back on any error."""
        if self._in_txn:
            yield
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._in_txn = True
        try:
            yield
        except BaseException:
            if self._db.in_transaction:  # SQLite rolls back by itself on a full disk
                self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self._in_txn = False

    # -- link sequence numbers --------------------------------------------------------

    def rx_highest(self, panel: str, key_fp: str, key_id: int) -> int:
        """The highest frame seq accepted from ``panel`` under one key and key id (0 if none)."""
        row = self._db.execute(
            "SELECT highest FROM rx_seqs WHERE panel = ? AND key_fp = ? AND key_id = ?",
            (panel, key_fp, key_id),
        ).fetchone()
        return int(row[0]) if row else 0

    def set_rx_highest(self, panel: str, key_fp: str, key_id: int, highest: int) -> None:
        """Persist the highest frame seq accepted (inside the caller's transaction)."""
        self._db.execute(
            "INSERT INTO rx_seqs VALUES (?, ?, ?, ?) ON CONFLICT (panel, key_fp, key_id) "
            "DO UPDATE SET highest = max(highest, excluded.highest)",
            (panel, key_fp, key_id, highest),
        )

    def tx_reserved(self, panel: str, key_fp: str) -> int:
        """The highest frame seq reserved for frames to ``panel`` under one key (0 if none)."""
        row = self._db.execute(
            "SELECT reserved FROM tx_seqs WHERE panel = ? AND key_fp = ?", (panel, key_fp)
        ).fetchone()
        return int(row[0]) if row else 0

    def reserve_tx(self, panel: str, key_fp: str, upto: int) -> None:
        """Durably reserve frame seqs up to ``upto`` before using them (committed at once)."""
        with self.transaction():
            self._db.execute(
                "INSERT INTO tx_seqs VALUES (?, ?, ?) ON CONFLICT (panel, key_fp) "
                "DO UPDATE SET reserved = max(reserved, excluded.reserved)",
                (panel, key_fp, upto),
            )

    # -- epochs (docs/protocol.md §5) -------------------------------------------------------

    def own_epoch(self) -> int:
        """This store's epoch: drawn at random (56 bits) the first time it is asked for."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
        if row is not None:
            return int(row[0])
        epoch = secrets.randbits(56) or 1
        with self.transaction():
            self._db.execute("INSERT INTO meta VALUES ('epoch', ?)", (str(epoch),))
        return epoch

    def panel_epochs(self, panel: str) -> tuple[int | None, set[int], int | None]:
        """``(current epoch, retired epochs, resume_after)`` of ``panel``'s store."""
        current, resume_after, retired = None, None, set()
        for epoch, is_retired, after in self._db.execute(
            "SELECT epoch, retired, resume_after FROM panel_epochs WHERE panel = ?", (panel,)
        ):
            if is_retired:
                retired.add(int(epoch))
            else:
                current, resume_after = int(epoch), after
        return current, retired, resume_after

    def adopt_epoch(
        self, panel: str, epoch: int, resume_after: int | None, *, first: bool = False
    ) -> None:
        """``panel`` has a new store: retire its old epoch, forget its frame windows.

        ``first``: the first epoch this store hears of; the windows it holds stay.
        """
        if first:
            self._db.execute("INSERT OR REPLACE INTO panel_epochs VALUES (?, ?, 0, NULL)",
                             (panel, epoch))  # fmt: skip
            return
        self._db.execute("UPDATE panel_epochs SET retired = 1 WHERE panel = ?", (panel,))
        self._db.execute(
            "INSERT OR REPLACE INTO panel_epochs VALUES (?, ?, 0, ?)", (panel, epoch, resume_after)
        )
        self._db.execute("DELETE FROM rx_seqs WHERE panel = ?", (panel,))

    def resumed(self, panel: str) -> None:
        """``panel``'s new store numbers its events after the old one's."""
        self._db.execute(
            "UPDATE panel_epochs SET resume_after = NULL WHERE panel = ? AND retired = 0", (panel,)
        )

    def revocations(self, panel: str) -> list[tuple[str, str | None]]:
        """``(tag, user)`` of every tag revoked on ``panel``, oldest first."""
        rows = self._db.execute(
            "SELECT tag, user FROM events WHERE panel = ? AND type = 'tag_revoked' "
            "AND tag IS NOT NULL GROUP BY tag ORDER BY min(seq)",
            (panel,),
        ).fetchall()
        return [(str(tag), None if user is None else str(user)) for tag, user in rows]

    def raise_tag_counters(self, panel: str, counters: Sequence[tuple[str, int]]) -> None:
        """Keep the highest SUN read counter ``panel`` accepted per tag (never lowered)."""
        self._db.executemany(
            "INSERT INTO tag_counters (panel, tag, counter) VALUES (?, ?, ?) "
            "ON CONFLICT (panel, tag) DO UPDATE SET counter = max(counter, excluded.counter)",
            [(panel, tag.upper(), counter) for tag, counter in counters],
        )

    def tag_counters(self, panel: str) -> list[tuple[str, int]]:
        """``(tag, counter)``: the highest SUN read counter ``panel`` accepted per tag."""
        rows = self._db.execute(
            "SELECT tag, counter FROM tag_counters WHERE panel = ? ORDER BY tag", (panel,)
        ).fetchall()
        return [(str(tag), int(counter)) for tag, counter in rows]

    # -- what the panels send ---------------------------------------------------------

    def last_event_seq(self, panel: str) -> int | None:
        """The newest event seq stored for ``panel`` (None before its first event)."""
        row = self._db.execute("SELECT max(seq) FROM events WHERE panel = ?", (panel,)).fetchone()
        return None if row[0] is None else int(row[0])

    def add_event(self, site: str, panel: str, event: Event, received_ms: int) -> None:
        """Store one event (the caller checked that its seq is the next one)."""
        e = event
        self._db.execute(
            f"INSERT INTO events ({EVENT_COLUMNS}, received_ms) "  # noqa: S608 (constant columns)
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                site, panel, e.seq, e.time_ms, str(e.type), str(e.method), e.cid, e.sia,
                None if e.mode is None else str(e.mode), e.user, e.zone, e.tag, e.photo, e.detail,
                received_ms,
            ),
        )  # fmt: skip

    def put_state(self, panel: str, snap: StateSnapshot, received_ms: int) -> None:
        """Keep the newest state of ``panel``."""
        self._db.execute(
            "INSERT OR REPLACE INTO states VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                panel, str(snap.state), snap.since_ms, int(snap.siren),
                json.dumps(list(snap.open_zones)), int(snap.locked), snap.locked_until_ms,
                None if snap.mode is None else str(snap.mode), received_ms,
            ),
        )  # fmt: skip

    def add_telemetry(self, panel: str, reading: Telemetry, received_ms: int) -> None:
        """Keep one climate reading."""
        self._db.execute(
            "INSERT INTO telemetry VALUES (?, ?, ?, ?, ?)",
            (panel, reading.time_ms, reading.temperature, reading.humidity, received_ms),
        )

    def prune(self, telemetry_before_ms: int, chunks_before_ms: int) -> None:
        """Forget old climate readings, and chunks of photos that never completed.

        Both by the hub's time of receipt: a panel's clock may be wrong (a Pi has no RTC).
        """
        self._db.execute("DELETE FROM telemetry WHERE received_ms < ?", (telemetry_before_ms,))
        self._db.execute("DELETE FROM photo_chunks WHERE received_ms < ?", (chunks_before_ms,))

    def prune_media(self, max_bytes: int, before_ms: int) -> int:
        """Forget photos received before ``before_ms``, then the oldest beyond ``max_bytes``.

        Returns how many were forgotten. Media are published to the cloud when they
        arrive; the hub keeps them only as a bounded cache, so they never fill its disk.
        """
        gone = self._db.execute("DELETE FROM photos WHERE received_ms < ?", (before_ms,)).rowcount
        rows = self._db.execute(
            "SELECT rowid, length(data) FROM photos ORDER BY received_ms DESC, rowid DESC"
        ).fetchall()
        total, drop = 0, []
        for rowid, size in rows:
            total += int(size)
            if total > max_bytes:
                drop.append((int(rowid),))
        if drop:
            self._db.executemany("DELETE FROM photos WHERE rowid = ?", drop)
        return int(gone) + len(drop)

    def media_bytes(self) -> int:
        """Bytes of photos kept."""
        row = self._db.execute("SELECT coalesce(sum(length(data)), 0) FROM photos").fetchone()
        return int(row[0])

    def set_quota(self, max_size: int | None) -> None:
        """Let the file grow to ``max_size`` bytes at most (None: the disk's limit).

        SQLite's ``max_page_count``: beyond it a write fails with ``database or disk is
        full``, as on a full file system (nothing is acknowledged; panels resend).
        """
        pages = 0xFFFFFFFE
        if max_size is not None:
            page_size = int(self._db.execute("PRAGMA page_size").fetchone()[0])
            pages = max(1, max_size // page_size)
        self._db.execute(f"PRAGMA max_page_count = {int(pages)}")

    def has_photo(self, panel: str, photo: str) -> bool:
        """Whether the whole photo is already stored."""
        row = self._db.execute(
            "SELECT 1 FROM photos WHERE panel = ? AND photo = ?", (panel, photo)
        ).fetchone()
        return row is not None

    def add_photo_chunk(self, panel: str, chunk: PhotoChunk, received_ms: int) -> bytes | None:
        """Store one chunk; returns the JPEG once every chunk of the photo is in.

        Raises ``ValueError`` for a chunk that disagrees with the ones already held.
        """
        if chunk.count > MAX_PHOTO_CHUNKS:
            raise ValueError(f"{chunk.count} chunks (at most {MAX_PHOTO_CHUNKS})")
        counts = {
            int(r[0])
            for r in self._db.execute(
                "SELECT DISTINCT count FROM photo_chunks WHERE panel = ? AND photo = ?",
                (panel, chunk.photo_id),
            )
        }
        if counts and counts != {chunk.count}:
            raise ValueError(f"chunk count {chunk.count} disagrees with {sorted(counts)}")
        self._db.execute(
            "INSERT OR REPLACE INTO photo_chunks VALUES (?, ?, ?, ?, ?, ?)",
            (panel, chunk.photo_id, chunk.index, chunk.count, bytes(chunk.data), received_ms),
        )
        rows = self._db.execute(
            "SELECT data FROM photo_chunks WHERE panel = ? AND photo = ? ORDER BY idx",
            (panel, chunk.photo_id),
        ).fetchall()
        if len(rows) < chunk.count:
            return None
        jpeg = b"".join(bytes(r[0]) for r in rows)
        self._db.execute(
            "INSERT OR REPLACE INTO photos VALUES (?, ?, ?, ?)",
            (panel, chunk.photo_id, received_ms, jpeg),
        )
        self._db.execute(
            "DELETE FROM photo_chunks WHERE panel = ? AND photo = ?", (panel, chunk.photo_id)
        )
        return jpeg

    def photo(self, panel: str, photo: str) -> bytes | None:
        """A stored JPEG."""
        row = self._db.execute(
            "SELECT data FROM photos WHERE panel = ? AND photo = ?", (panel, photo)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def state(self, panel: str) -> StateSnapshot | None:
        """The newest stored state of ``panel``."""
        row = self._db.execute(
            "SELECT state, since_ms, siren, open_zones, locked, locked_until_ms, mode "
            "FROM states WHERE panel = ?",
            (panel,),
        ).fetchone()
        if row is None:
            return None
        return StateSnapshot(
            State(row[0]), row[1], bool(row[2]), tuple(json.loads(row[3])), bool(row[4]), row[5],
            None if row[6] is None else Mode(row[6]),
        )  # fmt: skip

    # -- the cloud outbox -------------------------------------------------------------

    def enqueue(self, item: OutboxItem) -> None:
        """Queue one publish for the cloud (inside the caller's transaction, if any)."""
        self._db.execute(
            "INSERT INTO outbox (topic, payload, qos, retain, correlation) VALUES (?, ?, ?, ?, ?)",
            (item.topic, item.payload, item.qos, int(item.retain), item.correlation),
        )

    def outbox_head(self, limit: int) -> list[tuple[int, OutboxItem]]:
        """The oldest ``limit`` publishes, oldest first."""
        rows = self._db.execute(
            "SELECT id, topic, payload, qos, retain, correlation FROM outbox ORDER BY id LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            (int(r[0]), OutboxItem(r[1], bytes(r[2]), int(r[3]), bool(r[4]),
                                   None if r[5] is None else bytes(r[5])))
            for r in rows
        ]  # fmt: skip

    def outbox_remove(self, ids: Sequence[int]) -> None:
        """Forget publishes the cloud broker acknowledged."""
        if not ids:
            return
        with self.transaction():
            self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])

    def outbox_size(self) -> int:
        """How many publishes wait for the cloud."""
        return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    # -- reading the event log --------------------------------------------------------

    def events(
        self,
        *,
        site: str | None = None,
        panel: str | None = None,
        since_ms: int | None = None,
        user: str | None = None,
        type: str | None = None,
        after_rowid: int = 0,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        """Stored events matching every given filter, oldest first (by event time)."""
        where, args = ["rowid > ?"], [after_rowid]
        for column, value in (("site", site), ("panel", panel), ("user", user), ("type", type)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)  # type: ignore[arg-type]
        if since_ms is not None:
            where.append("time_ms >= ?")
            args.append(since_ms)
        sql = (
            f"SELECT rowid, {EVENT_COLUMNS}, received_ms FROM events WHERE {' AND '.join(where)} "  # noqa: S608
            "ORDER BY time_ms, rowid"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_stored(row) for row in self._db.execute(sql, args)]

    def max_event_rowid(self) -> int:
        """The rowid of the newest stored event (0 when there is none)."""
        return int(self._db.execute("SELECT coalesce(max(rowid), 0) FROM events").fetchone()[0])

    def sites(self) -> list[str]:
        """The sites that have events in this store, sorted."""
        rows = self._db.execute("SELECT DISTINCT site FROM events ORDER BY site")
        return [str(row[0]) for row in rows]

    def count_events(self, panel: str | None = None) -> int:
        """How many events are stored (for ``panel``, or for all)."""
        if panel is None:
            return int(self._db.execute("SELECT count(*) FROM events").fetchone()[0])
        row = self._db.execute("SELECT count(*) FROM events WHERE panel = ?", (panel,)).fetchone()
        return int(row[0])


def _stored(row: Sequence[object]) -> StoredEvent:
    (
        rowid,
        site,
        panel,
        seq,
        time_ms,
        type_,
        method,
        cid,
        sia,
        mode,
        user,
        zone,
        tag,
        photo,
        detail,
        received_ms,
    ) = row
    event = Event(
        seq=int(seq),  # type: ignore[call-overload]
        time_ms=int(time_ms),  # type: ignore[call-overload]
        type=EventType(str(type_)),
        method=Method(str(method)),
        cid=str(cid),
        sia=str(sia),
        mode=None if mode is None else Mode(str(mode)),
        user=_opt(user),
        zone=_opt(zone),
        tag=_opt(tag),
        photo=_opt(photo),
        detail=_opt(detail),
    )
    received = None if received_ms is None else int(received_ms)  # type: ignore[call-overload]
    return StoredEvent(int(rowid), str(site), str(panel), event, received)  # type: ignore[call-overload]


def _opt(value: object) -> str | None:
    return None if value is None else str(value)
