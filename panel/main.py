"""``centinela panel --config PANEL.toml``: the panel process until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging

from common.clock import system_clock_synchronised
from common.service import serve
from panel.config import load_site_file
from panel.process import PanelProcess

_LOGGER = logging.getLogger(__name__)


def run_panel(args: argparse.Namespace) -> int:
    """Entry point of ``centinela panel``: exit 0 after a clean stop."""
    config = load_site_file(args.config)
    process = PanelProcess(config, clock_check=system_clock_synchronised)

    def started() -> None:
        _LOGGER.info("panel %s/%s running: %s", config.site, config.panel_id, process.view().state)
        keypad_path = getattr(getattr(process.keypad, "twin", None), "path", None)
        if keypad_path:
            _LOGGER.info("simulated keypad: open %s with any serial terminal", keypad_path)

    def stopping() -> None:
        _LOGGER.info("panel %s/%s stopping", config.site, config.panel_id)

    asyncio.run(serve(process, started, stopping))
    return 0
