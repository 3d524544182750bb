"""`make arc` (the demo with a pysiaalarm receiver) and `centinela sim` with an [arc] section."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.arc_receiver import ArcReceiver

ROOT = Path(__file__).parent.parent
DEMO = ROOT / "sim" / "sites" / "demo.toml"


@pytest.mark.slow
def test_make_arc_prints_what_the_receiver_gets() -> None:
    env = {**os.environ, "ARC_FORMAT": "ADM-CID", "ARC_KEY": "0123456789ABCDEF01234567"}
    out = subprocess.run(
        [sys.executable, "-m", "tests.arc_demo", "--once"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    lines = [x for x in out.splitlines() if x.startswith("ARC <- ADM-CID")]
    assert [x.split("event ")[1][:4] for x in lines] == ["3400", "3401", "1401"], out
    assert all("zone/user 001 (AES)" in x for x in lines), out


async def test_centinela_sim_hands_arc_to_its_hub(tmp_path: Path) -> None:
    receiver = await ArcReceiver(account="ABC").start()
    site = tmp_path / "site.toml"
    site.write_text(
        DEMO.read_text()
        + f'\n[arc]\nreceivers = ["{receiver.url}"]\naccount = "abc"\nsupervision = 0.2\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "centinela", "sim", str(site), "--headless"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        await receiver.wait_for(lambda r: any(x.kind == "NULL" for x in r.received), timeout=30)
        assert receiver.received[0].account == "ABC"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        await receiver.stop()
    assert proc.returncode == 0, err.decode()[-2000:]
