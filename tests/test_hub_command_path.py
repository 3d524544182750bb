"""The command path under hostile input: no command may stall it, flood it or run late."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from common.clock import VirtualClock
from hub.commands import Accepted, Dropped, Rejected, parse_command
from protocol.messages import Action, Command, Result, State
from sim.broker import Mosquitto
from tests.test_hub_fakepanel import T0, Cloud, RawPanel, new_key, new_site, until
from tests.test_hub_process import config_for, running

GOOD = {"id": "c1", "panel": "p1", "action": "arm", "mode": "total", "user": "alice", "via": "app"}
STATUS = {"panel": "p1", "action": "status", "user": "alice", "via": "app"}
# JSON escapes of lone surrogates: valid JSON, but no UTF-8 can carry the text.
SURROGATE_ID = b'{"id":"\\ud800","panel":"p1","action":"status","user":"alice","via":"app"}'


def surrogate_field(command_id: str) -> bytes:
    return (
        b'{"id":"' + command_id.encode() + b'","\\udc00":1,"panel":"p1",'
        b'"action":"status","user":"alice","via":"app"}'
    )


def _answer(command: Command) -> Result:
    return Result(command.id, True, state=State.ARMING if command.action is Action.ARM else None)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (surrogate_field("c1"), "'\\udc00'"),
        (b'{"id":"c1","panel":"p1","action":"status","user":"\\ud800","via":"app"}', "user"),
        (b'{"id":"c1","panel":"\\udfff","action":"status","user":"alice","via":"app"}', "panel"),
        (
            b'{"id":"c1","panel":"p1","action":"photo","camera":"\\ud83d","user":"alice",'
            b'"via":"app"}',
            "camera",
        ),
    ],
)
def test_a_string_utf8_cannot_carry_is_a_bad_request_naming_the_field(
    payload: bytes, field: str
) -> None:
    parsed = parse_command(payload, {"p1"})
    assert isinstance(parsed, Rejected), parsed
    assert parsed.detail.startswith(f"{field}:"), parsed.detail
    json.dumps(parsed.detail, ensure_ascii=False).encode("utf-8")  # the result can be sent


def test_an_id_utf8_cannot_carry_is_dropped_and_counted() -> None:
    parsed = parse_command(SURROGATE_ID, {"p1"})
    assert isinstance(parsed, Dropped)
    assert parsed.reason == "bad_command"


def test_a_surrogate_pair_is_ordinary_text() -> None:
    parsed = parse_command(b'{"id":"\\ud83d\\ude00","panel":"p1","action":"status",'
                           b'"user":"alice","via":"app"}', {"p1"})  # fmt: skip
    assert isinstance(parsed, Accepted)
    assert parsed.command.id == "\U0001f600"


async def test_poisoned_commands_neither_stall_nor_break_the_command_path(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Issue 10 item 3: 15 poisoned commands once held a legitimate arm back by 15 s."""
    site, key = new_site(), new_key()
    config = config_for(site, mosquitto, {"p1": key}, tmp_path)
    async with (
        Cloud(mosquitto, site) as cloud,
        running(config, VirtualClock(T0)) as hub,
        RawPanel(mosquitto, site, "p1", key, answer=_answer) as panel,
    ):
        for i in range(15):
            await cloud.command(SURROGATE_ID if i % 2 else surrogate_field(f"bad{i}"))
        await cloud.command(GOOD)
        assert (await cloud.wait_result("c1"))["ok"] is True
        for i in range(0, 15, 2):
            bad = await cloud.wait_result(f"bad{i}")
            assert bad["error"] == "bad_request"
            assert bad["detail"].startswith("'\\udc00':")
        assert [c.id for c in panel.commands] == ["c1"]
        assert hub.counters.get("internal_error", 0) == 0
        assert hub.counters["bad_command"] == 15


async def test_a_full_command_queue_answers_busy_and_a_stalled_command_is_never_sent_late(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site, key = new_site(), new_key()
    config = config_for(site, mosquitto, {"p1": key}, tmp_path, command_queue=3)
    clock = VirtualClock(T0)
    async with (
        Cloud(mosquitto, site) as cloud,
        running(config, clock) as hub,
        RawPanel(mosquitto, site, "p1", key, answer=_answer) as panel,
    ):
        # The first command's publish hangs (a stalled broker): everything behind it waits.
        gate = asyncio.Event()
        real_publish = hub.local.publish

        async def stalled(topic: str, payload: bytes, **kw: Any) -> None:
            await gate.wait()
            await real_publish(topic, payload, **kw)

        monkeypatch.setattr(hub.local, "publish", stalled)
        await cloud.command({**STATUS, "id": "first"})
        await until(lambda: "first" in hub.pending)
        for i in range(3):
            await cloud.command({**STATUS, "id": f"queued{i}"})
        await until(lambda: hub._commands.full())
        for i in range(4):
            await cloud.command({**STATUS, "id": f"over{i}"})
        for i in range(4):
            over = await cloud.wait_result(f"over{i}")
            assert over["error"] == "busy"
            assert "3 commands are waiting" in over["detail"]
        assert hub.counters["busy"] == 4

        # The deadline passes while they wait: `timeout` for all, and none reaches the panel.
        await clock.advance(config.command_timeout)
        assert (await cloud.wait_result("first"))["error"] == "timeout"
        monkeypatch.setattr(hub.local, "publish", real_publish)
        gate.set()
        for i in range(3):
            late = await cloud.wait_result(f"queued{i}")
            assert late["error"] == "timeout"
            assert "past its deadline" in late["detail"]
        await until(hub.idle)
        assert [c.id for c in panel.commands] == ["first"]  # sent once the stall ended

        # And the path is free again.
        await cloud.command(GOOD)
        assert (await cloud.wait_result("c1"))["ok"] is True
        assert [c.id for c in panel.commands] == ["first", "c1"]


async def test_a_flood_of_commands_keeps_the_hub_bounded(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Every command is answered; what waits never exceeds the queue and the in-flight cap."""
    from hub.process import MAX_IN_FLIGHT

    site, key = new_site(), new_key()
    config = config_for(site, mosquitto, {"p1": key}, tmp_path, command_queue=8)
    async with (
        Cloud(mosquitto, site) as cloud,
        running(config, VirtualClock(T0)) as hub,
        RawPanel(mosquitto, site, "p1", key) as panel,  # a panel that never answers
    ):
        await panel.join()  # ...but is known to the hub (its store's epoch)
        seen = {"queue": 0, "pending": 0}

        def watch() -> None:
            seen["queue"] = max(seen["queue"], hub._commands.qsize())
            seen["pending"] = max(seen["pending"], len(hub.pending))

        hub.listeners.append(watch)
        n = 600
        await asyncio.gather(*(cloud.command({**STATUS, "id": f"f{i}"}) for i in range(n)))
        await cloud.wait(lambda: len(cloud.on("result")) + len(hub.pending) == n)
        errors = [r.get("error") for r in cloud.results().values()]
        assert set(errors) == {"busy"}
        assert len(errors) == n - len(hub.pending)
        await panel.wait(lambda: len(panel.commands) == len(hub.pending))
        assert len(hub.pending) <= MAX_IN_FLIGHT
        assert seen["queue"] <= 8
        assert seen["pending"] <= MAX_IN_FLIGHT
