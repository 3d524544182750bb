"""Run a long-lived process (panel or hub) until SIGINT or SIGTERM, then stop it cleanly."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any


async def serve(
    process: AbstractAsyncContextManager[Any],
    started: Callable[[], None],
    stopping: Callable[[], None] | None = None,
) -> None:
    """Enter ``process``, call ``started``, wait for a signal, call ``stopping``, exit it."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with process:
            started()
            await stop.wait()
            if stopping is not None:
                stopping()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
