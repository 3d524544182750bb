"""The panel's MQTT link to the hub: outbox events up until acknowledged, commands down.

docs/link.md is the contract. The link never blocks the panel: arming and
disarming work with the broker or hub down, events wait in the durable outbox
and go out in seq order once the link is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

import aiomqtt

from common.backoff import Backoff
from common.clock import Clock
from common.linklog import LinkLog
from common.mqtt import BrokerConfig, LinkState, link_options
from panel.journal import STORE_ERRORS, Journal
from protocol.errors import ProtocolError, StaleEpoch
from protocol.frame import Direction
from protocol.keys import fingerprint, key_id
from protocol.messages import (
    Ack,
    Command,
    ErrorCode,
    Heartbeat,
    MediaChunk,
    MediaKind,
    Message,
    PhotoChunk,
    Result,
    Resume,
    StateSnapshot,
    TagCounters,
)
from protocol.session import Receiver, Sender
from protocol.topics import link_topics

_LOGGER = logging.getLogger(__name__)

SEQ_BLOCK = 1000
ANSWER_WATCH = "panel-link-answer-watch"
ANSWER_WITHIN_S = 10.0
"""The hub answers a panel coming online (a heartbeat); silence this long is reported."""
_TX_META = "link.tx_reserved"
_RX_META = "link.rx_highest"
_EPOCH_META = "link.epoch"  # this store's epoch (docs/protocol.md §5)
_HUB_EPOCH_META = "link.hub_epoch"  # the hub store's epoch, once learnt
_HUB_RETIRED_META = "link.hub_retired"  # hub epochs seen replaced: refused for good


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """What the link needs besides the store."""

    site: str
    panel_id: str
    broker: BrokerConfig
    key: bytes
    previous_key: bytes | None = None
    window: int = 64
    resend: float = 2.0  # seconds without ack progress before resending (real time)
    # Non-durable frames (state, results, telemetry, photos) held while the link is down.
    max_side_queue: int = 2000
    # Media (silent call, clips) use at most this many bytes a second of the link, in bursts
    # of at most ``media_burst`` bytes, so an event never waits behind them (docs/media.md).
    media_rate: int = 64_000
    media_burst: int = 16_384
    max_media_queue: int = 8 * 1024 * 1024  # bytes held while the link is down


class PanelLink:
    """One reconnecting MQTT client carrying the panel's sealed frames."""

    def __init__(
        self,
        settings: LinkSettings,
        store: Journal,
        clock: Clock,
        on_command: Callable[[Command], None],
        on_connect: Callable[[], None] | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_resume: Callable[[int], None] | None = None,
        on_hub_reset: Callable[[], None] | None = None,
        on_tag_counters: Callable[[TagCounters], None] | None = None,
    ) -> None:
        self.settings = settings
        self._sleep = sleep  # between connection attempts (a clock's sleep in virtual time)
        self.store = store
        self.clock = clock
        self.on_command = on_command
        self.on_connect = on_connect
        self.on_resume = on_resume  # the hub says: number your events after this seq
        self.on_hub_reset = on_hub_reset  # the hub's store was lost or replaced
        self.on_tag_counters = on_tag_counters  # the SUN read counters the hub holds
        self.state = LinkState.DOWN
        self.counters: Counter[str] = Counter()
        self.acked = store.acked_upto
        self._up, self._down, self._status = link_topics(settings.site, settings.panel_id)
        current = key_id(settings.key)
        self._tx_meta = f"{_TX_META}.{current}"
        self.epoch = self._own_epoch()
        hub_epoch = int(store.get_meta(_HUB_EPOCH_META) or 0) or None
        retired = [int(e) for e in json.loads(store.get_meta(_HUB_RETIRED_META) or "[]")]
        reserved = int(store.get_meta(self._tx_meta) or 1)
        self._reserved = reserved  # nothing is sealed until a block is reserved on disk
        self._sender = Sender(
            settings.panel_id,
            Direction.PANEL_TO_HUB,
            settings.key,
            next_seq=reserved,
            key_id=current,
            epoch=self.epoch,
            peer_epoch=hub_epoch or 0,
        )
        keys: dict[int, bytes] = {}
        if settings.previous_key:
            keys[key_id(settings.previous_key)] = settings.previous_key
        keys[current] = settings.key
        # Id 0 names "the sender's current key": a hub that has not heard from this panel
        # since it started answers under it (docs/link.md). The last entry is the current key.
        keys[0] = settings.key
        saved = json.loads(store.get_meta(_RX_META) or "{}")
        self._receiver = Receiver(
            settings.panel_id,
            Direction.HUB_TO_PANEL,
            keys,
            highest_seq={int(k): int(v) for k, v in saved.items() if int(k) in keys},
            local_epoch=self.epoch,
            peer_epoch=hub_epoch,
            retired=retired,
        )
        self.hub_clock = HubClock()
        self._wake = asyncio.Event()
        self._answered = asyncio.Event()  # an authentic frame from the hub since link up
        self._side: deque[Message] = deque()
        self._media: deque[MediaChunk] = deque()
        self._media_bytes = 0
        self._media_tokens = float(settings.media_burst)
        self._media_refilled = time.monotonic()
        self._media_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._client: aiomqtt.Client | None = None
        self._sent_upto = 0
        self._last_progress = time.monotonic()

    def _own_epoch(self) -> int:
        """This store's epoch, drawn at random the first time (a new store, a new epoch)."""
        saved = int(self.store.get_meta(_EPOCH_META) or 0)
        if saved:
            return saved
        epoch = secrets.randbits(56) or 1
        try:
            self.store.set_meta(_EPOCH_META, str(epoch))
        except STORE_ERRORS as exc:  # the hub will take the next start for a new store
            _LOGGER.warning("link epoch not saved: %s", exc)
        return epoch

    # -- called by the panel process -------------------------------------------------

    def rebased(self, acked_upto: int) -> None:
        """The store's events were renumbered: everything up to ``acked_upto`` is the hub's."""
        self.acked = self._sent_upto = acked_upto
        self._last_progress = time.monotonic()
        self._wake.set()

    def wake(self) -> None:
        """New events are in the outbox."""
        self._wake.set()

    def send(self, message: Message) -> None:
        """Queue a non-durable frame (result, state, telemetry, heartbeat, photo chunk)."""
        if isinstance(message, StateSnapshot | Heartbeat) and self._side:
            # Only the newest state (and heartbeat) is worth sending after an outage.
            kind = type(message)
            self._side = deque(m for m in self._side if not isinstance(m, kind))
        if len(self._side) >= self.settings.max_side_queue:
            self._side.popleft()
            self.counters["side_queue_dropped"] += 1
        self._side.append(message)
        self._wake.set()

    def send_media(self, chunk: MediaChunk) -> None:
        """Queue a piece of a media stream: sent after events, within the media rate."""
        if self._media_bytes + len(chunk.data) > self.settings.max_media_queue:
            self.counters["media_dropped"] += 1
            return
        self._media.append(chunk)
        self._media_bytes += len(chunk.data)
        self._wake.set()

    async def media_sent(self, media_id: str) -> None:
        """Wait until every queued piece of ``media_id`` is published to the broker."""
        if not any(c.media_id == media_id for c in self._media):
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._media_waiters.setdefault(media_id, []).append(future)
        await future

    def idle(self) -> bool:
        """Nothing deliverable is waiting: everything acknowledged, or the link is down."""
        if self.state is not LinkState.UP:
            return True
        return not self._side and not self._media and not self.store.pending(limit=1)

    # -- the connection ---------------------------------------------------------------

    async def run(self) -> None:
        """Connect, pump, reconnect with backoff; until cancelled."""
        backoff = Backoff(base=0.05, cap=2.0)
        settings = self.settings
        will = aiomqtt.Will(self._status, b"offline", qos=1, retain=True)
        client_id = f"centinela-panel-{settings.site}-{settings.panel_id}"
        log = LinkLog(
            _LOGGER, "panel link", settings.broker.url, settings.broker.username, client_id
        )
        while True:
            pause = 0.0
            self.state = LinkState.CONNECTING
            try:
                async with aiomqtt.Client(
                    **link_options(settings.broker),
                    identifier=client_id,
                    will=will,
                ) as client:
                    self._client = client
                    await client.subscribe(self._down, qos=1)
                    await client.publish(self._status, b"online", qos=1, retain=True)
                    self.state = LinkState.UP
                    backoff.reset()
                    self._sent_upto = self.acked
                    self._last_progress = time.monotonic()
                    log.connected()
                    if self.on_connect:
                        self.on_connect()
                    async with asyncio.TaskGroup() as group:
                        group.create_task(self._receive(client))
                        group.create_task(self._pump(client))
                        group.create_task(self._expect_an_answer(), name=ANSWER_WATCH)
            except* aiomqtt.MqttError as errors:
                self.counters["disconnects"] += 1
                # Two copies of this panel would kick each other off for ever: a link
                # dropped again and again right after connecting waits longer each time.
                pause = log.failed(errors.exceptions[0])
                if pause:
                    self.counters["flapping"] += 1
            finally:
                self._client = None
                self.state = LinkState.DOWN
            self.counters["connect_waits"] += 1
            await self._sleep(max(pause, backoff.next()))

    async def flush(self) -> None:
        """Wait while the link is up and recorded events are unacknowledged (bound it outside)."""
        while self.state is LinkState.UP and self.store.pending(limit=1):
            self._wake.set()
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        """Say offline (retained) before a clean shutdown, when connected."""
        client = self._client
        if client is not None and self.state is LinkState.UP:
            with contextlib.suppress(aiomqtt.MqttError, asyncio.TimeoutError):
                async with asyncio.timeout(1):
                    await client.publish(self._status, b"offline", qos=1, retain=True)

    def _seal(self, message: Message) -> bytes:
        if self._sender.next_seq >= self._reserved:
            # Reserved on disk before use, or a restart could reuse a nonce: raises when the
            # store cannot be written, and then nothing is sent until it can.
            reserved = self._sender.next_seq + SEQ_BLOCK
            self.store.set_meta(self._tx_meta, str(reserved))
            self._reserved = reserved
        return self._sender.seal(message, self.clock.now_ms())

    async def _pump(self, client: aiomqtt.Client) -> None:
        while True:
            side = list(self._side)
            self._side.clear()
            try:
                frames = [self._seal(message) for message in side]
            except STORE_ERRORS as exc:
                self._side.extendleft(reversed(side))
                self.counters["seq_not_reserved"] += 1
                _LOGGER.warning("frames wait: no frame seq can be reserved (%s)", exc)
                await asyncio.sleep(self.settings.resend)
                continue
            if (
                time.monotonic() - self._last_progress > self.settings.resend
                and self._sent_upto > self.acked
            ):
                self.counters["resends"] += 1
                self._sent_upto = self.acked
                self._last_progress = time.monotonic()
            for event in self.store.pending(limit=self.settings.window):
                if event.seq <= self._sent_upto:
                    continue
                if self._sent_upto <= self.acked:
                    self._last_progress = time.monotonic()  # nothing was in flight: clock starts
                frames.append(self._seal(event))
                self._sent_upto = event.seq
            media = self._take_media()
            frames += [self._seal(chunk) for chunk in media]
            if not frames:
                self._wake.clear()
                wait = self.settings.resend / 2
                if self._media:  # waiting for the media budget to refill
                    wait = min(wait, self._media_refill_wait())
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wake.wait()
                continue
            # All at once, in order on the one connection: no PUBACK wait between frames.
            try:
                await asyncio.gather(*(client.publish(self._up, f, qos=1) for f in frames))
            except BaseException:
                self._side.extendleft(
                    reversed(side)
                )  # state, results, photos: sent after reconnect
                # Media pieces go again; the hub drops those it already has (by index).
                self._media.extendleft(reversed(media))
                self._media_bytes += sum(len(c.data) for c in media)
                raise
            self._media_published(media)

    def _take_media(self) -> list[MediaChunk]:
        """The media pieces the budget allows now (token bucket: rate, burst)."""
        now = time.monotonic()
        settings = self.settings
        self._media_tokens = min(
            float(settings.media_burst),
            self._media_tokens + (now - self._media_refilled) * settings.media_rate,
        )
        self._media_refilled = now
        taken: list[MediaChunk] = []
        while self._media and self._media_tokens >= max(1, len(self._media[0].data)):
            chunk = self._media.popleft()
            self._media_bytes -= len(chunk.data)
            self._media_tokens -= max(1, len(chunk.data))
            taken.append(chunk)
        return taken

    def _media_refill_wait(self) -> float:
        need = max(1, len(self._media[0].data)) - self._media_tokens
        return max(0.005, need / self.settings.media_rate)

    def _media_published(self, media: list[MediaChunk]) -> None:
        self.counters["media_bytes"] += sum(len(c.data) for c in media)
        for media_id in {c.media_id for c in media}:
            if any(c.media_id == media_id for c in self._media):
                continue
            for future in self._media_waiters.pop(media_id, []):
                if not future.done():
                    future.set_result(None)

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            if message.retain:
                self.counters["retained_ignored"] += 1
                continue
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                self.counters["bad_frame"] += 1
                continue
            try:
                received = self._receiver.open(bytes(payload))
            except StaleEpoch as exc:
                # The hub does not know this store yet (or lost its own): a frame bound to
                # its epoch tells it. Commands sealed for another store are never run.
                self.counters["stale_epoch"] += 1
                _LOGGER.debug("frame for another store dropped: %s", exc)
                if self.on_connect:
                    self.on_connect()
                continue
            except ProtocolError as exc:
                self.counters[f"bad_frame_{type(exc).__name__}"] += 1
                _LOGGER.debug("dropped a frame from the hub: %s", exc)
                continue
            self._answered.set()
            self.hub_clock.sample(received.header.timestamp_ms)
            if received.new_epoch:
                self._hub_epoch(received.header.epoch)
            self._on_message(received.message)

    def _hub_epoch(self, epoch: int) -> None:
        """An authentic frame, bound to this store, from a hub store not met before."""
        before = self._sender.peer_epoch
        self._sender.peer_epoch = epoch
        try:
            self.store.set_meta(_HUB_EPOCH_META, str(epoch))
            self.store.set_meta(_HUB_RETIRED_META, json.dumps(sorted(self._receiver.retired)))
        except STORE_ERRORS as exc:
            _LOGGER.warning("hub epoch not saved: %s", exc)
        if before:
            _LOGGER.warning("the hub has a new store (epoch %#x after %#x)", epoch, before)
            if self.on_hub_reset:
                self.on_hub_reset()
        # Everything unacknowledged goes again, bound to this hub store.
        self._sent_upto = self.acked
        self._wake.set()
        if self.on_connect:
            self.on_connect()

    async def _expect_an_answer(self) -> None:
        """Say so when the hub answers nothing: it is down, or it has another key."""
        self._answered.clear()
        before = self._bad_frames()
        try:
            await asyncio.wait_for(self._answered.wait(), ANSWER_WITHIN_S)
        except TimeoutError:
            pass
        else:
            return
        bad = self._bad_frames() - before
        fp = fingerprint(self.settings.key)
        if bad:
            _LOGGER.warning(
                "panel link: the hub does not accept this panel's key: %d frame(s) from it "
                "failed to open; this panel's key has fingerprint %s (`centinela doctor "
                "--config` on the hub lists the fingerprints it has)",
                bad,
                fp,
            )
        else:
            _LOGGER.warning(
                "panel link: no answer from the hub %.0f s after connecting: the hub is not "
                "running, or it does not accept this panel's key (fingerprint %s; "
                "`centinela doctor --config` on each side shows the fingerprints)",
                ANSWER_WITHIN_S,
                fp,
            )

    def _bad_frames(self) -> int:
        return sum(n for name, n in self.counters.items() if name.startswith("bad_frame_"))

    def _on_message(self, message: Message) -> None:
        if isinstance(message, Ack):
            if message.upto_seq > self.acked:
                self.store.ack(message.upto_seq)  # held in memory while the disk fails
                self.acked = message.upto_seq
                self._last_progress = time.monotonic()
                self._wake.set()
            else:
                self.counters["stale_ack"] += 1
        elif isinstance(message, Resume):
            if self.on_resume:
                self.on_resume(message.last_seq)
        elif isinstance(message, TagCounters):
            if self.on_tag_counters:
                self.on_tag_counters(message)
        elif isinstance(message, Command):
            try:
                self.store.set_meta(_RX_META, json.dumps(self._receiver.highest_seqs))
            except STORE_ERRORS as exc:  # the replay window in memory still holds
                _LOGGER.warning("command window not saved: %s", exc)
            late = self.hub_clock.late_by(message.deadline_ms)
            if late > 0:
                # The hub has answered `timeout` already: executing it now would surprise.
                self.counters["late_command"] += 1
                _LOGGER.warning("command %s arrived %d ms after its deadline: refused",
                                message.id, late)  # fmt: skip
                detail = f"arrived {late} ms after its deadline; not executed"
                self.send(Result(message.id, False, error=ErrorCode.TIMEOUT, detail=detail))
                return
            self.on_command(message)
        elif isinstance(message, Heartbeat):
            self.counters["hub_heartbeats"] += 1  # its time was sampled on arrival
        else:
            self.counters["unexpected_message"] += 1


