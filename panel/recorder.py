"""What one call of the core produces, in order: events, timers, siren and keypad feedback.

The machine, the credentials and the keypad front end share one ``Recorder``: it holds
the time of the call, numbers every event with the next ``seq`` of the durable record,
keeps the pending timers (name -> deadline on the elapsed, monotonic time line, which a
wall-clock correction does not move) and collects the actions that
the call returns to the process.
"""

from __future__ import annotations

import enum

from panel import eventcodes
from panel.actions import (
    Action,
    Beep,
    CancelTimer,
    Display,
    Emit,
    StartTimer,
    Timer,
    Tone,
)
from panel.durable import PanelSnapshot
from protocol.messages import Event, EventType, Method, Mode


class Current(enum.Enum):
    """Marks an event field that takes the panel's current value."""

    MODE = "mode"


class Recorder:
    """Events, timers and feedback of the call in progress (``begin`` ... ``finish``)."""

    def __init__(self, record: PanelSnapshot) -> None:
        self.record = record
        self.now = 0  # the time of the call, or of the timer firing within it (epoch ms)
        self.mono = 0  # the same instant on the elapsed (monotonic) line, in ms
        self.timers: dict[str, int] = {}  # pending timers: name -> deadline (monotonic ms)
        self.actions: list[Action] = []
        self.stamped_ms = 0  # the latest time stamped on an event in this boot
        self.synchronised = True  # what the system says of its clock (``ClockSync``)

    def begin(self, now_ms: int, mono_ms: int | None = None) -> None:
        """Start a call at ``now_ms`` (wall clock) and ``mono_ms`` (elapsed time; the wall
        clock when not given)."""
        self.now = now_ms
        self.mono = now_ms if mono_ms is None else mono_ms
        self.actions = []

    def finish(self) -> list[Action]:
        """End the call: the actions it produced, in order."""
        out, self.actions = self.actions, []
        return out

    def event(
        self,
        event_type: EventType,
        method: Method,
        *,
        codes: eventcodes.Codes | None = None,
        mode: Mode | Current | None = Current.MODE,
        user: str | None = None,
        zone: str | None = None,
        tag: str | None = None,
        photo: str | None = None,
        detail: str | None = None,
    ) -> Event:
        """Emit an event with the next seq; its codes are the fixed ones unless given.

        Its time is the time of the call, but never earlier than an event already emitted
        in this boot: a clock set back (by NTP, by hand) does not make time run backwards.
        It is flagged ``clock_unsynced`` while the clock is known to be wrong: behind a time
        already stamped (in this boot or, per the durable record, before a restart), or
        not synchronised by the system's own account.
        """
        if codes is None:
            codes = eventcodes.fixed_codes(event_type)
        unsynced = not self.synchronised or self.now < self.record.clock_ms
        stamp = max(self.now, self.stamped_ms)
        self.stamped_ms = stamp
        self.record.clock_ms = max(self.record.clock_ms, stamp)
        event = Event(
            seq=self.record.next_seq,
            time_ms=stamp,
            type=event_type,
            method=method,
            cid=codes.cid,
            sia=codes.sia,
            mode=self.record.mode if isinstance(mode, Current) else mode,
            user=user,
            zone=zone,
            tag=tag,
            photo=photo,
            detail=detail,
            clock_unsynced=unsynced,
        )
        self.record.next_seq += 1
        self.actions.append(Emit(event))
        return event

    def start_timer(self, name: Timer, delay_ms: int) -> None:
        """Ask for ``TimerFired(name)`` in ``delay_ms`` of elapsed time (replacing one of that
        name): a wall clock set forward or back meanwhile does not end it sooner or later."""
        at_ms = self.mono + max(0, delay_ms)
        self.timers[name] = at_ms
        self.actions.append(StartTimer(name, at_ms))

    def cancel_timer(self, name: Timer) -> None:
        """Forget the timer ``name`` if it is pending."""
        if self.timers.pop(name, None) is not None:
            self.actions.append(CancelTimer(name))

    def say(self, text: str, tone: Tone | None = None) -> None:
        """Show ``text`` on the keypad, after a beep of ``tone`` if given."""
        if tone is not None:
            self.actions.append(Beep(tone))
        self.actions.append(Display(text))

    def beep(self, tone: Tone) -> None:
        """Sound a keypad tone."""
        self.actions.append(Beep(tone))
