"""The customer area's own client of the cloud API (CONTRACT §5).

It consumes events, state, availability, telemetry and photos of every configured
site with a persistent session (what arrives while the service is down waits in the
broker), stores them, tells the live pages, and sends commands, waiting for their result.

Each message is acknowledged only once it is handled: a worker killed mid-way leaves
its unacknowledged messages in its session, delivered again when it is back. With
``[broker] share_group`` (MQTT 5), events, telemetry and photos come through shared
subscriptions, each to one worker of the group; state, availability and command
results (small, retained or addressed to whoever sent the command) reach every worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cloud.config import CloudConfig
from cloud.live import Live
from cloud.media import AudioStreams
from cloud.store import EventFilter, Store, StoreUnavailable, now_iso
from common.mqtt import Backoff, LinkState, client_options

_LOGGER = logging.getLogger(__name__)
_PHOTO_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
ATTEMPT_LOOKBACK = 10
"""How many of a tag's latest rejected attempts are searched for the one a photo is of."""

EventHook = Callable[[str, dict[str, Any]], None]
INGEST_BATCH = 100
"""Most messages handled together (their events stored in one statement)."""
IMAGE_EVENTS = frozenset({"photo_requested", "photo_ready", "clip_requested", "clip_ready"})


class CloudLink:
    """Subscribes to every installation's site and sends commands on its behalf."""

    def __init__(self, config: CloudConfig, store: Store, live: Live) -> None:
        self.config = config
        self.store = store
        self.live = live
        self.state = LinkState.DOWN
        self.connected = asyncio.Event()
        self.counters: dict[str, int] = {}
        self.event_hooks: list[EventHook] = []
        self.panels: dict[str, str] = {}  # site -> first panel seen (when the config names none)
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._prefix = secrets.token_hex(3)
        self._ids = 0
        self.audio = AudioStreams()  # silent calls, for the pages that play them
        self._clips: dict[tuple[str, str, str], bytearray] = {}  # clips still arriving
        self._store_down = False  # the last lot could not be stored

    async def start(self) -> None:
        """Start connecting (in the background: the pages work while the broker is away)."""
        self._task = asyncio.create_task(self._run(), name="cloud-link")

    async def stop(self) -> None:
        """Disconnect."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task
        for fut in self._pending.values():
            if not fut.done():
                fut.cancel()

    def panel_of(self, site: str) -> str | None:
        """The panel commands go to: the configured one, else the first one heard of."""
        inst = self.config.by_site(site)
        if inst is not None and inst.panel:
            return inst.panel
        return self.panels.get(site) or self.store.first_panel(site)

    def expect_photo(self, site: str, camera: str, reason: str) -> None:
        """The next photo requested of ``camera`` is for ``reason`` (a stolen tag); kept in
        the store, as the photo's event may reach another worker."""
        self.store.expect_photo(site, camera, reason)

    def forget_photo(self, site: str, camera: str, reason: str) -> None:
        """The request was refused: no photo will come for ``reason``."""
        self.store.forget_photo(site, camera, reason)

    def subscriptions(self) -> list[str]:
        """The topic filters this worker subscribes to."""
        group = self.config.share_group
        if group is None:
            return [
                f"centinela/{site}/#"
                for site in sorted({i.site for i in self.config.installations})
            ]
        shared = [f"$share/{group}/centinela/+/event", f"$share/{group}/centinela/+/+/telemetry"]
        shared.append(f"$share/{group}/centinela/+/+/photo/+")
        return [*shared, "centinela/+/result", "centinela/+/+/state", "centinela/+/+/availability"]

    def _new_client(self) -> aiomqtt.Client:
        options = client_options(self.config.broker)
        if self.config.share_group is None:
            client = aiomqtt.Client(
                **options, identifier=self.config.client_id, clean_session=False
            )
        else:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = self.config.session_expiry
            client = aiomqtt.Client(
                **options,
                identifier=self.config.client_id,
                protocol=aiomqtt.ProtocolVersion.V5,
                clean_start=False,
                properties=properties,
            )
        # Acknowledge a message once it is stored, not on arrival (paho under aiomqtt).
        client._client.manual_ack_set(True)
        return client

    def _live(self, site: str, kind: str, value: Any) -> None:
        """Tell the live pages of every worker (through the store when it is shared)."""
        if not self.store.announce(site, kind, value):
            self.live.publish(site, kind, value)

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    async def command(
        self, site: str, action: str, user: str, via: str, **extra: str | int | None
    ) -> dict[str, Any]:
        """Send one command and wait for its result (a §5 result, always)."""
        panel = self.panel_of(site)
        client = self._client
        if panel is None or client is None or not self.connected.is_set():
            return {"ok": False, "error": "panel_offline", "detail": "the cloud link is down"}
        self._ids += 1
        cid = f"w{self._prefix}-{self._ids}"
        body: dict[str, Any] = {"id": cid, "panel": panel, "action": action, "user": user}
        body["via"] = via
        body.update({k: v for k, v in extra.items() if v is not None})
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[cid] = fut
        properties = None
        if self.config.share_group is not None:  # MQTT 5: dropped once nobody waits for it
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.MessageExpiryInterval = max(1, math.floor(self.config.command_timeout))
        try:
            await client.publish(
                f"centinela/{site}/command",
                json.dumps(body, separators=(",", ":")),
                qos=1,
                properties=properties,
            )
            return await asyncio.wait_for(fut, self.config.command_timeout)
        except TimeoutError:
            return {"id": cid, "ok": False, "error": "timeout", "detail": "no answer in time"}
        except aiomqtt.MqttError:
            return {"id": cid, "ok": False, "error": "panel_offline", "detail": "link down"}
        finally:
            self._pending.pop(cid, None)

    async def _run(self) -> None:
        backoff = Backoff(0.1, 2.0)
        while True:
            self.state = LinkState.CONNECTING
            client = self._new_client()
            try:
                async with client:
                    for topic in self.subscriptions():
                        await client.subscribe(topic, qos=1)
                    self._client = client
                    self.state = LinkState.UP
                    self.connected.set()
                    backoff.reset()
                    _LOGGER.info("cloud link up: %s", self.config.broker.url)
                    async for message in client.messages:
                        # What has arrived meanwhile is handled with it: its events are
                        # stored in one statement and one commit (acknowledged after).
                        batch = [message]
                        while len(batch) < INGEST_BATCH and len(client.messages):
                            batch.append(await anext(client.messages))
                        self.take_all([(m.topic.value, _raw(m)) for m in batch])
                        if self._store_down:
                            self._store_down = False
                            _LOGGER.info("cloud link: the store is back; taking in again")
                        for m in batch:
                            if m.qos > 0:
                                client._client.ack(m.mid, m.qos)
            except aiomqtt.MqttError as exc:
                _LOGGER.info("cloud link down: %s", exc)
            except StoreUnavailable as exc:
                # Nothing of the lot was acknowledged: the broker keeps it in this worker's
                # session and hands it over again once the link is back.
                if not self._store_down:
                    _LOGGER.warning(
                        "cloud link paused: the store is unavailable (%s); nothing taken in"
                        " is lost, it is taken again when the store is back",
                        exc,
                    )
                self._store_down = True
            finally:
                self._client = None
                self.state = LinkState.DOWN
                self.connected.clear()
            await asyncio.sleep(backoff.next())

    def take_all(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Handle ``(topic, payload)`` messages in order, as ``take`` does, but store their
        events first and together: one statement, one commit. Those after an image's event
        (which has rows of its own to write) are taken one by one."""
        ready: dict[int, dict[str, Any]] = {}
        for n, (topic, raw) in enumerate(messages):
            parts = topic.split("/")
            if len(parts) != 3 or parts[0] != "centinela" or parts[2] != "event":
                continue
            if self.config.by_site(parts[1]) is None:
                continue
            try:
                event = _json(raw)
            except ValueError:
                continue  # take() counts it
            if event.get("site") != parts[1] or not isinstance(event.get("seq"), int):
                continue
            if event.get("type") in IMAGE_EVENTS:
                break  # it and what follows one by one: pages see events in their order
            ready[n] = event
        stored: dict[int, bool] = {}
        if ready:
            try:
                new = self.store.store_events(list(ready.values()), announce=True)
                stored = dict(zip(ready, new, strict=True))
            except StoreUnavailable:
                raise
            except Exception:
                _LOGGER.exception("could not store %d events together; one by one", len(ready))
        for n, (topic, raw) in enumerate(messages):
            try:
                if n in stored:
                    self._event(topic.split("/")[1], ready[n], stored[n])
                else:
                    self.take(topic, raw)
            except StoreUnavailable:
                raise  # the whole lot again later, none of it acknowledged
            except Exception:
                self._count("bad_message")
                _LOGGER.exception("could not handle a message on %s", topic)

    def take(self, topic: str, raw: bytes) -> None:
        """Handle one message of the cloud API."""
        parts = topic.split("/")
        if len(parts) < 3 or parts[0] != "centinela" or self.config.by_site(parts[1]) is None:
            self._count("unknown_topic")
            return
        site, rest = parts[1], parts[2:]
        if rest == ["event"]:
            self._event(site, _json(raw))
        elif rest == ["result"]:
            result = _json(raw)
            fut = self._pending.get(str(result.get("id")))
            if fut is not None and not fut.done():
                fut.set_result(result)
        elif len(rest) == 2 and rest[0] != "hub" and rest[1] == "state":
            self._seen(site, rest[0])
            state = _json(raw) if raw else None
            self.store.set_state(site, rest[0], state)
            self.live.publish(site, "state", {"panel": rest[0], "state": state})
        elif len(rest) == 2 and rest[0] != "hub" and rest[1] == "availability":
            self._seen(site, rest[0])
            text = raw.decode(errors="replace")
            if text in ("online", "offline"):
                self.store.set_availability(site, rest[0], text)
                self.live.publish(site, "availability", {"panel": rest[0], "availability": text})
        elif len(rest) == 2 and rest[1] == "telemetry":
            reading = _json(raw)
            self.store.add_telemetry(site, rest[0], reading, announce=True)
            if not self.store.announces:
                self.live.publish(site, "telemetry", reading)
        elif len(rest) == 3 and rest[1] == "photo" and _PHOTO_ID.fullmatch(rest[2]):
            self.store.photo_bytes(site, rest[0], rest[2], raw)
        elif len(rest) == 3 and rest[1] == "audio" and _PHOTO_ID.fullmatch(rest[2]):
            self.audio.take(site, rest[2], raw)
        elif len(rest) == 3 and rest[1] == "clip" and _PHOTO_ID.fullmatch(rest[2]):
            self._clip(site, rest[0], rest[2], raw)

    def _clip(self, site: str, panel: str, clip_id: str, raw: bytes) -> None:
        """A clip's messages, concatenated, are one WebM file; the empty one ends it."""
        key = (site, panel, clip_id)
        if raw:
            parts = self._clips.setdefault(key, bytearray())
            if len(parts) + len(raw) > MAX_CLIP:
                self._clips.pop(key, None)
                self._count("oversized_clip")
                return
            parts.extend(raw)
            while len(self._clips) > 16:  # clips never ended are forgotten, oldest first
                self._clips.pop(next(iter(self._clips)))
            return
        webm = self._clips.pop(key, None)
        if webm:
            self.store.photo_bytes(site, panel, clip_id, bytes(webm))
            self._live(site, "clip", {"panel": panel, "clip": clip_id})

    def _seen(self, site: str, panel: str) -> None:
        self.panels.setdefault(site, panel)

    def _event(self, site: str, event: dict[str, Any], stored: bool | None = None) -> None:
        """One event; ``stored``: whether it was new, when ``take_all`` stored it already
        (and announced it)."""
        if event.get("site") != site or not isinstance(event.get("seq"), int):
            self._count("bad_event")
            return
        panel = str(event.get("panel"))
        self._seen(site, panel)
        # An image's events are announced once their rows below are written too.
        plain = event.get("type") not in IMAGE_EVENTS
        if stored is None:
            stored = self.store.add_event(event, announce=plain)
        if not stored:
            self._count("duplicate_event")
            return
        photo = event.get("photo")
        if event.get("type") == "photo_requested" and isinstance(photo, str):
            self.store.photo_requested(
                site,
                panel,
                photo,
                camera=event.get("zone"),
                user=event.get("user"),
                method=event.get("method"),
                requested=event.get("time"),
                reason=self._attempt_of(site, panel, event)
                or self._take_reason(site, str(event.get("zone"))),
            )
        elif event.get("type") == "photo_ready" and isinstance(photo, str):
            self.store.photo_ready(site, panel, photo, str(event.get("time") or now_iso()))
        clip = event.get("clip")
        if event.get("type") == "clip_requested" and isinstance(clip, str):
            self.store.photo_requested(
                site,
                panel,
                clip,
                camera=event.get("zone"),
                user=event.get("user"),
                method=event.get("method"),
                requested=event.get("time"),
                kind="clip",
            )
        elif event.get("type") == "clip_ready" and isinstance(clip, str):
            self.store.photo_ready(site, panel, clip, str(event.get("time") or now_iso()))
        if not (plain and self.store.announces):  # (else announced with the event's row)
            self._live(site, "event", event)
        for hook in list(self.event_hooks):
            try:
                hook(site, event)
            except Exception:
                _LOGGER.exception("event hook failed")

    def _attempt_of(self, site: str, panel: str, event: Mapping[str, Any]) -> str | None:
        """``panel:seq`` of the rejected attempt a photo the panel took with a tag belongs to:
        the panel photographs a revoked tag in the step that rejects it, so that attempt is
        the tag's latest ``tag_rejected`` before the photo (read from the shared store)."""
        tag = event.get("tag")
        if event.get("method") != "tag" or not isinstance(tag, str):
            return None
        seq = int(event["seq"])
        flt = EventFilter(tag=tag.upper(), type="tag_rejected")
        for row in self.store.events(site, flt, ATTEMPT_LOOKBACK):
            if row["panel"] == panel and int(row["seq"]) < seq:
                return f"{panel}:{row['seq']}"
        return None

    def _take_reason(self, site: str, camera: str) -> str | None:
        return self.store.take_photo_reason(site, camera)


MAX_CLIP = 32 * 1024 * 1024
"""Largest clip kept (30 s of VP8 is a few MiB)."""


def _raw(message: aiomqtt.Message) -> bytes:
    payload = message.payload
    return payload if isinstance(payload, bytes) else str(payload).encode()


def _json(raw: bytes) -> dict[str, Any]:
    value = json.loads(raw)
    if not isinstance(value, Mapping):
        raise ValueError("not a JSON object")
    return dict(value)
