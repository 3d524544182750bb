"""`centinela sim`: headless logs, the terminal view on a pty, clean stops, the amqtt fallback."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import aiomqtt
import pytest

from sim.broker import Mosquitto
from sim.lifeline import Supervised
from sim.scenario import load_scenario
from sim.scenario_cli import run_simulated, validate

ROOT = Path(__file__).parent.parent
DEMO = ROOT / "sim" / "sites" / "demo.toml"


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found |= {child} | _descendants(child)
    return found


def _read_until(fd: int, needle: bytes, seconds: float, buf: bytearray) -> bool:
    deadline = time.monotonic() + seconds
    while needle not in buf and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                buf += os.read(fd, 65536)
            except OSError:
                return needle in buf
    return needle in buf


def _stop(proc: subprocess.Popen[bytes], helpers: set[int]) -> None:
    """SIGTERM (the clean way), SIGKILL only if that fails; then any helper left, by PID."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pid in helpers:
        with contextlib.suppress(OSError):
            if b"mosquitto" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGKILL)


def test_headless_logs_events_and_stops_cleanly_on_sigterm(mosquitto: Mosquitto) -> None:
    proc = Supervised(
        [sys.executable, "-m", "centinela", "sim", "--headless", str(DEMO)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    assert proc.stderr is not None
    os.set_blocking(proc.stderr.fileno(), False)
    buf = bytearray()
    children: set[int] = set()
    try:
        assert _read_until(proc.stderr.fileno(), b"sim.main: state p1 disarmed", 20, buf), buf
        children = _descendants(proc.pid)
        assert children, "the private mosquitto runs as a child"
        assert b"(mosquitto)" in buf
        match = re.search(rb"keypad serial (/dev/pts/\d+)", buf)
        assert match, buf
        # A person types into the simulated keypad from any serial terminal.
        keypad = os.open(match.group(1), os.O_RDWR | os.O_NOCTTY)
        try:
            os.write(keypad, b"2468A")
            assert _read_until(proc.stderr.fileno(), b"arming mode=total user=carol", 10, buf)
        finally:
            os.close(keypad)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        alive = [pid for pid in children if Path(f"/proc/{pid}").exists()]
        assert not alive, f"left behind: {alive}"
        _read_until(proc.stderr.fileno(), b"\0", 0.2, buf)
    finally:
        _stop(proc, children)
        proc.stderr.close()
    assert b"Traceback" not in buf, buf.decode(errors="replace")


def test_a_bad_site_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text('[panel]\nid = "p1"\nsite = "demo"\n[[users]]\nname = "x"\ncode = 12\n')
    proc = subprocess.run(
        [sys.executable, "-m", "centinela", "sim", "--headless", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert f"{site}: users[0]" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


async def test_the_terminal_view_takes_commands_and_hides_codes(mosquitto: Mosquitto) -> None:
    fd, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = Supervised(
        [sys.executable, "-m", "centinela", "sim", str(DEMO)],
        cwd=ROOT,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        env=dict(os.environ, TERM="xterm-256color"),
    )
    os.close(slave)
    buf = bytearray()
    helpers: set[int] = set()
    try:
        found = await asyncio.to_thread(_read_until, fd, b"DISARMED", 30, buf)
        helpers = _descendants(proc.pid)
        assert found, buf.decode(errors="replace")[-2000:]
        match = re.search(rb"broker mqtt://127\.0\.0\.1:(\d+)", buf)
        assert match, buf
        assert b"keypad serial /dev/pts/" in buf
        os.write(fd, b"1234A\r")
        assert await asyncio.to_thread(_read_until, fd, b"ARMING", 10, buf)
        # The screen is redrawn by differences: what the site did is checked on the cloud side.
        os.write(fd, b"open kitchen_window\r")
        async with aiomqtt.Client("127.0.0.1", int(match.group(1))) as cloud:
            await cloud.subscribe("centinela/demo/#", qos=1)
            async with asyncio.timeout(10):
                async for message in cloud.messages:
                    if message.topic.matches("centinela/demo/p1/state"):
                        state = json.loads(message.payload)  # type: ignore[arg-type]
                        if "kitchen_window" in state["open_zones"]:
                            break
            assert state["state"] == "arming"
        os.write(fd, b"quit\r")
        assert await asyncio.to_thread(proc.wait, 20) == 0
    finally:
        _stop(proc, helpers)
        os.close(fd)
    assert b"1234" not in buf


@pytest.mark.parametrize("broker", ["amqtt"])
async def test_a_scenario_runs_on_the_embedded_broker(broker: str) -> None:
    scenario = load_scenario(ROOT / "sim" / "scenarios" / "02_arm_total_code.yaml")
    data, source = validate(scenario)
    lines: list[str] = []
    outcome = await run_simulated(scenario, data, source, out=lines.append, prefer_broker=broker)
    assert outcome.passed, "\n".join(lines)


async def test_an_installers_site_file_with_a_key_file_runs(tmp_path: Path) -> None:
    import tomllib

    from common.clock import RealClock
    from protocol.keys import generate_key
    from sim.site import SimSite

    key = tmp_path / "panel.key"
    key.write_text(generate_key() + "\n")
    key.chmod(0o600)
    data = tomllib.loads(DEMO.read_text())
    data["link"] = {"key_file": str(key)}
    site = SimSite(data, str(tmp_path / "site.toml"), clock=RealClock(), workdir=tmp_path / "w")
    async with site:
        assert await site.wait_linked()  # the hub hears the panel through that key
        await site.press("1234A")  # an event reaches the cloud only if the hub reads the key
        assert site.cloud is not None
        async with asyncio.timeout(20):
            while not any(e["type"] == "arming" for e in site.cloud.events):
                await asyncio.sleep(0.05)
