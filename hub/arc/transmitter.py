"""The DC-09 transmitter: events from the durable outbox to the centre, one ACK at a time.

One message is in flight at a time, as DC-09 asks: the next leaves only after
the receiver's ACK was checked (sequence, account, CRC, and the timestamp when
encrypted) and the cursor committed. A NAK carrying the receiver's time sets
the clock offset and the message goes again at once; a DUH is logged and, after
``DUH_LIMIT`` answers, the event is recorded as refused and skipped. ``attempts``
unanswered tries on a receiver move to the next one (primary, then backup);
after ``primary_retry`` seconds on a backup the primary is tried again. When
every receiver has failed its tries the link is lost (``arc_link_lost`` to the
cloud); the first ACK after that restores it (``arc_link_restored``). An idle
link carries a NULL message every ``supervision`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from common.backoff import Backoff
from hub.arc import dc09
from hub.arc.config import ArcConfig, Receiver
from hub.arc.outbox import ArcStore, Pending
from hub.arc.reports import UnreportableEvent, event_data
from hub.counters import Counters

_LOGGER = logging.getLogger(__name__)

DUH_LIMIT: Final = 3
"""DUH answers to one event before it is recorded as refused and skipped."""
NAK_LIMIT: Final = 3
"""NAKs in a row to one message before it counts as a failed attempt."""
ACK_WINDOW_MS: Final = (40_000, 20_000)
"""An encrypted ACK's timestamp must lie within 40 s before and 20 s after our time."""
BACKOFF_CAP_S: Final = 30.0
CHUNK: Final = 64
RESTART_S: Final = 1.0


class Reply(enum.Enum):
    """What one attempt came to."""

    ACK = "ack"
    DUH = "duh"
    FAILED = "failed"


class LinkEvent(enum.StrEnum):
    """Conditions reported to the cloud."""

    LOST = "arc_link_lost"
    RESTORED = "arc_link_restored"


@dataclass(slots=True)
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    splitter: dc09.FrameSplitter


def wall_clock_ms() -> int:
    """The real time: DC-09 timestamps are checked against the receiver's clock."""
    return time.time_ns() // 1_000_000


