"""kill -9 at random moments: no committed event lost, no seq repeated or skipped.

A subprocess (tests/store_writer.py) runs the real core and commits every step through
PanelStore, printing each seq once its commit has returned. It is SIGKILLed at random
moments, often in the middle of a transaction, then restarted on the same file.
"""

from __future__ import annotations

import os
import random
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from panel.store import PanelStore
from protocol.messages import EventType
from sim.lifeline import Supervised

ROOT = Path(__file__).resolve().parent.parent
KILLS = 55


def _run_and_kill(db: Path, seed: int, rng: random.Random) -> int:
    """Start a writer, let it commit for a random moment, SIGKILL it; the last seq it reported."""
    proc = Supervised(
        [sys.executable, "-m", "tests.store_writer", str(db), str(seed)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    reported = 0
    buffer = b""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    kill_at: float | None = None
    started = time.monotonic()
    try:
        while True:
            now = time.monotonic()
            if kill_at is not None and now >= kill_at:
                break
            assert now - started < 20, "the writer never started committing"
            timeout = 0.05 if kill_at is None else max(0.0, kill_at - now)
            if sel.select(timeout):
                chunk = os.read(fd, 65536)
                if not chunk:
                    break  # the writer died on its own
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    reported = int(line.split()[1])
                if kill_at is None and reported:
                    kill_at = time.monotonic() + rng.uniform(0.0, 0.06)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        sel.close()
        proc.stdout.close()
        err = proc.stderr.read() if proc.stderr else b""
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, err.decode(errors="replace")
    return reported


# 55 writer processes, each started and killed: 30-50 s on a loaded two-core machine.
@pytest.mark.timeout(240)
def test_kill_9_at_random_moments_loses_nothing_and_never_skips_a_seq(tmp_path: Path) -> None:
    rng = random.Random(20261126)
    db = tmp_path / "panel.db"
    highest_reported = 0
    for round_ in range(KILLS):
        reported = _run_and_kill(db, round_, rng)
        assert reported >= highest_reported
        highest_reported = reported
        store = PanelStore(db)
        try:
            events = store.events(limit=1_000_000)
            seqs = [e.seq for e in events]
            last = store.next_seq - 1
            # Everything the writer saw committed is there; nothing beyond the counter.
            assert last >= reported, (round_, last, reported)
            assert seqs == list(range(seqs[0], last + 1)), "a gap or a repeat in the log"
            assert seqs[0] == 1  # nothing acknowledged is old enough to prune here
            snapshot = store.load()
            assert snapshot is not None
            assert snapshot.next_seq == last + 1
            restarts = sum(1 for e in events if e.type is EventType.RESTART)
            assert restarts == round_  # every start after a kill was recorded once
            assert store.acked_upto <= last
        finally:
            store.close()
