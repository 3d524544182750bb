"""No process left behind: brokers and helpers die with their parent, even a SIGKILLed one.

Each test starts a parent in a subprocess (a script, ``centinela sim``, a pytest
run with the broker fixtures), waits until its broker listens, SIGKILLs the
parent and then waits — polling, with a generous deadline — until the broker is
gone and its port is free again.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sim.broker import Mosquitto, find_mosquitto
from sim.lifeline import Supervised

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "sim" / "sites" / "demo.toml"
STARTUP_S = 60  # a loaded two-core machine imports slowly
GONE_S = 20
pytestmark = pytest.mark.timeout(180)  # room for STARTUP_S and GONE_S under load


@pytest.fixture(autouse=True)
def _needs_mosquitto() -> None:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (run make setup)")


def _gone(pid: int) -> bool:
    """No such process, or only its exit status is left (a zombie no one reaps)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _port_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port (a new broker could bind it, as mosquitto does)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
        return True
    return False


def _wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.05)


class Lines:
    """The lines a process writes to its stdout, read as they come."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.fd = proc.stdout.fileno()
        self.buf = b""

    def find(self, pattern: bytes, seconds: float) -> re.Match[bytes]:
        """The first line matching ``pattern`` (a regular expression), waiting up to ``seconds``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            *lines, rest = self.buf.split(b"\n")
            for n, line in enumerate(lines):
                match = regex.search(line)
                if match:
                    self.buf = b"\n".join([*lines[n + 1 :], rest])
                    return match
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if ready:
                chunk = os.read(self.fd, 65536)
                assert chunk, f"ended before {pattern!r}: {self.buf.decode(errors='replace')}"
                self.buf += chunk
        raise AssertionError(
            f"no {pattern!r} within {seconds} s: {self.buf.decode(errors='replace')}"
        )


