"""``centinela cloud`` workers as separate processes (as deployed), for the worker tests
and ``make fleet``."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

DEADLINE = 180.0  # seconds; generous for a loaded 2-core machine


class WorkerFailed(RuntimeError):
    """A worker did not come up."""


CONFIG = """\
[broker]
url = "{broker}"
client_id = "{client_id}"
share_group = "{group}"
session_expiry = 600

[store]
url = "{store}"

[web]
listen = "127.0.0.1:0"

[[installations]]
number = "1234567"
site = "casa"
panel = "p1"
[[installations.holders]]
user = "alice"
keyword = "girasol"
role = "master"
"""


class Worker:
    """One ``centinela cloud --worker NAME`` process; its log in a file."""

    def __init__(self, config: Path, name: str, tmp: Path) -> None:
        self.config, self.name, self.tmp = config, name, tmp
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tmp / f"{name}.log"
        self.starts = 0

    def start(self) -> Worker:
        self.starts += 1
        self.log = self.tmp / f"{self.name}.{self.starts}.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "centinela",
                    "cloud",
                    "--config",
                    str(self.config),
                    "--worker",
                    self.name,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + DEADLINE
        while "cloud link up" not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise WorkerFailed(f"worker {self.name} did not come up: {self.log.read_text()}")
            time.sleep(0.05)  # poll interval for the log line
        return self

    def web_url(self) -> str:
        """Where this worker serves the customer area (from its log)."""
        found = re.search(r"customer area at (http://127\.0\.0\.1:\d+)", self.log.read_text())
        if not found:
            raise WorkerFailed(f"worker {self.name} printed no address: {self.log.read_text()}")
        return found.group(1)

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
