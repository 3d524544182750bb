"""``centinela events``: the table, the filters, ``--json``, ``--follow`` and bad input."""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from centinela.cli import build_parser
from common.errors import UsageError
from hub.cloudapi import iso_ms
from hub.events_cli import parse_since, run_events
from hub.store import HubStore
from protocol.messages import Event, EventType, Method, Mode

NOW = datetime.datetime(2026, 11, 26, 10, 0, tzinfo=datetime.UTC)
NOW_MS = int(NOW.timestamp() * 1000)


def _event(seq: int, minutes_ago: float, type_: EventType, **kw: Any) -> Event:
    fields: dict[str, Any] = {"method": Method.KEYPAD, "cid": "3401", "sia": "CL"}
    fields.update(kw)
    return Event(seq, NOW_MS - int(minutes_ago * 60_000), type_, **fields)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "hub.db"
    store = HubStore(path)
    rows = [
        ("demo", "p1", _event(1, 300, EventType.ARMING, mode=Mode.TOTAL, user="alice")),
        ("demo", "p1", _event(2, 299, EventType.ARMED, mode=Mode.TOTAL, user="alice",
                              method=Method.TAG)),
        ("demo", "p1", _event(3, 90, EventType.ALARM, zone="front_door", method=Method.SYSTEM,
                              cid="1130", sia="BA")),
        ("demo", "p1", _event(4, 89, EventType.DISARMED, user="bob", method=Method.APP,
                              cid="1407", sia="OP")),
        ("demo", "p2", _event(1, 10, EventType.ARMED, mode=Mode.NIGHT, user="bob")),
        ("other", "p1x", _event(1, 5, EventType.PANIC, method=Method.KEYPAD, cid="1120",
                                sia="PA")),
    ]  # fmt: skip
    with store.transaction():
        for site, panel, event in rows:
            store.add_event(site, panel, event, NOW_MS)
    store.close()
    return path


def _args(db: Path, *argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["events", "--db", str(db), *argv])


def _run(db: Path, *argv: str) -> list[str]:
    out = io.StringIO()
    assert run_events(_args(db, *argv), out) == 0
    return out.getvalue().splitlines()


def test_the_table_shows_when_what_who_how(db: Path) -> None:
    lines = _run(db, "--site", "demo")
    assert lines[0].split() == ["WHEN", "PANEL", "WHAT", "WHO", "HOW", "ZONE", "DETAIL"]
    assert len(lines) == 1 + 5
    local = datetime.datetime.fromtimestamp((NOW_MS - 300 * 60_000) / 1000).astimezone()
    assert lines[1].startswith(f"{local:%Y-%m-%d %H:%M:%S}  p1")
    assert "arming (total)" in lines[1]
    assert "alice" in lines[1]
    assert "keypad" in lines[1]
    alarm = lines[3]
    assert "ALARM" in alarm
    assert alarm.rstrip().endswith("front_door")
    columns = [lines[0].index(name) for name in ("WHO", "HOW", "ZONE")]
    for line in lines[1:]:  # every row lines up under the header
        assert [line[c - 1] for c in columns] == [" ", " ", " "]
    assert " system " in alarm
    assert "bob" in lines[4]
    assert "app" in lines[4]
    assert "p1x" not in "\n".join(lines)  # another site


def test_filters(db: Path) -> None:
    assert len(_run(db, "--site", "demo", "--panel", "p2")) == 2
    assert [
        json.loads(x)["seq"] for x in _run(db, "--site", "demo", "--user", "alice", "--json")
    ] == [1, 2]
    assert [
        json.loads(x)["type"] for x in _run(db, "--site", "demo", "--type", "alarm", "--json")
    ] == ["alarm"]
    since = (NOW - datetime.timedelta(hours=2)).isoformat()
    got = [json.loads(x) for x in _run(db, "--site", "demo", "--since", since, "--json")]
    assert [(e["panel"], e["seq"]) for e in got] == [("p1", 3), ("p1", 4), ("p2", 1)]


def test_json_lines_are_the_cloud_event(db: Path) -> None:
    first = json.loads(_run(db, "--site", "demo", "--json")[0])
    assert first == {
        "site": "demo", "panel": "p1", "seq": 1, "time": "2026-11-26T05:00:00.000Z",
        "type": "arming", "mode": "total", "user": "alice", "method": "keypad", "zone": None,
        "cid": "3401", "sia": "CL", "received": iso_ms(NOW_MS),
    }  # fmt: skip


def test_since_accepts_durations_and_iso_times() -> None:
    assert parse_since("30m", NOW) == NOW_MS - 30 * 60_000
    assert parse_since("2h", NOW) == NOW_MS - 2 * 3_600_000
    assert parse_since("1d", NOW) == NOW_MS - 86_400_000
    assert parse_since("1h30m", NOW) == NOW_MS - 90 * 60_000
    assert parse_since("2026-11-26T09:00:00Z", NOW) == NOW_MS - 3_600_000
    naive = datetime.datetime(2026, 11, 26, 9, 0)
    assert parse_since("2026-11-26 09:00", NOW) == int(naive.astimezone().timestamp() * 1000)
    for bad in ("yesterday", "5x", "", "m30"):
        with pytest.raises(UsageError, match="--since"):
            parse_since(bad, NOW)


