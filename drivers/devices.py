"""What the panel needs of each kind of device, as protocols every driver of that kind meets.

A device is an async iterator of reports (its inputs, and DeviceLost/DeviceBack);
some also take commands. The registry's drivers (real or reading a simulated
twin) satisfy these structurally; the panel process holds its devices by them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from drivers.reports import ClimateReading, Report

__all__ = ["Cameras", "ClimateSensor", "Device", "Keypad", "TagReader", "Zones"]


class Device(Protocol):
    """Anything that reports: ``async for report in device``."""

    def __aiter__(self) -> AsyncIterator[Report]: ...


class Keypad(Device, Protocol):
    """Yields KeyPressed; shows text and beeps."""

    async def display(self, text: str) -> None: ...

    async def beep(self, kind: str) -> None: ...


class TagReader(Device, Protocol):
    """Yields TagPresented and TagRemoved."""


class Zones(Device, Protocol):
    """Yields ZoneChanged and TamperDetected; drives the siren."""

    async def siren(self, on: bool) -> None: ...


class ClimateSensor(Device, Protocol):
    """Yields ClimateReading now and then; ``read()`` takes one at once."""

    async def read(self) -> ClimateReading: ...


class Cameras(Device, Protocol):
    """The cameras of a panel: a JPEG from the named camera on request."""

    async def capture(self, camera: str) -> bytes: ...

    def recent(self, camera: str, seconds: float) -> list[tuple[float, bytes]]:
        """The last ``seconds`` of ``camera``'s recording as (time, JPEG), oldest first."""
        ...
