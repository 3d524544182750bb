"""The running service: store, cloud link, web server; started and stopped together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Generator
from typing import Any

import uvicorn

from cloud.accounts import Accounts
from cloud.config import CloudConfig
from cloud.link import CloudLink
from cloud.live import Live
from cloud.mail import Mailer
from cloud.store import Store, open_store
from cloud.web import Context, create_app

_LOGGER = logging.getLogger(__name__)

PURGE_EVERY = 3600.0
"""Seconds between two runs of the retention rule (the first runs at start)."""


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the service's owner handles signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class CloudService:
    """``async with CloudService(config) as svc:`` serves the customer area at ``svc.url``."""

    def __init__(self, config: CloudConfig, store: Store | None = None) -> None:
        self.config = config
        self.store = store or open_store(config.store_url, config.store_password)
        self.live = Live()
        self.link = CloudLink(config, self.store, self.live)
        self.accounts = Accounts(config, self.store)
        self.mailer = Mailer(config, self.store)
        self.context = Context(config, self.store, self.link, self.live, self.accounts, self.mailer)
        self.link.event_hooks += [self.mailer.on_event]
        self.app = create_app(self.context)
        self.port = config.listen_port
        self._server: _Server | None = None
        self._task: asyncio.Task[Any] | None = None
        self._socket: socket.socket | None = None
        self._unlisten: Callable[[], None] | None = None
        self._purge_task: asyncio.Task[None] | None = None
        self._purge_job: asyncio.Task[dict[str, int] | None] | None = None
        self._halt = threading.Event()  # tells a purge running in its thread to end

    @property
    def url(self) -> str:
        """Where the pages are."""
        return f"http://{self.config.listen_host}:{self.port}"

    async def start(self) -> None:
        """Open the store, connect to the broker, listen."""
        loop = asyncio.get_running_loop()

        def deliver(site: str, kind: str, value: Any) -> None:
            loop.call_soon_threadsafe(self.live.publish, site, kind, value)

        self._unlisten = await asyncio.to_thread(self.store.listen, deliver)
        await self.link.start()
        # IPPROTO_TCP named, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP, and
        # without it every response whose body follows its headers waited for the client's
        # delayed ACK (40 ms on Linux) on a kept-alive connection.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.config.listen_host, self.config.listen_port))
        except OSError as exc:
            sock.close()
            await self.link.stop()
            from common.errors import UsageError

            raise UsageError(
                f"cannot listen on {self.config.listen_host}:{self.config.listen_port}: "
                f"{exc.strerror or exc}"
            ) from None
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
            lifespan="off",
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="cloud-web")
        while not self._server.started:
            if self._task.done():
                await self._task
                raise RuntimeError("the web server stopped at start")
            await asyncio.sleep(0.01)
        _LOGGER.info("customer area at %s", self.url)
        self._purge_task = asyncio.create_task(self._purge_loop(), name="cloud-retention")

    async def purge(self) -> dict[str, int] | None:
        """Run the retention rule once, in a thread; how many rows went per table (None:
        another worker is at it). Logs one line when it deleted anything."""
        keep = self.config.retention
        job = asyncio.create_task(
            asyncio.to_thread(self.store.purge, keep, stop=self._halt), name="cloud-purge"
        )
        self._purge_job = job
        counts = await asyncio.shield(job)  # a stop waits for the statement in progress
        if counts is None:
            _LOGGER.debug("retention: another worker is purging")
        elif any(counts.values()):
            _LOGGER.info(
                "retention: deleted %s (kept: events %d days, telemetry %d, images %d)",
                ", ".join(f"{table} {n}" for table, n in counts.items() if n),
                keep.events_days,
                keep.telemetry_days,
                keep.media_days,
            )
        return counts

    async def _purge_loop(self) -> None:
        while True:
            try:
                await self.purge()
            except Exception:
                _LOGGER.exception("retention: the purge failed; trying again later")
            await asyncio.sleep(PURGE_EVERY)

    async def stop(self) -> None:
        """Close pages that follow live, stop the server, the link and the store."""
        self.context.stopping.set()
        self._halt.set()
        purge_task, self._purge_task = self._purge_task, None
        if purge_task is not None:
            purge_task.cancel()
            await asyncio.gather(purge_task, return_exceptions=True)
        job, self._purge_job = self._purge_job, None
        if job is not None:
            await asyncio.gather(job, return_exceptions=True)  # ends after its statement
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._server = self._task = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self.context.tasks:
            for task in list(self.context.tasks):
                task.cancel()
            await asyncio.gather(*list(self.context.tasks), return_exceptions=True)
        await self.mailer.drain()
        await self.link.stop()
        unlisten, self._unlisten = self._unlisten, None
        if unlisten is not None:
            await asyncio.to_thread(unlisten)
        self.store.close()

    async def __aenter__(self) -> CloudService:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
