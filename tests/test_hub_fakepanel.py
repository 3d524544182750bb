"""A raw panel (sealed frames over aiomqtt) and a cloud watcher for the hub tests, and their checks.

The other ``test_hub_*`` modules import ``RawPanel``, ``Cloud`` and ``hub_mapping`` from here.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import ssl
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from common.mqtt import NODELAY
from hub.linkkeys import derived_key_id
from protocol.frame import Direction
from protocol.keys import generate_key
from protocol.messages import (
    Command,
    Event,
    EventType,
    Heartbeat,
    Message,
    Method,
    Mode,
    Result,
    State,
    StateSnapshot,
)
from protocol.session import Receiver, Sender
from sim.broker import Mosquitto

WAIT = 10.0  # seconds; generous bound for anything over loopback (never an assertion on speed)
T0 = 1_795_000_000_000  # 2026-11-18, a fixed virtual start time


def new_site() -> str:
    """A site name of its own, so tests on the session broker never see each other's topics."""
    return f"t{uuid.uuid4().hex[:12]}"


def new_key() -> bytes:
    return bytes.fromhex(generate_key())


def event(seq: int, type_: EventType = EventType.ARMED, **kw: Any) -> Event:
    """A plausible event with ``seq``."""
    fields: dict[str, Any] = {
        "time_ms": T0 + seq * 1000,
        "type": type_,
        "method": Method.KEYPAD,
        "cid": "3401",
        "sia": "CL",
        "mode": Mode.TOTAL,
        "user": "alice",
    }
    fields.update(kw)
    return Event(seq=seq, **fields)


def snapshot(state: State = State.DISARMED, **kw: Any) -> StateSnapshot:
    return StateSnapshot(state=state, since_ms=T0, **kw)


def hub_mapping(
    site: str,
    broker: Mosquitto,
    panels: dict[str, bytes],
    store: Path,
    *,
    cloud: Mosquitto | None = None,
    **hub: Any,
) -> dict[str, Any]:
    """A hub configuration mapping for ``load_hub_mapping``."""
    mapping: dict[str, Any] = {
        "hub": {"site": site, "store": str(store), **hub},
        "local": {"broker": broker.url},
        "panels": [{"id": pid, "key": key.hex()} for pid, key in panels.items()],
    }
    if cloud is not None:
        mapping["cloud"] = {"broker": cloud.url}
    return mapping


