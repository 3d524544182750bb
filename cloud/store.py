"""The customer area's store: one interface, an embedded SQLite engine behind it.

Views and the MQTT consumer call these methods and never write SQL. Migrations are
numbered files in ``migrations/`` applied in order by the service itself; a PostgreSQL
engine implements the same ``Store`` protocol.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

SESSION_DAYS = 30
"""Sessions and app tokens end after this many days; the customer logs in again."""


def now_iso() -> str:
    """The time now, ISO-8601 UTC with milliseconds and Z (as events carry it)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


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
    def add_event(self, event: Mapping[str, Any]) -> bool: ...
    def events(self, site: str, flt: EventFilter, limit: int) -> list[dict[str, Any]]: ...
    def event_users(self, site: str) -> list[str]: ...
    def last_tag_use(self, site: str, uid: str) -> dict[str, Any] | None: ...
    def set_state(self, site: str, panel: str, state: Mapping[str, Any] | None) -> None: ...
    def set_availability(self, site: str, panel: str, availability: str) -> None: ...
    def panel_states(self, site: str) -> list[dict[str, Any]]: ...
    def add_telemetry(self, site: str, panel: str, reading: Mapping[str, Any]) -> None: ...
    def telemetry(self, site: str, since: str) -> list[dict[str, Any]]: ...
    def photo_requested(self, site: str, panel: str, photo_id: str, **fields: Any) -> None: ...
    def photo_bytes(self, site: str, panel: str, photo_id: str, jpeg: bytes) -> None: ...
    def photo_ready(self, site: str, panel: str, photo_id: str, ready: str) -> None: ...
    def photos(self, site: str, limit: int = 50) -> list[dict[str, Any]]: ...
    def photo_jpeg(self, site: str, photo_id: str) -> bytes | None: ...
    def photos_by_reason(self, site: str, reasons: list[str]) -> dict[str, list[str]]: ...
    def event_tags(self, site: str) -> list[str]: ...
    def notify_settings(self, account_id: int) -> dict[str, bool]: ...
    def set_notify(self, account_id: int, settings: Mapping[str, bool]) -> None: ...
    def accounts_of(self, number: str) -> list[tuple[Account, dict[str, bool]]]: ...
    def tag_names(self, number: str) -> dict[str, str]: ...
    def set_tag_name(self, number: str, uid: str, name: str) -> None: ...
    def stolen_tags(self, number: str) -> dict[str, str]: ...
    def mark_stolen(self, number: str, uid: str, account_id: int) -> None: ...


