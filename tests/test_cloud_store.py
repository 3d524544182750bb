"""The customer area's store, the same tests on both engines: SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cloud.store import (
    PURGE_LOCK,
    EventFilter,
    PostgresStore,
    Retention,
    SqliteStore,
    SqlStore,
    iso,
    migrations,
    open_store,
)

LATEST = migrations("sqlite")[-1][0]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cloud.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def _open(url: str, version: int | None = None) -> SqliteStore | PostgresStore:
    if url.startswith("sqlite:///"):
        return SqliteStore(url.removeprefix("sqlite://"), version=version)
    return PostgresStore(url, version=version, max_size=4)


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    s = open_store(store_url)
    assert isinstance(s, SqlStore)
    try:
        yield s
    finally:
        s.close()


def _event(seq: int, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "site": "casa",
        "panel": "p1",
        "seq": seq,
        "time": f"2026-11-01T10:00:{seq:02d}.000Z",
        "type": "armed",
        "method": "code",
    }
    return {**base, **extra}


def test_both_engines_have_the_same_migration_numbers() -> None:
    assert [v for v, _ in migrations("sqlite")] == [v for v, _ in migrations("postgresql")]
    assert LATEST >= 3
    pg = dict(migrations("postgresql"))
    assert '"user"' in pg[1] and "BYTEA" in pg[1]  # PostgreSQL's own SQL where it differs


def test_an_empty_database_is_migrated_to_the_latest_version(store_url: str) -> None:
    s = _open(store_url)
    try:
        assert s.version() == LATEST
    finally:
        s.close()
    again = _open(store_url)  # a second start finds nothing to do
    try:
        assert again.version() == LATEST
    finally:
        again.close()


def test_each_version_migrates_from_the_previous_one_keeping_data(store_url: str) -> None:
    old = _open(store_url, version=1)
    try:
        assert old.version() == 1
        # Version 1: no event_names table, no language column yet.
        old._run(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                "casa",
                "p1",
                1,
                "2026-11-01T10:00:01.000Z",
                "disarmed",
                None,
                "ana",
                "tag",
                None,
                "04A1B2C3",
                None,
                None,
                '{"seq":1}',
            ),
        )
        old._run(
            "INSERT INTO accounts (email, name, mobile, password_hash, created)"
            " VALUES (?, ?, ?, ?, ?)",
            ("ana@example.org", "Ana", "+34600000000", "$argon2id$x", "2026-11-01T00:00:00.000Z"),
        )
    finally:
        old.close()
    for version in range(2, LATEST + 1):
        step = _open(store_url, version=version)
        try:
            assert step.version() == version
            if version == 5:  # images before 006 had no time of their own in the cloud
                step._run(
                    "INSERT INTO photos (site, panel, photo_id, ready, jpeg)"
                    " VALUES (?, ?, ?, ?, ?)",
                    ("casa", "p1", "old", "2026-11-01T10:00:02.000Z", b"\xff\xd8"),
                )
                step._run(
                    "INSERT INTO photos (site, panel, photo_id, jpeg) VALUES (?, ?, ?, ?)",
                    ("casa", "p1", "orphan", b"\xff\xd8"),
                )
        finally:
            step.close()
    s = _open(store_url)
    try:
        assert s.version() == LATEST
        assert s.event_users("casa") == ["ana"]  # 002 filled the filter lists from old rows
        assert s.event_tags("casa") == ["04A1B2C3"]
        acc = s.account_by_email("ana@example.org")
        assert acc is not None and acc.lang == "en"  # 003's default for existing accounts
        # 006 dated the images it found: by their ready time, else the migration's time.
        stored = {r["photo_id"]: r["stored"] for r in s._all("SELECT photo_id, stored FROM photos")}
        assert stored["old"] == "2026-11-01T10:00:02.000Z"
        assert stored["orphan"] >= iso(datetime.now(UTC) - timedelta(hours=1))
        counts = s.purge(Retention(), now=datetime.now(UTC) + timedelta(days=14))
        assert counts is not None and counts["photos"] == 1 and counts["events"] == 0
        assert s.photos_kept("casa", ["old", "orphan"]) == {"orphan"}
    finally:
        s.close()


def test_event_ingest_is_idempotent_by_site_panel_and_seq(store: SqlStore) -> None:
    assert store.add_event(_event(1, user="ana"))
    assert not store.add_event(_event(1, user="ana", type="changed"))  # a redelivery
    assert store.add_event(_event(1, panel="p2"))
    assert store.add_event(_event(1, site="otra"))
    assert store.add_events([_event(2), _event(2), _event(3)]) == 2
    rows = store.events("casa", EventFilter(), 10)
    assert [(r["panel"], r["seq"]) for r in rows] == [("p1", 3), ("p1", 2), ("p1", 1), ("p2", 1)]
    assert rows[2]["type"] == "armed"
    assert store.event_users("casa") == ["ana"]


def test_events_stored_together_each_once_in_one_transaction(store: SqlStore) -> None:
    assert store.add_event(_event(1))
    lot = [_event(2, user="ana"), _event(1), _event(2, type="again"), _event(3, tag="04AA")]
    assert store.store_events(lot) == [True, False, False, True]
    assert store.store_events([]) == []
    rows = store.events("casa", EventFilter(), 10)
    assert [(r["seq"], r["type"]) for r in rows] == [(3, "armed"), (2, "armed"), (1, "armed")]
    assert store.event_users("casa") == ["ana"]
    assert store.event_tags("casa") == ["04AA"]


def test_activity_filters_and_paging(store: SqlStore) -> None:
    for seq in range(1, 11):
        store.add_event(
            _event(
                seq,
                user="ana" if seq % 2 else "luis",
                tag="04A1B2C3" if seq == 4 else None,
                method="tag" if seq == 4 else "code",
                type="alarm" if seq == 7 else "armed",
            )
        )
    assert [r["seq"] for r in store.events("casa", EventFilter(user="ana"), 3)] == [9, 7, 5]
    assert [r["seq"] for r in store.events("casa", EventFilter(type="alarm"), 9)] == [7]
    page = store.events("casa", EventFilter(before=("2026-11-01T10:00:05.000Z", 5)), 2)
    assert [r["seq"] for r in page] == [4, 3]
    since = EventFilter(since="2026-11-01T10:00:08.000Z", until="2026-11-01T10:00:10.000Z")
    assert [r["seq"] for r in store.events("casa", since, 9)] == [9, 8]
    last = store.last_tag_use("casa", "04A1B2C3")
    assert last is not None and last["seq"] == 4
    assert store.event_users("casa") == ["ana", "luis"]
    assert store.event_tags("casa") == ["04A1B2C3"]


def test_accounts_sessions_and_failures(store: SqlStore) -> None:
    acc = store.create_account("ana@example.org", "Ana", "+34600", "$h", "1234", "ana", "es")
    assert acc is not None and acc.lang == "es"
    assert store.create_account("ana@example.org", "Otra", "+34", "$h", "1234", "luis") is None
    other = store.create_account("luis@example.org", "Luis", "+34", "$h", "1234", "luis")
    assert other is not None and other.id != acc.id
    assert store.account(acc.id) == acc
    assert [m.number for m in store.memberships(acc.id)] == ["1234"]
    assert [a.email for a, _ in store.accounts_of("1234")] == [
        "ana@example.org",
        "luis@example.org",
    ]
    assert store.failures("x@example.org") == 0
    assert [store.add_failure("x@example.org") for _ in range(3)] == [1, 2, 3]
    store.clear_failures("x@example.org")
    assert store.failures("x@example.org") == 0
    store.add_session("th", acc.id, "web", "csrf1")
    assert store.session("th", "web") == (acc.id, "csrf1")
    assert store.session("th", "api") is None
    store.drop_sessions(acc.id)
    assert store.session("th", "web") is None
    store.set_password(acc.id, "$new")
    assert store.account_by_email("ana@example.org").password_hash == "$new"  # type: ignore[union-attr]
    assert store.notify_settings(acc.id) == {"on_alarm": True, "on_photo": False, "on_arm": False}
    store.set_notify(acc.id, {"on_alarm": False, "on_photo": True})
    assert store.notify_settings(acc.id) == {"on_alarm": False, "on_photo": True, "on_arm": False}


def test_state_telemetry_photos_and_tags(store: SqlStore) -> None:
    store.set_state("casa", "p1", {"mode": "away"})
    store.set_availability("casa", "p1", "online")
    (row,) = store.panel_states("casa")
    assert row["state"] == {"mode": "away"} and row["availability"] == "online"
    store.add_telemetry("casa", "p1", {"time": "2026-11-01T10:00:00Z", "temperature": 21.5})
    store.add_telemetry("casa", "p1", {"time": "2026-11-02T10:00:00Z", "humidity": 40})
    assert store.telemetry("casa", "2026-11-02") == [
        {"time": "2026-11-02T10:00:00Z", "temperature": None, "humidity": 40.0}
    ]
    store.photo_requested(
        "casa",
        "p1",
        "ph1",
        camera="door",
        user="ana",
        method="app",
        requested="2026-11-01T10:00:00.000Z",
        reason="p1:7",
    )
    assert store.photos("casa")[0]["has_jpeg"] is False
    store.photo_bytes("casa", "p1", "ph1", b"\xff\xd8jpeg")
    store.photo_ready("casa", "p1", "ph1", "2026-11-01T10:00:02.000Z")
    (photo,) = store.photos("casa")
    assert photo["has_jpeg"] is True and photo["user"] == "ana" and photo["camera"] == "door"
    assert store.photo_jpeg("casa", "ph1") == b"\xff\xd8jpeg"
    assert store.photos_by_reason("casa", ["p1:7", "p1:8"]) == {"p1:7": ["ph1"]}
    store.set_tag_name("1234", "04A1B2C3", "Llavero")
    store.set_tag_name("1234", "04A1B2C3", "Llavero azul")
    assert store.tag_names("1234") == {"04A1B2C3": "Llavero azul"}
    store.mark_stolen("1234", "04A1B2C3", 1)
    store.mark_stolen("1234", "04A1B2C3", 1)
    assert list(store.stolen_tags("1234")) == ["04A1B2C3"]


def test_the_pages_queries_have_their_indexes(store: SqlStore, store_url: str) -> None:
    wanted = {
        "events_by_age",
        "telemetry_by_age",
        "photos_by_age",
        "sessions_by_age",
        "events_by_time",
        "events_by_user",
        "events_by_tag",
        "events_by_type",
        "telemetry_by_time",
    }
    if store_url.startswith("sqlite"):
        rows = store._all("SELECT name FROM sqlite_master WHERE type = 'index'")
    else:
        rows = store._all("SELECT indexname AS name FROM pg_indexes WHERE schemaname = 'public'")
    assert wanted <= {r["name"] for r in rows}


def test_postgresql_activity_query_uses_the_index(postgres_url: str) -> None:
    s = PostgresStore(postgres_url, max_size=2)
    try:
        s.add_events(_event(i % 60, site=f"s{i // 60}", user="ana") for i in range(3000))
        with s.pool.connection() as conn:
            conn.execute("ANALYZE events")
            plan = conn.execute(
                'EXPLAIN SELECT body FROM events WHERE site = %s AND "user" = %s'
                " ORDER BY time DESC, seq DESC LIMIT 50",
                ("s7", "ana"),
            ).fetchall()
        text = "\n".join(str(next(iter(r.values()))) for r in plan)
        assert "Index" in text and "Seq Scan" not in text, text
    finally:
        s.close()


def test_postgresql_workers_starting_together_migrate_once(postgres_url: str) -> None:
    stores: list[PostgresStore] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            stores.append(PostgresStore(postgres_url, max_size=2))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        rows = stores[0]._all("SELECT version FROM schema_version ORDER BY version")
        assert [r["version"] for r in rows] == list(range(1, LATEST + 1))
    finally:
        for s in stores:
            s.close()


def test_rate_limits_and_photo_reasons_are_shared_through_the_store(store_url: str) -> None:
    one, two = _open(store_url), _open(store_url)  # two workers on one store
    try:
        t = 1_700_000_000_000
        assert [one.rate_hit("login addr 1", t + i, 3) for i in range(3)] == [True] * 3
        assert not two.rate_hit("login addr 1", t + 10, 3)  # the other worker sees the count
        assert two.rate_hit("login addr 2", t + 10, 3)
        assert one.rate_hit("login addr 1", t + 60_001, 3)  # a minute later the window moved
        one.expect_photo("casa", "door", "stolen:04A1")
        one.expect_photo("casa", "door", "stolen:04B2")
        one.forget_photo("casa", "door", "stolen:04B2")
        one.expect_photo("casa", "door", "stolen:04C3")
        assert two.take_photo_reason("casa", "door") == "stolen:04A1"
        assert one.take_photo_reason("casa", "door") == "stolen:04C3"
        assert two.take_photo_reason("casa", "door") is None
        assert one.first_panel("casa") is None
        two.set_state("casa", "p1", {"mode": "home"})
        assert one.first_panel("casa") == "p1"
    finally:
        one.close()
        two.close()


def test_postgresql_live_announcements_reach_every_worker(postgres_url: str) -> None:
    sender, listener = PostgresStore(postgres_url, max_size=2), PostgresStore(postgres_url)
    got: list[tuple[str, str, Any]] = []
    done = threading.Event()

    def deliver(site: str, kind: str, value: Any) -> None:
        got.append((site, kind, value))
        if len(got) == 3:
            done.set()

    stop = listener.listen(deliver)
    assert stop is not None
    try:
        assert sender.announce("casa", "event", {"seq": 1, "type": "armed"})
        assert sender.announce("casa", "telemetry", {"temperature": 20.5})
        assert sender.announce("casa", "event", {"seq": 2, "detail": "x" * 9000})  # too big
        assert done.wait(60)
        assert got == [
            ("casa", "event", {"seq": 1, "type": "armed"}),
            ("casa", "telemetry", {"temperature": 20.5}),
            ("casa", "event", None),
        ]
    finally:
        stop()
        sender.close()
        listener.close()


def test_postgresql_announces_what_it_stores_in_the_same_statement(postgres_url: str) -> None:
    sender, listener = PostgresStore(postgres_url), PostgresStore(postgres_url)
    got: list[tuple[str, str, Any]] = []
    done = threading.Event()

    def deliver(site: str, kind: str, value: Any) -> None:
        got.append((site, kind, value))
        if value == "end":
            done.set()

    stop = listener.listen(deliver)
    assert stop is not None and sender.announces
    event = {"site": "casa", "panel": "p1", "seq": 1, "time": "2026-11-01T10:00:00.000Z"}
    event |= {"type": "armed", "user": "ana", "method": "keypad"}
    try:
        assert sender.add_event(event, announce=True)
        assert not sender.add_event(event, announce=True)  # stored once, announced once
        assert sender.add_event({**event, "seq": 2})  # not asked to announce
        sender.add_telemetry("casa", "p1", {"time": event["time"], "temperature": 20.5}, True)
        sender.add_telemetry("casa", "p1", {"time": event["time"], "temperature": 21.0})
        sender.announce("casa", "marker", "end")  # comes after all of the above
        assert done.wait(60)
        assert got == [
            ("casa", "event", event),
            ("casa", "telemetry", {"time": event["time"], "temperature": 20.5}),
            ("casa", "marker", "end"),
        ]
        assert [e["seq"] for e in sender.events("casa", EventFilter(), 10)] == [2, 1]
        assert sender.event_users("casa") == ["ana"]
        assert len(sender.telemetry("casa", "2026-11-01T00:00:00.000Z")) == 2
    finally:
        stop()
        sender.close()
        listener.close()


def test_postgresql_announces_events_stored_together_in_their_order(postgres_url: str) -> None:
    sender, listener = PostgresStore(postgres_url), PostgresStore(postgres_url)
    got: list[Any] = []
    done = threading.Event()

    def deliver(site: str, kind: str, value: Any) -> None:
        got.append(value["seq"] if kind == "event" else value)
        if value == "end":
            done.set()

    stop = listener.listen(deliver)
    assert stop is not None
    try:
        assert sender.add_event(_event(5))
        lot = [_event(9), _event(5), _event(7), _event(9), _event(8)]
        assert sender.store_events(lot, announce=True) == [True, False, True, False, True]
        assert sender.store_events([_event(10)]) == [True]  # not asked to announce
        sender.announce("casa", "marker", "end")
        assert done.wait(60)
        assert got == [9, 7, 8, "end"]  # the new ones, in the order given
    finally:
        stop()
        sender.close()
        listener.close()


def test_sqlite_has_no_other_worker_to_tell(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "c.db")
    try:
        assert not s.announce("casa", "event", {})
        assert not s.announces  # the link hands everything to its own pages
        assert s.listen(lambda *_: None) is None
    finally:
        s.close()


# -- the retention rule ------------------------------------------------------------------


def _ago(now: datetime, days: float) -> str:
    return iso(now - timedelta(days=days))


def test_the_retention_rule_deletes_only_what_is_older_than_its_limits(store: SqlStore) -> None:
    now = datetime.now(UTC)
    keep = Retention(events_days=365, telemetry_days=90, media_days=30)
    store.add_event(_event(1, time=_ago(now, 366), user="old"))
    store.add_event(_event(2, time=_ago(now, 364), user="ana"))
    store.add_telemetry("casa", "p1", {"time": _ago(now, 91), "temperature": 18.0})
    store.add_telemetry("casa", "p1", {"time": _ago(now, 89), "temperature": 19.0})
    for photo_id in ("gone", "kept"):
        store.photo_requested("casa", "p1", photo_id, camera="door", requested=_ago(now, 31))
        store.photo_bytes("casa", "p1", photo_id, b"\xff\xd8jpeg")
    # Images count from when the cloud stored them, whatever time the panel gave.
    store._run("UPDATE photos SET stored = ? WHERE photo_id = 'gone'", (_ago(now, 31),))
    store._run("UPDATE photos SET stored = ? WHERE photo_id = 'kept'", (_ago(now, 29),))
    acc = store.create_account("ana@example.org", "Ana", "+34600", "$h", "1234", "ana")
    assert acc is not None
    store.add_session("expired", acc.id, "web", "c1")
    store.add_session("current", acc.id, "web", "c2")
    store._run("UPDATE sessions SET created = ? WHERE token_hash = 'expired'", (_ago(now, 31),))
    now_ms = int(now.timestamp() * 1000)
    assert store.rate_hit("login stale", now_ms - 120_000, 5)
    assert store.rate_hit("login fresh", now_ms - 1000, 5)
    store.expect_photo("casa", "door", "stolen:never")
    store.expect_photo("casa", "hall", "stolen:waiting")
    store._run("UPDATE photo_reasons SET added = ? WHERE camera = 'door'", (_ago(now, 2),))

    counts = store.purge(keep, now=now)

    assert counts == {
        "events": 1,
        "telemetry": 1,
        "photos": 1,
        "sessions": 1,
        "photo_reasons": 1,
        "rate_hits": 1,
    }
    assert [e["seq"] for e in store.events("casa", EventFilter(), 10)] == [2]
    assert [r["temperature"] for r in store.telemetry("casa", _ago(now, 1000))] == [19.0]
    assert [p["photo_id"] for p in store.photos("casa")] == ["kept"]
    assert store.photo_jpeg("casa", "gone") is None
    assert store.photos_kept("casa", ["gone", "kept"]) == {"kept"}
    assert store.session("current", "web") == (acc.id, "c2")
    assert store._all("SELECT token_hash FROM sessions") == [{"token_hash": "current"}]
    assert store._all("SELECT key FROM rate_hits") == [{"key": "login fresh"}]
    assert store.take_photo_reason("casa", "door") is None
    assert store.take_photo_reason("casa", "hall") == "stolen:waiting"
    assert store.event_users("casa") == ["ana", "old"]  # the filter list keeps its names
    assert store.purge(keep, now=now) == dict.fromkeys(counts, 0)  # nothing more to do


def test_a_backlog_larger_than_a_batch_is_purged_whole(store: SqlStore) -> None:
    now = datetime.now(UTC)
    store.add_events(_event(seq, time=_ago(now, 400 + seq / 1000)) for seq in range(1, 251))
    store.add_events(_event(seq, time=_ago(now, 10)) for seq in range(251, 261))
    same = _ago(now, 399)  # more rows of one time than a batch holds
    store.add_events(_event(seq, panel="p2", time=same) for seq in range(1, 21))
    for n in range(5):
        store.photo_bytes("casa", "p1", f"ph{n}", b"\xff\xd8")
    store._run("UPDATE photos SET stored = ?", (_ago(now, 40),))
    counts = store.purge(Retention(), now=now, batch=7)
    assert counts is not None and counts["events"] == 270 and counts["photos"] == 5
    left = store.events("casa", EventFilter(), 100)
    assert sorted(e["seq"] for e in left) == list(range(251, 261))


class _StopAfter(threading.Event):
    """Set once it has been asked ``n`` times: a stop that arrives mid-purge."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.left = n

    def is_set(self) -> bool:
        self.left -= 1
        return self.left < 0 or super().is_set()


