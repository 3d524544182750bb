"""Silent calls as they arrive from the cloud broker, for the pages that play them live.

The messages of ``centinela/<site>/<panel>/audio/<id>``, concatenated, form one WebM/Opus
file and an empty message ends it (CONTRACT §9). A page that asked for a silent call
plays the first stream of its site that begins after its request, while it goes on.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

KEEP = 8
"""Streams remembered per site (the newest), finished or not."""
MAX_BYTES = 2 * 1024 * 1024
"""Largest stream kept (about 10 minutes at 24 kbit/s); beyond it the stream is cut."""


@dataclass
class AudioStream:
    """One silent call's WebM bytes so far."""

    media_id: str
    began: float  # monotonic time of its first message
    data: bytearray = field(default_factory=bytearray)
    done: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, raw: bytes) -> None:
        if self.done:
            return
        if raw and len(self.data) + len(raw) <= MAX_BYTES:
            self.data.extend(raw)
        else:
            self.done = True  # the end message, or over the size a page may get
        self.changed.set()


class AudioStreams:
    """The recent silent calls of every site."""

    def __init__(self) -> None:
        self._sites: dict[str, OrderedDict[str, AudioStream]] = {}
        self._arrived = asyncio.Event()

    def take(self, site: str, media_id: str, raw: bytes) -> None:
        """One message of ``media_id`` at ``site``."""
        streams = self._sites.setdefault(site, OrderedDict())
        stream = streams.get(media_id)
        if stream is None:
            if not raw:
                return  # the end of a stream this service never saw begin
            stream = streams[media_id] = AudioStream(media_id, time.monotonic())
            while len(streams) > KEEP:
                streams.popitem(last=False)
        stream.add(raw)
        self._arrived.set()

    async def next_after(self, site: str, after: float, wait_s: float) -> AudioStream | None:
        """The first stream of ``site`` that began at or after ``after`` (monotonic)."""
        try:
            async with asyncio.timeout(wait_s):
                while True:
                    for stream in self._sites.get(site, {}).values():
                        if stream.began >= after:
                            return stream
                    self._arrived.clear()
                    await self._arrived.wait()
        except TimeoutError:
            return None

    @staticmethod
    async def follow(stream: AudioStream) -> AsyncIterator[bytes]:
        """The stream's bytes from its start, as they come, until it ends."""
        sent = 0
        while True:
            stream.changed.clear()
            if len(stream.data) > sent:
                chunk = bytes(stream.data[sent:])
                sent += len(chunk)
                yield chunk
                continue
            if stream.done:
                return
            await stream.changed.wait()
