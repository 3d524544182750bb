"""The customer area's store: one interface, an embedded SQLite engine behind it.

Views and the MQTT consumer call these methods and never write SQL. Migrations are
numbered files in ``migrations/`` applied in order by the service itself: an embedded
SQLite file for one worker, or a PostgreSQL database that many workers share.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

NAMES_CACHED = 100_000
"""At most this many filter-list names remembered as stored, per process."""

SESSION_DAYS = 30
"""Sessions and app tokens end after this many days; the customer logs in again."""

RATE_WINDOW_MS = 60_000
"""The rate limit counts attempts in this window (one minute)."""

PHOTO_REASON_DAYS = 1
"""A reason waiting for a photo that has not come in this long is dropped (the camera
never answered): it must not label an unrelated photo taken days later."""

PURGE_BATCH = 2000
"""Rows deleted per statement (per transaction) when the retention rule runs."""

MEDIA_BATCH = 50
"""Images and clips deleted per statement (each can be hundreds of kilobytes)."""


@dataclass(frozen=True, slots=True)
class Retention:
    """How long the store keeps what grows with time (``[store] keep_*_days``)."""

    events_days: int = 365
    telemetry_days: int = 31
    media_days: int = 30


def iso(moment: datetime) -> str:
    """``moment`` as the store writes times: ISO-8601 UTC with milliseconds and Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def now_iso() -> str:
    """The time now, ISO-8601 UTC with milliseconds and Z (as events carry it)."""
    return iso(datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class Account:
    """A customer account."""

    id: int
    email: str
    name: str
    mobile: str
    password_hash: str
    lang: str = "en"


@dataclass(frozen=True, slots=True)
class Membership:
    """An account's installation, and the panel user it acts as."""

    number: str
    panel_user: str


@dataclass(frozen=True, slots=True)
class EventFilter:
    """What the activity page asks for."""

    user: str | None = None
    tag: str | None = None
    type: str | None = None
    since: str | None = None  # ISO date or time
    until: str | None = None
    before: tuple[str, int] | None = None  # (time, seq) of the last row of the previous page


Deliver = Callable[[str, str, Any], None]
"""Hands ``(site, kind, value)`` to the live pages of this worker."""


class Store(Protocol):
    """Everything the customer area keeps."""

    def close(self) -> None: ...
    def create_account(
        self,
        email: str,
        name: str,
        mobile: str,
        password_hash: str,
        number: str,
        user: str,
        lang: str = "en",
    ) -> Account | None: ...
    def account_by_email(self, email: str) -> Account | None: ...
    def account(self, account_id: int) -> Account | None: ...
    def set_password(self, account_id: int, password_hash: str) -> None: ...
    def memberships(self, account_id: int) -> list[Membership]: ...
    def failures(self, email: str) -> int: ...
    def add_failure(self, email: str) -> int: ...
    def clear_failures(self, email: str) -> None: ...
    def add_session(self, token_hash: str, account_id: int, kind: str, csrf: str) -> None: ...
    def session(self, token_hash: str, kind: str) -> tuple[int, str] | None: ...
    def drop_session(self, token_hash: str) -> None: ...
    def drop_sessions(self, account_id: int) -> None: ...

    announces: bool
    """Whether ``announce`` reaches every worker (and ``announce=True`` below is done)."""

    def add_event(self, event: Mapping[str, Any], announce: bool = False) -> bool: ...
    def store_events(
        self, events: Sequence[Mapping[str, Any]], announce: bool = False
    ) -> list[bool]: ...
    def events(self, site: str, flt: EventFilter, limit: int) -> list[dict[str, Any]]: ...
    def event_users(self, site: str) -> list[str]: ...
    def last_tag_use(self, site: str, uid: str) -> dict[str, Any] | None: ...
    def set_state(self, site: str, panel: str, state: Mapping[str, Any] | None) -> None: ...
    def set_availability(self, site: str, panel: str, availability: str) -> None: ...
    def panel_states(self, site: str) -> list[dict[str, Any]]: ...
    def add_telemetry(
        self, site: str, panel: str, reading: Mapping[str, Any], announce: bool = False
    ) -> None: ...
    def telemetry(self, site: str, since: str) -> list[dict[str, Any]]: ...
    def photo_requested(self, site: str, panel: str, photo_id: str, **fields: Any) -> None: ...
    def photo_bytes(self, site: str, panel: str, photo_id: str, jpeg: bytes) -> None: ...
    def photo_ready(self, site: str, panel: str, photo_id: str, ready: str) -> None: ...
    def photos(self, site: str, limit: int = 50) -> list[dict[str, Any]]: ...
    def photo_jpeg(self, site: str, photo_id: str) -> bytes | None: ...
    def photos_by_reason(self, site: str, reasons: list[str]) -> dict[str, list[str]]: ...
    def photos_kept(self, site: str, photo_ids: list[str]) -> set[str]: ...
    def event_tags(self, site: str) -> list[str]: ...
    def notify_settings(self, account_id: int) -> dict[str, bool]: ...
    def set_notify(self, account_id: int, settings: Mapping[str, bool]) -> None: ...
    def accounts_of(self, number: str) -> list[tuple[Account, dict[str, bool]]]: ...
    def tag_names(self, number: str) -> dict[str, str]: ...
    def set_tag_name(self, number: str, uid: str, name: str) -> None: ...
    def stolen_tags(self, number: str) -> dict[str, str]: ...
    def mark_stolen(self, number: str, uid: str, account_id: int) -> None: ...
    def rate_hit(self, key: str, now_ms: int, per_minute: int) -> bool: ...
    def expect_photo(self, site: str, camera: str, reason: str) -> None: ...
    def forget_photo(self, site: str, camera: str, reason: str) -> None: ...
    def take_photo_reason(self, site: str, camera: str) -> str | None: ...
    def first_panel(self, site: str) -> str | None: ...
    def announce(self, site: str, kind: str, value: Any) -> bool: ...
    def listen(self, deliver: Deliver) -> Callable[[], None] | None: ...
    def purge(
        self,
        keep: Retention,
        now: datetime | None = None,
        stop: threading.Event | None = None,
        batch: int = PURGE_BATCH,
    ) -> dict[str, int] | None: ...


class _Db(Protocol):
    """One engine's way to run a statement: rows as dicts, '?' placeholders."""

    def all(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]: ...
    def run(self, sql: str, args: Sequence[Any] = ()) -> int: ...


def migrations(engine: str) -> list[tuple[int, str]]:
    """The numbered migrations for ``engine`` ("sqlite" or "postgresql"), in order.

    ``NNN_name.sql`` is the SQL both engines run; ``NNN_name.postgresql.sql``, where it
    exists, replaces it on PostgreSQL (types and statements that differ).
    """
    folder = resources.files("cloud") / "migrations"
    found: dict[int, tuple[bool, str]] = {}
    for item in folder.iterdir():
        name = item.name
        if not name.endswith(".sql") or not name[:3].isdigit():
            continue
        special = name.endswith(".postgresql.sql")
        if special and engine != "postgresql":
            continue
        version = int(name[:3])
        if version in found and found[version][0] and not special:
            continue
        found[version] = (special, item.read_text(encoding="utf-8"))
    return [(v, found[v][1]) for v in sorted(found)]


class SqlStore:
    """What both engines share: every method of ``Store`` in SQL both understand.

    Engines supply ``_db()`` (one statement, committed) and ``_tx()`` (several
    statements in one transaction).
    """

    _names: set[tuple[str, str, str]]
    """(site, kind, value) known to be in event_names (a cache: losing it costs a query)."""
    announces = False

    def _db(self) -> AbstractContextManager[_Db]:
        raise NotImplementedError

    def _tx(self) -> AbstractContextManager[_Db]:
        raise NotImplementedError

    def _all(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._db() as db:
            return db.all(sql, args)

    def _one(self, sql: str, args: Sequence[Any] = ()) -> dict[str, Any] | None:
        rows = self._all(sql, args)
        return rows[0] if rows else None

    def _run(self, sql: str, args: Sequence[Any] = ()) -> int:
        with self._db() as db:
            return db.run(sql, args)

    def close(self) -> None:
        raise NotImplementedError

    # -- accounts -------------------------------------------------------------------

    def create_account(
        self,
        email: str,
        name: str,
        mobile: str,
        password_hash: str,
        number: str,
        user: str,
        lang: str = "en",
    ) -> Account | None:
        with self._tx() as db:
            rows = db.all(
                "INSERT INTO accounts (email, name, mobile, password_hash, created, lang)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (email) DO NOTHING RETURNING id",
                (email, name, mobile, password_hash, now_iso(), lang),
            )
            if not rows:
                return None
            account_id = int(rows[0]["id"])
            db.run("INSERT INTO memberships VALUES (?, ?, ?)", (account_id, number, user))
            db.run("INSERT INTO notify (account_id) VALUES (?)", (account_id,))
        return Account(account_id, email, name, mobile, password_hash, lang)

    def _account(self, row: Mapping[str, Any] | None) -> Account | None:
        if row is None:
            return None
        return Account(
            int(row["id"]),
            row["email"],
            row["name"],
            row["mobile"],
            row["password_hash"],
            row["lang"],
        )

    def account_by_email(self, email: str) -> Account | None:
        return self._account(self._one("SELECT * FROM accounts WHERE email = ?", (email,)))

    def account(self, account_id: int) -> Account | None:
        return self._account(self._one("SELECT * FROM accounts WHERE id = ?", (account_id,)))

    def set_password(self, account_id: int, password_hash: str) -> None:
        self._run("UPDATE accounts SET password_hash = ? WHERE id = ?", (password_hash, account_id))

    def memberships(self, account_id: int) -> list[Membership]:
        rows = self._all(
            "SELECT number, panel_user FROM memberships WHERE account_id = ? ORDER BY number",
            (account_id,),
        )
        return [Membership(r["number"], r["panel_user"]) for r in rows]

    def failures(self, email: str) -> int:
        found = self._one("SELECT count FROM login_failures WHERE email = ?", (email,))
        return int(found["count"]) if found else 0

    def add_failure(self, email: str) -> int:
        rows = self._all(
            "INSERT INTO login_failures VALUES (?, 1)"
            " ON CONFLICT (email) DO UPDATE SET count = login_failures.count + 1"
            " RETURNING count",
            (email,),
        )
        return int(rows[0]["count"])

    def clear_failures(self, email: str) -> None:
        self._run("DELETE FROM login_failures WHERE email = ?", (email,))

    def add_session(self, token_hash: str, account_id: int, kind: str, csrf: str) -> None:
        self._run(
            "INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
            (token_hash, account_id, kind, csrf, now_iso()),
        )

    def session(self, token_hash: str, kind: str) -> tuple[int, str] | None:
        cutoff = datetime.now(UTC) - timedelta(days=SESSION_DAYS)
        row = self._one(
            "SELECT account_id, csrf FROM sessions WHERE token_hash = ? AND kind = ?"
            " AND created >= ?",
            (token_hash, kind, cutoff.strftime("%Y-%m-%dT%H:%M:%S.000Z")),
        )
        return (int(row["account_id"]), str(row["csrf"])) if row else None

    def drop_session(self, token_hash: str) -> None:
        self._run("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))

    def drop_sessions(self, account_id: int) -> None:
        self._run("DELETE FROM sessions WHERE account_id = ?", (account_id,))

    # -- what the hub sends -----------------------------------------------------------

    def add_event(self, event: Mapping[str, Any], announce: bool = False) -> bool:
        """Store ``event`` once; False when it was already stored. With ``announce`` and
        an engine that ``announces``, a new event is announced in the same transaction."""
        with self._tx() as db:
            return self._add_event(db, event)

    def _add_event(self, db: _Db, event: Mapping[str, Any]) -> bool:
        count = db.run(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (site, panel, seq) DO NOTHING",
            _event_values(event),
        )
        if count != 1:
            return False
        for name in self._new_names(event):
            db.run("INSERT INTO event_names VALUES (?, ?, ?) ON CONFLICT DO NOTHING", name)
        self._names_listed(event)
        return True

    def _new_names(self, event: Mapping[str, Any]) -> list[tuple[str, str, str]]:
        """(site, kind, value) of the event's user and tag not known to be listed yet (a
        round trip that would change nothing is skipped)."""
        names = []
        for kind in ("user", "tag"):
            if event.get(kind):
                name = (str(event["site"]), kind, str(event[kind]))
                if name not in self._names:
                    names.append(name)
        return names

    def _names_listed(self, event: Mapping[str, Any]) -> None:
        if len(self._names) > NAMES_CACHED:
            self._names.clear()
        self._names.update(self._new_names(event))

    def add_events(self, events: Iterable[Mapping[str, Any]]) -> int:
        """Bulk insert (benchmarks and imports); returns how many were new."""
        return sum(self.store_events(list(events)))

    def store_events(
        self, events: Sequence[Mapping[str, Any]], announce: bool = False
    ) -> list[bool]:
        """Several events in one transaction (one commit); for each, whether it was new.
        ``announce`` as in ``add_event``."""
        with self._tx() as db:
            return [self._add_event(db, e) for e in events]

    def events(self, site: str, flt: EventFilter, limit: int) -> list[dict[str, Any]]:
        where = ["site = ?"]
        args: list[Any] = [site]
        if flt.user:
            where.append('"user" = ?')
            args.append(flt.user)
        if flt.tag:
            where.append("tag = ?")
            args.append(flt.tag)
        if flt.type:
            where.append("type = ?")
            args.append(flt.type)
        if flt.since:
            where.append("time >= ?")
            args.append(flt.since)
        if flt.until:
            where.append("time < ?")
            args.append(flt.until)
        if flt.before:
            where.append("(time < ? OR (time = ? AND seq < ?))")
            args += [flt.before[0], flt.before[0], flt.before[1]]
        rows = self._all(
            f"SELECT body FROM events WHERE {' AND '.join(where)}"  # noqa: S608 (fixed clauses)
            " ORDER BY time DESC, seq DESC LIMIT ?",
            (*args, limit),
        )
        return [json.loads(r["body"]) for r in rows]

    def event_users(self, site: str) -> list[str]:
        rows = self._all(
            "SELECT value FROM event_names WHERE site = ? AND kind = 'user' ORDER BY value",
            (site,),
        )
        return [r["value"] for r in rows]

    def last_tag_use(self, site: str, uid: str) -> dict[str, Any] | None:
        row = self._one(
            "SELECT body FROM events WHERE site = ? AND tag = ? AND method = 'tag'"
            " ORDER BY time DESC, seq DESC LIMIT 1",
            (site, uid),
        )
        return json.loads(row["body"]) if row else None

    def set_state(self, site: str, panel: str, state: Mapping[str, Any] | None) -> None:
        body = json.dumps(dict(state)) if state is not None else None
        self._run(
            "INSERT INTO panel_state (site, panel, state, updated) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (site, panel) DO UPDATE SET state = excluded.state,"
            " updated = excluded.updated",
            (site, panel, body, now_iso()),
        )

    def set_availability(self, site: str, panel: str, availability: str) -> None:
        self._run(
            "INSERT INTO panel_state (site, panel, availability, updated) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (site, panel) DO UPDATE SET availability = excluded.availability,"
            " updated = excluded.updated",
            (site, panel, availability, now_iso()),
        )

    def panel_states(self, site: str) -> list[dict[str, Any]]:
        rows = self._all(
            "SELECT panel, state, availability, updated FROM panel_state WHERE site = ?"
            " ORDER BY panel",
            (site,),
        )
        return [
            {
                "panel": r["panel"],
                "state": json.loads(r["state"]) if r["state"] else None,
                "availability": r["availability"],
                "updated": r["updated"],
            }
            for r in rows
        ]

    def add_telemetry(
        self, site: str, panel: str, reading: Mapping[str, Any], announce: bool = False
    ) -> None:
        """Store a reading (announced in the same statement: see ``add_event``)."""
        self._run(
            "INSERT INTO telemetry VALUES (?, ?, ?, ?, ?)", _reading_values(site, panel, reading)
        )

    def telemetry(self, site: str, since: str) -> list[dict[str, Any]]:
        return self._all(
            "SELECT time, temperature, humidity FROM telemetry WHERE site = ? AND time >= ?"
            " ORDER BY time",
            (site, since),
        )

    def photo_requested(self, site: str, panel: str, photo_id: str, **fields: Any) -> None:
        self._run(
            "INSERT INTO photos"
            ' (site, panel, photo_id, camera, "user", method, requested, reason, kind, stored)'
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (site, panel, photo_id) DO UPDATE SET camera = excluded.camera,"
            ' "user" = excluded."user", method = excluded.method,'
            " requested = excluded.requested, reason = coalesce(photos.reason, excluded.reason),"
            " kind = excluded.kind",
            (
                site,
                panel,
                photo_id,
                fields.get("camera"),
                fields.get("user"),
                fields.get("method"),
                fields.get("requested"),
                fields.get("reason"),
                fields.get("kind") or "photo",
                now_iso(),
            ),
        )

    def photo_bytes(self, site: str, panel: str, photo_id: str, jpeg: bytes) -> None:
        self._run(
            "INSERT INTO photos (site, panel, photo_id, jpeg, stored) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (site, panel, photo_id) DO UPDATE SET jpeg = excluded.jpeg",
            (site, panel, photo_id, jpeg, now_iso()),
        )

    def photo_ready(self, site: str, panel: str, photo_id: str, ready: str) -> None:
        self._run(
            "INSERT INTO photos (site, panel, photo_id, ready, stored) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (site, panel, photo_id) DO UPDATE SET ready = excluded.ready",
            (site, panel, photo_id, ready, now_iso()),
        )

    def photos(self, site: str, limit: int = 50) -> list[dict[str, Any]]:
        rows = self._all(
            'SELECT panel, photo_id, camera, "user", method, requested, ready, reason, kind,'
            " jpeg IS NOT NULL AS has_jpeg FROM photos WHERE site = ?"
            " ORDER BY coalesce(requested, ready) DESC, photo_id DESC LIMIT ?",
            (site, limit),
        )
        return [{**r, "has_jpeg": bool(r["has_jpeg"])} for r in rows]

    def photo_jpeg(self, site: str, photo_id: str) -> bytes | None:
        row = self._one("SELECT jpeg FROM photos WHERE site = ? AND photo_id = ?", (site, photo_id))
        return bytes(row["jpeg"]) if row and row["jpeg"] is not None else None

    def photos_by_reason(self, site: str, reasons: list[str]) -> dict[str, list[str]]:
        if not reasons:
            return {}
        marks = ",".join("?" * len(reasons))
        rows = self._all(
            f"SELECT reason, photo_id FROM photos WHERE site = ? AND reason IN ({marks})"  # noqa: S608
            " ORDER BY photo_id",
            (site, *reasons),
        )
        out: dict[str, list[str]] = {}
        for r in rows:
            out.setdefault(r["reason"], []).append(r["photo_id"])
        return out

    def photos_kept(self, site: str, photo_ids: list[str]) -> set[str]:
        """Which of ``photo_ids`` the store still has (the retention rule deletes images)."""
        if not photo_ids:
            return set()
        marks = ",".join("?" * len(photo_ids))
        rows = self._all(
            f"SELECT photo_id FROM photos WHERE site = ? AND photo_id IN ({marks})",  # noqa: S608
            (site, *photo_ids),
        )
        return {str(r["photo_id"]) for r in rows}

    def event_tags(self, site: str) -> list[str]:
        rows = self._all(
            "SELECT value FROM event_names WHERE site = ? AND kind = 'tag' ORDER BY value", (site,)
        )
        return [r["value"] for r in rows]

    # -- settings ----------------------------------------------------------------------

    def notify_settings(self, account_id: int) -> dict[str, bool]:
        row = self._one(
            "SELECT on_alarm, on_photo, on_arm FROM notify WHERE account_id = ?", (account_id,)
        )
        if row is None:
            return {"on_alarm": True, "on_photo": False, "on_arm": False}
        return {k: bool(row[k]) for k in ("on_alarm", "on_photo", "on_arm")}

    def set_notify(self, account_id: int, settings: Mapping[str, bool]) -> None:
        self._run(
            "INSERT INTO notify VALUES (?, ?, ?, ?) ON CONFLICT (account_id) DO UPDATE SET"
            " on_alarm = excluded.on_alarm, on_photo = excluded.on_photo,"
            " on_arm = excluded.on_arm",
            (
                account_id,
                int(settings.get("on_alarm", False)),
                int(settings.get("on_photo", False)),
                int(settings.get("on_arm", False)),
            ),
        )

    def accounts_of(self, number: str) -> list[tuple[Account, dict[str, bool]]]:
        rows = self._all(
            "SELECT a.* FROM accounts a JOIN memberships m ON m.account_id = a.id"
            " WHERE m.number = ? ORDER BY a.id",
            (number,),
        )
        out = []
        for r in rows:
            acc = self._account(r)
            assert acc is not None
            out.append((acc, self.notify_settings(acc.id)))
        return out

    def tag_names(self, number: str) -> dict[str, str]:
        rows = self._all("SELECT uid, name FROM tag_names WHERE number = ?", (number,))
        return {r["uid"]: r["name"] for r in rows}

    def set_tag_name(self, number: str, uid: str, name: str) -> None:
        self._run(
            "INSERT INTO tag_names VALUES (?, ?, ?)"
            " ON CONFLICT (number, uid) DO UPDATE SET name = excluded.name",
            (number, uid, name),
        )

    def stolen_tags(self, number: str) -> dict[str, str]:
        rows = self._all("SELECT uid, reported FROM stolen_tags WHERE number = ?", (number,))
        return {r["uid"]: r["reported"] for r in rows}

    def mark_stolen(self, number: str, uid: str, account_id: int) -> None:
        self._run(
            "INSERT INTO stolen_tags VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (number, uid, now_iso(), account_id),
        )

    # -- what every worker shares ------------------------------------------------------

    def rate_hit(self, key: str, now_ms: int, per_minute: int) -> bool:
        """Count one attempt for ``key`` in the minute before ``now_ms``; False when over."""
        with self._tx() as db:
            stale = now_ms - RATE_WINDOW_MS
            db.run("DELETE FROM rate_hits WHERE key = ? AND at_ms <= ?", (key, stale))
            rows = db.all("SELECT count(*) AS n FROM rate_hits WHERE key = ?", (key,))
            if int(rows[0]["n"]) >= per_minute:
                return False
            db.run("INSERT INTO rate_hits VALUES (?, ?)", (key, now_ms))
        return True

    def expect_photo(self, site: str, camera: str, reason: str) -> None:
        self._run(
            "INSERT INTO photo_reasons VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (site, camera, reason, now_iso()),
        )

    def forget_photo(self, site: str, camera: str, reason: str) -> None:
        self._run(
            "DELETE FROM photo_reasons WHERE site = ? AND camera = ? AND reason = ?",
            (site, camera, reason),
        )

    def take_photo_reason(self, site: str, camera: str) -> str | None:
        """The oldest reason waiting for a photo of ``camera``, taken (once, by one worker)."""
        rows = self._all(
            "DELETE FROM photo_reasons WHERE site = ? AND camera = ? AND reason = ("
            " SELECT reason FROM photo_reasons WHERE site = ? AND camera = ?"
            " ORDER BY added, reason LIMIT 1) RETURNING reason",
            (site, camera, site, camera),
        )
        return str(rows[0]["reason"]) if rows else None

    def announce(self, site: str, kind: str, value: Any) -> bool:
        """Tell every worker's live pages; False when this engine has no other worker
        (the caller hands it to its own pages)."""
        return False

    def listen(self, deliver: Deliver) -> Callable[[], None] | None:
        """Call ``deliver`` for what any worker announces; returns how to stop (None: no
        other worker can announce anything)."""
        return None

    # -- the retention rule ------------------------------------------------------------

    def purge(
        self,
        keep: Retention,
        now: datetime | None = None,
        stop: threading.Event | None = None,
        batch: int = PURGE_BATCH,
    ) -> dict[str, int] | None:
        """Delete what the retention rule no longer keeps; how many rows went, per table.

        Events, telemetry and images older than ``keep``'s days go, and what only made
        sense for a while: expired sessions and app tokens, rate-limit attempts older than
        the limit's minute, photo reasons no photo came for. Each statement deletes at most
        ``batch`` rows (images: fewer) and commits, so a first purge of a long backlog never
        holds a lock for long; ``stop`` set ends it between two statements. None when
        another worker is purging (PostgreSQL: one at a time, the others skip).
        """
        moment = now or datetime.now(UTC)

        def before(days: float) -> str:
            return iso(moment - timedelta(days=days))

        media = max(1, min(batch, MEDIA_BATCH))
        now_ms = int(moment.timestamp() * 1000)
        plan: list[tuple[str, str, str | int, str | int, int]] = [
            # table, column, lowest value, cut-off, rows per statement
            ("events", "time", "", before(keep.events_days), batch),
            ("telemetry", "time", "", before(keep.telemetry_days), batch),
            ("photos", "stored", "", before(keep.media_days), media),
            ("sessions", "created", "", before(SESSION_DAYS), batch),
            ("photo_reasons", "added", "", before(PHOTO_REASON_DAYS), batch),
            ("rate_hits", "at_ms", -(2**62), now_ms - RATE_WINDOW_MS, batch),
        ]
        counts: dict[str, int] = {}
        with self._purging() as db:
            if db is None:
                return None
            for table, column, low, cutoff, size in plan:
                counts[table] = 0
                while stop is None or not stop.is_set():
                    gone = db.all(self._purge_sql(table, column), (low, cutoff, size, cutoff))
                    counts[table] += len(gone)
                    if len(gone) < size:
                        break
                    # The next statement starts where this one ended, not at the index's
                    # left edge, past the entries of rows just deleted.
                    low = max(row[column] for row in gone)
        return counts

    def _purging(self) -> AbstractContextManager[_Db | None]:
        """A connection to purge on, held for the whole purge; None when another has it."""
        raise NotImplementedError

    def _purge_sql(self, table: str, column: str) -> str:
        """Delete the oldest rows of ``table`` whose ``column`` is from a lowest value up to
        (not including) a cut-off, at most a batch of them, returning their ``column``
        (arguments: lowest, cut-off, batch size, cut-off again)."""
        raise NotImplementedError

    def first_panel(self, site: str) -> str | None:
        """A panel heard of at ``site`` (commands go to it when the config names none)."""
        row = self._one(
            "SELECT panel FROM panel_state WHERE site = ? ORDER BY panel LIMIT 1", (site,)
        )
        if row is None:
            row = self._one("SELECT panel FROM events WHERE site = ? LIMIT 1", (site,))
        return str(row["panel"]) if row else None


class _Statements:
    """Each statement on its own through the store's ``_db`` (committed one by one)."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def all(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return self.store._all(sql, args)

    def run(self, sql: str, args: Sequence[Any] = ()) -> int:
        return self.store._run(sql, args)


class StoreUnavailable(Exception):
    """The database cannot be reached or cannot write now (not: this input is wrong).
    What was being stored must be kept and tried again, not dropped."""


POOL_WAIT_S = 10.0
"""Longest wait for a pooled PostgreSQL connection before the store is unavailable."""


@contextmanager
def _unavailable() -> Iterator[None]:
    """PostgreSQL's connection failures (lost, refused, none free in time) as
    ``StoreUnavailable``."""
    import psycopg
    from psycopg_pool import PoolTimeout

    try:
        yield
    except (psycopg.OperationalError, PoolTimeout) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StoreUnavailable(reason) from exc


def _announcement(site: str, kind: str, value: Any) -> str:
    """A NOTIFY payload; one too big to carry goes without its value (the page reloads)."""
    payload = json.dumps([site, kind, value], separators=(",", ":"))
    if len(payload.encode()) > NOTIFY_MAX:
        payload = json.dumps([site, kind, None])
    return payload


def _reading_values(site: str, panel: str, reading: Mapping[str, Any]) -> tuple[Any, ...]:
    """The telemetry table's columns of one reading, in order."""
    return (
        site,
        panel,
        str(reading.get("time") or now_iso()),
        _num(reading.get("temperature")),
        _num(reading.get("humidity")),
    )


def _event_values(event: Mapping[str, Any]) -> tuple[Any, ...]:
    """The events table's columns of ``event``, in order."""
    return (
        event["site"],
        event["panel"],
        int(event["seq"]),
        str(event["time"]),
        str(event["type"]),
        event.get("mode"),
        event.get("user"),
        str(event.get("method") or "system"),
        event.get("zone"),
        event.get("tag"),
        event.get("photo"),
        event.get("detail"),
        json.dumps(dict(event), separators=(",", ":")),
    )


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}


class _SqliteDb:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def all(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return self.conn.execute(sql, tuple(args)).fetchall()

    def run(self, sql: str, args: Sequence[Any] = ()) -> int:
        return self.conn.execute(sql, tuple(args)).rowcount


class SqliteStore(SqlStore):
    """The embedded engine: one SQLite file in WAL mode, for one worker."""

    def __init__(self, path: str | Path, *, version: int | None = None) -> None:
        self._names = set()
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.row_factory = _dict_row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self._lock = threading.RLock()
        self._purge_lock = threading.Lock()
        self._plain = _SqliteDb(self.db)
        self._migrate(version)

    def _migrate(self, target: int | None) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        current = self.db.execute("SELECT max(version) AS v FROM schema_version").fetchone()["v"]
        for version, script in migrations("sqlite"):
            if version <= (current or 0) or (target is not None and version > target):
                continue
            self.db.executescript(
                f"BEGIN;\n{script}\nINSERT INTO schema_version VALUES ({version});\nCOMMIT;"
            )

    def version(self) -> int:
        """The schema version in the file."""
        row = self.db.execute("SELECT max(version) AS v FROM schema_version").fetchone()
        return int(row["v"] or 0)

    @contextmanager
    def _db(self) -> Iterator[_Db]:
        with self._lock:
            yield self._plain

    @contextmanager
    def _tx(self) -> Iterator[_Db]:
        with self._lock:
            self.db.execute("BEGIN")
            try:
                yield self._plain
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    @contextmanager
    def _purging(self) -> Iterator[_Db | None]:
        """One worker: a purge at a time in this process; other writers get the file
        between two statements."""
        if not self._purge_lock.acquire(blocking=False):
            yield None
            return
        try:
            yield _Statements(self)
        finally:
            self._purge_lock.release()

    def _purge_sql(self, table: str, column: str) -> str:
        return (
            f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table}"  # noqa: S608 (names are ours)
            f" WHERE {column} >= ? AND {column} < ? ORDER BY {column} LIMIT ?) AND {column} < ?"
            f" RETURNING {column}"
        )

    def close(self) -> None:
        self.db.close()


LIVE_CHANNEL = "centinela_live"
NOTIFY_MAX = 7900  # PostgreSQL's NOTIFY payload limit is 8000 bytes
_LOGGER = logging.getLogger(__name__)
_MARK = re.compile(r"\?")
MIGRATION_LOCK = 0x63656E74  # pg_advisory_xact_lock key: one worker migrates at a time
PURGE_LOCK = MIGRATION_LOCK + 1  # pg_try_advisory_lock key: one worker purges at a time


def _pg_sql(sql: str) -> str:
    """'?' placeholders as psycopg's '%s' (no statement here has a literal '?' or '%')."""
    return _MARK.sub("%s", sql)


class _PgDb:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def all(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self.conn.execute(_pg_sql(sql), tuple(args))
        return list(cur.fetchall()) if cur.description else []

    def run(self, sql: str, args: Sequence[Any] = ()) -> int:
        return int(self.conn.execute(_pg_sql(sql), tuple(args)).rowcount)


class PostgresStore(SqlStore):
    """The operator's engine: a PostgreSQL database through a connection pool.

    Any number of workers share it; the first to start migrates the schema (the others
    wait on an advisory lock and find it done).
    """

    def __init__(
        self,
        url: str,
        *,
        password: str | None = None,
        version: int | None = None,
        min_size: int = 1,
        max_size: int = 8,
    ) -> None:
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        self.url = url
        self._names = set()
        self._password = password
        self.pool: ConnectionPool[Any] = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={
                "autocommit": True,
                "row_factory": dict_row,
                **({"password": password} if password else {}),
            },
            open=False,
            timeout=POOL_WAIT_S,
        )
        self.pool.open(wait=True, timeout=30)
        try:
            self._migrate(version)
        except BaseException:
            self.pool.close()
            raise

    def _migrate(self, target: int | None) -> None:
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT max(version) AS v FROM schema_version").fetchone()
            current = int(row["v"] or 0) if row else 0
            for version, script in migrations("postgresql"):
                if version <= current or (target is not None and version > target):
                    continue
                conn.execute(script.encode())
                conn.execute("INSERT INTO schema_version VALUES (%s)", (version,))

    def version(self) -> int:
        """The schema version in the database."""
        row = self._one("SELECT max(version) AS v FROM schema_version")
        return int(row["v"] or 0) if row else 0

    @contextmanager
    def _db(self) -> Iterator[_Db]:
        with _unavailable(), self.pool.connection() as conn:
            yield _PgDb(conn)

    @contextmanager
    def _tx(self) -> Iterator[_Db]:
        with _unavailable(), self.pool.connection() as conn, conn.transaction():
            yield _PgDb(conn)

    @contextmanager
    def _purging(self) -> Iterator[_Db | None]:
        """The purge lock on one pooled connection, for the whole purge: a worker that
        finds it taken skips this round; one that dies mid-way releases it with its
        connection."""
        with self.pool.connection() as conn:
            row = conn.execute("SELECT pg_try_advisory_lock(%s) AS got", (PURGE_LOCK,)).fetchone()
            if not row or not row["got"]:
                yield None
                return
            try:
                yield _PgDb(conn)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (PURGE_LOCK,))

    def _purge_sql(self, table: str, column: str) -> str:
        # ctid: telemetry has no key. The outer test again: a row updated since (a photo's
        # bytes arriving) is judged on its new version.
        return (
            f"DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table}"  # noqa: S608 (names are ours)
            f" WHERE {column} >= ? AND {column} < ? ORDER BY {column} LIMIT ?)) AND {column} < ?"
            f" RETURNING {column}"
        )

    announces = True

    def add_event(self, event: Mapping[str, Any], announce: bool = False) -> bool:
        """One event as a lot of one (``store_events``): one statement, one round trip."""
        return self.store_events([event], announce)[0]

    def store_events(
        self, events: Sequence[Mapping[str, Any]], announce: bool = False
    ) -> list[bool]:
        """One statement for the lot: the new events, their names in the filter lists and
        (``announce``) one NOTIFY each, in the order given, all in one transaction."""
        firsts: dict[tuple[str, str, int], int] = {}
        rows: list[Any] = []
        for n, event in enumerate(events):
            key = (str(event["site"]), str(event["panel"]), int(event["seq"]))
            if key in firsts:
                continue  # the same event twice in one lot: the first one counts
            firsts[key] = n
            note = _announcement(key[0], "event", dict(event)) if announce else None
            rows += [n, *_event_values(event), note]
        if not rows:
            return [False] * len(events)
        one = "(?::int, ?, ?, ?::bigint, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?::text)"
        stored = self._all(
            'WITH v (n, site, panel, seq, time, type, mode, "user", method, zone, tag, photo,'  # noqa: S608 (placeholders only)
            " detail, body, note) AS (VALUES " + ", ".join([one] * len(firsts)) + "),"
            ' e AS (INSERT INTO events SELECT site, panel, seq, time, type, mode, "user",'
            " method, zone, tag, photo, detail, body FROM v"
            ' ON CONFLICT (site, panel, seq) DO NOTHING RETURNING site, panel, seq, "user", tag),'
            " names AS (INSERT INTO event_names SELECT DISTINCT e.site, k.kind, k.value FROM e,"
            " LATERAL (VALUES ('user', e.\"user\"), ('tag', e.tag)) AS k (kind, value)"
            " WHERE k.value IS NOT NULL ON CONFLICT DO NOTHING),"
            " new AS (SELECT v.n, v.note FROM e JOIN v USING (site, panel, seq) ORDER BY v.n)"
            " SELECT new.n FROM new LEFT JOIN LATERAL"
            " (SELECT pg_notify(?, new.note) WHERE new.note IS NOT NULL) AS x ON true",
            (*rows, LIVE_CHANNEL),
        )
        new = {int(r["n"]) for r in stored}
        return [n in new for n in range(len(events))]

    def add_telemetry(
        self, site: str, panel: str, reading: Mapping[str, Any], announce: bool = False
    ) -> None:
        """The reading and (``announce``) its NOTIFY in one statement."""
        if not announce:
            super().add_telemetry(site, panel, reading)
            return
        self._all(
            "WITH t AS (INSERT INTO telemetry VALUES (?, ?, ?, ?, ?) RETURNING site)"
            " SELECT pg_notify(?, ?) FROM t",
            (
                *_reading_values(site, panel, reading),
                LIVE_CHANNEL,
                _announcement(site, "telemetry", dict(reading)),
            ),
        )

    def announce(self, site: str, kind: str, value: Any) -> bool:
        """NOTIFY every worker (PostgreSQL's LISTEN/NOTIFY: delivered on commit, to each
        listening connection once, in order)."""
        self._run("SELECT pg_notify(?, ?)", (LIVE_CHANNEL, _announcement(site, kind, value)))
        return True

    def listen(self, deliver: Deliver) -> Callable[[], None] | None:
        stop = threading.Event()
        ready = threading.Event()
        thread = threading.Thread(
            target=self._listen, args=(deliver, stop, ready), name="cloud-live", daemon=True
        )
        thread.start()
        ready.wait(30)

        def close() -> None:
            stop.set()
            thread.join()

        return close

    def _listen(self, deliver: Deliver, stop: threading.Event, ready: threading.Event) -> None:
        import psycopg

        extra: dict[str, Any] = {"password": self._password} if self._password else {}
        while not stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, **extra) as conn:
                    conn.execute(f"LISTEN {LIVE_CHANNEL}")
                    ready.set()
                    while not stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            try:
                                site, kind, value = json.loads(note.payload)
                                deliver(str(site), str(kind), value)
                            except (ValueError, TypeError):
                                _LOGGER.warning("ignored a malformed live notification")
            except psycopg.OperationalError as exc:
                _LOGGER.info("live notifications down, retrying: %s", exc)
                stop.wait(1.0)

    def close(self) -> None:
        self.pool.close()


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def open_store(url: str, password: str | None = None) -> Store:
    """The store named by a ``[store] url`` (and PostgreSQL's password, read from its file)."""
    if url.startswith("sqlite:///"):
        return SqliteStore(url.removeprefix("sqlite://"))
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url, password=password)
    raise ValueError(f"unsupported store URL {url!r}")