def _sigkill(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait()


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in map(int, (task / "children").read_text().split()):
                found |= {child} | _descendants(child)
    return found


def _is_mosquitto(pid: int) -> bool:
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return False
    return argv0.endswith(b"mosquitto")


PARENT = """
import json, os, signal, subprocess, sys, threading
from sim.broker import Mosquitto
from sim.lifeline import Supervised

brokers = []
# Started from a thread that then ends: a parent-death signal would fire here.
starter = threading.Thread(target=lambda: brokers.append(Mosquitto().start()))
starter.start()
starter.join()
stubborn = Supervised(
    [sys.executable, "-c", "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
     "print('ignoring', flush=True); signal.pause()"],
    grace_s=1, stdout=subprocess.PIPE,
)
stubborn.stdout.readline()
broker = brokers[0]
facts = {"port": broker.port, "broker": broker.proc.program_pid,
         "supervisors": [broker.proc.pid, stubborn.pid], "stubborn": stubborn.program_pid}
print("READY " + json.dumps(facts), flush=True)
os.read(0, 1)  # until it is killed
"""


def test_a_sigkilled_parent_takes_its_broker_and_helpers_along() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        facts = json.loads(Lines(parent).find(b"^READY (.*)", STARTUP_S).group(1))
        # The thread that started the broker has ended; the broker serves on.
        assert _listening(facts["port"])
        assert not _gone(facts["broker"]) and not _gone(facts["stubborn"])
        _sigkill(parent)
        _wait_until(lambda: _gone(facts["broker"]), GONE_S, "the broker exits")
        _wait_until(lambda: _port_free(facts["port"]), GONE_S, "the broker's port is free")
        # A helper that ignores SIGTERM is SIGKILLed after its grace period.
        _wait_until(lambda: _gone(facts["stubborn"]), GONE_S, "the stubborn helper exits")
        for pid in facts["supervisors"]:
            _wait_until(lambda pid=pid: _gone(pid), GONE_S, f"supervisor {pid} exits")
    finally:
        _sigkill(parent)
        assert parent.stdin is not None and parent.stdout is not None
        parent.stdin.close()
        parent.stdout.close()


def test_a_sigkilled_sim_leaves_no_broker_behind() -> None:
    sim = subprocess.Popen(
        [sys.executable, "-m", "centinela", "sim", "--headless", str(DEMO)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=dict(os.environ, PYTHONUNBUFFERED="1", CENTINELA_SIM_BROKER="mosquitto"),
    )
    try:
        lines = Lines(sim)
        match = lines.find(rb"broker mqtt://127\.0\.0\.1:(\d+) \(mosquitto\)", STARTUP_S)
        port = int(match.group(1))
        _wait_until(lambda: _listening(port), STARTUP_S, "the sim's broker listens")
        brokers = [pid for pid in _descendants(sim.pid) if _is_mosquitto(pid)]
        assert len(brokers) == 1, brokers
        _sigkill(sim)
        _wait_until(lambda: _gone(brokers[0]), GONE_S, "the sim's broker exits")
        _wait_until(lambda: _port_free(port), GONE_S, "the sim's broker port is free")
    finally:
        _sigkill(sim)
        assert sim.stdout is not None
        sim.stdout.close()


INNER_TEST = """
import json, os

def test_holds_brokers(mosquitto, broker_factory):
    extra = broker_factory()
    print("READY " + json.dumps([mosquitto.port, extra.port]), flush=True)
    os.read(0, 1)  # until the run is killed
"""


def test_a_sigkilled_test_run_leaves_no_fixture_broker_behind(tmp_path: Path) -> None:
    (tmp_path / "test_inner.py").write_text(INNER_TEST)
    ini = tmp_path / "pytest.ini"
    ini.write_text("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-c", str(ini), "--rootdir", str(tmp_path),
         "-p", "tests.conftest", "-p", "no:cacheprovider", "-s", "-q",
         str(tmp_path / "test_inner.py")],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        ports = json.loads(Lines(run).find(b"^READY (.*)", STARTUP_S).group(1))
        assert all(_listening(port) for port in ports)
        brokers = [pid for pid in _descendants(run.pid) if _is_mosquitto(pid)]
        assert len(brokers) == 2, brokers
        _sigkill(run)
        for pid in brokers:
            _wait_until(lambda pid=pid: _gone(pid), GONE_S, f"fixture broker {pid} exits")
        for port in ports:
            _wait_until(lambda port=port: _port_free(port), GONE_S, f"port {port} is free")
    finally:
        _sigkill(run)
        assert run.stdin is not None and run.stdout is not None
        run.stdin.close()
        run.stdout.close()


def test_the_program_exits_as_the_supervisor_reports_it(tmp_path: Path) -> None:
    code = Supervised([sys.executable, "-c", "raise SystemExit(3)"])
    assert code.wait(STARTUP_S) == 3
    missing = Supervised([str(tmp_path / "absent")], stderr=subprocess.PIPE)
    _, err = missing.communicate(timeout=STARTUP_S)
    assert missing.returncode == 127
    assert b"cannot start" in err and b"absent" in err


def test_signals_reach_the_program_and_kill_waits_for_it() -> None:
    # SIGTERM is passed on: the program's own handler answers it.
    program = "import signal, sys; signal.signal(signal.SIGTERM, lambda *_: sys.exit(7));" \
        "print('ready', flush=True); signal.pause()"  # fmt: skip
    proc = Supervised([sys.executable, "-c", program], stdout=subprocess.PIPE)
    try:
        Lines(proc).find(b"^ready$", STARTUP_S)
        proc.terminate()
        assert proc.wait(GONE_S) == 7
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    # SIGKILL reaches the program itself; wait() returns once it is gone.
    sleeper = Supervised(["sleep", "600"])
    try:
        _wait_until(lambda: sleeper.program_pid is not None, STARTUP_S, "the program starts")
        program_pid = sleeper.program_pid
        assert program_pid is not None
        sleeper.kill()
        assert sleeper.wait(GONE_S) == -signal.SIGKILL
        assert _gone(program_pid)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_releasing_the_lifeline_stops_the_program() -> None:
    broker = Mosquitto().start()
    try:
        assert broker.proc is not None
        program = broker.proc.program_pid
        assert program is not None
        broker.proc.release()  # as if this process had died
        assert broker.proc.wait(GONE_S) == 0  # mosquitto's clean exit on SIGTERM
        assert _gone(program)
        _wait_until(lambda: _port_free(broker.port), GONE_S, "the port is free")
    finally:
        broker.close()
