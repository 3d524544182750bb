"""Media streams at the hub: listen-ins relayed live, clips reassembled and checked, both
under a size and age quota (docs/media.md).

Pieces come from the panel outside the event log (``MediaChunk``); the cloud gets, under
``centinela/<site>/<panel>/audio/<id>`` or ``…/clip/<id>``, messages that concatenated in
order form one WebM file, and an empty message that ends it (CONTRACT §9). A piece sent
twice (the panel resends after a link drop) is dropped by its index; a piece that
arrives ahead of a missing one waits for it.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Final

from protocol.messages import MediaChunk, MediaKind

MEDIA_ID_RE: Final = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")
WEBM_MAGIC: Final = b"\x1a\x45\xdf\xa3"  # the EBML header every WebM file starts with
CLOUD_PIECE: Final = 65_536
"""Largest message of a clip towards the cloud."""
MAX_HELD_BYTES: Final = 64 * 1024 * 1024
"""Media held at the hub (pieces waiting, clips being assembled) across all panels."""
MAX_AGE_MS: Final = 10 * 60_000
"""A stream that has not progressed for this long is dropped."""
DONE_MEMORY: Final = 256
"""Finished streams remembered, so late resends of their pieces are recognised."""


class MediaRejected(Exception):
    """A piece that cannot be used; the message says why (counted by the caller)."""


@dataclass(slots=True)
class _Stream:
    kind: MediaKind
    next_index: int = 0  # the next piece to relay (audio) or to append (clip)
    held: dict[int, bytes] = field(default_factory=dict)  # pieces ahead of a missing one
    last_index: int | None = None
    body: list[bytes] = field(default_factory=list)  # a clip's pieces so far
    size: int = 0
    touched_ms: int = 0


@dataclass(frozen=True, slots=True)
class Publish:
    """One message to the cloud: ``data`` for the stream's topic (empty: the end)."""

    kind: MediaKind
    media_id: str
    data: bytes


class MediaRelay:
    """Per-panel media streams: pieces in, cloud messages out, within the quota."""

    def __init__(self, max_bytes: int = MAX_HELD_BYTES, max_age_ms: int = MAX_AGE_MS) -> None:
        self.max_bytes = max_bytes
        self.max_age_ms = max_age_ms
        self._streams: dict[tuple[str, str], _Stream] = {}
        self._done: OrderedDict[tuple[str, str], None] = OrderedDict()
        self.held = 0
        self.expired = 0

    def take(self, panel: str, chunk: MediaChunk, now_ms: int) -> list[Publish]:
        """What the cloud gets for this piece (MediaRejected if it is unusable)."""
        if not MEDIA_ID_RE.fullmatch(chunk.media_id):
            raise MediaRejected(f"media id {chunk.media_id[:40]!r}")
        key = (panel, chunk.media_id)
        self.expire(now_ms)
        if key in self._done:
            return []  # a resend of a finished stream
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _Stream(chunk.kind, touched_ms=now_ms)
        if stream.kind is not chunk.kind:
            raise MediaRejected(f"{chunk.media_id}: {chunk.kind} piece in a {stream.kind} stream")
        if chunk.index < stream.next_index or chunk.index in stream.held:
            return []  # a resend
        if stream.last_index is not None and chunk.index > stream.last_index:
            raise MediaRejected(f"{chunk.media_id}: piece {chunk.index} after the last")
        if self.held + len(chunk.data) > self.max_bytes:
            self._drop(key)
            raise MediaRejected(f"{chunk.media_id}: over the media quota of {self.max_bytes} bytes")
        stream.touched_ms = now_ms
        if chunk.last:
            stream.last_index = chunk.index
        stream.held[chunk.index] = bytes(chunk.data)
        self.held += len(chunk.data)
        return self._advance(key, stream)

    def _advance(self, key: tuple[str, str], stream: _Stream) -> list[Publish]:
        out: list[Publish] = []
        media_id = key[1]
        while stream.next_index in stream.held:
            data = stream.held.pop(stream.next_index)
            if stream.kind is MediaKind.AUDIO:
                self.held -= len(data)
                if data:
                    out.append(Publish(stream.kind, media_id, data))
            else:
                stream.body.append(data)
                stream.size += len(data)
            stream.next_index += 1
        if stream.last_index is None or stream.next_index <= stream.last_index:
            return out
        # The whole stream is in.
        if stream.kind is MediaKind.CLIP:
            clip = b"".join(stream.body)
            self.held -= stream.size
            self._finish(key)
            if not clip.startswith(WEBM_MAGIC):
                raise MediaRejected(f"{media_id}: not a WebM file")
            out += [
                Publish(stream.kind, media_id, clip[i : i + CLOUD_PIECE])
                for i in range(0, len(clip), CLOUD_PIECE)
            ]
        else:
            self._finish(key)
        out.append(Publish(stream.kind, media_id, b""))
        return out

    def _finish(self, key: tuple[str, str]) -> None:
        self._streams.pop(key, None)
        self._done[key] = None
        while len(self._done) > DONE_MEMORY:
            self._done.popitem(last=False)

    def _drop(self, key: tuple[str, str]) -> None:
        stream = self._streams.pop(key, None)
        if stream is not None:
            self.held -= sum(len(d) for d in stream.held.values()) + stream.size
            self._done[key] = None

    def expire(self, now_ms: int) -> list[tuple[str, str]]:
        """Drop streams that have not progressed within the age limit; their keys."""
        old = [k for k, s in self._streams.items() if now_ms - s.touched_ms > self.max_age_ms]
        for key in old:
            self._drop(key)
        self.expired += len(old)
        return old
