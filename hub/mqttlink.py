"""One reconnecting MQTT client: subscribe, hand messages on, publish until the link drops.

The hub runs two of these (local panel broker, cloud broker), each with its own
loop: capped exponential backoff with jitter between attempts, an explicit
``LinkState``, TCP_NODELAY and a quiet in-flight logger (``common.mqtt``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiomqtt
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from common.backoff import Backoff
from common.linklog import LinkLog
from common.mqtt import BrokerConfig, LinkState, link_options

_LOGGER = logging.getLogger(__name__)

PUBLISH_TIMEOUT = 10.0


class LinkDown(Exception):
    """The broker connection is down (or went down before the PUBACK)."""


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _overflowing_queue(
    on_overflow: Callable[[aiomqtt.Message], None] | None,
) -> type[asyncio.Queue[aiomqtt.Message]]:
    """A queue class for aiomqtt that hands each message it cannot hold to ``on_overflow``."""

    class OverflowingQueue(asyncio.Queue[aiomqtt.Message]):
        def put_nowait(self, item: aiomqtt.Message) -> None:
            try:
                super().put_nowait(item)
            except asyncio.QueueFull:
                if on_overflow is None:
                    raise  # aiomqtt discards it
                on_overflow(item)

    return OverflowingQueue


class MqttLink:
    """A client for one broker that reconnects by itself until cancelled."""

    def __init__(
        self,
        name: str,
        broker: BrokerConfig,
        *,
        identifier: str,
        subscriptions: Sequence[str],
        on_message: Callable[[aiomqtt.Message], None],
        on_state: Callable[[LinkState], None] | None = None,
        on_connect: Callable[[], Awaitable[None]] | None = None,
        will: aiomqtt.Will | None = None,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_queued: int = 0,
        on_overflow: Callable[[aiomqtt.Message], None] | None = None,
        session_expiry: int = 0,
    ) -> None:
        self.name = name
        self.broker = broker
        self.state = LinkState.DOWN
        self.connects = 0
        self._identifier = identifier
        self._subscriptions = tuple(subscriptions)
        self._on_message = on_message
        self._on_state = on_state
        self._on_connect = on_connect
        self._v5 = broker.mqtt5
        self._will = will
        self._backoff = backoff or Backoff(base=0.05, cap=5.0)
        self._sleep = sleep  # between connection attempts (a clock's sleep in virtual time)
        self.connect_waits = 0
        self._max_queued = max_queued  # messages waiting to be handed on; 0: no limit
        self._on_overflow = on_overflow
        self._session_expiry = session_expiry  # 0: a clean session (common.mqtt.link_options)
        self._client: aiomqtt.Client | None = None
        self._lost = asyncio.Event()

    def backlog(self) -> int:
        """Messages received from the broker but not handed on yet."""
        client = self._client
        return len(client.messages) if client is not None else 0

    def _set_state(self, state: LinkState) -> None:
        if state is not self.state:
            self.state = state
            if self._on_state is not None:
                self._on_state(state)

    def _client_for(self) -> aiomqtt.Client:
        options = link_options(self.broker, session_expiry=self._session_expiry)
        return aiomqtt.Client(
            **options,
            identifier=self._identifier,
            will=self._will,
            max_queued_incoming_messages=self._max_queued,
            queue_type=_overflowing_queue(self._on_overflow),
        )

    async def run(self) -> None:
        """Connect, subscribe, dispatch; reconnect with backoff; until cancelled."""
        log = LinkLog(
            _LOGGER, f"hub {self.name} link", self.broker.url, self.broker.username,
            self._identifier,
        )  # fmt: skip
        while True:
            pause = 0.0
            self._set_state(LinkState.CONNECTING)
            try:
                async with self._client_for() as client:
                    client.pending_calls_threshold = 10_000
                    # With a kept session the broker hands over what it queued right after
                    # the CONNACK, before these subscriptions are sent again: aiomqtt holds
                    # those messages in client.messages, dispatched below like any other.
                    # Subscribing again to a kept subscription only replaces it.
                    for topic in self._subscriptions:
                        if self._v5:
                            # Retain-as-published: a retained command stays visible as one.
                            options = SubscribeOptions(qos=1, retainAsPublished=True)
                            await client.subscribe(topic, options=options)
                        else:
                            await client.subscribe(topic, qos=1)
                    self._lost = asyncio.Event()
                    self._client = client
                    self._backoff.reset()
                    self.connects += 1
                    log.connected()
                    self._set_state(LinkState.UP)
                    if self._on_connect is not None:
                        await self._on_connect()
                    async for message in client.messages:
                        self._dispatch(message)
            except aiomqtt.MqttError as exc:
                # A second hub with this client id: a link dropped again and again right
                # after connecting waits longer each time, so the other stays up.
                pause = log.failed(exc)
            except OSError as exc:  # TLS files that cannot be loaded, and the like
                log.failed(exc)
            finally:
                self._client = None
                self._lost.set()
                self._set_state(LinkState.DOWN)
            self.connect_waits += 1
            await self._sleep(max(pause, self._backoff.next()))

    def _dispatch(self, message: aiomqtt.Message) -> None:
        try:
            self._on_message(message)
        except Exception:
            _LOGGER.exception(
                "%s broker: handling a message on %s failed", self.name, message.topic
            )

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        properties: Properties | None = None,
        wait_s: float = PUBLISH_TIMEOUT,
    ) -> None:
        """Publish and wait for the PUBACK (QoS 1); ``LinkDown`` if the link is or goes down."""
        client, lost = self._client, self._lost
        if client is None or self.state is not LinkState.UP:
            raise LinkDown(f"{self.name} broker is not connected")
        task = asyncio.ensure_future(
            client.publish(
                topic, payload, qos=qos, retain=retain, properties=properties, timeout=wait_s
            )
        )
        task.add_done_callback(_consume)
        waiter = asyncio.ensure_future(lost.wait())
        try:
            done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            if not task.done():
                task.cancel()
        if task not in done:
            raise LinkDown(f"{self.name} broker connection lost before the PUBACK")
        try:
            task.result()
        except aiomqtt.MqttError as exc:
            raise LinkDown(f"{self.name} broker: {exc}") from exc

    async def say(self, topic: str, payload: bytes, *, retain: bool, wait_s: float = 1.0) -> bool:
        """Best-effort publish (availability, diagnostics); False when it did not go out."""
        with contextlib.suppress(LinkDown, asyncio.TimeoutError):
            async with asyncio.timeout(wait_s):
                await self.publish(topic, payload, retain=retain, wait_s=wait_s)
                return True
        return False
