"""``make arc``: the demo site reporting to a pysiaalarm receiver that prints what it receives.

The receiver listens on a free 127.0.0.1 port; the site is the bundled demo
site with an ``[arc]`` section pointing at it (account C0FFEE; set ARC_KEY to
16, 24 or 32 characters for AES, ARC_FORMAT=ADM-CID for Contact ID). The demo
arms with alice's code, then disarms; after that type keys into the keypad's
serial path shown in the banner. Ctrl-C stops it. ``--once`` stops after the
disarm has been received (used by the test suite).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from common.clock import RealClock
from sim.main import describe
from sim.site import DEMO_SITE, SimSite, read_site_file
from tests.arc_receiver import ArcReceiver, Received

ACCOUNT = "C0FFEE"


def line(r: Received) -> str:
    """One received message, as an operator's screen would list it."""
    crypto = "AES" if r.encrypted else "plain"
    if r.kind == "NULL":
        return f"ARC <- NULL link test #{r.account} seq {r.sequence} ({crypto})"
    if r.kind == "ADM-CID":
        return (
            f"ARC <- ADM-CID #{r.account} seq {r.sequence} event {r.cid} ({r.code}) "
            f"zone/user {r.ri} ({crypto})"
        )
    user = f" user {r.id}" if r.id else ""
    return (
        f"ARC <- SIA-DCS #{r.account} seq {r.sequence} {r.code}{user} area {r.ri} "
        f"unit {r.message} ({crypto})"
    )


async def main(once: bool) -> int:
    fmt = os.environ.get("ARC_FORMAT", "SIA-DCS")
    key = os.environ.get("ARC_KEY") or None
    done = asyncio.Event()

    def show(r: Received) -> None:
        print(line(r), flush=True)
        if r.code in ("OP", "OR") or r.cid == "1401":
            done.set()

    receiver = await ArcReceiver(account=ACCOUNT, key=key, on_event=show).start()
    print(f"pysiaalarm receiver on {receiver.url}, account {ACCOUNT}", flush=True)
    data: dict[str, Any] = read_site_file(DEMO_SITE)
    data["arc"] = {"receivers": [receiver.url], "account": ACCOUNT, "format": fmt}
    if key:
        data["arc"]["key"] = key
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        with tempfile.TemporaryDirectory(prefix="centinela-arc-") as tmp:
            site = SimSite(data, f"{DEMO_SITE} + [arc]", clock=RealClock(), workdir=Path(tmp))
            async with site:
                print(describe(site), flush=True)
                print(
                    "arming with alice's code (1234A), disarming after the exit delay", flush=True
                )
                await site.press("1234A")
                await asyncio.sleep(11)
                await site.press("1234D")
                if once:
                    async with asyncio.timeout(30):
                        await done.wait()
                else:
                    print("running; Ctrl-C stops", flush=True)
                    await stop.wait()
    finally:
        await receiver.stop()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tests.arc_demo", description=__doc__)
    parser.add_argument("--once", action="store_true", help="stop once the disarm is received")
    sys.exit(asyncio.run(main(parser.parse_args().once)))
