"""``centinela panel --config PANEL.toml``: the panel process until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from panel.config import load_site_file
from panel.process import PanelProcess

_LOGGER = logging.getLogger(__name__)


async def serve(process: PanelProcess) -> None:
    """Run ``process`` until SIGINT or SIGTERM, then stop it cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with process:
            view = process.view()
            _LOGGER.info(
                "panel %s/%s running: %s", process.config.site, process.config.panel_id, view.state
            )
            keypad_path = getattr(getattr(process.keypad, "twin", None), "path", None)
            if keypad_path:
                _LOGGER.info("simulated keypad: open %s with any serial terminal", keypad_path)
            await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def run_panel(args: argparse.Namespace) -> int:
    """Entry point of ``centinela panel``."""
    config = load_site_file(args.config)
    asyncio.run(serve(PanelProcess(config)))
    return 0
