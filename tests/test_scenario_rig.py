"""A rig made of software: scenario files drive a separately started panel and hub process.

The panel runs as ``centinela panel --config …`` with its keypad on a pty
(``serial://``) and its reader on nfcpy's ``udp:`` transport; the rig writes
keys on a second pty bridged to the first (a null-modem cable) and presents
tags with its own emulator; cloud commands go through the hub process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import select
import subprocess
import sys
import threading
import tty
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from common.errors import UsageError
from sim.broker import Mosquitto
from sim.lifeline import Supervised
from sim.rig import RigTarget, load_rig
from sim.scenario_cli import run_files

ROOT = Path(__file__).parent.parent
KEY = secrets.token_hex(32)


class NullModem:
    """Two ptys whose master sides are joined by a thread: each slave path is one end."""

    def __init__(self) -> None:
        self._a, a_slave = os.openpty()
        self._b, b_slave = os.openpty()
        for fd in (a_slave, b_slave):
            tty.setraw(fd)
        self.end_a, self.end_b = os.ttyname(a_slave), os.ttyname(b_slave)
        self._slaves = (a_slave, b_slave)
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        peer = {self._a: self._b, self._b: self._a}
        while True:
            ready, _, _ = select.select([self._a, self._b, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            for fd in ready:
                with contextlib.suppress(OSError):
                    os.write(peer[fd], os.read(fd, 4096))

    def close(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join(5)
        for fd in (self._a, self._b, *self._slaves, self._stop_r, self._stop_w):
            with contextlib.suppress(OSError):
                os.close(fd)


def _udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SITE = """\
[panel]
id = "r1"
site = "rig"

[timing]
exit_delay = 2
entry_delay = 2
alarm_duration = 5

[[users]]
name = "alice"
code = "1234"
role = "master"
tags = ["04A1B2C3D4E5F6"]

[[users]]
name = "carol"
code = "2468"
role = "arm_only"

[[zones]]
name = "front_door"
kind = "entry"

[[cameras]]
name = "hall"

[devices]
keypad = "serial://{keypad}"
nfc = "udp:127.0.0.1:{nfc}"

[mqtt]
broker = "{broker}"

[link]
key = "{key}"

[store]
path = "{store}"
"""

HUB = """\
[hub]
site = "rig"
store = "{store}"

[local]
broker = "{broker}"

[cloud]
broker = "{broker}"

[[panels]]
id = "r1"
key = "{key}"
"""

RIG = """\
[rig]
site = "panel.toml"

[cloud]
broker = "{broker}"

[keypad]
port = "{keypad}"

[nfc]
emulator = "udp:127.0.0.1:{nfc}"
"""

SCENARIO = """\
spec: 1
name: a real panel process on a software rig
steps:
  - press: "1234D"
  - expect: {state: disarmed, within: 10}
  - press: "1234A"
  - expect: {state: arming, event: {type: arming, user: alice, method: keypad}, within: 5}
  - tap: alice
  - expect: {state: disarmed, event: {type: disarmed, user: alice, method: tag}, within: 5}
  - cloud: {action: arm, mode: total, user: carol, via: web}
  - expect: {result: {ok: true}, event: {type: arming, user: carol, method: web}, within: 5}
  - expect: {state: armed_total, within: 5}
  - cloud: {action: disarm, user: carol, via: app}
  - expect: {result: {ok: false, error: forbidden}, state: armed_total, within: 5}
  - press: "1234D"
  - expect: {state: disarmed, siren: "off", locked: false, within: 5}