def test_follow_prints_new_events_until_ctrl_c(db: Path) -> None:
    out = io.StringIO()
    polls = 0

    def sleep(_: float) -> None:
        nonlocal polls
        polls += 1
        if polls == 1:
            store = HubStore(db)
            with store.transaction():
                store.add_event("demo", "p2", _event(2, 0, EventType.DISARMED, user="bob"), NOW_MS)
                store.add_event("other", "p1x", _event(2, 0, EventType.FIRE), NOW_MS)
            store.close()
        elif polls == 3:
            raise KeyboardInterrupt

    status = run_events(_args(db, "--site", "demo", "--follow", "--json"), out, sleep)
    assert status == 0
    seqs = [(e["panel"], e["seq"]) for e in map(json.loads, out.getvalue().splitlines())]
    assert seqs == [("p1", 1), ("p1", 2), ("p1", 3), ("p1", 4), ("p2", 1), ("p2", 2)]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--site", "demo", "--since", "soon"], "--since"),
        (["--site", "demo", "--type", "burglary"], "--type"),
        (["--site", "Demo Site"], "--site"),
        (["--site", "demo", "--user", "Bob!"], "--user"),
    ],
)
def test_bad_input_is_a_usage_error(db: Path, argv: list[str], words: str) -> None:
    with pytest.raises(UsageError, match=words):
        run_events(_args(db, *argv), io.StringIO())


def test_the_store_is_found_and_missing_ones_are_named(db: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no hub store"):
        run_events(_args(tmp_path / "nope.db", "--site", "demo"), io.StringIO())
    not_a_db = tmp_path / "junk.db"
    not_a_db.write_bytes(b"this is no sqlite file" * 100)
    with pytest.raises(UsageError, match="hub store"):
        run_events(_args(not_a_db, "--site", "demo"), io.StringIO())
    config = tmp_path / "hub.toml"
    config.write_text(
        f'[hub]\nsite = "demo"\nstore = "{db.name}"\n'
        f'[[panels]]\nid = "p1"\nkey = "{"ab" * 31 + "cd"}"\n'
    )
    args = build_parser().parse_args(["events", "--site", "demo", "--config", str(config)])
    out = io.StringIO()
    assert run_events(args, out) == 0
    assert len(out.getvalue().splitlines()) == 6


def test_the_command_line(db: Path) -> None:
    env = {**os.environ, "CENTINELA_HUB_DB": str(db)}
    ok = subprocess.run(
        [sys.executable, "-m", "centinela", "events", "--site", "demo", "--panel", "p2", "--json"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["panel"] == "p2"
    assert ", " not in ok.stdout and '": ' not in ok.stdout  # compact, as on the cloud topic
    bad = subprocess.run(
        [sys.executable, "-m", "centinela", "events", "--site", "demo", "--since", "later"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert len(bad.stderr.strip().splitlines()) == 1
    assert "--since" in bad.stderr


def test_an_unknown_site_names_the_sites_the_store_holds(db: Path) -> None:
    with pytest.raises(UsageError, match=r"no events for site 'nope'.*it holds: demo, other"):
        run_events(_args(db, "--site", "nope"), io.StringIO())


def test_the_site_comes_from_the_hub_config_when_not_given(db: Path, tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(
        f'[hub]\nsite = "other"\nstore = "{db}"\n'
        f'[[panels]]\nid = "p1x"\nkey = "{"ab" * 31 + "cd"}"\n'
    )
    out = io.StringIO()
    args = build_parser().parse_args(["events", "--config", str(config), "--json"])
    assert run_events(args, out) == 0
    assert [json.loads(line)["site"] for line in out.getvalue().splitlines()] == ["other"]
    with pytest.raises(UsageError, match="--site: required"):
        run_events(build_parser().parse_args(["events", "--db", str(db)]), io.StringIO())


def test_long_details_keep_the_columns_and_no_detail_is_said_twice(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    store = HubStore(path)
    rejected = _event(1, 3, EventType.CODE_REJECTED, mode=Mode.TOTAL, detail="wrong code")
    refused = _event(
        2, 2, EventType.ARM_REFUSED, mode=Mode.TOTAL, user="a_very_long_user_name_here",
        zone="kitchen_window_left", detail="open: kitchen_window_left, " * 5,
    )  # fmt: skip
    with store.transaction():
        store.add_event("demo", "p1", rejected, NOW_MS)
        store.add_event("demo", "p1", refused, NOW_MS)
    store.close()
    lines = _run(path, "--site", "demo")
    assert "wrong code (total)" in lines[1]
    assert lines[1].count("wrong code") == 1
    zone = lines[0].index("ZONE")
    detail = lines[0].index("DETAIL")
    assert lines[2][zone - 1] == " " and lines[2][detail - 1] == " "
    assert lines[2][detail:].startswith("open: kitchen_window_left")
