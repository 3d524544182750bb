"""The cloud stand-in: an MQTT client on the cloud broker that sends commands and collects the rest.

It speaks the cloud API of CONTRACT §5 exactly as a real cloud service would:
it subscribes to ``centinela/<site>/#`` with a persistent session (so events
queued while the broker was down still arrive), sends commands to
``centinela/<site>/command`` and keeps what comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiomqtt

from common.errors import UsageError
from common.mqtt import BrokerConfig, client_options

_LOGGER = logging.getLogger(__name__)


class CloudStandIn:
    """Sends cloud commands and records results, events, state, telemetry, availability, photos."""

    def __init__(self, broker: BrokerConfig, site: str) -> None:
        self.broker = broker
        self.site = site
        self.identifier = f"centinela-sim-cloud-{site}-{secrets.token_hex(4)}"
        self.events: list[dict[str, Any]] = []
        self.results: dict[str, dict[str, Any]] = {}
        self.states: dict[str, dict[str, Any]] = {}
        self.telemetry: dict[str, dict[str, Any]] = {}
        self.availability: dict[str, str] = {}
        self.photos: dict[str, bytes] = {}
        # Media streams (CONTRACT §9): id -> the WebM bytes so far; ``media_done`` once ended.
        self.media: dict[str, bytearray] = {}
        self.media_done: dict[str, bytes] = {}
        self.media_arrivals: dict[str, list[tuple[float, int]]] = {}  # id -> (monotonic, size)
        self.listeners: list[Callable[[str, Any], None]] = []
        self.connected = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._pings: dict[str, asyncio.Future[None]] = {}
        self._ping_topic = f"centinela-sim/{self.identifier}/ping"
        self._ids = itertools.count(1)

    async def start(self, wait_s: float = 10.0) -> None:
        """Connect (retrying for up to ``wait_s``) and start collecting."""
        self._task = asyncio.create_task(self._run(), name="cloud-stand-in")
        try:
            await asyncio.wait_for(self.connected.wait(), wait_s)
        except TimeoutError:
            await self.stop()
            raise UsageError(f"cannot reach the cloud broker {self.broker.url}") from None

    async def stop(self) -> None:
        """Disconnect and stop."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task

    def next_id(self) -> str:
        """A fresh command id."""
        return f"c{next(self._ids)}"

    async def send(self, command: Mapping[str, Any]) -> bool:
        """Publish a command; False when the cloud broker is unreachable."""
        client = self._client
        if client is None or not self.connected.is_set():
            return False
        try:
            payload = json.dumps(dict(command), separators=(",", ":"))
            await client.publish(f"centinela/{self.site}/command", payload, qos=1, timeout=5)
        except (aiomqtt.MqttError, TypeError, ValueError) as exc:
            _LOGGER.warning("cloud command not sent: %s", exc)
            return False
        return True

    async def flush(self, wait_s: float = 2.0) -> bool:
        """Wait until what the broker held for us has arrived (a ping round trip)."""
        client = self._client
        if client is None or not self.connected.is_set():
            return False
        token = secrets.token_hex(4)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pings[token] = fut
        try:
            await client.publish(self._ping_topic, token, qos=1, timeout=wait_s)
            await asyncio.wait_for(fut, wait_s)
        except (aiomqtt.MqttError, TimeoutError):
            return False
        finally:
            self._pings.pop(token, None)
        return True

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            client = aiomqtt.Client(
                **client_options(self.broker), identifier=self.identifier, clean_session=False
            )
            try:
                async with client:
                    self._client = client
                    await client.subscribe(f"centinela/{self.site}/#", qos=1)
                    await client.subscribe(self._ping_topic, qos=1)
                    self.connected.set()
                    backoff = 0.05
                    _LOGGER.debug("cloud stand-in connected as %s", self.identifier)
                    async for message in client.messages:
                        self._take(message.topic.value, message.payload)
            except aiomqtt.MqttError as exc:
                _LOGGER.debug("cloud stand-in link down: %s", exc)
            finally:
                self._client = None
                self.connected.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    def _take(self, topic: str, payload: Any) -> None:
        raw = payload if isinstance(payload, bytes) else str(payload).encode()
        if topic == self._ping_topic:
            fut = self._pings.get(raw.decode(errors="replace"))
            if fut is not None and not fut.done():
                fut.set_result(None)
            return
        parts = topic.split("/")
        if len(parts) < 3 or parts[:2] != ["centinela", self.site]:
            return
        rest = parts[2:]
        try:
            if rest == ["event"]:
                self._record("event", json.loads(raw))
            elif rest == ["result"]:
                result = json.loads(raw)
                self.results[str(result.get("id"))] = result
                self._record("result", result)
            elif len(rest) == 2 and rest[1] == "state":
                self.states[rest[0]] = json.loads(raw)
                self._record("state", (rest[0], self.states[rest[0]]))
            elif len(rest) == 2 and rest[1] == "telemetry":
                self.telemetry[rest[0]] = json.loads(raw)
                self._record("telemetry", (rest[0], self.telemetry[rest[0]]))
            elif len(rest) == 2 and rest[1] == "availability":
                self.availability[rest[0]] = raw.decode(errors="replace")
                self._record("availability", (rest[0], self.availability[rest[0]]))
            elif len(rest) == 3 and rest[1] == "photo":
                self.photos[rest[2]] = raw
                self._record("photo", (rest[0], rest[2], len(raw)))
            elif len(rest) == 3 and rest[1] in ("audio", "clip"):
                self._media(rest[1], rest[2], raw)
        except (ValueError, AttributeError) as exc:
            _LOGGER.warning("cloud stand-in: bad payload on %s: %s", topic, exc)

    def _media(self, kind: str, media_id: str, raw: bytes) -> None:
        if media_id in self.media_done:
            return
        if raw:
            self.media.setdefault(media_id, bytearray()).extend(raw)
            self.media_arrivals.setdefault(media_id, []).append((time.monotonic(), len(raw)))
            self._record(f"{kind}_data", (media_id, len(raw)))
            return
        self.media_done[media_id] = bytes(self.media.pop(media_id, b""))
        self._record(kind, (media_id, len(self.media_done[media_id])))

    def _record(self, kind: str, value: Any) -> None:
        if kind == "event":
            self.events.append(value)
        for listener in list(self.listeners):
            listener(kind, value)