def media_chunks(
    kind: MediaKind, media_id: str, data: bytes, first: int, *, last: bool, size: int = 4096
) -> list[MediaChunk]:
    """Split WebM bytes into pieces numbered from ``first``; ``last`` marks the final piece."""
    parts = [data[i : i + size] for i in range(0, len(data), size)]
    if last and not parts:
        parts = [b""]
    return [
        MediaChunk(kind, media_id, first + i, last and i == len(parts) - 1, part)
        for i, part in enumerate(parts)
    ]


class HubClock:
    """What time the hub's clock shows now, learnt from the timestamps of its authentic frames.

    A frame's timestamp is the hub's clock when it was sealed, so ``timestamp - local``
    is the hub's lead over this panel's monotonic clock minus the frame's transit time:
    the largest recent sample is the best estimate. The panel's own wall clock (which
    may be unset, or jump when it is set) plays no part.
    """

    WINDOW_S: Final = 600.0
    """Samples older than this are forgotten, so a hub clock set back is followed."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._samples: deque[tuple[float, int]] = deque()  # (local s, lead ms), leads falling

    def sample(self, hub_ms: int) -> None:
        """An authentic frame sealed at ``hub_ms`` on the hub's clock arrived now."""
        local = self._monotonic()
        lead = hub_ms - round(local * 1000)
        while self._samples and self._samples[-1][1] <= lead:
            self._samples.pop()
        self._samples.append((local, lead))
        while self._samples[0][0] < local - self.WINDOW_S:
            self._samples.popleft()

    def now_ms(self) -> int | None:
        """The hub's clock now, at the earliest (None before any frame)."""
        local = self._monotonic()
        while self._samples and self._samples[0][0] < local - self.WINDOW_S:
            self._samples.popleft()
        if not self._samples:
            return None
        return round(local * 1000) + self._samples[0][1]

    def late_by(self, deadline_ms: int | None) -> int:
        """Milliseconds by which ``deadline_ms`` (hub clock) has passed; 0 if not (or unknown)."""
        now = self.now_ms()
        if deadline_ms is None or now is None:
            return 0
        return max(0, now - deadline_ms)


def photo_chunks(photo_id: str, jpeg: bytes, size: int = 4096) -> list[PhotoChunk]:
    """Split a JPEG into frames that fit the frame size cap."""
    parts = [jpeg[i : i + size] for i in range(0, len(jpeg), size)] or [b""]
    return [PhotoChunk(photo_id, i, len(parts), part) for i, part in enumerate(parts)]
