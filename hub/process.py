"""The hub process: the panel link on the local broker <-> the JSON API on the cloud broker.

Frames from the panels go through one queue to one consumer (``Relay``), which
stores each batch in one transaction; acks go back after the commit. Whatever
must reach the cloud waits in the store's outbox until the cloud broker's
PUBACK. Commands from the cloud are validated, sealed and sent down; their
results come back up through the relay, or a timeout on the clock answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sqlite3
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Final

import aiomqtt

from common.backoff import Backoff
from common.clock import Clock, RealClock
from common.errors import ConfigError
from common.mqtt import LinkState
from common.supervise import Supervisor
from hub.availability import Availability
from hub.cloudapi import Topics, iso_ms
from hub.commands import (
    Accepted,
    Dropped,
    Pending,
    PendingCommands,
    Rejected,
    parse_command,
    reply_to,
    result_items,
)
from hub.config import HubConfig
from hub.counters import Counters
from hub.diagnostics import DiagnosticsPublisher
from hub.integrations import Integrations
from hub.mqttlink import LinkDown, MqttLink
from hub.outbox import CloudOutbox
from hub.relay import Inbound, Relay
from hub.store import HubStore, OutboxItem, StoreError
from protocol.errors import ProtocolError
from protocol.messages import (
    Ack,
    Action,
    Command,
    ErrorCode,
    Heartbeat,
    Result,
    Resume,
    TagCounters,
    Via,
)
from protocol.topics import link_topics

_LOGGER = logging.getLogger(__name__)

INCOMING_LIMIT: Final = 1024
"""Cloud messages received and not yet looked at; beyond it a command is answered ``busy`` at
once and anything else is discarded (``flood``)."""
BUSY_REPLIES: Final = 1024
"""``busy`` results waiting to be written; beyond it the oldest go unanswered (``flood``)."""
MAX_IN_FLIGHT: Final = 256
"""Most commands sent to the panels and not answered yet; beyond it: ``busy``."""
BATCH: Final = 256
"""Most frames committed in one transaction."""
LOCAL_FIRST_S: Final = 5.0
"""With a kept cloud session, how long the cloud link waits at start for the panels' link:
commands the broker kept for the hub arrive right after it connects and must find the
panels reachable, not be answered ``panel_offline`` by a hub still starting."""
RESTART_S: Final = 0.5
"""First delay before a failed worker starts again (it doubles while the worker keeps failing)."""


def _payload(message: aiomqtt.Message) -> bytes:
    payload = message.payload
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode("utf-8", "replace")


def _deadline(hub_ms: int, received_ms: int, message: aiomqtt.Message, expires: int | None) -> int:
    """A command's deadline: the hub's own, or sooner when its sender set one.

    A command that waited in the broker (a kept session while the hub was away) is
    bounded by what its sender said: the MQTT 5 Message Expiry Interval the broker
    hands over (what is left of it) or the command's ``expires`` time.
    """
    deadline = hub_ms
    left_s = getattr(message.properties, "MessageExpiryInterval", None)
    if isinstance(left_s, int):
        deadline = min(deadline, received_ms + left_s * 1000)
    return deadline if expires is None else min(deadline, expires)


MAX_HELD: Final = 64
"""Commands kept per panel while the hub has not heard from its store yet."""


class HubProcess:
    """One hub: its store, its two broker links, its panels' sessions."""

    def __init__(
        self,
        config: HubConfig,
        *,
        clock: Clock | None = None,
        backoff_cap: float = 2.0,
        local_first_s: float = LOCAL_FIRST_S,
    ) -> None:
        self.config = config
        self._local_first_s = local_first_s
        self.clock: Clock = clock or RealClock()
        self.topics = Topics(config.site)
        self.listeners: list[Callable[[], None]] = []
        self._counters = Counters(self.clock.now_ms)
        self._backoff_cap = backoff_cap
        self.storage_fault: str | None = None  # why the store cannot be written, or None
        self._held: dict[str, list[Command]] = {}  # panel -> commands waiting to be bound
        self.integrations = Integrations(config, self.clock, self._counters, self._enqueue)
        self.integrations.send_command = self.send_command
        self.listeners.append(self.integrations.wake)
        self.store: HubStore | None = None
        self.relay: Relay | None = None
        self.availability = Availability(
            [p.id for p in config.panels], self.clock, config.offline_after, self._availability
        )
        self.pending = PendingCommands(self.clock, config.command_timeout, self._timed_out)
        self.local = self._link("local")
        self.cloud = self._link("cloud")
        self._local_up = asyncio.Event()  # the panels' link has been up since the start
        self._inbound: asyncio.Queue[Inbound] = asyncio.Queue()
        # Bounded: beyond it a command is answered `busy` at once (docs/cloud-api.md).
        self._commands: asyncio.Queue[tuple[int, aiomqtt.Message]] = asyncio.Queue(
            config.command_queue
        )
        self.outbox: CloudOutbox | None = None
        # `busy` results, written in batches: one transaction for many, not one each.
        self._busy_replies: deque[OutboxItem] = deque()
        self._busy_wake = asyncio.Event()
        self._active = 0
        self._supervisor = Supervisor(
            "hub", base=RESTART_S, on_failure=lambda _name: self._counters.add("internal_error")
        )
        self._jobs: set[asyncio.Task[Any]] = set()
        self.diagnostics_publisher = DiagnosticsPublisher(
            self.clock, self.cloud, self.topics.diagnostics, self.diagnostics
        )

    def _link(self, name: str) -> MqttLink:
        site = self.config.site
        if name == "local":
            subscriptions = [f"centinela-link/{site}/+/up", f"centinela-link/{site}/+/status"]
            return MqttLink(
                "local",
                self.config.local,
                identifier=f"centinela-hub-{site}-local",
                subscriptions=subscriptions,
                on_message=self._on_local,
                on_state=self._on_local_state,
                backoff=Backoff(base=0.05, cap=self._backoff_cap),
            )
        return MqttLink(
            "cloud",
            self.config.cloud,
            identifier=self.config.cloud_client_id,
            subscriptions=[
                self.topics.command,
                self.topics.diagnostics_request,
                *self.integrations.subscriptions(),
            ],
            on_message=self._on_cloud,
            on_state=self._on_link_state,
            on_connect=self._cloud_connected,
            will=aiomqtt.Will(self.topics.hub_availability, b"offline", qos=1, retain=True),
            backoff=Backoff(base=0.05, cap=self._backoff_cap),
            # A flood is answered `busy` as it arrives, never held in the hub's memory.
            max_queued=INCOMING_LIMIT,
            on_overflow=self._overflow,
            # > 0: the broker keeps commands sent while the hub is away (docs/deployment.md).
            session_expiry=self.config.cloud_session_expiry,
        )

    # -- public surface -----------------------------------------------------------------

    @property
    def counters(self) -> dict[str, int]:
        """Everything counted: dropped and rejected input by kind, and what went well."""
        return self._counters.counts

    def idle(self) -> bool:
        """No frame or command being handled, and nothing to publish (or the cloud is down)."""
        if self._active or not self._inbound.empty() or not self._commands.empty():
            return False
        if self._busy_replies:
            return False
        if self.local.backlog() or self.cloud.backlog():
            return False
        return self.outbox_size == 0 or self.cloud.state is not LinkState.UP

    @property
    def outbox_size(self) -> int:
        """Publishes waiting for the cloud broker."""
        return 0 if self.outbox is None else self.outbox.size

    async def start(self) -> None:
        """Open the store and start both links and the workers."""
        try:
            self.store = HubStore(self.config.store)
        except StoreError as exc:
            raise ConfigError(self.config.source, "hub.store", str(exc)) from None
        self.relay = Relay(self.config, self.store, self._counters, self._result_rows)
        self.outbox = CloudOutbox(self.store, self.cloud, self._counters, self._notify)
        self.availability.start()
        self.diagnostics_publisher.start()
        workers: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
            "local link": self.local.run,
            "cloud link": self._run_cloud,
            "frames": self._process_frames,
            "commands": self._process_commands,
            "outbox": self.outbox.run,
            "busy replies": self._write_busy_replies,
        }
        for name, worker in workers.items():
            self._supervisor.spawn(name, worker)
        await self.integrations.start()
        _LOGGER.info(
            "hub %s: %d panel(s), store %s, %d publish(es) waiting",
            self.config.site, len(self.config.panels), self.config.store, self.outbox_size,
        )  # fmt: skip

    async def stop(self) -> None:
        """Stop cleanly: answer waiting commands, say offline, close the links and the store."""
        if self.store is None:
            return
        for pending in self.pending.take_all():
            self._respond(
                Result(pending.command.id, False, error=ErrorCode.TIMEOUT,
                       detail="the hub stopped before the panel answered"),
                pending.panel, pending.response_topic, pending.correlation,
            )  # fmt: skip
        await self.diagnostics_publisher.stop()
        self.availability.stop()
        if self.outbox is not None:
            await self.outbox.settle(5.0)  # a clean stop repeats nothing
        if self.cloud.state is LinkState.UP:
            await self.cloud.say(self.topics.hub_availability, b"offline", retain=True)
        await self.integrations.stop()
        await self._supervisor.stop()
        jobs = list(self._jobs)
        for task in jobs:
            task.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        self._jobs.clear()
        if self.outbox is not None:
            self.outbox.release()
            self.outbox = None
        self.store.close()
        self.store = None
        _LOGGER.info("hub %s stopped", self.config.site)

    async def __aenter__(self) -> HubProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _notify(self) -> None:
        for listener in list(self.listeners):
            try:
                listener()
            except Exception:
                _LOGGER.exception("hub listener failed")

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coro)
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)

    def _on_local_state(self, state: LinkState) -> None:
        if state is LinkState.UP:
            self._local_up.set()
        self._on_link_state(state)

    async def _run_cloud(self) -> None:
        if self.config.cloud_session_expiry and not self._local_up.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._local_first_s):
                    await self._local_up.wait()
        await self.cloud.run()

    def _on_link_state(self, state: LinkState) -> None:
        if state is LinkState.UP and self.outbox is not None:
            self.outbox.wake()
        self._notify()

    # -- frames from the panels -----------------------------------------------------------

    def _on_local(self, message: aiomqtt.Message) -> None:
        payload = message.payload
        if not isinstance(payload, bytes | bytearray):
            payload = b"" if payload is None else str(payload).encode()
        self._inbound.put_nowait(Inbound(str(message.topic), bytes(payload), bool(message.retain)))

    async def _process_frames(self) -> None:
        assert self.relay is not None
        while True:
            batch = [await self._inbound.get()]
            while len(batch) < BATCH and not self._inbound.empty():
                batch.append(self._inbound.get_nowait())
            self._active += 1
            try:
                await self._handle_batch(batch)
            finally:
                self._active -= 1
                self._notify()

    async def _handle_batch(self, batch: list[Inbound]) -> None:
        assert self.relay is not None
        now = self.clock.now_ms()
        try:
            outcome = self.relay.handle_batch(batch, now)
        except sqlite3.Error as exc:
            # Nothing was committed, so nothing is acked: the panels keep their events and
            # send them again; once the disk has room the next batch goes through.
            self._counters.drop("store_error", str(exc))
            if self.storage_fault is None:
                _LOGGER.error("hub store cannot be written (%s): nothing is acknowledged", exc)
            self.storage_fault = str(exc) or type(exc).__name__
            await asyncio.sleep(0.5)
            return
        if self.storage_fault is not None:
            _LOGGER.warning("hub store written again")
            self.storage_fault = None
        # A heartbeat back to each panel that sent one or has just come online: the panel
        # learns the hub's clock from it and refuses commands past their deadline.
        beat = set(outcome.heartbeats)
        counters = dict(outcome.tag_counters)
        for panel in outcome.seen:
            if self.availability.label(panel) != "online":
                beat.add(panel)
                if panel not in counters:  # a (re)started panel may still wait for them
                    counters[panel] = self.relay.store.tag_counters(panel)
            self.availability.seen(panel)
        for panel, online in outcome.statuses.items():
            self.availability.status(panel, online)
        if self.outbox is not None:
            self.outbox.added(outcome.queued)
        frames: list[tuple[str, bytes]] = []
        for panel, (epoch, message) in outcome.announce.items():
            frames.append((panel, self.relay.seal(panel, message, now, peer_epoch=epoch)))
        for panel, upto in outcome.resume.items():
            frames.append((panel, self.relay.seal(panel, Resume(upto), now)))
        for panel, upto in outcome.acks.items():
            frames.append((panel, self.relay.seal(panel, Ack(upto), now)))
        # A heartbeat back to each panel that sent one or has just come online: the panel
        # learns the hub's clock from it and refuses commands past their deadline.
        for panel in sorted(beat):
            if self.relay.knows(panel):
                beat_msg = Heartbeat(now, self.relay.last_seq.get(panel) or 0)
                frames.append((panel, self.relay.seal(panel, beat_msg, now)))
        for panel in outcome.seen:
            if self._held.get(panel) and self.relay.knows(panel):
                for command in self._held.pop(panel):
                    if command.id in self.pending:  # not timed out meanwhile
                        frames.append((panel, self.relay.seal(panel, command, now)))
                        self._counters.add("commands")
        for panel, held in counters.items():
            # A panel with a new store has no SUN read counters: it takes the hub's.
            if self.relay.knows(panel):
                frames.append((panel, self.relay.seal(panel, TagCounters(tuple(held)), now)))
                self._counters.add("tag_counters_sent")
        for panel, revoked in outcome.revocations.items():
            # A panel with a new store has forgotten its revoked tags: the hub re-sends them.
            for n, (tag, user) in enumerate(revoked):
                deadline = self.pending.deadline(now)
                command = Command(f"resync-{now}-{n}", Action.REVOKE_TAG, user or "", Via.APP,
                                  tag=tag, deadline_ms=deadline)  # fmt: skip
                frames.append((panel, self.relay.seal(panel, command, now)))
                self._counters.add("revocations_resent")
        for panel, frame in frames:
            down = link_topics(self.config.site, panel)[1]
            try:
                await self.local.publish(down, frame)
            except LinkDown as exc:
                _LOGGER.debug("frame to %s not sent: %s", panel, exc)

    # -- the cloud side -----------------------------------------------------------------

    def _enqueue(self, items: list[OutboxItem]) -> None:
        if self.outbox is not None:
            self.outbox.enqueue(items)
            self._notify()

    def _availability(self, panel: str, online: bool) -> None:
        payload = b"online" if online else b"offline"
        self._enqueue([OutboxItem(self.topics.availability(panel), payload, retain=True)])

    async def _cloud_connected(self) -> None:
        await self.cloud.say(self.topics.hub_availability, b"online", retain=True)
        self.diagnostics_publisher.request()

    # -- commands from the cloud ------------------------------------------------------

    def _on_cloud(self, message: aiomqtt.Message) -> None:
        topic = str(message.topic)
        if topic == self.topics.diagnostics_request:
            if not message.retain:
                self.diagnostics_publisher.request()
            return
        if topic != self.topics.command:
            payload = message.payload if isinstance(message.payload, bytes | bytearray) else b""
            self.integrations.on_cloud(topic, bytes(payload), bool(message.retain))
            return
        try:
            self._commands.put_nowait((self.clock.now_ms(), message))
        except asyncio.QueueFull:
            self._busy(message, f"{self._commands.maxsize} commands are waiting")

    def _overflow(self, message: aiomqtt.Message) -> None:
        """A cloud message the link cannot hold: a command is answered ``busy``, nothing else."""
        if str(message.topic) == self.topics.command:
            self._busy(message, f"{INCOMING_LIMIT} messages are waiting")
        else:
            self._counters.drop("flood", f"a message on {str(message.topic)[:80]} discarded")

    def _busy(self, message: aiomqtt.Message, why: str) -> None:
        """Answer ``busy`` without queueing (a command with no usable id is only counted)."""
        parsed = parse_command(_payload(message), self.config.panel_ids)
        self._counters.drop("busy", why)
        if message.retain or isinstance(parsed, Dropped):
            return
        command_id = parsed.id if isinstance(parsed, Rejected) else parsed.command.id
        response_topic, correlation = self._reply_to(message)
        result = Result(command_id, False, error=ErrorCode.BUSY,
                        detail=f"the hub is busy ({why}); try again")  # fmt: skip
        items = self._result_items(result, parsed.panel, response_topic, correlation)
        while len(self._busy_replies) + len(items) > BUSY_REPLIES:
            self._busy_replies.popleft()
            self._counters.drop("flood", "a busy result discarded unsent")
        self._busy_replies.extend(items)
        self._busy_wake.set()

    async def _write_busy_replies(self) -> None:
        while True:
            await self._busy_wake.wait()
            self._busy_wake.clear()
            items = list(self._busy_replies)
            self._busy_replies.clear()
            self._enqueue(items)
            await asyncio.sleep(0)  # let more gather while the next batch is written

    async def send_command(self, panel: str, command: Command) -> str | None:
        """Send a command that does not come from the cloud API (Home Assistant's).

        Its result goes to the result topic like any other; returns why it could
        not be sent, or None.
        """
        if self.relay is None or self.availability.is_offline(panel):
            return f"panel {panel} is offline"
        if self.local.state is not LinkState.UP:
            return "the hub is not connected to the panels' broker"
        if not self.relay.knows(panel):  # a command is bound to the panel's store
            return f"panel {panel} has not been heard from since the hub's store began"
        if len(self.pending) >= MAX_IN_FLIGHT:
            return f"the hub is busy ({MAX_IN_FLIGHT} commands in flight)"
        deadline = self.pending.deadline(self.clock.now_ms())
        command = dataclasses.replace(command, deadline_ms=deadline)
        self.pending.add(Pending(panel, command, None, None))
        down = link_topics(self.config.site, panel)[1]
        try:
            await self.local.publish(down, self.relay.seal(panel, command, self.clock.now_ms()))
        except LinkDown as exc:
            self.pending.discard(command.id)
            return f"the command could not be sent: {exc}"
        self._counters.add("commands")
        return None

    async def _process_commands(self) -> None:
        while True:
            received_ms, message = await self._commands.get()
            self._active += 1
            try:
                await self._command(message, received_ms)
            except Exception:
                # One command that breaks the hub must not hold up the ones behind it.
                self._counters.add("internal_error")
                _LOGGER.exception("a command on %s could not be handled", message.topic)
            finally:
                self._active -= 1
                self._notify()

    async def _command(self, message: aiomqtt.Message, received_ms: int) -> None:
        assert self.relay is not None
        if message.retain:
            self._counters.drop("retained_command", "a retained command is never executed")
            return
        response_topic, correlation = self._reply_to(message)
        parsed = parse_command(_payload(message), self.config.panel_ids)
        if isinstance(parsed, Dropped):
            self._counters.drop(parsed.reason, parsed.detail)
            return
        if isinstance(parsed, Rejected):
            self._counters.drop("bad_command", f"{parsed.id}: {parsed.detail}")
            self._respond(parsed.result(), parsed.panel, response_topic, correlation)
            return
        assert isinstance(parsed, Accepted)
        panel = parsed.panel
        deadline = _deadline(
            self.pending.deadline(received_ms), received_ms, message, parsed.expires_ms
        )
        command = dataclasses.replace(parsed.command, deadline_ms=deadline)
        refusal = self._refusal(command, deadline, received_ms)
        if refusal is not None:
            self._respond(refusal, panel, response_topic, correlation)
            return
        offline = None
        if self.availability.is_offline(panel):
            offline = f"panel {panel} is offline"
        elif self.local.state is not LinkState.UP:
            offline = "the hub is not connected to the panels' broker"
        if offline is None:
            try:
                frame = self.relay.seal(panel, command, self.clock.now_ms())
            except ProtocolError as exc:
                self._counters.drop("bad_command", f"{command.id}: {exc}")
                self._respond(
                    Result(command.id, False, error=ErrorCode.BAD_REQUEST,
                           detail=f"the command cannot be sent: {exc}"),
                    panel, response_topic, correlation,
                )  # fmt: skip
                return
            self.pending.add(Pending(panel, command, response_topic, correlation))
            if not self.relay.knows(panel):
                # A command is bound to the panel's store, and none has been heard from yet
                # (a few ms after a start): it waits for the first frame, or its timeout.
                held = self._held.setdefault(panel, [])
                if len(held) < MAX_HELD:
                    held.append(command)
                    self._counters.add("commands_held")
                    return
                self.pending.discard(command.id)
                offline = f"panel {panel} has not been heard from since the hub's store began"
        if offline is None:
            down = link_topics(self.config.site, panel)[1]
            try:
                await self.local.publish(down, frame)
                self._counters.add("commands")
                return
            except LinkDown as exc:
                if self.pending.discard(command.id) is None:
                    return  # answered or timed out meanwhile
                offline = f"the command could not be sent: {exc}"
        self._counters.add("commands_offline")
        self._respond(
            Result(command.id, False, error=ErrorCode.PANEL_OFFLINE, detail=offline),
            panel, response_topic, correlation,
        )  # fmt: skip

    def _refusal(self, command: Command, deadline: int, received_ms: int) -> Result | None:
        """Why ``command`` is answered at once without going to the panel (None: send it)."""
        if command.id in self.pending:
            self._counters.drop("bad_command", f"{command.id}: id already in flight")
            return Result(command.id, False, error=ErrorCode.BAD_REQUEST,
                          detail="id: a command with this id is still in flight")  # fmt: skip
        if deadline <= received_ms:
            self._counters.drop("command_expired", f"{command.id}: expired before it arrived")
            return Result(command.id, False, error=ErrorCode.TIMEOUT,
                          detail="the command expired before it reached the hub")  # fmt: skip
        if self.clock.now_ms() >= deadline:
            self._counters.drop("command_expired", f"{command.id}: waited past its deadline")
            return Result(command.id, False, error=ErrorCode.TIMEOUT,
                          detail="the command waited in the hub past its deadline")  # fmt: skip
        if len(self.pending) >= MAX_IN_FLIGHT:
            self._counters.drop("busy", f"{MAX_IN_FLIGHT} commands in flight")
            return Result(command.id, False, error=ErrorCode.BUSY,
                          detail=f"the hub is busy ({MAX_IN_FLIGHT} commands in flight); "
                                 "try again")  # fmt: skip
        return None

    def _reply_to(self, message: aiomqtt.Message) -> tuple[str | None, bytes | None]:
        topic, correlation, problem = reply_to(
            message.properties, self.config.response_prefix, self.topics.result
        )
        if problem is not None:
            self._counters.drop("bad_response_topic", problem)
        return topic, correlation

    def _result_items(
        self, result: Result, panel: str | None, topic: str | None, correlation: bytes | None
    ) -> list[OutboxItem]:
        return result_items(self.topics.result, result, panel, topic, correlation)

    def _result_rows(self, panel: str, result: Result) -> list[OutboxItem]:
        """Relay hook: rows for a panel's result, if a command waits for it (in the batch's txn)."""
        pending = self.pending.resolve(panel, result)
        if pending is None:
            return []
        self._counters.add("results")
        return self._result_items(result, panel, pending.response_topic, pending.correlation)

    def _respond(
        self,
        result: Result,
        panel: str | None,
        response_topic: str | None,
        correlation: bytes | None,
    ) -> None:
        self._enqueue(self._result_items(result, panel, response_topic, correlation))

    def _timed_out(self, pending: Pending) -> None:
        self._counters.drop("command_timeout", f"{pending.panel}: command {pending.command.id}")
        self._respond(
            Result(pending.command.id, False, error=ErrorCode.TIMEOUT,
                   detail=f"panel {pending.panel} did not answer within "
                          f"{self.config.command_timeout:g} s"),
            pending.panel, pending.response_topic, pending.correlation,
        )  # fmt: skip

    # -- diagnostics ------------------------------------------------------------------

    def diagnostics(self) -> dict[str, Any]:
        """What the hub publishes on ``centinela/<site>/hub/diagnostics``."""
        relay = self.relay
        return {
            "time": iso_ms(self.clock.now_ms()),
            "site": self.config.site,
            "links": {"local": self.local.state.value, "cloud": self.cloud.state.value},
            "outbox": self.outbox_size,
            "storage": "ok" if self.storage_fault is None else f"fault: {self.storage_fault}",
            "pending_commands": len(self.pending),
            "panels": {
                p.id: {
                    "availability": self.availability.label(p.id),
                    "last_seq": None if relay is None else relay.last_seq.get(p.id),
                }
                for p in self.config.panels
            },
            "counters": dict(sorted(self.counters.items())),
            **self.integrations.diagnostics(),
        }