class ArcTransmitter:
    """Reports every stored event to the centre, in order, until stopped."""

    def __init__(
        self,
        config: ArcConfig,
        store_path: str | Path,
        panels: list[str],
        counters: Counters,
        on_link: Callable[[LinkEvent, dict[str, Any]], None],
        *,
        wall_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.config = config
        self._path = store_path
        self._panels = panels
        self._counters = counters
        self._on_link = on_link
        self._wall_ms = wall_ms
        self.offset_ms = 0  # receiver's clock minus ours, learnt from a NAK
        self.active = 0  # index of the receiver in use
        self.lost = False
        self.last_ack_ms: int | None = None
        self.delivered = 0
        self.listeners: list[Callable[[], None]] = []
        self._store: ArcStore | None = None
        self._conns: dict[int, _Conn] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._fails = 0  # unanswered attempts on the active receiver
        self._rounds = 0  # receivers that failed their attempts since the last ACK
        self._backup_since = 0.0
        self._next_seq = 1
        self._backoff = Backoff(base=max(config.retry, 0.001), cap=BACKOFF_CAP_S)
        self._last_traffic = time.monotonic()

    # -- life cycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Open the outbox and start sending."""
        self._store = ArcStore(self._path, self._panels)
        self._next_seq = self._store.next_seq()
        _LOGGER.info("arc: %s; %d event(s) waiting", self.config.describe(), self._store.backlog())
        self._save_status()
        self._task = asyncio.create_task(self._supervised(), name="arc transmitter")

    async def stop(self) -> None:
        """Stop sending (a message in flight is sent again by the next start)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for idx in list(self._conns):
            await self._close(idx)
        if self._store is not None:
            self._store.close()
            self._store = None

    def wake(self) -> None:
        """Events may have been stored."""
        self._wake.set()

    @property
    def backlog(self) -> int:
        """Events waiting for the centre's ACK."""
        return 0 if self._store is None else self._store.backlog()

    @property
    def receiver(self) -> Receiver:
        """The receiver in use."""
        return self.config.receivers[self.active]

    def status(self) -> dict[str, Any]:
        """The link as diagnostics and ``centinela doctor`` show it."""
        return {
            "link": "lost" if self.lost else ("up" if self.last_ack_ms is not None else "unknown"),
            "receiver": self.receiver.url,
            "backup": self.active != 0,
            "backlog": self.backlog,
            "last_ack_ms": self.last_ack_ms,
            "offset_ms": self.offset_ms,
            "config": self.config.describe(),
        }

    # -- the loop ----------------------------------------------------------------------

    async def _supervised(self) -> None:
        """A fault in one event or in the store must not stop reporting for good."""
        while True:
            try:
                await self._run()
            except Exception:
                self._counters.add("internal_error")
                _LOGGER.exception("arc: transmitter failed; restarting it")
                await asyncio.sleep(RESTART_S)

    async def _run(self) -> None:
        assert self._store is not None
        while True:
            self._wake.clear()
            chunk = self._store.head(CHUNK)
            if not chunk:
                idle = self.config.supervision - (time.monotonic() - self._last_traffic)
                if self.lost:
                    idle = min(idle, self._backoff.next())
                if idle > 0:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(idle):
                            await self._wake.wait()
                    continue
                await self._supervise()
                continue
            for pending in chunk:
                await self._deliver(pending)

    async def _supervise(self) -> None:
        """One NULL message, through the same tries and failover as an event."""
        seq = self._take_seq()
        account = self.config.account

        def frame() -> bytes:
            return self._build("NULL", seq, account, "")

        self._counters.add("arc_null")
        await self._exchange(frame, seq, account, give_up=True)

    async def _deliver(self, pending: Pending) -> None:
        assert self._store is not None
        panel, event = pending.panel, pending.event
        account = self.config.account_of(panel)
        try:
            data = event_data(self.config.format, account, event, self.config.numbering)
        except UnreportableEvent as exc:
            self._counters.drop("arc_unreportable", f"{panel} event {event.seq}: {exc}")
            self._store.acknowledge(panel, event.seq)
            return
        seq, resend = self._store.message_seq(panel, event.seq, self._next_seq)
        if not resend:
            self._next_seq = seq % dc09.SEQ_MAX + 1
        else:
            self._counters.add("arc_resent_after_restart")
        kind = self.config.format

        def frame() -> bytes:
            return self._build(kind, seq, account, data)

        duh = 0
        while True:
            reply = await self._exchange(frame, seq, account, give_up=False)
            if reply is Reply.ACK:
                self._store.acknowledge(panel, event.seq)
                self.delivered += 1
                self._counters.add("arc_delivered")
                self._notify()
                return
            duh += 1
            if duh >= DUH_LIMIT:
                _LOGGER.error(
                    "arc: the centre does not understand %s event %d (%s %s): "
                    "skipped after %d DUH answers",
                    panel, event.seq, event.type, data.split("|", 1)[-1], duh,
                )  # fmt: skip
                self._counters.drop("arc_refused", f"{panel} event {event.seq}: DUH")
                self._store.acknowledge(panel, event.seq)
                return
            _LOGGER.warning("arc: DUH for %s event %d, sending it again", panel, event.seq)

    def _take_seq(self) -> int:
        seq = self._next_seq
        self._next_seq = seq % dc09.SEQ_MAX + 1
        return seq

    def _build(self, kind: str, seq: int, account: str, data: str) -> bytes:
        return dc09.build(
            kind,
            seq,
            account,
            data,
            receiver=self.config.receiver_number,
            line=self.config.line,
            timestamp_ms=self._wall_ms() + self.offset_ms,
            key=self.config.key,
        )

    # -- tries, failover, link state ----------------------------------------------------

    async def _exchange(
        self, frame: Callable[[], bytes], seq: int, account: str, *, give_up: bool
    ) -> Reply:
        """Try until ACK or DUH; with ``give_up``, stop after one round of every receiver."""
        naks = 0
        while True:
            if self.active != 0 and time.monotonic() - self._backup_since >= (
                self.config.primary_retry
            ):
                reply, nak = await self._attempt(0, frame(), seq, account)
                if reply is not Reply.FAILED:
                    _LOGGER.warning("arc: the primary receiver answers again; back on it")
                    self.active = 0
                    self._acked()
                    return reply
                self._backup_since = time.monotonic()
            reply, nak = await self._attempt(self.active, frame(), seq, account)
            if reply is not Reply.FAILED:
                self._acked()
                return reply
            if nak and naks < NAK_LIMIT:
                naks += 1
                continue  # resynchronised: send again at once
            naks = 0
            self._failed()
            if give_up and self._rounds >= len(self.config.receivers):
                return Reply.FAILED
            if self.lost or self._fails:
                await asyncio.sleep(self._backoff.next())

    def _acked(self) -> None:
        self._fails = 0
        self._rounds = 0
        self._backoff.reset()
        self.last_ack_ms = self._wall_ms()
        self._last_traffic = time.monotonic()
        if self.lost:
            self.lost = False
            _LOGGER.warning("arc: link restored through %s", self.receiver.url)
            self._counters.add("arc_link_restored")
            self._on_link(LinkEvent.RESTORED, {"receiver": self.receiver.url})
            self._save_status()

    def _failed(self) -> None:
        self._fails += 1
        self._counters.add("arc_attempt_failed")
        if self._fails < self.config.attempts:
            return
        self._fails = 0
        self._rounds += 1
        failed = self.receiver.url
        if len(self.config.receivers) > 1:
            self.active = (self.active + 1) % len(self.config.receivers)
            if self.active != 0:
                self._backup_since = time.monotonic()
            _LOGGER.warning(
                "arc: %s did not acknowledge %d attempt(s); trying %s",
                failed, self.config.attempts, self.receiver.url,
            )  # fmt: skip
            self._counters.add("arc_failover")
        if self._rounds >= len(self.config.receivers) and not self.lost:
            self.lost = True
            _LOGGER.error("arc: link lost: no receiver acknowledges (%s)", self.config.describe())
            self._counters.add("arc_link_lost")
            self._on_link(
                LinkEvent.LOST,
                {"receiver": failed, "backlog": self.backlog},
            )
        self._save_status()

    async def _attempt(self, idx: int, frame: bytes, seq: int, account: str) -> tuple[Reply, bool]:
        """Send once to receiver ``idx`` and judge its answer: (reply, was it a NAK with time)."""
        try:
            conn = await self._connect(idx)
            conn.writer.write(frame)
            async with asyncio.timeout(self.config.ack_timeout):
                await conn.writer.drain()
                answer = await self._read_frame(conn)
            msg = dc09.parse(answer, self.config.key)
        except (OSError, TimeoutError, ConnectionError, dc09.Dc09Error) as exc:
            self._counters.drop(
                "arc_no_ack", f"{self.config.receivers[idx].url}: {type(exc).__name__}: {exc}"
            )
            await self._close(idx)
            return Reply.FAILED, False
        self._last_traffic = time.monotonic()
        if msg.id == "NAK":
            if msg.timestamp_ms is None:
                self._counters.drop("arc_nak", f"{self.config.receivers[idx].url}: NAK")
                return Reply.FAILED, False
            self.offset_ms = msg.timestamp_ms - self._wall_ms()
            self._counters.drop(
                "arc_nak", f"NAK: clock set {self.offset_ms / 1000:+.0f} s to the receiver's time"
            )
            return Reply.FAILED, True
        if msg.id == "DUH":
            self._counters.drop("arc_duh", f"{self.config.receivers[idx].url}: DUH for {seq}")
            return Reply.DUH, False
        problem = self._check_ack(msg, seq, account)
        if problem is not None:
            self._counters.drop("arc_bad_ack", f"{self.config.receivers[idx].url}: {problem}")
            await self._close(idx)
            return Reply.FAILED, False
        return Reply.ACK, False

    def _check_ack(self, msg: dc09.Dc09Message, seq: int, account: str) -> str | None:
        if msg.id not in ("ACK", "RSP"):
            return f"answer {msg.id!r}"
        if msg.seq != seq:
            return f"ACK for sequence {msg.seq:04d}, sent {seq:04d}"
        if msg.account is None or msg.account.upper() != account:
            return f"ACK for account {msg.account}, sent {account}"
        if self.config.key is not None:
            if not msg.encrypted or msg.timestamp_ms is None:
                return "an unencrypted ACK to an encrypted message"
            now = self._wall_ms() + self.offset_ms
            if not now - ACK_WINDOW_MS[0] <= msg.timestamp_ms <= now + ACK_WINDOW_MS[1]:
                return f"ACK timestamp {(msg.timestamp_ms - now) / 1000:+.0f} s off"
        return None

    # -- connections --------------------------------------------------------------------

    async def _connect(self, idx: int) -> _Conn:
        conn = self._conns.get(idx)
        if conn is not None and not conn.writer.is_closing():
            return conn
        receiver = self.config.receivers[idx]
        async with asyncio.timeout(self.config.ack_timeout):
            reader, writer = await asyncio.open_connection(receiver.host, receiver.port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Conn(reader, writer, dc09.FrameSplitter())
        self._conns[idx] = conn
        return conn

    async def _read_frame(self, conn: _Conn) -> bytes:
        while True:
            data = await conn.reader.read(1024)
            if not data:
                raise ConnectionError("the receiver closed the connection")
            frames = conn.splitter.feed(data)
            if frames:
                return frames[0]

    async def _close(self, idx: int) -> None:
        conn = self._conns.pop(idx, None)
        if conn is None:
            return
        conn.writer.close()
        with contextlib.suppress(OSError, ConnectionError):
            await conn.writer.wait_closed()

    def _save_status(self) -> None:
        if self._store is not None:
            self._store.put_status(self.status())

    def _notify(self) -> None:
        for listener in list(self.listeners):
            listener()
