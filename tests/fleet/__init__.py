"""``make fleet``: the operator's side under the load of many installations.

    python -m tests.fleet [--parts ingest,live,activity] [--quick]

Starts a private PostgreSQL and mosquitto (127.0.0.1, free ports, stopped by PID at the
end) and runs three parts, each on a fresh database:

- ingest (``tests.fleet.ingest``): events stored per second by 1, 2 and 4 workers
  against a bare subscriber doing a plain ``INSERT … ON CONFLICT DO NOTHING``;
- live (``tests.fleet.live``): event-to-browser latency while 10,000 installations send
  their daily traffic and scripted customers follow their pages and use the app API;
- activity (``tests.fleet.activity``): the app API's activity page with 10 million
  events across 100,000 installations, bytes per event and a year's growth.

Prints a table and writes ``build/fleet.json``. ``--quick`` is the short run of
``make test`` (small figures, same code).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.fleet import sites as fleet
from tests.fleet.ingest import run as run_ingest

if TYPE_CHECKING:
    from sim.broker import Mosquitto
    from tests.pgserver import PgServer

OUT = Path("build/fleet.json")
PARTS = ("ingest", "live", "activity")
FULL = {
    "ingest": {"events": 20_000, "sites": 500, "workers": [1, 2, 4]},
    # At 10× their rates, 10,000 installations send what 100,000 do.
    "live": {"sites": 10_000, "workers": 2, "followers": 20, "seconds": 60.0, "speeds": [1, 10]},
    "activity": {"sites": 100_000, "per_site": 100, "customers": 20, "requests": 400},
}
QUICK = {
    "ingest": {"events": 200, "sites": 4, "workers": [2]},
    "live": {"sites": 200, "workers": 2, "followers": 4, "seconds": 3.0, "speeds": [100]},
    "activity": {"sites": 200, "per_site": 20, "customers": 2, "requests": 16},
}
FLEET_SIZE = 100_000
"""The fleet a year's growth is worked out for."""


def year_growth(
    bytes_per_event: float, bytes_per_reading: float, keep: dict[str, int]
) -> dict[str, Any]:
    """What a year of ``FLEET_SIZE`` installations adds to the database, and what the
    retention rule keeps of it (GB = 10⁹ bytes)."""
    per_day = fleet.RATES.per_day()
    photo_bytes = len(fleet.jpeg())
    daily = {
        "events": FLEET_SIZE * per_day["event"] * bytes_per_event,
        "telemetry": FLEET_SIZE * per_day["telemetry"] * bytes_per_reading,
        "media": FLEET_SIZE * per_day["photo"] * photo_bytes,
    }
    return {
        "per_day_gb": {k: round(v / 1e9, 2) for k, v in daily.items()},
        "per_year_gb": {k: round(v * 365 / 1e9, 1) for k, v in daily.items()},
        "kept_gb": {k: round(v * min(keep[k], 365) / 1e9, 1) for k, v in daily.items()},
        "keep_days": keep,
        "photo_bytes": photo_bytes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fleet", description=__doc__)
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--quick", action="store_true", help="the short run of make test")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"--parts: unknown part {unknown[0]!r} (choose from {', '.join(PARTS)})")
    with tempfile.TemporaryDirectory(prefix="centinela-fleet-") as tmp:
        results = run(parts, QUICK if args.quick else FULL, Path(tmp))
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"written {OUT}")
    return 0


def run(
    parts: list[str], sizes: dict[str, dict[str, Any]], tmp: Path, pg: PgServer | None = None
) -> dict[str, Any]:
    """Run the parts (on ``pg`` when given, else a server of their own); their figures, as
    written to build/fleet.json. Each run has a broker of its own: the fleet's retained
    state must reach no one else."""
    from tests.pgserver import PgServer

    results: dict[str, Any] = {}
    own_pg = pg is None
    pg = PgServer().start() if pg is None else pg
    try:
        for part in parts:
            start = time.monotonic()
            print(f"fleet: {part} …", flush=True)
            if part == "ingest":
                with _broker() as broker:
                    got = run_ingest(pg, broker, tmp, **sizes["ingest"])
            elif part == "live":
                from tests.fleet.live import run as run_live

                live = dict(sizes["live"])
                got: dict[str, Any] = {}
                for speed in live.pop("speeds"):
                    with _broker() as broker:  # no retained state of the run before
                        got[f"speed_{speed}"] = run_live(pg, broker, tmp, speed=speed, **live)
            else:
                from tests.fleet.activity import run as run_activity

                with _broker() as broker:
                    got = run_activity(pg, broker, tmp, **sizes["activity"])
                got["year"] = year_growth(
                    got["bytes_per_event"], got["bytes_per_reading"], keep_days()
                )
            got["part_s"] = round(time.monotonic() - start, 1)
            results[part] = got
            print(f"fleet: {part} done in {got['part_s']} s", flush=True)
    finally:
        if own_pg:
            pg.close()
    return results


@contextlib.contextmanager
def _broker() -> Iterator[Mosquitto]:
    """A broker of the part's own (127.0.0.1, a free port), stopped by PID at the end."""
    from sim.broker import Mosquitto

    broker = Mosquitto().start()
    try:
        yield broker
    finally:
        broker.close()


def keep_days() -> dict[str, int]:
    """The retention rule's defaults (docs/deployment.md, section 12)."""
    from cloud.store import Retention

    keep = Retention()
    return {"events": keep.events_days, "telemetry": keep.telemetry_days, "media": keep.media_days}


def table(results: dict[str, Any]) -> str:
    rows = ["| metric | value | baseline | ratio | target |", "|---|---|---|---|---|"]
    ingest = results.get("ingest")
    if ingest:
        base = ingest["baseline_events_per_s"]
        for n, rate in ingest["fleet_ingest_events_per_s"].items():
            ratio = rate / base
            rows.append(
                f"| fleet_ingest_events_per_s ({n} worker{'s' if n != '1' else ''}) | {rate}/s"
                f" | {base}/s | {ratio:.2f} | ≥ 0.5× ({'met' if ratio >= 0.5 else 'missed'}) |"
            )
    for key, live in (results.get("live") or {}).items():
        if not key.startswith("speed_"):
            continue
        lat = live["fleet_event_to_browser_ms"]
        met = lat["p99"] is not None and lat["p99"] <= 250 and lat["lost"] == 0
        rows.append(
            f"| fleet_event_to_browser_ms ({live['sites']:,} installations × {live['speed']:g}"
            f" their rates, {live['offered_messages_per_s']} msg/s) | p50 {lat['p50']} ms,"
            f" p99 {lat['p99']} ms, {lat['samples']} events, {lat['lost']} lost | – | – |"
            f" p99 ≤ 250 ms ({'met' if met else 'missed'}) |"
        )
    act = results.get("activity")
    if act:
        api = act["fleet_activity_api_ms"]
        base = act["baseline_query_ms_p95"]
        rows.append(
            f"| fleet_activity_api_ms ({act['events']:,} events, {act['sites']:,}"
            f" installations) | p95 {api['p95']} ms | {base} ms | {api['p95'] / base:.1f} |"
            f" ≤ 50 ms ({'met' if api['p95'] <= 50 else 'missed'}) |"
        )
        year = act["year"]
        rows.append(
            f"| fleet_db_bytes_per_event | {act['bytes_per_event']} B | – | – | a year of"
            f" {FLEET_SIZE:,}: events {year['per_year_gb']['events']} GB, readings"
            f" {year['per_year_gb']['telemetry']} GB, photos {year['per_year_gb']['media']} GB |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
