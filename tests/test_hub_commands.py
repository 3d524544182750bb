"""Cloud commands through the hub: every result path over mosquitto, and the validation rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from common.clock import VirtualClock
from hub.commands import MAX_COMMAND, Accepted, Dropped, Rejected, parse_command
from protocol.messages import Action, Command, ErrorCode, Mode, Result, State, Via
from sim.broker import Mosquitto
from tests.test_hub_fakepanel import (
    T0,
    Cloud,
    RawPanel,
    new_key,
    new_site,
    response_properties,
    until,
)
from tests.test_hub_process import config_for, running

PANELS = ("p1", "p2")
GOOD = {"id": "c1", "panel": "p1", "action": "arm", "mode": "total", "user": "alice", "via": "app"}


def _parse(data: Any) -> Any:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return parse_command(raw, PANELS)


# -- validation (pure) -------------------------------------------------------------------


def test_a_valid_command_becomes_a_command_frame_value() -> None:
    parsed = _parse(GOOD)
    assert parsed == Accepted("p1", Command("c1", Action.ARM, "alice", Via.APP, mode=Mode.TOTAL))
    photo = _parse({"id": "p", "panel": "p1", "action": "photo", "camera": "hall",
                    "user": "alice", "via": "app"})  # fmt: skip
    assert photo == Accepted("p1", Command("p", Action.PHOTO, "alice", Via.APP, camera="hall"))
    tag = _parse({"id": "t", "panel": "p2", "action": "revoke_tag", "tag": "04a1b2c3",
                  "user": "bob", "via": "web"})  # fmt: skip
    assert tag == Accepted("p2", Command("t", Action.REVOKE_TAG, "bob", Via.WEB, tag="04A1B2C3"))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"panel": "p9"}, "panel"),
        ({"panel": None}, "panel"),
        ({"action": "explode"}, "action"),
        ({"action": None}, "action"),
        ({"mode": "holiday"}, "mode"),
        ({"mode": None}, "mode"),
        ({"user": "Alice!"}, "user"),
        ({"user": ""}, "user"),
        ({"user": 7}, "user"),
        ({"via": "sms"}, "via"),
        ({"via": None}, "via"),
        ({"colour": "red"}, "colour"),
        ({"action": "disarm", "mode": "total"}, "mode"),
        ({"action": "photo", "camera": "hall", "mode": "total"}, "mode"),
        ({"action": "photo"}, "camera"),
        ({"action": "photo", "camera": "Hall Cam"}, "camera"),
        ({"action": "status", "camera": "hall"}, "camera"),
        ({"action": "sos", "tag": "04A1B2C3"}, "tag"),
        ({"action": "revoke_tag"}, "tag"),
        ({"action": "revoke_tag", "tag": "XYZ"}, "tag"),
        ({"action": "revoke_tag", "tag": "04A"}, "tag"),
        ({"action": "revoke_tag", "tag": 4}, "tag"),
    ],
)
def test_bad_requests_name_the_field(change: dict[str, Any], field: str) -> None:
    data = {**GOOD, **change}
    if data["action"] != "arm" and "mode" not in change:
        del data["mode"]
    data = {k: v for k, v in data.items() if v is not None}
    parsed = _parse(data)
    assert isinstance(parsed, Rejected), parsed
    assert parsed.id == "c1"
    assert parsed.detail.startswith(f"{field}:"), parsed.detail
    assert parsed.result().error is ErrorCode.BAD_REQUEST


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'"c1"',
        json.dumps({**GOOD, "id": None}).encode(),
        json.dumps({**GOOD, "id": 42}).encode(),
        json.dumps({**GOOD, "id": ""}).encode(),
        json.dumps({**GOOD, "id": "x" * 65}).encode(),
        json.dumps({**GOOD, "id": "a\nb"}).encode(),
        json.dumps({k: v for k, v in GOOD.items() if k != "id"}).encode(),
        b"[" * 100_000,
    ],
)
def test_commands_without_a_usable_id_are_dropped(payload: bytes) -> None:
    parsed = _parse(payload)
    assert isinstance(parsed, Dropped)
    assert parsed.reason in ("bad_command", "oversized_command")


def test_a_huge_command_is_dropped_unread() -> None:
    parsed = _parse({**GOOD, "user": "a" * MAX_COMMAND})
    assert isinstance(parsed, Dropped)
    assert parsed.reason == "oversized_command"


# -- over the brokers --------------------------------------------------------------------


def _answer(command: Command) -> Result | None:
    if command.action is Action.ARM:
        return Result(command.id, True, state=State.ARMING)
    if command.action is Action.UNLOCK:
        return Result(command.id, False, error=ErrorCode.FORBIDDEN, detail="bob is not a master")
    return None  # anything else: the panel stays silent


async def test_every_command_path(mosquitto: Mosquitto, tmp_path: Path) -> None:
    site, k1, k2 = new_site(), new_key(), new_key()
    config = config_for(site, mosquitto, {"p1": k1, "p2": k2}, tmp_path, command_timeout=10)
    clock = VirtualClock(T0)
    async with (
        Cloud(mosquitto, site) as cloud,
        running(config, clock) as hub,
        RawPanel(mosquitto, site, "p1", k1, answer=_answer) as p1,
        RawPanel(mosquitto, site, "p2", k2) as p2,
    ):
        for panel in (p1, p2):
            await panel.join()  # the hub learns the panel's epoch (and the panel the hub's)
        # ok, correlated by id; the panel got exactly the validated command.
        await cloud.command(GOOD)
        assert await cloud.wait_result("c1") == {
            "id": "c1", "panel": "p1", "ok": True, "state": "arming"
        }  # fmt: skip
        # It carries its deadline: the moment the hub answers `timeout` (docs/protocol.md).
        assert p1.commands == [
            Command("c1", Action.ARM, "alice", Via.APP, mode=Mode.TOTAL, deadline_ms=T0 + 10_000)
        ]

        # The panel's own refusal is relayed with its detail.
        await cloud.command({**GOOD, "id": "c2", "action": "unlock"})
        bad = await cloud.wait_result("c2")
        assert bad["error"] == "bad_request"
        assert bad["detail"] == "mode: not a field of unlock"
        await cloud.command({"id": "c3", "panel": "p1", "action": "unlock", "user": "bob",
                             "via": "web"})  # fmt: skip
        assert await cloud.wait_result("c3") == {
            "id": "c3", "panel": "p1", "ok": False, "error": "forbidden",
            "detail": "bob is not a master",
        }  # fmt: skip

        # MQTT 5: the result also goes to the response topic, with the correlation data.
        reply = f"centinela/{site}/result/app-42"
        await cloud.client.subscribe(reply, qos=1)
        await cloud.command(
            {**GOOD, "id": "c4"}, properties=response_properties(reply, b"\x00corr")
        )
        await cloud.wait(lambda: any(str(m.topic) == reply for m in cloud.messages))
        answer = next(m for m in cloud.messages if str(m.topic) == reply)
        assert json.loads(answer.payload)["id"] == "c4"
        assert getattr(answer.properties, "CorrelationData", None) == b"\x00corr"
        assert (await cloud.wait_result("c4"))["ok"] is True

        # timeout: p2 never answers; the command_timeout runs on the hub's clock.
        await cloud.command({"id": "c5", "panel": "p2", "action": "status", "user": "alice",
                             "via": "app"})  # fmt: skip
        await p2.wait(lambda: len(p2.commands) == 1)
        # A second command with the same id while c5 is in flight: bad_request.
        await cloud.command({"id": "c5", "panel": "p2", "action": "sos", "user": "alice",
                             "via": "app"})  # fmt: skip
        dup = await cloud.wait_result("c5")
        assert dup["error"] == "bad_request"
        assert dup["detail"].startswith("id:")
        await clock.advance(9.9)
        await until(hub.idle)
        assert "timeout" not in [r.get("error") for r in cloud.json("result") if r["id"] == "c5"]
        await clock.advance(0.1)
        await cloud.wait(lambda: any(r.get("error") == "timeout" for r in cloud.json("result")))
        timed_out = [r for r in cloud.json("result") if r.get("error") == "timeout"]
        assert timed_out == [{"id": "c5", "panel": "p2", "ok": False, "error": "timeout",
                              "detail": "panel p2 did not answer within 10 s"}]  # fmt: skip

        # panel_offline at once when the panel is known offline.
        await p2.say_status("offline")
        await until(lambda: hub.availability.is_offline("p2"))
        await cloud.command({"id": "c6", "panel": "p2", "action": "disarm", "user": "alice",
                             "via": "app"})  # fmt: skip
        offline = await cloud.wait_result("c6")
        assert offline["error"] == "panel_offline"
        assert len(p2.commands) == 1  # nothing was sent down

        # unknown panel: bad_request naming the field.
        await cloud.command({**GOOD, "id": "c7", "panel": "nobody"})
        unknown = await cloud.wait_result("c7")
        assert unknown["error"] == "bad_request"
        assert unknown["detail"].startswith("panel:")

        # Malformed without an id, oversized and retained commands: counted, never answered.
        n_results = len(cloud.on("result"))
        await cloud.command(b'{"panel": "p1", "action": "arm"')
        await cloud.command({k: v for k, v in GOOD.items() if k != "id"})
        await cloud.command({**GOOD, "id": "c8", "user": "x" * 5000})
        await cloud.command({**GOOD, "id": "c9"}, retain=True)
        await until(
            lambda: (
                hub.counters.get("bad_command", 0) >= 2 + 3
                and hub.counters.get("oversized_command", 0) == 1
                and hub.counters.get("retained_command", 0) == 1
            )
        )
        await cloud.command({**GOOD, "id": "c10"})
        await cloud.wait_result("c10")
        assert {r["id"] for r in cloud.json("result")[n_results:]} == {"c10"}
        assert [c.id for c in p1.commands].count("c9") == 0
        await cloud.command(b"", retain=True)  # clear the retained command from the broker


async def test_a_retained_command_is_ignored_when_the_hub_subscribes(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """A command left retained on the broker is never executed by a hub that (re)starts."""
    site, key = new_site(), new_key()
    config = config_for(site, mosquitto, {"p1": key}, tmp_path)
    async with Cloud(mosquitto, site) as cloud, RawPanel(mosquitto, site, "p1", key) as panel:
        await cloud.command({**GOOD, "id": "old"}, retain=True)
        try:
            async with running(config) as hub:
                await panel.join()
                await until(lambda: hub.counters.get("retained_command", 0) == 1)
                await cloud.command({**GOOD, "id": "new"})
                await panel.wait(lambda: len(panel.commands) == 1)
                assert [c.id for c in panel.commands] == ["new"]
        finally:
            await cloud.command(b"", retain=True)


async def test_a_command_while_the_panel_broker_is_unreachable_is_panel_offline(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    site, key = new_site(), new_key()
    dead = Mosquitto()  # never started: its port refuses connections
    try:
        config = config_for(site, dead, {"p1": key}, tmp_path, cloud=mosquitto)
    finally:
        dead.close()
    from hub.process import HubProcess

    hub = HubProcess(config, clock=VirtualClock(T0), backoff_cap=0.3)
    async with Cloud(mosquitto, site) as cloud:
        await hub.start()
        try:
            await until(lambda: hub.cloud.state.value == "up")
            await cloud.command(GOOD)
            result = await cloud.wait_result("c1")
        finally:
            await hub.stop()
    assert result["error"] == "panel_offline"
    assert "not connected" in result["detail"]
