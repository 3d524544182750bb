"""``centinela hub --config HUB.toml``: the hub process until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from hub.config import load_hub_file
from hub.process import HubProcess

_LOGGER = logging.getLogger(__name__)


async def serve(process: HubProcess) -> None:
    """Run ``process`` until SIGINT or SIGTERM, then stop it cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with process:
            _LOGGER.info(
                "hub %s running: local %s, cloud %s",
                process.config.site, process.config.local.url, process.config.cloud.url,
            )  # fmt: skip
            await stop.wait()
            _LOGGER.info("hub %s stopping", process.config.site)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def run_hub(args: argparse.Namespace) -> int:
    """Entry point of ``centinela hub``: exit 0 after a clean stop."""
    config = load_hub_file(args.config)
    asyncio.run(serve(HubProcess(config)))
    return 0
