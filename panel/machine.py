"""The panel's state, the transition table at work and the effect of each row.

``panel.core.Panel`` resolves inputs into a ``Request`` of one ``Kind``; here the table
(panel.transitions) decides what it does in the current state. Every event gets the next
``seq`` here, so the process only has to store and send.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from panel import eventcodes
from panel.actions import (
    DURABLE_TIMERS,
    Action,
    Beep,
    CancelTimer,
    Display,
    Emit,
    Reply,
    SetSiren,
    StartTimer,
    Timer,
    Tone,
)
from panel.config import SiteConfig, User, ZoneKind
from panel.transitions import Effect, Goto, Guard, Kind, allowed, lookup
from protocol.messages import (
    ARMED_STATE,
    Command,
    ErrorCode,
    Event,
    EventType,
    Method,
    Mode,
    Result,
    State,
    StateSnapshot,
)

_LOGGER = logging.getLogger(__name__)

LOCAL = frozenset({Method.KEYPAD, Method.TAG})
ALARM_EVENTS: Mapping[Kind, EventType] = {
    Kind.PANIC: EventType.PANIC,
    Kind.FIRE: EventType.FIRE,
    Kind.TAMPER: EventType.TAMPER,
}


@dataclass(frozen=True, slots=True)
class PanelSnapshot:
    """Everything the panel keeps across a restart; nothing derived from a code."""

    state: State = State.DISARMED
    mode: Mode | None = None  # mode armed (when triggered: the mode to re-arm in)
    since_ms: int = 0
    armed_by: str | None = None
    armed_method: Method | None = None
    armed_tag: str | None = None
    timers: Mapping[str, int] = field(default_factory=dict)  # durable timer -> deadline (ms)
    siren: bool = False
    alarm_cid: str | None = None  # codes of the alarm in progress, for its end event
    alarm_sia: str | None = None
    alarm_zones: frozenset[str] = frozenset()
    entry_zone: str | None = None
    failed_attempts: int = 0
    locked_until_ms: int | None = None
    lockout_level: int = 0  # lockouts since the last valid code; each one doubles
    revoked_tags: frozenset[str] = frozenset()
    next_seq: int = 1
    open_zones: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Request:
    """One resolved input on its way through the transition table."""

    kind: Kind
    method: Method
    user: User | None = None
    mode: Mode | None = None
    zone: str | None = None
    zone_kind: ZoneKind | None = None
    tag: str | None = None
    camera: str | None = None
    photo_id: str | None = None
    detail: str | None = None
    command: Command | None = None


class Machine:
    """The panel's state and the transition table; ``panel.core.Panel`` feeds it."""

    def __init__(self, config: SiteConfig, saved: PanelSnapshot | None = None) -> None:
        self._cfg = config
        s = saved if saved is not None else PanelSnapshot()
        self._restored = saved is not None
        self._state = s.state
        self._mode = s.mode
        self._since = s.since_ms
        self._armed_by = s.armed_by
        self._armed_method = s.armed_method
        self._armed_tag = s.armed_tag
        self._timers: dict[str, int] = {k: v for k, v in s.timers.items() if k in DURABLE_TIMERS}
        self._siren = s.siren
        self._alarm = (
            eventcodes.Codes(s.alarm_cid, s.alarm_sia) if s.alarm_cid and s.alarm_sia else None
        )
        self._alarm_zones = set(s.alarm_zones)
        self._entry_zone = s.entry_zone
        self._failed = s.failed_attempts
        self._locked_until = s.locked_until_ms
        self._level = s.lockout_level
        self._revoked = set(s.revoked_tags)
        self._seq = s.next_seq
        self._open = {z for z in s.open_zones if config.zone(z) is not None}
        self._photos: dict[str, Request] = {}
        self._now = 0
        self._out: list[Action] = []
        self._reply: Command | None = None
        self._effects: dict[Effect, Callable[[Request, State], None]] = {}

    def snapshot(self) -> PanelSnapshot:
        """Everything durable, to commit with the events of the last call."""
        return PanelSnapshot(
            state=self._state,
            mode=self._mode,
            since_ms=self._since,
            armed_by=self._armed_by,
            armed_method=self._armed_method,
            armed_tag=self._armed_tag,
            timers={k: v for k, v in self._timers.items() if k in DURABLE_TIMERS},
            siren=self._siren,
            alarm_cid=None if self._alarm is None else self._alarm.cid,
            alarm_sia=None if self._alarm is None else self._alarm.sia,
            alarm_zones=frozenset(self._alarm_zones),
            entry_zone=self._entry_zone,
            failed_attempts=self._failed,
            locked_until_ms=self._locked_until,
            lockout_level=self._level,
            revoked_tags=frozenset(self._revoked),
            next_seq=self._seq,
            open_zones=frozenset(self._open),
        )

    def view(self) -> StateSnapshot:
        """The visible state."""
        return StateSnapshot(
            state=self._state,
            since_ms=self._since,
            siren=self._siren,
            open_zones=tuple(z.name for z in self._cfg.zones if z.name in self._open),
            locked=self._locked_until is not None,
            locked_until_ms=self._locked_until,
            mode=self._mode,
        )

    @property
    def timers(self) -> Mapping[str, int]:
        """Timers pending now (durable and keypad ones), name -> deadline in epoch ms."""
        return dict(self._timers)

    # -------------------------------------------------------------- plumbing

    def _event(self, event_type: EventType, method: Method, **fields: object) -> Event:
        codes = fields.pop("codes", None)
        if not isinstance(codes, eventcodes.Codes):
            codes = eventcodes.fixed_codes(event_type)
        fields.setdefault("mode", self._mode)
        event = Event(
            seq=self._seq,
            time_ms=self._now,
            type=event_type,
            method=method,
            cid=codes.cid,
            sia=codes.sia,
            **fields,  # type: ignore[arg-type]
        )
        self._seq += 1
        self._out.append(Emit(event))
        return event

    def _start_timer(self, name: Timer, delay_ms: int) -> None:
        at_ms = self._now + max(0, delay_ms)
        self._timers[name] = at_ms
        self._out.append(StartTimer(name, at_ms))

    def _cancel_timer(self, name: Timer) -> None:
        if self._timers.pop(name, None) is not None:
            self._out.append(CancelTimer(name))

    def _set_siren(self, on: bool) -> None:
        if self._siren != on:
            self._siren = on
            self._out.append(SetSiren(on))

    def _delay_ms(self, name: Timer) -> int:
        timing = self._cfg.timing_for(self._mode)
        seconds = {
            Timer.EXIT: timing.exit_delay,
            Timer.ENTRY: timing.entry_delay,
            Timer.SIREN: timing.alarm_duration,
        }[name]
        return round(seconds * 1000)

    def _say(self, text: str, tone: Tone | None = None) -> None:
        if tone is not None:
            self._out.append(Beep(tone))
        self._out.append(Display(text))

    def status_text(self) -> str:
        """What the keypad display shows when nobody is typing."""
        text = self._state.value.upper()
        if self._state is State.ARMING and self._mode is not None:
            text = f"ARMING {self._mode.value.upper()}"
        text = text.replace("_", " ")
        return f"{text} - LOCKED" if self._locked_until is not None else text

    # -------------------------------------------------------------- the table

    def _request(self, req: Request) -> bool:
        """A request on behalf of a user: the role is checked, then the table decides."""
        assert req.user is not None
        if allowed(req.user.role, req.kind):
            return self._dispatch(req)
        detail = f"{req.user.role} may not {req.kind}"
        if req.method in LOCAL:
            rejected = (
                EventType.TAG_REJECTED if req.method is Method.TAG else EventType.CODE_REJECTED
            )
            self._event(rejected, req.method, user=req.user.name, tag=req.tag, detail=detail)
        self._refuse(req, ErrorCode.FORBIDDEN, detail)
        return False

    def _dispatch(self, req: Request) -> bool:
        prev = self._state
        row = lookup(prev, req.kind)
        if row is None:
            self._refuse(req, ErrorCode.INVALID_STATE, f"not possible while {prev}")
            return False
        if row.guard is not None and not self._guard_holds(row.guard, req):
            return False
        if row.target is Goto.SAME:
            target = prev
        elif row.target is Goto.ARMED:
            assert self._mode is not None
            target = ARMED_STATE[self._mode]
        elif row.target is Goto.AFTER_ALARM:
            target = State.DISARMED if self._mode is None else ARMED_STATE[self._mode]
        else:
            target = row.target
        if target != prev:
            self._state = target
            self._since = self._now
        self._effects[row.effect](req, prev)
        if req.command is not None:
            self._reply = req.command
        return True

    def _guard_holds(self, guard: Guard, req: Request) -> bool:
        if guard is Guard.LOCKED:
            if self._locked_until is None:
                self._refuse(req, ErrorCode.INVALID_STATE, "the keypad is not locked")
                return False
            return True
        mode = req.mode
        assert mode is not None
        blocking = [
            z.name
            for z in self._cfg.zones
            if z.name in self._open
            and not z.always_active
            and z.kind is not ZoneKind.ENTRY
            and mode in z.modes
        ]
        if not blocking:
            return True
        self._event(
            EventType.ARM_REFUSED,
            req.method,
            mode=mode,
            user=req.user.name if req.user else None,
            zone=blocking[0],
            detail="open: " + ", ".join(blocking),
        )
        self._refuse(req, ErrorCode.INVALID_STATE, "open zones: " + ", ".join(blocking))
        return False

    def _refuse(self, req: Request, error: ErrorCode, detail: str) -> None:
        _LOGGER.debug("refused %s (%s) while %s: %s", req.kind, req.method, self._state, detail)
        if req.command is not None:
            result = Result(req.command.id, False, state=self._state, error=error, detail=detail)
            self._out.append(Reply(result))
        elif req.method in LOCAL:
            self._say(detail.upper(), Tone.ERROR)

    def _zone_request(self, name: str) -> Request | None:
        """What the opening of zone ``name`` asks for in the current mode (None: nothing)."""
        zone = self._cfg.zone(name)
        if zone is None:
            return None
        if zone.kind is ZoneKind.PANIC:
            return Request(Kind.PANIC, Method.SYSTEM, zone=name, zone_kind=zone.kind)
        if zone.kind is ZoneKind.FIRE:
            return Request(Kind.FIRE, Method.SYSTEM, zone=name, zone_kind=zone.kind)
        if zone.kind is ZoneKind.TAMPER:
            return Request(Kind.TAMPER, Method.SYSTEM, zone=name, zone_kind=zone.kind)
        if self._mode is None or self._mode not in zone.modes:
            return None
        kind = Kind.ENTRY_ZONE if zone.kind is ZoneKind.ENTRY else Kind.INSTANT_ZONE
        return Request(kind, Method.SYSTEM, zone=name, zone_kind=zone.kind)
