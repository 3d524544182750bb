"""A running simulated site reports every event type of a scenario to pysiaalarm (both formats)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from common.clock import VirtualClock
from sim.runner import ScenarioRun
from sim.scenario import parse_scenario
from sim.simtarget import SimTarget
from sim.site import DEMO_SITE, VIRTUAL_START_MS, SimSite, read_site_file
from tests.arc_receiver import ArcReceiver

# Every event type the panel records, in one run on the demo site.
STEPS = """
- press: "0000A0000A0000A0000A0000A"
- expect: {locked: true, event: {type: keypad_locked}}
- cloud: {action: unlock, user: alice, via: app}
- expect: {result: {ok: true}, event: {type: keypad_unlocked}}
- open: kitchen_window
- press: "5678A"
- expect: {event: {type: arm_refused, user: bob}}
- close: kitchen_window
- press: "5678A"
- wait: 11
- expect: {state: armed_total, event: {type: armed, user: bob}}
- open: front_door
- expect: {state: pending, event: {type: entry}}
- wait: 16
- expect: {state: triggered, event: {type: alarm, zone: front_door}}
- wait: 61
- expect: {event: {type: alarm_end}}
- press: "1234D"
- close: front_door
- expect: {state: disarmed}
- press: "P"
- expect: {event: {type: panic}}
- press: "1234D"
- open: smoke_hall
- expect: {event: {type: fire, zone: smoke_hall}}
- press: "1234D"
- close: smoke_hall
- tamper: siren_box
- expect: {event: {type: tamper, zone: siren_box}}
- press: "1234D"
- press: "1234A"
- press: "1235D"
- expect: {state: disarmed, event: {type: duress}}
- tap: "04FFFFFFFFFFFF"
- expect: {event: {type: tag_rejected}}
- cloud: {action: revoke_tag, tag: "04C0C1C2C3C4C5", user: alice, via: app}
- expect: {event: {type: tag_revoked}}
- cloud: {action: photo, camera: hall, user: alice, via: app}
- expect: {event: {type: photo_ready}, within: 5}
- restart: panel
- expect: {event: {type: restart}, within: 5}
"""
TYPES = {
    "code_rejected", "keypad_locked", "keypad_unlocked", "arm_refused", "arming", "armed",
    "entry", "alarm", "alarm_end", "disarmed", "panic", "fire", "tamper", "duress",
    "tag_rejected", "tag_revoked", "photo_requested", "photo_ready", "restart",
}  # fmt: skip
USERS = {"alice": 1, "bob": 2, "carol": 3}
ZONES = {"front_door": 1, "kitchen_window": 2, "hall_pir": 3, "panic_button": 4,
         "siren_box": 5, "smoke_hall": 6}  # fmt: skip


@pytest.mark.parametrize(
    ("fmt", "key"), [("SIA-DCS", None), ("SIA-DCS", "0123456789ABCDEF"),
                     ("ADM-CID", None), ("ADM-CID", "0123456789ABCDEF0123456789ABCDEF")],
    ids=["sia-plain", "sia-aes128", "cid-plain", "cid-aes256"],
)  # fmt: skip
async def test_site_reports_every_event_type(tmp_path: Path, fmt: str, key: str | None) -> None:
    receiver = await ArcReceiver(account="C0FFEE", key=key).start()
    data: dict[str, Any] = read_site_file(DEMO_SITE)
    data["arc"] = {"receivers": [receiver.url], "account": "C0FFEE", "format": fmt}
    if key is not None:
        data["arc"]["key"] = key
    scenario = parse_scenario(
        yaml.safe_dump({"spec": 1, "name": "every type", "steps": yaml.safe_load(STEPS)}), "arc"
    )
    site = SimSite(data, "arc-site", clock=VirtualClock(VIRTUAL_START_MS), workdir=tmp_path)
    try:
        await site.start()
        outcome = await ScenarioRun(scenario, SimTarget(site), lambda _: None).run()
        assert outcome.passed, outcome.message
        stored = [s.event for s in site.hub.store.events(panel="p1")]
        assert {str(e.type) for e in stored} >= TYPES
        await receiver.wait_for(lambda r: len(r.events) >= len(stored), timeout=30)
        got = receiver.events
        assert len(got) == len(stored)
        for event, rec in zip(stored, got, strict=True):
            assert rec.kind == fmt and rec.account == "C0FFEE" and rec.encrypted is bool(key)
            user = USERS.get(event.user or "", 0)
            unit = ZONES.get(event.zone, 0) if event.zone is not None else user
            if fmt == "SIA-DCS":
                assert (rec.code, rec.ri, rec.message) == (event.sia, "1", f"{unit:03d}"), event
                assert rec.id == (str(user) if user else None), event
            else:
                assert (rec.cid, rec.ri) == (event.cid, f"{unit:03d}"), event
    finally:
        await site.stop()
        await receiver.stop()
