"""What devices report: typed values the drivers yield and the panel takes in."""

from __future__ import annotations

from dataclasses import dataclass

KEYS = frozenset("0123456789*#ABCDP")


@dataclass(frozen=True, slots=True)
class KeyPressed:
    """One key from a keypad (one of ``KEYS``)."""

    key: str
    device: str = "keypad"


@dataclass(frozen=True, slots=True)
class TagPresented:
    """An NFC tag came into the reader's field; ``uid`` is upper-case hex."""

    uid: str
    device: str = "nfc"


@dataclass(frozen=True, slots=True)
class TagRemoved:
    """The tag left the reader's field."""

    uid: str
    device: str = "nfc"


@dataclass(frozen=True, slots=True)
class TagRefused:
    """A tag was read but did not prove itself (``[nfc] tags = "sun"``); ``reason`` says why."""

    uid: str
    reason: str
    device: str = "nfc"


@dataclass(frozen=True, slots=True)
class ZoneChanged:
    """A zone opened (faulted) or closed (restored)."""

    zone: str
    open: bool


@dataclass(frozen=True, slots=True)
class TamperDetected:
    """A tamper switch or the enclosure of ``source`` (a zone or device name) was opened."""

    source: str


@dataclass(frozen=True, slots=True)
class ClimateReading:
    """A temperature/humidity reading; None where the sensor could not be read."""

    temperature: float | None
    humidity: float | None
    device: str = "climate"


@dataclass(frozen=True, slots=True)
class DeviceLost:
    """A device stopped answering (unplugged, port closed, reader error)."""

    device: str
    reason: str


@dataclass(frozen=True, slots=True)
class DeviceBack:
    """A lost device answers again."""

    device: str


Report = (
    KeyPressed
    | TagPresented
    | TagRemoved
    | TagRefused
    | ZoneChanged
    | TamperDetected
    | ClimateReading
    | DeviceLost
    | DeviceBack
)
"""Anything a driver yields."""
