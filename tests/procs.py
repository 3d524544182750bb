"""Panel and hub as separate processes (as deployed), for the chaos run and the link benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
import tty
from pathlib import Path

from sim.lifeline import Supervised

SITE_TOML = """\
[panel]
id = "{panel}"
site = "{site}"

[timing]
exit_delay = {exit_delay}
entry_delay = 30
alarm_duration = {alarm_duration}

[security]
max_attempts = {max_attempts}
lockout = 90

[[users]]
name = "alice"
code = "1234"
role = "master"
tags = ["04A1B2C3D4E5F6"]

[[zones]]
name = "front_door"
kind = "entry"

[[zones]]
name = "smoke"
kind = "fire"

[[cameras]]
name = "hall"

[devices]
keypad = "{keypad}"

[mqtt]
broker = "{broker}"

[link]
key = "{key}"
heartbeat = 30

[store]
path = "{store}"

[telemetry]
interval = 600
"""

HUB_TOML = """\
[hub]
site = "{site}"
store = "{store}"
command_timeout = 10

[local]
broker = "{broker}"

[[panels]]
id = "{panel}"
key = "{key}"
"""


def write_configs(
    directory: Path,
    broker: str,
    key: str,
    keypad: str,
    *,
    site: str = "demo",
    panel: str = "p1",
    exit_delay: int = 600,
    alarm_duration: int = 180,
    max_attempts: int = 5,
) -> tuple[Path, Path]:
    """panel.toml and hub.toml in ``directory``; stores next to them."""
    directory.mkdir(parents=True, exist_ok=True)
    panel_toml = directory / "panel.toml"
    hub_toml = directory / "hub.toml"
    panel_toml.write_text(
        SITE_TOML.format(
            panel=panel,
            site=site,
            exit_delay=exit_delay,
            alarm_duration=alarm_duration,
            max_attempts=max_attempts,
            keypad=keypad,
            broker=broker,
            key=key,
            store=directory / f"{panel}.db",
        )
    )
    hub_toml.write_text(
        HUB_TOML.format(site=site, store=directory / "hub.db", broker=broker, panel=panel, key=key)
    )
    return panel_toml, hub_toml


class PtyKeypad:
    """The far end of a serial keypad line: the panel opens ``path``, we type into the master."""

    def __init__(self) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        tty.setraw(self.master)
        self.path = os.ttyname(self._slave)

    @property
    def url(self) -> str:
        return f"serial://{self.path}?baud=115200"

    def type(self, keys: str) -> None:
        data = memoryview(keys.encode("ascii"))
        while data:
            try:
                data = data[os.write(self.master, data) :]
            except BlockingIOError:
                self.drain()
                time.sleep(0.001)

    async def opened(self, seconds: float = 60) -> None:
        """Until the panel shows its state on the keypad: it has opened the line (and flushed
        its input, as pyserial does on open), so keys typed from now on reach it."""
        async with asyncio.timeout(seconds):
            while not self.has_output():
                await asyncio.sleep(0.02)
        self.drain()

    def has_output(self) -> bool:
        """Whether the panel wrote to the keypad (a display line, a beep) since the last drain."""
        ready, _, _ = select.select([self.master], [], [], 0)
        return bool(ready)

    def drain(self) -> None:
        """Discard what the panel wrote to the keypad (display lines, beeps)."""
        os.set_blocking(self.master, False)
        try:
            while os.read(self.master, 65536):
                pass
        except (BlockingIOError, OSError):
            pass

    def close(self) -> None:
        os.close(self.master)
        os.close(self._slave)


class Proc:
    """A ``centinela`` subcommand in its own process group, stopped by PID.

    It runs under a lifeline (sim/lifeline.py): if this process dies, even by
    SIGKILL, the subcommand is stopped too.
    """

    def __init__(self, args: list[str], log: Path) -> None:
        self.args = args
        self.log = log
        self.popen: Supervised | None = None

    def start(self) -> Proc:
        with self.log.open("ab") as out:
            self.popen = Supervised(
                [sys.executable, "-m", "centinela", *self.args],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        """The subcommand's own PID (not its supervisor's)."""
        assert self.popen is not None
        pid = self.popen.program_pid
        assert pid is not None, "not running"
        return pid

    def kill(self) -> None:
        """SIGKILL the subcommand: no clean-up at all; returns once it is gone."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait()

    def stop(self, timeout: float = 10) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit; the exit status."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode

    def rss_mb(self) -> float:
        """Resident memory of the process in MiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0


def panel_last_seq(db: Path) -> int:
    """The last seq the panel committed; 0 while its store has no schema yet.

    The panel creates the file, then its tables in a transaction of their own. Both
    reads below run in one read transaction, so they see one snapshot: either the
    tables are there, or the reader says 0 — it never races the schema.
    """
    if not db.exists():
        return 0
    uri = f"file:{db}?mode=ro"
    with contextlib.closing(
        sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)
    ) as conn:
        conn.execute("BEGIN")
        try:
            exists = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'state'"
            ).fetchone()
            row = (
                conn.execute("SELECT next_seq FROM state WHERE id = 1").fetchone()
                if exists
                else None
            )
        finally:
            conn.execute("COMMIT")
    return int(row[0]) - 1 if row else 0
