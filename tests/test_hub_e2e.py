"""End to end: ``centinela hub`` as a process, mosquitto_pub and mosquitto_sub as the cloud."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from protocol.messages import Command, Result, State
from sim.broker import SEARCH_PATH, Mosquitto
from sim.lifeline import create_supervised_exec, kill_program
from tests.test_hub_fakepanel import WAIT, RawPanel, event, new_key, new_site


def _tool(name: str) -> str:
    path = shutil.which(name, path=SEARCH_PATH)
    if path is None:
        pytest.skip(f"{name} is not installed (mosquitto-clients)")
    return path


class Sub:
    """A mosquitto_sub process; ``ready`` returns once its subscription is live."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def line(self, wait_s: float = WAIT) -> str:
        assert self.proc.stdout is not None
        async with asyncio.timeout(wait_s):
            raw = await self.proc.stdout.readline()
        assert raw, "mosquitto_sub ended early"
        return raw.decode().rstrip("\n")


@contextlib.asynccontextmanager
async def mosquitto_sub(broker: Mosquitto, *args: str) -> AsyncIterator[Sub]:
    proc = await create_supervised_exec(
        _tool("mosquitto_sub"), "-h", broker.host, "-p", str(broker.port), "-q", "1", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield Sub(proc)
    finally:
        if proc.returncode is None:
            kill_program(proc.pid)  # it ignores SIGTERM while it is not connected
        await proc.wait()


async def mosquitto_pub(broker: Mosquitto, *args: str) -> None:
    proc = await create_supervised_exec(
        _tool("mosquitto_pub"), "-h", broker.host, "-p", str(broker.port), "-q", "1", *args,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(WAIT):
        _, err = await proc.communicate()
    assert proc.returncode == 0, err


def _hub_toml(path: Path, site: str, broker: Mosquitto, key: bytes) -> Path:
    path.write_text(
        f'[hub]\nsite = "{site}"\nstore = "hub.db"\ncommand_timeout = 10\n\n'
        f'[local]\nbroker = "{broker.url}"\n\n'
        f'[[panels]]\nid = "p1"\nkey_file = "p1.key"\n'
    )
    (path.parent / "p1.key").write_text(key.hex() + "\n")
    (path.parent / "p1.key").chmod(0o600)
    return path


def _answer(command: Command) -> Result:
    return Result(command.id, True, State.ARMING)


async def test_centinela_hub_relays_for_independent_clients(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    site, key = new_site(), new_key()
    config = _hub_toml(tmp_path / "hub.toml", site, mosquitto, key)
    availability = f"centinela/{site}/hub/availability"
    log_path = tmp_path / "hub.log"
    log = log_path.open("wb")
    hub = await create_supervised_exec(
        sys.executable, "-m", "centinela", "-v", "hub", "--config", str(config), stderr=log
    )
    try:
        async with mosquitto_sub(mosquitto, "-t", availability, "-C", "1") as up:
            assert await up.line(wait_s=30) == "online"  # a loaded machine imports slowly
        async with RawPanel(mosquitto, site, "p1", key, answer=_answer) as panel:
            # An event, seen by mosquitto_sub. The retained availability proves it subscribed.
            async with mosquitto_sub(
                mosquitto, "-t", availability, "-t", f"centinela/{site}/event", "-C", "2"
            ) as sub:
                assert await sub.line() == "online"
                await panel.send(event(1))
                got = json.loads(await sub.line())
            assert (got["site"], got["panel"], got["seq"], got["type"]) == (site, "p1", 1, "armed")
            # A command from mosquitto_pub (MQTT 5, with a response topic), results seen twice.
            reply = f"centinela/{site}/result/app-7"
            async with mosquitto_sub(
                mosquitto, "-V", "mqttv5", "-v", "-t", availability,
                "-t", f"centinela/{site}/result", "-t", reply, "-C", "3",
            ) as sub:  # fmt: skip
                assert await sub.line() == f"{availability} online"
                command = {"id": "e2e-1", "panel": "p1", "action": "arm", "mode": "night",
                           "user": "alice", "via": "web"}  # fmt: skip
                await mosquitto_pub(
                    mosquitto, "-V", "mqttv5", "-t", f"centinela/{site}/command",
                    "-m", json.dumps(command), "-D", "publish", "response-topic", reply,
                    "-D", "publish", "correlation-data", "xyz",
                )  # fmt: skip
                lines = sorted([await sub.line(), await sub.line()])
            assert [line.split(" ", 1)[0] for line in lines] == sorted(
                [reply, f"centinela/{site}/result"]
            )
            for line in lines:
                assert json.loads(line.split(" ", 1)[1]) == {
                    "id": "e2e-1", "panel": "p1", "ok": True, "state": "arming"
                }  # fmt: skip
            assert panel.commands[0].mode is not None
            assert panel.commands[0].mode.value == "night"
        hub.send_signal(signal.SIGTERM)
        async with asyncio.timeout(WAIT):
            await hub.wait()
        assert hub.returncode == 0
        async with mosquitto_sub(mosquitto, "-t", availability, "-C", "1") as down:
            assert await down.line() == "offline"
        assert (tmp_path / "hub.db").is_file()
    finally:
        if hub.returncode is None:
            kill_program(hub.pid)
            await hub.wait()
        log.close()
        print(log_path.read_text()[-5000:])  # shown when the test fails


def test_centinela_hub_with_a_bad_config_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "hub.toml"
    bad.write_text('[hub]\nsite = "demo"\n[local]\nbroker = "http://x"\n')
    for path in (bad, tmp_path / "absent.toml"):
        done = subprocess.run(
            [sys.executable, "-m", "centinela", "hub", "--config", str(path)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert str(path) in lines[0]
