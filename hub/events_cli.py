"""``centinela events``: the hub's event log as the customer area shows it: when, what, who, how."""

from __future__ import annotations

import argparse
import datetime
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, TextIO

from common.configcheck import NAME_RE
from common.errors import UsageError
from hub.cloudapi import dumps, event_json
from hub.config import load_hub_file
from hub.store import HubStore, StoredEvent, StoreError
from protocol.messages import EventType

POLL_S: Final = 0.5
_DURATION_RE: Final = re.compile(r"(\d+)\s*([smhdw])")
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

_WHAT: Final = {
    EventType.ARMING: "arming",
    EventType.ARMED: "armed",
    EventType.DISARMED: "disarmed",
    EventType.ENTRY: "entry delay",
    EventType.ALARM: "ALARM",
    EventType.PANIC: "PANIC",
    EventType.DURESS: "DURESS",
    EventType.TAMPER: "TAMPER",
    EventType.FIRE: "FIRE",
    EventType.CODE_REJECTED: "wrong code",
    EventType.TAG_REJECTED: "unknown tag",
    EventType.KEYPAD_LOCKED: "keypad locked",
    EventType.KEYPAD_UNLOCKED: "keypad unlocked",
    EventType.ARM_REFUSED: "arming refused",
    EventType.TAG_REVOKED: "tag revoked",
    EventType.PHOTO_REQUESTED: "photo requested",
    EventType.PHOTO_READY: "photo ready",
    EventType.RESTART: "panel restarted",
    EventType.ALARM_END: "alarm over",
    EventType.DEVICE_LOST: "device lost",
    EventType.DEVICE_BACK: "device back",
}


def parse_since(text: str, now: datetime.datetime) -> int:
    """A duration ago (``30m``, ``2h``, ``1d``, ``1h30m``) or an ISO time (naive: local) in ms."""
    compact = text.strip().lower()
    if compact and _DURATION_RE.sub("", compact).strip() == "" and _DURATION_RE.search(compact):
        seconds = sum(int(n) * _UNITS[u] for n, u in _DURATION_RE.findall(compact))
        return int((now.timestamp() - seconds) * 1000)
    try:
        moment = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--since: {text!r} is neither a duration (30m, 2h, 1d) nor an ISO time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # a naive time is local time
    return int(moment.timestamp() * 1000)


def store_path(args: argparse.Namespace) -> Path:
    """--db, else the store named by --config, else $CENTINELA_HUB_DB, else ./hub.db."""
    if getattr(args, "db", None):
        return Path(args.db)
    if getattr(args, "config", None):
        return load_hub_file(args.config).store
    return Path(os.environ.get("CENTINELA_HUB_DB") or "hub.db")


def _local(time_ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(time_ms / 1000, datetime.UTC).astimezone()
    return f"{moment:%Y-%m-%d %H:%M:%S}"


def _what(stored: StoredEvent) -> str:
    event = stored.event
    text = _WHAT.get(event.type, str(event.type))
    if event.mode is not None:
        text += f" ({event.mode})"
    return text


def _detail(stored: StoredEvent) -> str:
    """The detail, unless it only repeats what the WHAT column says."""
    detail = stored.event.detail or ""
    return "" if detail == _WHAT.get(stored.event.type) else detail


def table_row(stored: StoredEvent) -> tuple[str, ...]:
    """The columns of one event: when, panel, what, who, how, zone, detail."""
    event = stored.event
    return (
        _local(event.time_ms),
        stored.panel,
        _what(stored),
        event.user or "-",
        str(event.method),
        event.zone or "-",
        _detail(stored),
    )


HEADER: Final = ("WHEN", "PANEL", "WHAT", "WHO", "HOW", "ZONE", "DETAIL")
_WIDTHS: Final = (19, 10, 24, 12, 7, 14, 0)
"""Column widths; a longer value is cut with '…' so the columns stay aligned (not DETAIL)."""


def format_row(cells: tuple[str, ...]) -> str:
    """Fixed-width columns (the last one free)."""
    parts = [
        (c if len(c) <= w else c[: w - 1] + "…").ljust(w) if w else c
        for c, w in zip(cells, _WIDTHS, strict=True)
    ]
    return "  ".join(parts).rstrip()


def run_events(
    args: argparse.Namespace,
    out: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Entry point of ``centinela events``."""
    out = out or sys.stdout
    if getattr(args, "site", None) is None:
        if not getattr(args, "config", None):
            raise UsageError("--site: required (or --config HUB.toml, whose [hub] site is used)")
        args.site = load_hub_file(args.config).site
    for flag in ("site", "panel", "user"):
        value = getattr(args, flag, None)
        if value is not None and not NAME_RE.fullmatch(value):
            raise UsageError(f"--{flag}: {value!r} is not 1 to 32 of a-z 0-9 _ -")
    event_type = getattr(args, "type", None)
    if event_type is not None and event_type not in {t.value for t in EventType}:
        known = ", ".join(t.value for t in EventType)
        raise UsageError(f"--type: unknown event type {event_type!r} (one of {known})")
    since_ms = None
    if getattr(args, "since", None):
        since_ms = parse_since(args.since, datetime.datetime.now().astimezone())
    path = store_path(args)
    if not path.is_file():
        raise UsageError(f"{path}: no hub store here (use --db or --config)")
    try:
        store = HubStore(path, readonly=True)
    except StoreError as exc:
        raise UsageError(f"{exc} (is this a hub store?)") from None
    known_sites = store.sites()
    if known_sites and args.site not in known_sites:
        store.close()
        raise UsageError(
            f"--site: no events for site {args.site!r} in {path} "
            f"(it holds: {', '.join(known_sites)})"
        )
    as_json = bool(getattr(args, "json", False))
    filters = {
        "site": args.site,
        "panel": getattr(args, "panel", None),
        "since_ms": since_ms,
        "user": getattr(args, "user", None),
        "type": event_type,
    }
    try:
        if not as_json:
            print(format_row(HEADER), file=out)
        last_rowid = 0
        for stored in store.events(**filters):
            _emit(stored, as_json, out)
            last_rowid = max(last_rowid, stored.rowid)
        out.flush()
        if not getattr(args, "follow", False):
            return 0
        last_rowid = max(last_rowid, store.max_event_rowid())
        while True:
            sleep(POLL_S)
            for stored in store.events(**filters, after_rowid=last_rowid):
                _emit(stored, as_json, out)
                last_rowid = max(last_rowid, stored.rowid)
            out.flush()
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        return 0
    finally:
        store.close()


def _emit(stored: StoredEvent, as_json: bool, out: TextIO) -> None:
    if as_json:
        event = event_json(stored.site, stored.panel, stored.event, stored.received_ms)
        line = dumps(event).decode("utf-8")
        print(line, file=out)
    else:
        print(format_row(table_row(stored)), file=out)