def test_a_purge_is_one_bounded_statement_at_a_time_and_stops_between_two(store: SqlStore) -> None:
    now = datetime.now(UTC)
    store.add_events(_event(seq, time=_ago(now, 400 + seq / 1000)) for seq in range(1, 51))
    counts = store.purge(Retention(), now=now, stop=_StopAfter(2), batch=7)
    assert counts is not None and counts["events"] == 14  # two statements of 7, then stopped
    oldest_left = store.events("casa", EventFilter(), 100)[-1]
    assert oldest_left["time"] == _ago(now, 400 + 36 / 1000)  # the oldest went first
    assert store.purge(Retention(), now=now, batch=7) == {
        "events": 36,
        "telemetry": 0,
        "photos": 0,
        "sessions": 0,
        "photo_reasons": 0,
        "rate_hits": 0,
    }


def test_postgresql_one_worker_purges_at_a_time(postgres_url: str) -> None:
    import psycopg

    one, two = PostgresStore(postgres_url, max_size=2), PostgresStore(postgres_url, max_size=2)
    now = datetime.now(UTC)
    one.add_event(_event(1, time=_ago(now, 400)))
    try:
        with psycopg.connect(postgres_url, autocommit=True) as other:  # a worker purging
            got = other.execute("SELECT pg_try_advisory_lock(%s)", (PURGE_LOCK,)).fetchone()
            assert got == (True,)
            assert one.purge(Retention(), now=now) is None  # skipped, nothing deleted
            assert two.purge(Retention(), now=now) is None
            assert len(one.events("casa", EventFilter(), 10)) == 1
            other.execute("SELECT pg_advisory_unlock(%s)", (PURGE_LOCK,))  # that purge ended
        counts = two.purge(Retention(), now=now)
        assert counts is not None and counts["events"] == 1
        again = one.purge(Retention(), now=now)  # and each purge gives it back
        assert again is not None and again["events"] == 0
    finally:
        one.close()
        two.close()