class RawPanel:
    """The panel side of the link, played with protocol.session and aiomqtt directly."""

    def __init__(
        self,
        broker: Mosquitto,
        site: str,
        panel_id: str,
        key: bytes,
        *,
        key_id: int = 0,
        client_args: dict[str, Any] | None = None,
        answer: Callable[[Command], Result | None] | None = None,
        epoch: int | None = None,
    ) -> None:
        self.broker = broker
        self.site = site
        self.panel_id = panel_id
        self.key = key
        self.key_id = key_id
        base = f"centinela-link/{site}/{panel_id}"
        self.up, self.down, self.status = f"{base}/up", f"{base}/down", f"{base}/status"
        self.epoch = epoch or secrets.randbits(56) or 1  # this store's (protocol v2 epochs)
        self.sender = Sender(panel_id, Direction.PANEL_TO_HUB, key, key_id=key_id, epoch=self.epoch)
        self.receiver = Receiver(
            panel_id, Direction.HUB_TO_PANEL, {key_id: key}, local_epoch=self.epoch
        )
        self.joined = False
        self.acked = 0
        self.acks: list[int] = []
        self.commands: list[Command] = []
        self.bad_down = 0
        self.published = 0  # event frames deliver() sent, resends included
        self.answer = answer
        self._client_args = client_args or {}
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def __aenter__(self) -> RawPanel:
        self._client = aiomqtt.Client(
            self.broker.host,
            self.broker.port,
            identifier=f"raw-{self.site}-{self.panel_id}-{uuid.uuid4().hex[:6]}",
            socket_options=NODELAY,
            will=aiomqtt.Will(self.status, b"offline", qos=1, retain=True),
            **self._client_args,
        )
        await self._client.__aenter__()
        await self._client.subscribe(self.down, qos=1)
        self._task = asyncio.create_task(self._read(self._client))
        if self.answer is not None:  # a panel that answers commands makes itself known
            await self.join()
        return self

    async def join(self) -> None:
        """Learn the hub's epoch: a first frame the hub answers with its own (docs/link.md)."""
        if self.joined:
            return
        async with asyncio.timeout(WAIT):
            while not self.joined:
                await self.client.publish(self.up, self.seal(Heartbeat(T0, 0)), qos=1)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.2):
                        await self.wait(lambda: self.joined)
        # Bound to the hub's epoch now: the hub learns this store's epoch from it.
        await self.client.publish(self.up, self.seal(Heartbeat(T0, 0)), qos=1)

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await self._task
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._client.__aexit__(None, None, None)

    @property
    def client(self) -> aiomqtt.Client:
        assert self._client is not None
        return self._client

    async def say_status(self, text: str) -> None:
        await self.client.publish(self.status, text.encode(), qos=1, retain=True)

    def seal(self, message: Message) -> bytes:
        return self.sender.seal(message, T0)

    async def send(self, *messages: Message) -> list[bytes]:
        """Seal and publish each message (QoS 1); the frames, for replay tests.

        A panel that does not know the hub's epoch yet learns it first.
        """
        if not self.joined:
            await self.join()
        frames = []
        for message in messages:
            frame = self.seal(message)
            await self.client.publish(self.up, frame, qos=1)
            frames.append(frame)
        return frames

    async def publish_raw(self, payload: bytes, topic: str | None = None, **kw: Any) -> None:
        await self.client.publish(topic or self.up, payload, qos=1, **kw)

    async def _read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            try:
                received = self.receiver.open(message.payload)
            except Exception:
                self.bad_down += 1
                continue
            msg = received.message
            if received.new_epoch:
                self.sender.peer_epoch = received.header.epoch
                if not self.joined:  # the hub's answer to an unbound frame: not an ack
                    self.joined = True
                    self._changed.set()
                    continue
            if hasattr(msg, "upto_seq"):
                self.acks.append(msg.upto_seq)
                self.acked = max(self.acked, msg.upto_seq)
            elif isinstance(msg, Command):
                self.commands.append(msg)
                if self.answer is not None:
                    result = self.answer(msg)
                    if result is not None:
                        await client.publish(self.up, self.seal(result), qos=1)
            self._changed.set()

    async def wait(self, predicate: Callable[[], bool], what: str = "") -> None:
        """Until ``predicate()`` holds (frames from the hub arrive meanwhile)."""
        async with asyncio.timeout(WAIT):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def wait_acked(self, seq: int) -> None:
        await self.wait(lambda: self.acked >= seq, f"ack {seq}")

    async def deliver(self, events: list[Event], *, resend_s: float = 0.3, window: int = 8) -> None:
        """Rule 2 of docs/link.md: keep up to ``window`` unacked events out, resend on silence."""
        by_seq = {e.seq: e for e in events}
        last = events[-1].seq
        sent_upto = self.acked
        loop = asyncio.get_running_loop()
        progress_at, progress = loop.time(), self.acked
        async with asyncio.timeout(60):
            while self.acked < last:
                if self.acked > progress:
                    progress_at, progress = loop.time(), self.acked
                elif loop.time() - progress_at > resend_s:
                    sent_upto, progress_at = self.acked, loop.time()  # resend the oldest unacked
                sent_upto = max(sent_upto, self.acked)
                while sent_upto < min(last, self.acked + window):
                    sent_upto += 1
                    with contextlib.suppress(aiomqtt.MqttError):
                        await self.client.publish(self.up, self.seal(by_seq[sent_upto]), qos=1)
                        self.published += 1
                        self._changed.set()
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(resend_s / 3):
                        await self._changed.wait()