class SqliteStore:
    """The embedded engine: one SQLite file in WAL mode."""

    def __init__(self, path: str | Path) -> None:
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _migrate(self) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = self.db.execute("SELECT max(version) FROM schema_version").fetchone()
        current = row[0] or 0
        folder = resources.files("cloud") / "migrations"
        for item in sorted(folder.iterdir(), key=lambda p: p.name):
            if not item.name.endswith(".sql"):
                continue
            version = int(item.name.split("_", 1)[0])
            if version <= current:
                continue
            script = item.read_text(encoding="utf-8")
            self.db.executescript(
                f"BEGIN;\n{script}\nINSERT INTO schema_version VALUES ({version});\nCOMMIT;"
            )

    def close(self) -> None:
        self.db.close()

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
        try:
            with self.db:
                self.db.execute("BEGIN")
                cur = self.db.execute(
                    "INSERT INTO accounts (email, name, mobile, password_hash, created, lang)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (email, name, mobile, password_hash, now_iso(), lang),
                )
                account_id = int(cur.lastrowid or 0)
                self.db.execute(
                    "INSERT INTO memberships VALUES (?, ?, ?)", (account_id, number, user)
                )
                self.db.execute("INSERT INTO notify (account_id) VALUES (?)", (account_id,))
        except sqlite3.IntegrityError:
            return None
        return Account(account_id, email, name, mobile, password_hash, lang)

    def _account(self, row: sqlite3.Row | None) -> Account | None:
        if row is None:
            return None
        return Account(
            row["id"], row["email"], row["name"], row["mobile"], row["password_hash"], row["lang"]
        )

    def account_by_email(self, email: str) -> Account | None:
        return self._account(
            self.db.execute("SELECT * FROM accounts WHERE email = ?", (email,)).fetchone()
        )

    def account(self, account_id: int) -> Account | None:
        return self._account(
            self.db.execute("SELECT * FROM accounts WHERE id = ?", (account_id,)).fetchone()
        )

    def set_password(self, account_id: int, password_hash: str) -> None:
        self.db.execute(
            "UPDATE accounts SET password_hash = ? WHERE id = ?", (password_hash, account_id)
        )

    def memberships(self, account_id: int) -> list[Membership]:
        rows = self.db.execute(
            "SELECT number, panel_user FROM memberships WHERE account_id = ? ORDER BY number",
            (account_id,),
        )
        return [Membership(r["number"], r["panel_user"]) for r in rows]

    def failures(self, email: str) -> int:
        row = self.db.execute("SELECT count FROM login_failures WHERE email = ?", (email,))
        found = row.fetchone()
        return int(found[0]) if found else 0

    def add_failure(self, email: str) -> int:
        self.db.execute(
            "INSERT INTO login_failures VALUES (?, 1)"
            " ON CONFLICT (email) DO UPDATE SET count = count + 1",
            (email,),
        )
        return self.failures(email)

    def clear_failures(self, email: str) -> None:
        self.db.execute("DELETE FROM login_failures WHERE email = ?", (email,))

    def add_session(self, token_hash: str, account_id: int, kind: str, csrf: str) -> None:
        self.db.execute(
            "INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
            (token_hash, account_id, kind, csrf, now_iso()),
        )

    def session(self, token_hash: str, kind: str) -> tuple[int, str] | None:
        cutoff = datetime.now(UTC) - timedelta(days=SESSION_DAYS)
        row = self.db.execute(
            "SELECT account_id, csrf FROM sessions WHERE token_hash = ? AND kind = ?"
            " AND created >= ?",
            (token_hash, kind, cutoff.strftime("%Y-%m-%dT%H:%M:%S.000Z")),
        ).fetchone()
        return (int(row[0]), str(row[1])) if row else None

    def drop_session(self, token_hash: str) -> None:
        self.db.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))

    def drop_sessions(self, account_id: int) -> None:
        self.db.execute("DELETE FROM sessions WHERE account_id = ?", (account_id,))

    # -- what the hub sends -----------------------------------------------------------

    def add_event(self, event: Mapping[str, Any]) -> bool:
        cur = self.db.execute(
            "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
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
            ),
        )
        if cur.rowcount != 1:
            return False
        for kind in ("user", "tag"):
            if event.get(kind):
                self.db.execute(
                    "INSERT OR IGNORE INTO event_names VALUES (?, ?, ?)",
                    (event["site"], kind, str(event[kind])),
                )
        return True

    def events(self, site: str, flt: EventFilter, limit: int) -> list[dict[str, Any]]:
        where = ["site = ?"]
        args: list[Any] = [site]
        if flt.user:
            where.append("user = ?")
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
        rows = self.db.execute(
            f"SELECT body FROM events WHERE {' AND '.join(where)}"  # noqa: S608 (fixed clauses)
            " ORDER BY time DESC, seq DESC LIMIT ?",
            (*args, limit),
        )
        return [json.loads(r[0]) for r in rows]

    def event_users(self, site: str) -> list[str]:
        rows = self.db.execute(
            "SELECT value FROM event_names WHERE site = ? AND kind = 'user' ORDER BY value",
            (site,),
        )
        return [r[0] for r in rows]

    def last_tag_use(self, site: str, uid: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT body FROM events WHERE site = ? AND tag = ? AND method = 'tag'"
            " ORDER BY time DESC, seq DESC LIMIT 1",
            (site, uid),
        ).fetchone()
        return json.loads(row[0]) if row else None

    def set_state(self, site: str, panel: str, state: Mapping[str, Any] | None) -> None:
        body = json.dumps(dict(state)) if state is not None else None
        self.db.execute(
            "INSERT INTO panel_state (site, panel, state, updated) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (site, panel) DO UPDATE SET state = excluded.state,"
            " updated = excluded.updated",
            (site, panel, body, now_iso()),
        )

    def set_availability(self, site: str, panel: str, availability: str) -> None:
        self.db.execute(
            "INSERT INTO panel_state (site, panel, availability, updated) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (site, panel) DO UPDATE SET availability = excluded.availability,"
            " updated = excluded.updated",
            (site, panel, availability, now_iso()),
        )

    def panel_states(self, site: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
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

    def add_telemetry(self, site: str, panel: str, reading: Mapping[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO telemetry VALUES (?, ?, ?, ?, ?)",
            (
                site,
                panel,
                str(reading.get("time") or now_iso()),
                _num(reading.get("temperature")),
                _num(reading.get("humidity")),
            ),
        )

    def telemetry(self, site: str, since: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT time, temperature, humidity FROM telemetry WHERE site = ? AND time >= ?"
            " ORDER BY time",
            (site, since),
        )
        return [dict(r) for r in rows]

    def photo_requested(self, site: str, panel: str, photo_id: str, **fields: Any) -> None:
        self.db.execute(
            "INSERT INTO photos"
            " (site, panel, photo_id, camera, user, method, requested, reason, kind)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (site, panel, photo_id) DO UPDATE SET camera = excluded.camera,"
            " user = excluded.user, method = excluded.method, requested = excluded.requested,"
            " reason = coalesce(photos.reason, excluded.reason), kind = excluded.kind",
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
            ),
        )

    def photo_bytes(self, site: str, panel: str, photo_id: str, jpeg: bytes) -> None:
        self.db.execute(
            "INSERT INTO photos (site, panel, photo_id, jpeg) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (site, panel, photo_id) DO UPDATE SET jpeg = excluded.jpeg",
            (site, panel, photo_id, jpeg),
        )

    def photo_ready(self, site: str, panel: str, photo_id: str, ready: str) -> None:
        self.db.execute(
            "INSERT INTO photos (site, panel, photo_id, ready) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (site, panel, photo_id) DO UPDATE SET ready = excluded.ready",
            (site, panel, photo_id, ready),
        )

    def photos(self, site: str, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT panel, photo_id, camera, user, method, requested, ready, reason, kind,"
            " jpeg IS NOT NULL AS has_jpeg FROM photos WHERE site = ?"
            " ORDER BY coalesce(requested, ready) DESC, photo_id DESC LIMIT ?",
            (site, limit),
        )
        return [dict(r) for r in rows]

    def photo_jpeg(self, site: str, photo_id: str) -> bytes | None:
        row = self.db.execute(
            "SELECT jpeg FROM photos WHERE site = ? AND photo_id = ?", (site, photo_id)
        ).fetchone()
        return bytes(row[0]) if row and row[0] is not None else None

    def photos_by_reason(self, site: str, reasons: list[str]) -> dict[str, list[str]]:
        if not reasons:
            return {}
        marks = ",".join("?" * len(reasons))
        rows = self.db.execute(
            f"SELECT reason, photo_id FROM photos WHERE site = ? AND reason IN ({marks})"  # noqa: S608
            " ORDER BY photo_id",
            (site, *reasons),
        )
        out: dict[str, list[str]] = {}
        for r in rows:
            out.setdefault(r[0], []).append(r[1])
        return out

    def event_tags(self, site: str) -> list[str]:
        rows = self.db.execute(
            "SELECT value FROM event_names WHERE site = ? AND kind = 'tag' ORDER BY value", (site,)
        )
        return [r[0] for r in rows]

    # -- settings ----------------------------------------------------------------------

    def notify_settings(self, account_id: int) -> dict[str, bool]:
        row = self.db.execute(
            "SELECT on_alarm, on_photo, on_arm FROM notify WHERE account_id = ?", (account_id,)
        ).fetchone()
        if row is None:
            return {"on_alarm": True, "on_photo": False, "on_arm": False}
        return {k: bool(row[k]) for k in ("on_alarm", "on_photo", "on_arm")}

    def set_notify(self, account_id: int, settings: Mapping[str, bool]) -> None:
        self.db.execute(
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
        rows = self.db.execute(
            "SELECT a.* FROM accounts a JOIN memberships m ON m.account_id = a.id"
            " WHERE m.number = ?",
            (number,),
        ).fetchall()
        out = []
        for r in rows:
            acc = self._account(r)
            assert acc is not None
            out.append((acc, self.notify_settings(acc.id)))
        return out

    def tag_names(self, number: str) -> dict[str, str]:
        rows = self.db.execute("SELECT uid, name FROM tag_names WHERE number = ?", (number,))
        return {r[0]: r[1] for r in rows}

    def set_tag_name(self, number: str, uid: str, name: str) -> None:
        self.db.execute(
            "INSERT INTO tag_names VALUES (?, ?, ?)"
            " ON CONFLICT (number, uid) DO UPDATE SET name = excluded.name",
            (number, uid, name),
        )

    def stolen_tags(self, number: str) -> dict[str, str]:
        rows = self.db.execute("SELECT uid, reported FROM stolen_tags WHERE number = ?", (number,))
        return {r[0]: r[1] for r in rows}

    def mark_stolen(self, number: str, uid: str, account_id: int) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO stolen_tags VALUES (?, ?, ?, ?)",
            (number, uid, now_iso(), account_id),
        )

    def add_events(self, events: Iterable[Mapping[str, Any]]) -> int:
        """Bulk insert (benchmarks and imports); returns how many were new."""
        with self.db:
            self.db.execute("BEGIN")
            return sum(self.add_event(e) for e in events)


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def open_store(url: str) -> Store:
    """The store named by a ``[store] url``."""
    if url.startswith("sqlite:///"):
        return SqliteStore(url.removeprefix("sqlite://"))
    raise ValueError(f"unsupported store URL {url!r}")
