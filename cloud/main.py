"""``centinela cloud --config CLOUD.toml``: the customer area and app API until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging

from cloud.config import load_cloud_file
from common.service import serve

_LOGGER = logging.getLogger(__name__)


def run_cloud(args: argparse.Namespace) -> int:
    """Entry point of ``centinela cloud``: exit 0 after a clean stop."""
    from cloud.service import CloudService

    config = load_cloud_file(args.config)
    service = CloudService(config)

    def started() -> None:
        _LOGGER.info(
            "customer area at %s; cloud broker %s; %d installation(s)",
            service.url,
            config.broker.url,
            len(config.installations),
        )

    asyncio.run(serve(service, started, lambda: _LOGGER.info("customer area stopping")))
    return 0
