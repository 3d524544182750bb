"""The panel process: drivers -> core -> actions (siren, keypad, timers) -> store -> link.

The only asyncio around the pure core. Every input goes through one queue and
one consumer, so the core sees inputs one at a time, in order; a state change
and its events are committed to the store before any other action is taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
from collections import Counter, deque
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from common.clock import Clock, RealClock, TimerHandle
from common.mqtt import parse_broker_url
from common.supervise import Supervisor
from drivers import registry
from drivers.devices import Cameras, ClimateSensor, Device, Keypad, TagReader, Zones
from drivers.microphone import Microphone
from panel.actions import (
    Beep,
    CancelTimer,
    CaptureClip,
    CapturePhoto,
    Display,
    Emit,
    Reply,
    SetSiren,
    StartListen,
    StartTimer,
    StateChanged,
    StopListen,
)
from panel.config import SiteConfig
from panel.core import Panel, PanelSnapshot
from panel.inputs import (
    ClimateReading,
    ClipCaptured,
    ClockSync,
    Input,
    ListenEnded,
    PhotoCaptured,
    RemoteCommand,
    StoreNotice,
    TimerFired,
)
from panel.journal import STORE_ERRORS, Journal
from panel.link import LinkSettings, PanelLink, media_chunks, photo_chunks
from panel.store import PanelStore
from panel.tagcounters import StoreCounters, site_tags, sun_policy
from protocol.messages import (
    Command,
    Event,
    Heartbeat,
    MediaKind,
    Message,
    StateSnapshot,
    TagCounters,
    Telemetry,
)

_LOGGER = logging.getLogger(__name__)

FLUSH_S = 2.0
"""How long a clean stop waits for the hub to acknowledge what is recorded."""
STORE_RETRY_S = 1.0
"""While the store cannot be written, how often it is tried again without new input."""


class PanelProcess:
    """One panel: its devices, its core, its store and its link to the hub."""

    def __init__(
        self,
        config: SiteConfig,
        *,
        clock: Clock | None = None,
        broker_url: str | None = None,
        store_path: str | Path | None = None,
        link_key: bytes | None = None,
        clock_check: Callable[[], bool | None] | None = None,
    ) -> None:
        self.config = config
        self._clock_check = clock_check  # is the system clock synchronised? (None: unknown)
        self.clock: Clock = clock or RealClock()
        self._broker_url = broker_url
        self._link_key = link_key
        self.store_path = Path(store_path) if store_path else config.store.path
        self.listeners: list[Callable[[], None]] = []
        self.recent_events: deque[Event] = deque(maxlen=50)
        self.handled: Counter[str] = Counter()  # inputs taken in, by kind
        self.climate_reading: ClimateReading | None = None
        # The devices, opened by start(); a process that was never started has none.
        self.keypad: Keypad
        self.nfc: TagReader
        self.zones: Zones
        self.climate: ClimateSensor
        self.camera: Cameras
        self.microphone: Microphone
        self._listens: dict[str, asyncio.Event] = {}  # listen id -> its stop signal
        self.link: PanelLink | None = None
        self._store: PanelStore | None = None
        self.journal: Journal | None = None
        self._core: Panel | None = None
        self._committed: PanelSnapshot | None = None  # the snapshot the store holds
        self._clock_synchronised = True  # what the core was last told of the clock
        self._queue: asyncio.Queue[Input] = asyncio.Queue()
        self._busy = False
        self._fault_reported = False
        self._timers: dict[str, TimerHandle] = {}
        self._supervisor = Supervisor("panel")  # no task may end silently
        self._jobs: set[asyncio.Task[None]] = set()
        self._stack = AsyncExitStack()

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Open the store and the devices, restore the core, connect the link."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        config = self.config
        self._store = PanelStore(self.store_path, max_size=config.store.max_size)
        saved = self._store.load()
        self.journal = Journal(self._store)
        self._core = Panel(config, saved)
        self._committed = saved
        loop = asyncio.get_running_loop()

        def counter_accepted(uid: str, counter: int) -> None:  # from the reader's thread
            loop.call_soon_threadsafe(self._send, TagCounters(((uid, counter),)))

        self.tag_counters = StoreCounters(self._store, counter_accepted)
        if saved is None and self._link_settings() is not None:
            # A new store (first or lost): the hub holds the SUN read counters accepted so far.
            self.tag_counters.await_hub()
        file = config.source
        devices = config.devices
        self.keypad = await self._stack.enter_async_context(
            registry.open_keypad(devices.keypad, file=file)
        )
        self.nfc = await self._stack.enter_async_context(
            registry.open_nfc(devices.nfc, file=file, sun=sun_policy(config, self.tag_counters))
        )
        self.zones = await self._stack.enter_async_context(
            registry.open_zones(devices.zones, config.zones, file=file)
        )
        self.climate = await self._stack.enter_async_context(
            registry.open_climate(
                devices.climate, file=file, clock=lambda: self.clock.now_ms() / 1000
            )
        )
        self.camera = await self._stack.enter_async_context(
            registry.open_camera(
                devices.camera,
                [c.name for c in config.cameras],
                file=file,
                devices={c.name: c.device for c in config.cameras},
                rings={c.name: (c.ring_seconds, c.ring_fps) for c in config.cameras},
            )
        )
        self.microphone = registry.open_microphone(devices.microphone, file=file)
        settings = self._link_settings()
        if settings is not None:
            self.link = PanelLink(
                settings, self.journal, self.clock, self._on_command, self._on_connect,
                on_resume=self._on_resume, on_hub_reset=self._on_hub_reset,
                on_tag_counters=self._on_tag_counters,
            )  # fmt: skip
            self._spawn(self.link.run, "link")
        # Every device stream, for its inputs and its lost/back reports.
        for name in ("keypad", "nfc", "zones", "climate", "camera"):
            self._spawn(functools.partial(self._pump, getattr(self, name)), name)
        self._spawn(self._consume, "core")
        self._spawn(functools.partial(self._every, config.telemetry.interval, self._telemetry),
                    "telemetry")  # fmt: skip
        self._spawn(functools.partial(self._every, config.link.heartbeat, self._heartbeat),
                    "heartbeat")  # fmt: skip
        self._spawn(functools.partial(self._every, STORE_RETRY_S, self._retry_store),
                    "store retry")  # fmt: skip
        self._apply(self._core.start(self.clock.now_ms(), self.clock.mono_ms()))
        self._check_clock()

    async def stop(self) -> None:
        """Stop everything this process started; the store keeps the state."""
        if self.link is not None:
            # A clean stop takes no more input, then delivers what it can (bounded).
            await self._supervisor.stop(keep={"link"})
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FLUSH_S):
                    await self.link.flush()
            await self.link.close()
        await self._supervisor.stop()
        for task in list(self._jobs):
            task.cancel()
        for task in list(self._jobs):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._jobs.clear()
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        await self._stack.aclose()
        if self._store is not None and self.journal is not None and self.journal.dirty:
            self.journal.retry()  # a last chance for what is held in memory
        if self._store is not None:
            self._store.close()
            self._store = None

    async def __aenter__(self) -> PanelProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- what the simulator and the UI look at ------------------------------------------

    def view(self) -> StateSnapshot:
        """The panel's visible state."""
        assert self._core is not None, "panel not started"
        return self._core.view()

    async def submit(self, inp: Input) -> None:
        """Feed an input as if a device had produced it."""
        await self._queue.put(inp)

    def inputs_idle(self) -> bool:
        """Every input handed over is handled and no device command or capture is running."""
        return not (self._busy or not self._queue.empty() or self._jobs)

    def idle(self) -> bool:
        """Every input is taken in and nothing deliverable waits (or the link is down)."""
        return self.inputs_idle() and (self.link is None or self.link.idle())

    # -- inside ------------------------------------------------------------------------

    def _link_settings(self) -> LinkSettings | None:
        config = self.config
        key = self._link_key or config.link.key
        if key is None:
            _LOGGER.warning("no [link] key: the panel runs without a hub link")
            return None
        broker = config.mqtt
        if self._broker_url is not None:
            host, port, tls = parse_broker_url(self._broker_url, file=config.source, key="broker")
            broker = dataclasses.replace(broker, host=host, port=port, tls=tls)
        return LinkSettings(config.site, config.panel_id, broker, key, config.link.previous_key)

    def _spawn(self, factory: Callable[[], Any], name: str) -> None:
        self._supervisor.spawn(name, factory)

    async def _pump(self, device: Device) -> None:
        async for inp in device:
            await self._queue.put(inp)

    async def _consume(self) -> None:
        assert self._core is not None
        while True:
            inp = await self._queue.get()
            self._busy = True
            try:
                self.handled[type(inp).__name__] += 1
                if isinstance(inp, ClimateReading):
                    self.climate_reading = inp
                self._apply(self._core.handle(inp, self.clock.now_ms(), self.clock.mono_ms()))
            except Exception:
                _LOGGER.exception("the core failed on %s", type(inp).__name__)
            finally:
                self._busy = False
            for listener in self.listeners:
                listener()
            # Queue.get does not yield while inputs wait: a flood of key bytes would starve
            # the link (and its events would pile up undelivered).
            await asyncio.sleep(0)

    def _apply(self, actions: list[Any]) -> None:
        assert self._core is not None
        assert self.journal is not None
        events = [a.event for a in actions if isinstance(a, Emit)]
        snapshot = self._core.snapshot()
        if events or snapshot != self._committed:
            # The state change and its events are durable before anything else happens;
            # if the store cannot take them they wait in memory, and the panel still acts.
            if self.journal.commit(snapshot, events):
                self._committed = snapshot
            self._storage_changed()
        self.recent_events.extend(events)
        for action in actions:
            if isinstance(action, SetSiren):
                self._job(self.zones.siren(action.on))
            elif isinstance(action, Display):
                self._job(self.keypad.display(action.text))
            elif isinstance(action, Beep):
                self._job(self.keypad.beep(action.kind))
            elif isinstance(action, StartTimer):
                self._start_timer(action.name, action.at_ms)
            elif isinstance(action, CancelTimer):
                handle = self._timers.pop(action.name, None)
                if handle is not None:
                    handle.cancel()
            elif isinstance(action, Reply):
                if self.link is not None:
                    self.link.send(action.result)
            elif isinstance(action, CapturePhoto):
                self._job(self._capture(action.camera, action.photo_id))
            elif isinstance(action, StartListen):
                self._listens[action.listen_id] = asyncio.Event()
                self._job(self._listen(action.listen_id, action.seconds))
            elif isinstance(action, StopListen):
                stop = self._listens.get(action.listen_id)
                if stop is not None:
                    stop.set()
            elif isinstance(action, CaptureClip):
                self._job(self._clip(action.camera, action.clip_id, action.seconds))
            elif isinstance(action, StateChanged) and self.link is not None:
                self.link.send(action.view)
        if events and self.link is not None:
            self.link.wake()

    @property
    def storage_fault(self) -> str | None:
        """Why the store cannot be written (events wait in memory), or None."""
        return None if self.journal is None else self.journal.fault

    def _storage_changed(self) -> None:
        """Record the start and the end of a storage fault as events (once each)."""
        fault = self.storage_fault
        if (fault is not None) == self._fault_reported:
            return
        self._fault_reported = fault is not None
        if fault is not None:
            self._queue.put_nowait(StoreNotice("storage_fault", fault[:200]))
        else:
            self._queue.put_nowait(StoreNotice("storage_ok"))

    async def _retry_store(self) -> None:
        if self.journal is not None and self.journal.dirty and self.journal.retry():
            assert self._core is not None
            self._committed = self._core.snapshot()  # what was held is the core's latest
            self._storage_changed()
            if self.link is not None:
                self.link.wake()

    def _start_timer(self, name: str, at_ms: int) -> None:
        old = self._timers.pop(name, None)
        if old is not None:
            old.cancel()

        def fire() -> None:
            self._timers.pop(name, None)
            self._queue.put_nowait(TimerFired(name))

        # on the elapsed line: a wall clock corrected meanwhile neither hastens nor delays it
        self._timers[name] = self.clock.call_at_mono(at_ms, fire)

    def _job(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._jobs.add(task)
        task.add_done_callback(self._job_done)

    def _job_done(self, task: asyncio.Task[None]) -> None:
        self._jobs.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _LOGGER.warning("device command failed: %s", task.exception())

    async def _capture(self, camera: str, photo_id: str) -> None:
        try:
            jpeg = await self.camera.capture(camera)
        except Exception as exc:  # a camera fault is reported, not fatal
            await self._queue.put(PhotoCaptured(photo_id, camera, ok=False, detail=str(exc)))
            return
        if self.link is not None:
            for chunk in photo_chunks(photo_id, jpeg):
                self.link.send(chunk)
        await self._queue.put(PhotoCaptured(photo_id, camera, ok=True))

    async def _listen(self, listen_id: str, seconds: int) -> None:
        """Stream the microphone as WebM/Opus until time is up or the customer stops it."""
        from drivers.webm import OpusWebmWriter

        stop = self._listens[listen_id]
        index = 0
        heard = 0.0
        detail: str | None = None

        def send(data: bytes, *, last: bool) -> None:
            nonlocal index
            if self.link is None:
                return
            for chunk in media_chunks(MediaKind.AUDIO, listen_id, data, index, last=last):
                self.link.send_media(chunk)
                index += 1

        try:
            writer = OpusWebmWriter()
        except Exception as exc:
            await self._queue.put(ListenEnded(listen_id, 0.0, detail=str(exc)))
            self._listens.pop(listen_id, None)
            return
        try:
            blocks = self.microphone.blocks()
            try:
                async for block in blocks:
                    send(writer.write(block), last=False)
                    heard = writer.seconds
                    if stop.is_set() or heard >= seconds:
                        break
            finally:
                await blocks.aclose()
        except Exception as exc:  # a microphone fault ends the call; the event says why
            detail = f"microphone: {exc}"[:200]
            _LOGGER.warning("silent call %s: %s", listen_id, detail)
        finally:
            self._listens.pop(listen_id, None)
            send(writer.close(), last=True)
        await self._queue.put(ListenEnded(listen_id, min(heard, float(seconds)), detail=detail))
        _LOGGER.info("silent call %s ended after %.1f s", listen_id, heard)

    async def _clip(self, camera: str, clip_id: str, seconds: int) -> None:
        """Encode the camera's last ``seconds`` as WebM/VP8 and send it in pieces."""
        from drivers.webm import encode_clip

        try:
            frames = self.camera.recent(camera, seconds)
            webm = await asyncio.to_thread(encode_clip, frames)
        except Exception as exc:  # a camera or encoder fault is reported, not fatal
            await self._queue.put(ClipCaptured(clip_id, camera, ok=False, detail=str(exc)))
            return
        if self.link is not None:
            for chunk in media_chunks(MediaKind.CLIP, clip_id, webm, 0, last=True):
                self.link.send_media(chunk)
            await self.link.media_sent(clip_id)
        await self._queue.put(ClipCaptured(clip_id, camera, ok=True))

    def _on_command(self, command: Command) -> None:
        self._queue.put_nowait(RemoteCommand(command))

    def _on_resume(self, last_seq: int) -> None:
        """The hub holds this site's events up to ``last_seq`` from a store of ours now gone.

        A new store renumbers its events after them (once), so the seq the cloud sees keeps
        rising; the loss itself is recorded as a ``store_reset`` event.
        """
        journal, store = self.journal, self._store
        assert journal is not None
        assert store is not None
        if journal.acked_upto or journal.dirty or store.get_meta("store.rebased"):
            _LOGGER.warning("resume after %d ignored: this store is not new", last_seq)
            return
        try:
            store.rebase(last_seq, str(last_seq))
        except STORE_ERRORS as exc:
            _LOGGER.warning("resume after %d not written (%s); the hub asks again", last_seq, exc)
            return
        assert self._core is not None
        # The core numbers on from where the store now stands (its state is unchanged).
        self._core.recorder.record.next_seq += last_seq
        self._committed = store.load()
        journal.rebased(last_seq)
        if self.link is not None:
            self.link.rebased(last_seq)
        _LOGGER.warning("new store: events now follow seq %d of the one lost", last_seq)
        self._queue.put_nowait(StoreNotice("store_reset", "panel"))

    def _on_hub_reset(self) -> None:
        self._queue.put_nowait(StoreNotice("store_reset", "hub"))

    def _on_tag_counters(self, message: TagCounters) -> None:
        """The hub's SUN read counters (our store is new): the higher of ours and its count."""
        try:
            self.tag_counters.take_hub(message.counters)
        except STORE_ERRORS as exc:  # still waiting: the hub sends them again on restart
            _LOGGER.warning("SUN read counters from the hub not written: %s", exc)
            return
        _LOGGER.info("SUN read counters of %d tags taken from the hub", len(message.counters))

    def _send(self, message: Message) -> None:
        if self.link is not None:
            self.link.send(message)

    def _on_connect(self) -> None:
        if self._core is not None and self.link is not None:
            self.link.send(self._core.view())
            if self.config.nfc.sun:
                known = self.tag_counters.known(site_tags(self.config))
                if known:  # the hub keeps them, for a store of ours that may be lost
                    self.link.send(TagCounters(tuple(known)))

    async def _every(self, seconds: float, tick: Callable[[], Any]) -> None:
        while True:
            await self.clock.sleep(seconds)
            try:
                await tick()
            except Exception as exc:
                _LOGGER.warning("periodic task failed: %s", exc)

    async def _telemetry(self) -> None:
        reading = await self.climate.read()
        self.climate_reading = reading
        if self.link is not None:
            self.link.send(Telemetry(self.clock.now_ms(), reading.temperature, reading.humidity))

    def _check_clock(self) -> None:
        """Tell the core when the system's clock becomes (un)synchronised."""
        synchronised = None if self._clock_check is None else self._clock_check()
        if synchronised is not None and synchronised != self._clock_synchronised:
            self._clock_synchronised = synchronised
            self._queue.put_nowait(ClockSync(synchronised))

    async def _heartbeat(self) -> None:
        self._check_clock()
        if self.link is not None and self._core is not None:
            self.link.send(Heartbeat(self.clock.now_ms(), self._core.snapshot().next_seq - 1))