"""


async def _panel_online(broker: Mosquitto, site: str, panel: str) -> None:
    """Until the hub says the panel is online: both processes run and the link is up."""
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.subscribe(f"centinela/{site}/{panel}/availability", qos=1)
        async with asyncio.timeout(60):  # a loaded machine imports slowly
            async for message in client.messages:
                if message.payload == b"online":
                    return


@pytest.fixture
async def rig(tmp_path: Path, mosquitto: Mosquitto) -> AsyncIterator[Path]:
    modem = NullModem()
    nfc = _udp_port()
    fill = {"broker": mosquitto.url, "key": KEY, "nfc": nfc}
    (tmp_path / "panel.toml").write_text(
        SITE.format(**fill, keypad=modem.end_a, store=tmp_path / "panel.db")
    )
    (tmp_path / "hub.toml").write_text(HUB.format(**fill, store=tmp_path / "hub.db"))
    (tmp_path / "rig.toml").write_text(RIG.format(**fill, keypad=modem.end_b))
    procs = [
        Supervised(
            [sys.executable, "-m", "centinela", what, "--config", str(tmp_path / f"{what}.toml")],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / f"{what}.log").open("w"),
        )
        for what in ("hub", "panel")
    ]
    try:
        await _panel_online(mosquitto, "rig", "r1")
        yield tmp_path / "rig.toml"
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        modem.close()


async def test_scenarios_drive_a_separate_panel_process_through_the_rig(
    rig: Path, tmp_path: Path
) -> None:
    scenario = tmp_path / "rig.yaml"
    scenario.write_text(SCENARIO)
    lines: list[str] = []
    outcomes = await run_files([str(scenario)], rig=str(rig), out=lines.append, err=lines.append)
    logs = "\n".join(
        f"--- {name}\n{(tmp_path / name).read_text()[-2000:]}" for name in ("panel.log", "hub.log")
    )
    assert outcomes[0].passed, "\n".join(lines) + "\n" + logs


def test_rig_files_are_validated(tmp_path: Path) -> None:
    from common.errors import ConfigError

    (tmp_path / "site.toml").write_text('[panel]\nid = "p1"\nsite = "s"\n[[zones]]\nname = "d"\n')
    head = "[rig]\nsite = 'site.toml'\n[cloud]\nbroker = 'mqtt://h:1'\n"
    for text, message in [
        ("[cloud]\nbroker = 'mqtt://127.0.0.1:1'\n", "rig.site: required"),
        ("[rig]\nsite = 'site.toml'\n", "cloud.broker: required"),
        ("[rig]\nsite = 'site.toml'\n[cloud]\nbroker = 'http://x'\n", "cloud.broker"),
        (
            head + "[zones]\nattic = 4\n",
            "zones.attic: not a zone of the site file",
        ),
        (
            head + "[zones]\nd = 'x'\n",
            "zones.d: expected a GPIO (BCM) pin number",
        ),
        (
            head + "[nfc]\nemulator = 'usb:1'\n",
            "nfc.emulator: expected udp:HOST:PORT",
        ),
        (
            head + "[commands]\nreboot = 'x'\n",
            "commands.reboot",
        ),
    ]:
        path = tmp_path / "rig.toml"
        path.write_text(text)
        with pytest.raises(ConfigError) as info:
            load_rig(path)
        assert message in str(info.value)
    (tmp_path / "rig.toml").write_text(head + "[zones]\nd = 4\n")
    config = load_rig(tmp_path / "rig.toml")
    assert config.zone_pins == {"d": 4}
    assert config.facts.zones == {"d": ""}


@pytest.fixture
def mock_pins() -> Iterator[Any]:
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    previous = Device.pin_factory
    Device.pin_factory = MockFactory()
    try:
        yield Device.pin_factory
    finally:
        Device.pin_factory.close()
        Device.pin_factory = previous


async def test_rig_zones_are_gpio_outputs_and_faults_are_shell_commands(
    tmp_path: Path, mosquitto: Mosquitto, mock_pins: Any
) -> None:
    (tmp_path / "site.toml").write_text(
        '[panel]\nid = "p1"\nsite = "s"\n[[zones]]\nname = "door"\nkind = "entry"\n'
    )
    marker = tmp_path / "restarted"
    (tmp_path / "rig.toml").write_text(
        f"[rig]\nsite = 'site.toml'\n[cloud]\nbroker = '{mosquitto.url}'\n"
        "[zones]\ndoor = 17\nactive_high = false\n[tamper]\ndoor = 22\n"
        f"[commands]\nrestart_panel = 'touch {marker}'\nbroker_stop = 'false'\n"
    )
    target = RigTarget(load_rig(tmp_path / "rig.toml"))
    await target.start()
    try:
        pin = mock_pins.pin(17)
        await target.set_zone("door", True)
        assert pin.state is False  # active low: an open zone pulls the line down
        await target.set_zone("door", False)
        assert pin.state is True
        await target.tamper("door")
        tamper = [s.state for s in mock_pins.pin(22).states]
        assert tamper[-2:] == [False, True]  # pulsed (active low), then released
        await target.restart("panel")
        assert marker.exists()
        with pytest.raises(UsageError, match="broker_stop exited 1"):
            await target.set_broker(False)
        with pytest.raises(UsageError, match=r"no \[commands\] restart_hub"):
            await target.restart("hub")
        with pytest.raises(UsageError, match=r"no \[keypad\] port"):
            await target.press("1")
        assert target.observe().state is None  # nothing published for this site yet
    finally:
        await target.stop()