def test_postgresql_purge_reads_the_age_index_not_the_table(postgres_url: str) -> None:
    from cloud.store import _pg_sql

    s = PostgresStore(postgres_url, max_size=2)
    try:
        base = datetime(2026, 1, 1, tzinfo=UTC)
        s.add_events(
            _event(i % 60, site=f"s{i // 60}", time=iso(base + timedelta(minutes=i)))
            for i in range(3000)
        )
        with s._tx() as db:
            for i in range(3000):
                reading = (f"s{i // 60}", "p1", iso(base + timedelta(minutes=i)), 20.0, None)
                db.run("INSERT INTO telemetry VALUES (?, ?, ?, ?, ?)", reading)
        for table, column in (("events", "time"), ("telemetry", "time")):
            with s.pool.connection() as conn:
                conn.execute(f"ANALYZE {table}")
                cutoff = iso(base + timedelta(minutes=30))
                plan = conn.execute(
                    "EXPLAIN " + _pg_sql(s._purge_sql(table, column)),
                    ("2026-01-01T00:10:00.000Z", cutoff, 100, cutoff),
                ).fetchall()
            text = "\n".join(str(next(iter(r.values()))) for r in plan)
            assert f"{table}_by_age" in text, text
            assert "Seq Scan" not in text, text
    finally:
        s.close()
