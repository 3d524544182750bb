"""``centinela cloud --config CLOUD.toml``: the customer area and app API until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import logging
import re

from cloud.config import load_cloud_file
from common.errors import UsageError
from common.service import serve

_LOGGER = logging.getLogger(__name__)


def run_cloud(args: argparse.Namespace) -> int:
    """Entry point of ``centinela cloud``: exit 0 after a clean stop."""
    from cloud.service import CloudService

    config = load_cloud_file(args.config)
    worker = getattr(args, "worker", None)
    if worker:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", worker):
            raise UsageError(f"--worker: must be 1 to 32 of A-Z a-z 0-9 _ -, not {worker!r}")
        config = dataclasses.replace(config, client_id=f"{config.client_id}-{worker}")
    service = CloudService(config)

    def started() -> None:
        # What stays for the life of the process (an operator's file is 100,000
        # installations) is left out of the collector's full passes, which would otherwise
        # walk all of it every few hundred requests: tens of milliseconds each time.
        gc.freeze()
        _LOGGER.info(
            "customer area at %s; cloud broker %s; %d installation(s)",
            service.url,
            config.broker.url,
            len(config.installations),
        )

    asyncio.run(serve(service, started, lambda: _LOGGER.info("customer area stopping")))
    return 0