class Cloud:
    """A cloud-side MQTT 5 client: records every message under centinela/<site>/#."""

    def __init__(self, broker: Mosquitto, site: str, **client_args: Any) -> None:
        self.broker = broker
        self.site = site
        self.messages: list[aiomqtt.Message] = []
        self._client_args = client_args
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._ids = itertools.count(1)

    async def __aenter__(self) -> Cloud:
        self._client = aiomqtt.Client(
            self.broker.host,
            self.broker.port,
            protocol=aiomqtt.ProtocolVersion.V5,
            socket_options=NODELAY,
            **self._client_args,
        )
        await self._client.__aenter__()
        await self._client.subscribe(f"centinela/{self.site}/#", qos=1)
        self._task = asyncio.create_task(self._read(self._client))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await self._task
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._client.__aexit__(None, None, None)

    @property
    def client(self) -> aiomqtt.Client:
        assert self._client is not None
        return self._client

    async def _read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            self.messages.append(message)
            self._changed.set()

    def on(self, suffix: str) -> list[aiomqtt.Message]:
        """Messages on ``centinela/<site>/<suffix>``."""
        topic = f"centinela/{self.site}/{suffix}"
        return [m for m in self.messages if str(m.topic) == topic]

    def json(self, suffix: str) -> list[Any]:
        return [json.loads(_bytes(m.payload)) for m in self.on(suffix)]

    def events(self) -> list[dict[str, Any]]:
        return self.json("event")

    def results(self) -> dict[str, dict[str, Any]]:
        return {r["id"]: r for r in self.json("result")}

    def texts(self, suffix: str) -> list[str]:
        return [_bytes(m.payload).decode() for m in self.on(suffix)]

    async def wait(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def wait_events(self, n: int) -> list[dict[str, Any]]:
        await self.wait(lambda: len(self.events()) >= n)
        return self.events()

    async def wait_result(self, command_id: str) -> dict[str, Any]:
        await self.wait(lambda: command_id in self.results())
        return self.results()[command_id]

    async def command(
        self, payload: Any, *, properties: Properties | None = None, **kw: Any
    ) -> None:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        await self.client.publish(
            f"centinela/{self.site}/command", raw, qos=1, properties=properties, **kw
        )

    def next_id(self) -> str:
        return f"c{next(self._ids)}"


def response_properties(topic: str, correlation: bytes) -> Properties:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.ResponseTopic = topic
    props.CorrelationData = correlation
    return props


def _bytes(payload: Any) -> bytes:
    assert isinstance(payload, bytes | bytearray)
    return bytes(payload)


def tls_client(ca: Path, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        context.load_cert_chain(str(cert), str(key) if key else None)
    return context


async def until(
    predicate: Callable[[], bool],
    settle: Callable[[], Awaitable[None]] | None = None,
    seen: Callable[[], object] | None = None,
) -> None:
    """Poll ``predicate`` (for state that no message announces) for at most WAIT seconds.

    On a timeout, ``seen()`` (when given) says what there was instead.
    """
    try:
        async with asyncio.timeout(WAIT):
            while not predicate():
                await (settle() if settle else asyncio.sleep(0.01))
    except TimeoutError:
        if seen is None:
            raise
        raise AssertionError(f"not within {WAIT:g} s; seen: {seen()!r}") from None


# -- the helpers' own checks ------------------------------------------------------------


def test_raw_panel_frames_open_with_the_hub_keys() -> None:
    key = new_key()
    sender = Sender("p1", Direction.PANEL_TO_HUB, key, key_id=derived_key_id(key))
    receiver = Receiver("p1", Direction.PANEL_TO_HUB, {derived_key_id(key): key})
    assert receiver.open(sender.seal(event(1), T0)).message == event(1)


def test_hub_mapping_names_every_panel(tmp_path: Path) -> None:
    broker = Mosquitto()
    try:
        mapping = hub_mapping("s", broker, {"p1": new_key(), "p2": new_key()}, tmp_path / "h.db")
    finally:
        broker.close()
    assert [p["id"] for p in mapping["panels"]] == ["p1", "p2"]
    assert mapping["local"]["broker"] == broker.url
