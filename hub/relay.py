"""The hub's synchronous core: link frames in, store rows and cloud outbox rows out.

``Relay.handle_batch`` takes what arrived on the local broker, verifies every
frame, applies the delivery rules of docs/link.md (contiguous event seqs,
duplicates re-acknowledged, gaps dropped) and writes the whole batch in one
transaction. It returns what to acknowledge; the process publishes the acks
only after this returns, i.e. after the commit.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from hub.cloudapi import Topics, dumps, event_json, state_json, telemetry_json
from hub.config import HubConfig
from hub.counters import Counters
from hub.linkkeys import PanelSecurity
from hub.media import MAX_HELD_BYTES, MediaRejected, MediaRelay
from hub.store import HubStore, OutboxItem
from protocol.errors import ProtocolError, Replay, StaleEpoch
from protocol.frame import MAX_FRAME, peek_header
from protocol.messages import (
    Ack,
    Event,
    Heartbeat,
    MediaChunk,
    Message,
    PhotoChunk,
    Result,
    Resume,
    StateSnapshot,
    TagCounters,
    Telemetry,
)
from protocol.topics import LINK_PREFIX

_LOGGER = logging.getLogger(__name__)

PHOTO_ID_RE: Final = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")
TELEMETRY_DAYS: Final = 31


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message from the local broker."""

    topic: str
    payload: bytes
    retain: bool = False


@dataclass(slots=True)
class BatchOutcome:
    """What a batch did, for the process to act on after the commit."""

    acks: dict[str, int] = field(default_factory=dict)  # panel -> newest stored seq
    seen: set[str] = field(default_factory=set)  # panels that sent an authentic frame
    statuses: dict[str, bool] = field(default_factory=dict)  # panel -> online (status topic)
    heartbeats: set[str] = field(default_factory=set)  # panels that sent a heartbeat
    queued: int = 0  # cloud outbox rows added
    events: int = 0  # events stored
    # panel -> (epoch to bind to, message): answers that tell a sender the hub's epoch
    announce: dict[str, tuple[int, Message]] = field(default_factory=dict)
    resume: dict[str, int] = field(default_factory=dict)  # panel -> Resume(last_seq) to send
    # panel -> (tag, user) of its revocations, to send again to a panel with a new store
    revocations: dict[str, list[tuple[str, str | None]]] = field(default_factory=dict)
    # panel -> its tags' SUN read counters, to send to a panel with a new store
    tag_counters: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


ResultSink = Callable[[str, Result], list[OutboxItem]]
"""Turns a panel's result into outbox rows (empty when no command waits for it)."""


