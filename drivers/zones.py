"""Zones, tamper switches, siren and strobe on GPIO pins through gpiozero (lgpio on a Pi).

Every input uses the internal pull-up with its contact wired to ground, so a
cut wire reads as an open contact. A normally-closed (NC) zone is open when its
pin reads high; a normally-open (NO) zone when it reads low. Inputs are
debounced in software: a zone is reported only once its pin has kept the same
level for ``debounce`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from drivers.base import Backoff, Driver, reason_of
from drivers.reports import TamperDetected, ZoneChanged

_LOGGER = logging.getLogger(__name__)

PANEL_TAMPER = "panel"
"""Source name of the enclosure tamper switch (``tamper=`` in the gpio: URL)."""


class ZoneSpec(Protocol):
    """What the driver needs of a configured zone (panel.config.Zone has these)."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def pin(self) -> int | None: ...
    @property
    def normally_open(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class GpioOptions:
    """The query of a ``gpio:`` URL."""

    siren: int | None = None
    strobe: int | None = None
    tamper: int | None = None
    active_low: bool = False
    debounce: float = 0.05


class ZonesDriver(Driver):
    """Zone inputs, plus the siren and strobe outputs."""

    def __init__(self, device: str = "zones") -> None:
        super().__init__(device)
        self.siren_on = False
        self.strobe_on = False

    async def siren(self, on: bool) -> None:
        """Switch the siren output."""
        raise NotImplementedError

    async def strobe(self, on: bool) -> None:
        """Switch the strobe output."""
        raise NotImplementedError

    def is_open(self, zone: str) -> bool:
        """The last debounced state of ``zone``."""
        raise NotImplementedError


@dataclass
class _Input:
    name: str
    pin: int
    open_when_high: bool
    tamper: bool  # reports TamperDetected(name) when it opens, nothing when it closes
    device: Any = None
    state: bool = False
    timer: asyncio.TimerHandle | None = None


class GpioZones(ZonesDriver):
    """Zones on GPIO pins; ``pin_factory`` None means gpiozero's default (lgpio on a Pi)."""

    def __init__(
        self,
        zones: Sequence[ZoneSpec],
        options: GpioOptions,
        *,
        tamper_pins: dict[str, int] | None = None,
        pin_factory: Any = None,
        device: str = "zones",
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__(device)
        self.options = options
        self.pin_factory = pin_factory
        self._inputs: dict[str, _Input] = {}
        for zone in zones:
            if zone.pin is None:
                raise ValueError(f"zone {zone.name} has no pin")
            self._inputs[zone.name] = _Input(zone.name, zone.pin, not zone.normally_open, False)
        for name, pin in (tamper_pins or {}).items():
            self._inputs[f"tamper:{name}"] = _Input(name, pin, True, True)
        if options.tamper is not None:
            self._inputs["tamper:" + PANEL_TAMPER] = _Input(
                PANEL_TAMPER, options.tamper, True, True
            )
        self._outputs: dict[str, Any] = {}
        self._backoff = backoff or Backoff(base=1.0, cap=30.0)
        self._retry: asyncio.Task[None] | None = None

    async def _start(self) -> None:
        if self.twin is not None:
            self.twin.start()
        if not self._open():
            self._retry = asyncio.get_running_loop().create_task(
                self._retry_open(), name=f"centinela-{self.device}-retry"
            )

    def _open(self) -> bool:
        from gpiozero import DigitalInputDevice, DigitalOutputDevice
        from gpiozero.exc import GPIOZeroError

        try:
            for key, inp in self._inputs.items():
                inp.device = DigitalInputDevice(inp.pin, pull_up=True, pin_factory=self.pin_factory)
                inp.device.when_activated = self._edge_callback(key)
                inp.device.when_deactivated = self._edge_callback(key)
            for name, pin in (("siren", self.options.siren), ("strobe", self.options.strobe)):
                if pin is not None:
                    self._outputs[name] = DigitalOutputDevice(
                        pin,
                        active_high=not self.options.active_low,
                        initial_value=False,
                        pin_factory=self.pin_factory,
                    )
        except (GPIOZeroError, OSError, RuntimeError, ImportError) as exc:
            self._close_devices()
            self._lost(reason_of(exc))
            return False
        for inp in self._inputs.values():
            inp.state = self._read(inp)
            if inp.state:
                self._report(inp)
        self._back()
        return True

    async def _retry_open(self) -> None:
        attempt = 0
        while self._running:
            await asyncio.sleep(self._backoff.delay(attempt))
            attempt += 1
            if self._open():
                return

    async def _stop(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        self._close_devices()

    def _close_devices(self) -> None:
        for inp in self._inputs.values():
            if inp.timer is not None:
                inp.timer.cancel()
                inp.timer = None
            if inp.device is not None:
                inp.device.close()
                inp.device = None
        for out in self._outputs.values():
            out.off()  # a stopped panel leaves the siren silent
            out.close()
        self._outputs.clear()
        self.siren_on = self.strobe_on = False

    def _edge_callback(self, key: str) -> Any:
        loop = asyncio.get_running_loop()

        def on_edge() -> None:
            # gpiozero calls this from its own thread (lgpio) or the caller's (mock pins).
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._edge, key)

        return on_edge

    def _edge(self, key: str) -> None:
        inp = self._inputs.get(key)
        if inp is None or inp.device is None:
            return
        if inp.timer is not None:
            inp.timer.cancel()
        loop = asyncio.get_running_loop()
        inp.timer = loop.call_later(self.options.debounce, self._settled, key)

    def _settled(self, key: str) -> None:
        inp = self._inputs[key]
        inp.timer = None
        if inp.device is None:
            return
        state = self._read(inp)
        if state != inp.state:
            inp.state = state
            self._report(inp)

    @staticmethod
    def _read(inp: _Input) -> bool:
        high = bool(inp.device.pin.state)
        return high if inp.open_when_high else not high

    def _report(self, inp: _Input) -> None:
        if inp.tamper:
            if inp.state:
                self.stream.put(TamperDetected(inp.name))
        else:
            self.stream.put(ZoneChanged(inp.name, inp.state))

    def is_open(self, zone: str) -> bool:
        """The last debounced state of ``zone``."""
        return self._inputs[zone].state

    def _switch(self, name: str, on: bool) -> bool:
        out = self._outputs.get(name)
        if out is None:
            _LOGGER.debug("no %s output configured", name)
            return False
        if on:
            out.on()
        else:
            out.off()
        return on

    async def siren(self, on: bool) -> None:
        """Drive the siren relay."""
        self.siren_on = self._switch("siren", on)

    async def strobe(self, on: bool) -> None:
        """Drive the strobe relay."""
        self.strobe_on = self._switch("strobe", on)
