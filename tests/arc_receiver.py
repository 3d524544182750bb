"""pysiaalarm as the alarm receiving centre: a real DC-09 receiver on a free 127.0.0.1 port.

pysiaalarm's own TCP handler parses and answers every message; this wrapper
only keeps the open connections so that ``stop()`` really takes the receiver
down (pysiaalarm's stop closes the listener but lets open connections run on).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pysiaalarm import SIAAccount, SIAEvent
from pysiaalarm.aio import SIAClient
from pysiaalarm.utils import CommunicationsProtocol

from sim.broker import free_port


@dataclass(frozen=True)
class Received:
    """What the receiver made of one acknowledged message."""

    kind: str  # SIA-DCS | ADM-CID | NULL
    sequence: str
    account: str
    code: str | None
    ri: str | None
    id: str | None
    message: str | None
    qualifier: str | None
    event_type: str | None
    encrypted: bool

    @property
    def cid(self) -> str | None:
        """Qualifier + event code of an ADM-CID message."""
        if self.qualifier is None or self.event_type is None:
            return None
        return self.qualifier + self.event_type


@dataclass
class ArcReceiver:
    """A pysiaalarm receiver for one account (with or without an AES key)."""

    account: str = "AAA1"
    key: str | None = None
    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    on_event: Callable[[Received], None] | None = None
    _client: Any = None
    _server: asyncio.Server | None = None
    _conns: set[asyncio.StreamWriter] = field(default_factory=set)
    _handlers: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def events(self) -> list[Received]:
        """Everything but NULL link tests."""
        return [r for r in self.received if r.kind != "NULL"]

    async def _got(self, event: SIAEvent) -> None:
        kind = getattr(event.message_type, "value", str(event.message_type))
        got = Received(
            kind, str(event.sequence), str(event.account), event.code, event.ri, event.id,
            event.message, event.event_qualifier, event.event_type, bool(event.encrypted),
        )  # fmt: skip
        self.received.append(got)
        if self.on_event is not None:
            self.on_event(got)
        self.changed.set()

    async def start(self) -> ArcReceiver:
        self._client = SIAClient(
            "127.0.0.1",
            self.port,
            [SIAAccount(self.account, self.key)],
            function=self._got,
            protocol=CommunicationsProtocol.TCP,
        )
        handle_line = self._client.sia_server.handle_line

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._conns.add(writer)
            task = asyncio.current_task()
            assert task is not None
            self._handlers.add(task)
            try:
                await handle_line(reader, writer)
            except (ConnectionError, OSError):
                pass
            finally:
                self._conns.discard(writer)
                self._handlers.discard(task)

        self._client.sia_server.shutdown_flag = False
        self._server = await asyncio.start_server(handle, "127.0.0.1", self.port)
        return self

    async def stop(self) -> None:
        """Down: no listener, every open connection reset."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._conns):
                writer.transport.abort()
            handlers = list(self._handlers)
            # An aborted connection reads as closed: pysiaalarm's handler returns by itself.
            _, late = await asyncio.wait(handlers, timeout=5) if handlers else (set(), set())
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def wait_for(self, predicate: Callable[[ArcReceiver], bool], timeout: float = 20) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self):
                self.changed.clear()
                await self.changed.wait()

    @property
    def counts(self) -> dict[str, int]:
        """pysiaalarm's own counters (events, valid_events, crc, timestamp, ...)."""
        if self._client is None:
            return {}
        counts = self._client.counts
        return {
            k: int(getattr(counts, k))
            for k in vars(type(counts))
            if not k.startswith("_") and isinstance(getattr(counts, k), int)
        }