def snake(name: str) -> str:
    """``AuthenticationFailed`` -> ``authentication_failed``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Relay:
    """Frames from the panels -> the store and the cloud outbox, and sealed frames back."""

    def __init__(
        self, config: HubConfig, store: HubStore, counters: Counters, on_result: ResultSink
    ) -> None:
        self.config = config
        self.site = config.site
        self.store = store
        self.counters = counters
        self.topics = Topics(config.site)
        self._on_result = on_result
        skew = None if not config.max_clock_skew else round(config.max_clock_skew * 1000)
        self._panels = {
            p.id: PanelSecurity(p.id, p.key, p.previous_key, store, max_skew_ms=skew)
            for p in config.panels
        }
        # Before a panel's first stored event: the lowest seq seen from it (see _event).
        self._first_seen: dict[str, int] = {}
        self.last_seq: dict[str, int | None] = {
            p.id: store.last_event_seq(p.id) for p in config.panels
        }
        self._last_prune_ms = 0
        # Streams being assembled are held in memory: the media quota, capped for memory.
        self.media = MediaRelay(max_bytes=min(config.media_max_bytes, MAX_HELD_BYTES))

    @property
    def epoch(self) -> int:
        """This hub store's epoch."""
        return self.store.own_epoch()

    def knows(self, panel: str) -> bool:
        """Whether a store of ``panel`` has been heard from (frames to it can be bound)."""
        return self._panels[panel].receiver.peer_epoch is not None

    def seal(
        self, panel: str, message: Message, now_ms: int, peer_epoch: int | None = None
    ) -> bytes:
        """A sealed frame for ``panel`` (an Ack, a Resume or a Command)."""
        return self._panels[panel].seal(message, now_ms, peer_epoch)

    def handle_batch(self, items: Sequence[Inbound], now_ms: int) -> BatchOutcome:
        """Verify, store and queue a batch in one transaction (raises only on store failure)."""
        out = BatchOutcome()
        last = dict(self.last_seq)
        touched: set[str] = set()
        with self.store.transaction():
            for item in items:
                self._handle(item, now_ms, last, out, touched)
            for panel in touched:
                self._panels[panel].persist_rx()
            if now_ms - self._last_prune_ms > 3_600_000:
                self._last_prune_ms = now_ms
                self.store.prune(now_ms - TELEMETRY_DAYS * 86_400_000, now_ms - 86_400_000)
                self._prune_media(now_ms)
        self.last_seq = last
        return out

    # -- one message ------------------------------------------------------------------

    def _handle(
        self,
        item: Inbound,
        now_ms: int,
        last: dict[str, int | None],
        out: BatchOutcome,
        touched: set[str],
    ) -> None:
        parts = item.topic.split("/")
        if len(parts) != 4 or parts[0] != LINK_PREFIX or parts[1] != self.site:
            self.counters.drop("bad_topic", f"message on {item.topic[:80]!r}")
            return
        panel, kind = parts[2], parts[3]
        if kind == "status":
            self._status(panel, item, out)
            return
        if kind != "up":
            self.counters.drop("bad_topic", f"message on {item.topic[:80]!r}")
            return
        if item.retain:
            self.counters.drop("retained_frame", f"retained frame on {item.topic}")
            return
        if len(item.payload) > MAX_FRAME:
            self.counters.drop("oversized_frame", f"{len(item.payload)} bytes from {panel!r}")
            return
        security = self._panels.get(panel)
        if security is None:
            self.counters.drop("unknown_panel", f"frame on {item.topic[:80]!r}")
            return
        try:
            header = peek_header(item.payload)
            if header.panel_id != panel:
                self.counters.drop(
                    "panel_mismatch", f"frame for {header.panel_id!r} on the topic of {panel!r}"
                )
                return
            before = security.receiver.peer_epoch
            received = security.open(item.payload, now_ms)
        except Replay as exc:
            self.counters.drop("replay", f"{panel}: {exc}")
            return
        except StaleEpoch as exc:
            self.counters.drop("stale_epoch", f"{panel}: {exc}")
            self._announce(panel, exc.header.epoch, now_ms, last, out)  # type: ignore[attr-defined]
            return
        except ProtocolError as exc:
            self.counters.drop(f"bad_frame.{snake(type(exc).__name__)}", f"{panel}: {exc}")
            return
        touched.add(panel)
        out.seen.add(panel)
        self.counters.add("frames")
        if received.new_epoch:
            self._new_epoch(panel, before, received.header.epoch, last, out)
        self._message(panel, received.message, now_ms, last, out)

    def _announce(
        self, panel: str, epoch: int, now_ms: int, last: dict[str, int | None], out: BatchOutcome
    ) -> None:
        """Tell a sender that does not know this hub's epoch what it is (once per batch).

        A store the hub does not know yet also learns where the site's numbering stands.
        """
        current = self._panels[panel].receiver.peer_epoch
        newest = last.get(panel)
        message: Message = Ack(newest or 0)
        if newest is not None and current is not None and epoch != current:
            message = Resume(newest)
        out.announce[panel] = (epoch, message)

    def _new_epoch(
        self,
        panel: str,
        before: int | None,
        epoch: int,
        last: dict[str, int | None],
        out: BatchOutcome,
    ) -> None:
        security = self._panels[panel]
        # A new store of the panel has no SUN read counters: it takes the hub's (maybe
        # none) before it accepts a SUN read, the first store this hub hears from too.
        out.tag_counters[panel] = self.store.tag_counters(panel)
        if before is None:  # the first store this hub hears from
            self.store.adopt_epoch(panel, epoch, None, first=True)
            return
        newest = last.get(panel)
        _LOGGER.warning(
            "panel %s has a new store (epoch %#x after %#x); its events follow seq %s",
            panel, epoch, before, newest,
        )  # fmt: skip
        self.counters.add("store_resets")
        self.store.adopt_epoch(panel, epoch, newest)
        security.resume_after = newest
        revoked = self.store.revocations(panel)
        if revoked:
            out.revocations[panel] = revoked

    def _status(self, panel: str, item: Inbound, out: BatchOutcome) -> None:
        if panel not in self._panels:
            self.counters.drop("unknown_panel", f"status of {panel[:40]!r}")
            return
        text = item.payload.decode("ascii", "replace").strip()
        if text not in ("online", "offline"):
            self.counters.drop("bad_status", f"{panel}: status {text[:20]!r}")
            return
        out.statuses[panel] = text == "online"

    def _message(
        self,
        panel: str,
        message: Message,
        now_ms: int,
        last: dict[str, int | None],
        out: BatchOutcome,
    ) -> None:
        if isinstance(message, Event):
            self._event(panel, message, now_ms, last, out)
        elif isinstance(message, StateSnapshot):
            self.store.put_state(panel, message, now_ms)
            self._queue(out, self.topics.state(panel), dumps(state_json(message)), retain=True)
        elif isinstance(message, Telemetry):
            self.store.add_telemetry(panel, message, now_ms)
            self._queue(out, self.topics.telemetry(panel), dumps(telemetry_json(message)))
        elif isinstance(message, PhotoChunk):
            self._photo(panel, message, now_ms, out)
        elif isinstance(message, MediaChunk):
            self._media(panel, message, now_ms, out)
        elif isinstance(message, Result):
            items = self._on_result(panel, message)
            if not items:
                self.counters.drop("late_result", f"{panel}: result {message.id!r} not awaited")
            for row in items:
                self.store.enqueue(row)
                out.queued += 1
        elif isinstance(message, Heartbeat):
            self.counters.add("heartbeats")
            out.heartbeats.add(panel)
        elif isinstance(message, TagCounters):
            self.store.raise_tag_counters(panel, message.counters)
        else:  # Ack or Command: the codec refuses them in this direction already.
            self.counters.drop("unexpected_message", f"{panel}: {type(message).__name__}")

    def _event(
        self,
        panel: str,
        event: Event,
        now_ms: int,
        last: dict[str, int | None],
        out: BatchOutcome,
    ) -> None:
        security = self._panels[panel]
        if security.resume_after is not None:
            if event.seq <= security.resume_after:
                # A new store's event before it renumbered: it is not a duplicate.
                self.counters.drop("pre_resume", f"{panel}: event {event.seq} of a new store")
                out.resume[panel] = security.resume_after
                return
            security.resume_after = None
            self.store.resumed(panel)
        newest = last.get(panel)
        if newest is None and not self._starts_sequence(panel, event.seq):
            self.counters.drop("gap", f"{panel}: event {event.seq} (waiting for its oldest)")
            return
        if newest is not None and event.seq <= newest:
            self.counters.drop("duplicate", f"{panel}: event {event.seq} (have {newest})")
            out.acks[panel] = newest
            return
        if newest is not None and event.seq != newest + 1:
            self.counters.drop("gap", f"{panel}: event {event.seq} (waiting for {newest + 1})")
            out.acks[panel] = newest
            return
        self.store.add_event(self.site, panel, event, now_ms)
        last[panel] = event.seq
        out.acks[panel] = event.seq
        out.events += 1
        self.counters.add("events")
        self._queue(out, self.topics.event, dumps(event_json(self.site, panel, event, now_ms)))

    def _starts_sequence(self, panel: str, seq: int) -> bool:
        """Whether the first event ever stored from ``panel`` may be ``seq``.

        Seq 1 starts at once. Any other seq may follow events lost before the hub
        subscribed; the panel resends from its oldest unacknowledged event, so the
        lowest seq seen, seen a second time, is that oldest one (docs/link.md, rule 3).
        """
        if seq == 1:
            return True
        lowest = self._first_seen.get(panel)
        if lowest == seq:
            del self._first_seen[panel]
            return True
        if lowest is None or seq < lowest:
            self._first_seen[panel] = seq
        return False

    def _photo(self, panel: str, chunk: PhotoChunk, now_ms: int, out: BatchOutcome) -> None:
        if not PHOTO_ID_RE.fullmatch(chunk.photo_id):
            self.counters.drop("bad_photo", f"{panel}: photo id {chunk.photo_id[:40]!r}")
            return
        if self.store.has_photo(panel, chunk.photo_id):
            self.counters.add("photo_chunk_repeated")
            return
        try:
            jpeg = self.store.add_photo_chunk(panel, chunk, now_ms)
        except ValueError as exc:
            self.counters.drop("bad_photo", f"{panel}: photo {chunk.photo_id}: {exc}")
            return
        if jpeg is not None:
            self.counters.add("photos")
            self._queue(out, self.topics.photo(panel, chunk.photo_id), jpeg)
            self._prune_media(now_ms)

    def _prune_media(self, now_ms: int) -> None:
        max_age_ms = round(self.config.media_max_days * 86_400_000)
        pruned = self.store.prune_media(self.config.media_max_bytes, now_ms - max_age_ms)
        if pruned:
            self.counters.add("media_pruned", pruned)

    def _media(self, panel: str, chunk: MediaChunk, now_ms: int, out: BatchOutcome) -> None:
        try:
            publishes = self.media.take(panel, chunk, now_ms)
        except MediaRejected as exc:
            self.counters.drop("bad_media", f"{panel}: {exc}")
            return
        if not publishes:
            self.counters.add("media_chunk_repeated")
        for item in publishes:
            if not item.data:
                self.counters.add(f"media_{item.kind}")
            self._queue(out, self.topics.media(panel, item.kind, item.media_id), item.data)

    def _queue(
        self, out: BatchOutcome, topic: str, payload: bytes, *, retain: bool = False
    ) -> None:
        self.store.enqueue(OutboxItem(topic, payload, qos=1, retain=retain))
        out.queued += 1
