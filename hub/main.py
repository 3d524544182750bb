"""``centinela hub --config HUB.toml``: the hub process until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging

from common.service import serve
from hub.config import load_hub_file
from hub.process import HubProcess

_LOGGER = logging.getLogger(__name__)


def run_hub(args: argparse.Namespace) -> int:
    """Entry point of ``centinela hub``: exit 0 after a clean stop."""
    config = load_hub_file(args.config)

    def started() -> None:
        _LOGGER.info(
            "hub %s running: local %s, cloud %s", config.site, config.local.url, config.cloud.url
        )

    def stopping() -> None:
        _LOGGER.info("hub %s stopping", config.site)

    asyncio.run(serve(HubProcess(config), started, stopping))
    return 0
