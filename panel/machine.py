"""The arming machine: the transition table of panel.transitions at work on the durable record.

It takes a ``Request`` (already resolved by the keypad front end, panel.core), checks the
role, looks up the row for (state, kind), checks the row's guard, moves to the row's next
state and runs the row's effect (panel.effects). It owns the arming part of the durable
record (state, mode, siren, alarm, open zones); the credentials own the lockout part.
"""

from __future__ import annotations

import logging

from panel import eventcodes
from panel.actions import Reply, SetSiren, Timer, Tone
from panel.config import SiteConfig, ZoneKind
from panel.credentials import Credentials
from panel.durable import PanelSnapshot
from panel.recorder import Recorder
from panel.request import Kind, Request
from panel.transitions import Goto, Guard, allowed, lookup
from protocol.messages import (
    ARMED_STATE,
    Command,
    ErrorCode,
    EventType,
    Method,
    Result,
    State,
    StateSnapshot,
)

__all__ = ["LOCAL", "Machine", "PanelSnapshot", "Request"]

_LOGGER = logging.getLogger(__name__)

LOCAL = frozenset({Method.KEYPAD, Method.TAG})
"""Methods of a person at the panel: refusals are shown on the keypad."""


class Machine:
    """States, the table and its effects; events and timers go to the shared recorder."""

    def __init__(
        self,
        config: SiteConfig,
        record: PanelSnapshot,
        recorder: Recorder,
        credentials: Credentials,
    ) -> None:
        self.cfg = config
        self.record = record
        self.out = recorder
        self.credentials = credentials
        self.photos: dict[str, Request] = {}  # photo id -> the request that asked for it
        self.clips: dict[str, Request] = {}  # clip id -> the request that asked for it
        self.listening: Request | None = None  # the silent call in progress (its id in photo_id)
        self.reply: Command | None = None  # an accepted command, answered at the end of a call

    @property
    def state(self) -> State:
        """The current state."""
        return self.record.state

    # -------------------------------------------------------------- the table

    def request(self, req: Request) -> bool:
        """A request on behalf of a user: the role is checked, then the table decides.

        Returns whether it was carried out.
        """
        assert req.user is not None
        if allowed(req.user.role, req.kind):
            return self.dispatch(req)
        detail = f"{req.user.role} may not {req.kind}"
        if req.method in LOCAL:
            rejected = (
                EventType.TAG_REJECTED if req.method is Method.TAG else EventType.CODE_REJECTED
            )
            self.out.event(rejected, req.method, user=req.user.name, tag=req.tag, detail=detail)
        self.refuse(req, ErrorCode.FORBIDDEN, detail)
        return False

    def dispatch(self, req: Request) -> bool:
        """Carry out the row for (state, ``req.kind``); False when refused (no row, guard)."""
        prev = self.record.state
        row = lookup(prev, req.kind)
        if row is None:
            self.refuse(req, ErrorCode.INVALID_STATE, f"not possible while {prev}")
            return False
        if row.guard is not None and not self._guard_holds(row.guard, req):
            return False
        target = self._target(row.target, prev)
        if target != prev:
            self.record.state = target
            self.record.since_ms = self.out.now
        row.effect(self, req, prev)
        if req.command is not None:
            self.reply = req.command
        return True

    def _target(self, goto: State | Goto, prev: State) -> State:
        match goto:
            case Goto.SAME:
                return prev
            case Goto.ARMED:
                assert self.record.mode is not None
                return ARMED_STATE[self.record.mode]
            case Goto.AFTER_ALARM:
                mode = self.record.mode
                return State.DISARMED if mode is None else ARMED_STATE[mode]
            case State():
                return goto

    def _guard_holds(self, guard: Guard, req: Request) -> bool:
        match guard:
            case Guard.LOCKED:
                if not self.credentials.locked:
                    self.refuse(req, ErrorCode.INVALID_STATE, "the keypad is not locked")
                    return False
                return True
            case Guard.ZONES_CLOSED:
                return self._zones_closed(req)
            case Guard.NOT_LISTENING:
                if self.listening is not None:
                    self.refuse(req, ErrorCode.INVALID_STATE, "a silent call is in progress")
                    return False
                return True
            case Guard.LISTENING:
                if self.listening is None:
                    self.refuse(req, ErrorCode.INVALID_STATE, "no silent call is in progress")
                    return False
                return True

    def _zones_closed(self, req: Request) -> bool:
        mode = req.mode
        assert mode is not None
        blocking = [
            z.name
            for z in self.cfg.zones
            if z.name in self.record.open_zones
            and not z.always_active
            and z.kind is not ZoneKind.ENTRY
            and mode in z.modes
        ]
        if not blocking:
            return True
        self.out.event(
            EventType.ARM_REFUSED,
            req.method,
            mode=mode,
            user=req.user.name if req.user else None,
            zone=blocking[0],
            detail="open: " + ", ".join(blocking),
        )
        self.refuse(req, ErrorCode.INVALID_STATE, "open zones: " + ", ".join(blocking))
        return False

    def refuse(self, req: Request, error: ErrorCode, detail: str) -> None:
        """Answer a refused request: a result to a command, an error beep to a person."""
        _LOGGER.debug("refused %s (%s) while %s: %s", req.kind, req.method, self.state, detail)
        if req.command is not None:
            result = Result(req.command.id, False, state=self.state, error=error, detail=detail)
            self.out.actions.append(Reply(result))
        elif req.method in LOCAL:
            self.out.say(detail.upper(), Tone.ERROR)

    def zone_request(self, name: str) -> Request | None:
        """What the opening of zone ``name`` asks for in the current mode (None: nothing)."""
        zone = self.cfg.zone(name)
        if zone is None:
            return None
        match zone.kind:
            case ZoneKind.PANIC:
                kind = Kind.PANIC
            case ZoneKind.FIRE:
                kind = Kind.FIRE
            case ZoneKind.TAMPER:
                kind = Kind.TAMPER
            case _ if self.record.mode is None or self.record.mode not in zone.modes:
                return None
            case ZoneKind.ENTRY:
                kind = Kind.ENTRY_ZONE
            case _:
                kind = Kind.INSTANT_ZONE
        return Request(kind, Method.SYSTEM, zone=name, zone_kind=zone.kind)

    # -------------------------------------------------------------- for the effects

    def delay_ms(self, name: Timer) -> int:
        """The exit, entry or siren time of the current mode, in ms."""
        timing = self.cfg.timing_for(self.record.mode)
        seconds = {
            Timer.EXIT: timing.exit_delay,
            Timer.ENTRY: timing.entry_delay,
            Timer.SIREN: timing.alarm_duration,
        }[name]
        return round(seconds * 1000)

    def set_siren(self, on: bool) -> None:
        """Switch the siren (an action only when it changes)."""
        if self.record.siren != on:
            self.record.siren = on
            self.out.actions.append(SetSiren(on))

    @property
    def alarm(self) -> eventcodes.Codes | None:
        """The codes of the alarm in progress, for its end event."""
        cid, sia = self.record.alarm_cid, self.record.alarm_sia
        return eventcodes.Codes(cid, sia) if cid and sia else None

    @alarm.setter
    def alarm(self, codes: eventcodes.Codes | None) -> None:
        self.record.alarm_cid = None if codes is None else codes.cid
        self.record.alarm_sia = None if codes is None else codes.sia

    def clear_alarm(self) -> None:
        """Forget the alarm in progress, its zones and the entry zone."""
        self.alarm = None
        self.record.alarm_zones = frozenset()
        self.record.entry_zone = None

    # -------------------------------------------------------------- looking

    def status_text(self) -> str:
        """What the keypad display shows when nobody is typing."""
        rec = self.record
        text = rec.state.value.upper()
        if rec.state is State.ARMING and rec.mode is not None:
            text = f"ARMING {rec.mode.value.upper()}"
        text = text.replace("_", " ")
        return f"{text} - LOCKED" if self.credentials.locked else text

    def view(self) -> StateSnapshot:
        """The visible state."""
        rec = self.record
        return StateSnapshot(
            state=rec.state,
            since_ms=rec.since_ms,
            siren=rec.siren,
            open_zones=tuple(z.name for z in self.cfg.zones if z.name in rec.open_zones),
            locked=self.credentials.locked,
            locked_until_ms=rec.locked_until_ms,
            mode=rec.mode,
        )
