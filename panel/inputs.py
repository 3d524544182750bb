"""Typed inputs to the panel core: what devices report (drivers.reports), timers, commands."""

from __future__ import annotations

from dataclasses import dataclass

from drivers.reports import (
    KEYS,
    ClimateReading,
    DeviceBack,
    DeviceLost,
    KeyPressed,
    Report,
    TagPresented,
    TagRefused,
    TagRemoved,
    TamperDetected,
    ZoneChanged,
)
from protocol.messages import Command

__all__ = [
    "KEYS",
    "ClimateReading",
    "ClipCaptured",
    "ClockSync",
    "DeviceBack",
    "DeviceLost",
    "Input",
    "KeyPressed",
    "ListenEnded",
    "PhotoCaptured",
    "RemoteCommand",
    "Report",
    "StoreNotice",
    "TagPresented",
    "TagRefused",
    "TagRemoved",
    "TamperDetected",
    "TimerFired",
    "ZoneChanged",
]


@dataclass(frozen=True, slots=True)
class TimerFired:
    """A timer the core asked for has expired."""

    timer: str


@dataclass(frozen=True, slots=True)
class RemoteCommand:
    """A command from the hub (app or web)."""

    command: Command


@dataclass(frozen=True, slots=True)
class PhotoCaptured:
    """The camera delivered (or failed to deliver) a requested photo."""

    photo_id: str
    camera: str
    ok: bool
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class ListenEnded:
    """A silent call's stream ended after ``seconds`` of sound (time up, stopped or failed)."""

    listen_id: str
    seconds: float
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class ClipCaptured:
    """A requested clip was encoded and handed to the link (or could not be)."""

    clip_id: str
    camera: str
    ok: bool
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class ClockSync:
    """What the system says of its clock: synchronised (NTP) or not (just booted, no RTC)."""

    synchronised: bool


@dataclass(frozen=True, slots=True)
class StoreNotice:
    """What the process learnt about storage: a fault began or ended, or a store was reset.

    ``kind`` is ``storage_fault``, ``storage_ok`` or ``store_reset``; ``detail`` says why
    (or which side lost its store).
    """

    kind: str
    detail: str | None = None


Input = (
    Report
    | TimerFired
    | RemoteCommand
    | PhotoCaptured
    | ListenEnded
    | ClipCaptured
    | ClockSync
    | StoreNotice
)
