"""What the panel core asks its process to do: plain frozen values, performed outside the core."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocol.messages import Event, Result, StateSnapshot


class Tone(enum.StrEnum):
    """Keypad beeps."""

    KEY = "key"  # a key was taken
    OK = "ok"  # an action was accepted
    ERROR = "error"  # refused, wrong code, locked


class Timer(enum.StrEnum):
    """Names of the timers the core asks for."""

    EXIT = "exit"  # end of the exit delay
    ENTRY = "entry"  # end of the entry delay
    SIREN = "siren"  # end of the alarm duration
    LOCKOUT = "lockout"  # end of a keypad/reader lockout
    KEYPAD_IDLE = "keypad_idle"  # 10 s without a key: the digits typed are cleared
    TAG_WINDOW = "tag_window"  # 10 s after a tag tap: a mode key arms with the tag's user


DURABLE_TIMERS = frozenset({Timer.EXIT, Timer.ENTRY, Timer.SIREN, Timer.LOCKOUT})
"""Timers kept across a restart; the keypad ones are forgotten with the digits typed."""


@dataclass(frozen=True, slots=True)
class SetSiren:
    """Switch the siren on or off."""

    on: bool


@dataclass(frozen=True, slots=True)
class Display:
    """Show a short text on the keypad display."""

    text: str


@dataclass(frozen=True, slots=True)
class Beep:
    """Sound a keypad tone."""

    kind: Tone


@dataclass(frozen=True, slots=True)
class StartTimer:
    """Feed ``TimerFired(name)`` at ``at_ms`` (monotonic ms, the ``mono_ms`` line given to
    the core); replaces a timer of the same name."""

    name: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class CancelTimer:
    """Forget the timer ``name`` if it is scheduled."""

    name: str


@dataclass(frozen=True, slots=True)
class Emit:
    """Record and deliver an event (its seq is already assigned)."""

    event: Event


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer a remote command."""

    result: Result


@dataclass(frozen=True, slots=True)
class CapturePhoto:
    """Take a photo with ``camera``; feed ``PhotoCaptured(photo_id, camera, ...)`` when done."""

    camera: str
    photo_id: str


@dataclass(frozen=True, slots=True)
class StartListen:
    """Stream the microphone as ``listen_id`` for up to ``seconds``, silently; feed
    ``ListenEnded`` when it ends."""

    listen_id: str
    seconds: int


@dataclass(frozen=True, slots=True)
class StopListen:
    """End the stream ``listen_id`` early."""

    listen_id: str


@dataclass(frozen=True, slots=True)
class CaptureClip:
    """Encode the last ``seconds`` of ``camera``'s recording as ``clip_id`` and send it; feed
    ``ClipCaptured`` when it is on its way."""

    camera: str
    clip_id: str
    seconds: int


@dataclass(frozen=True, slots=True)
class StateChanged:
    """The visible state changed (publish it, retained)."""

    view: StateSnapshot


Action = (
    SetSiren
    | Display
    | Beep
    | StartTimer
    | CancelTimer
    | Emit
    | Reply
    | CapturePhoto
    | StartListen
    | StopListen
    | CaptureClip
    | StateChanged
)
