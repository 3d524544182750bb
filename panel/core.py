"""The panel core: inputs and the time in, actions out; no I/O, no clock, no asyncio.

``Panel`` is the front end: it resolves each input (the keypad grammar of code + A/B/C/D,
tag + A/B/C, ``*`` and ``P``; credentials and their lockout; zone reports; timers; remote
commands) into a ``Request`` for the arming machine (panel.machine), which judges it with
the transition table (panel.transitions) and carries it out (panel.effects). The parts
share one durable record (panel.durable) and one recorder of the call's actions
(panel.recorder).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Final

from panel.actions import (
    DURABLE_TIMERS,
    Action,
    CancelTimer,
    Reply,
    SetSiren,
    StartTimer,
    StateChanged,
    Timer,
    Tone,
)
from panel.codes import MAX_CODE_DIGITS
from panel.config import TAG_RE, SiteConfig, User
from panel.credentials import MAX_LOCKOUT_MS, Credentials
from panel.durable import PanelSnapshot
from panel.inputs import (
    KEYS,
    ClimateReading,
    ClipCaptured,
    ClockSync,
    DeviceBack,
    DeviceLost,
    Input,
    KeyPressed,
    ListenEnded,
    PhotoCaptured,
    RemoteCommand,
    StoreNotice,
    TagPresented,
    TagRefused,
    TagRemoved,
    TamperDetected,
    TimerFired,
    ZoneChanged,
)
from panel.machine import Machine
from panel.recorder import Recorder
from panel.request import Kind, Request
from protocol.messages import Action as CommandAction
from protocol.messages import (
    Command,
    ErrorCode,
    EventType,
    Method,
    Mode,
    Result,
    State,
    StateSnapshot,
)

__all__ = ["MAX_LOCKOUT_MS", "Panel", "PanelSnapshot"]

_LOGGER = logging.getLogger(__name__)

KEYPAD_IDLE_MS: Final = 10_000
TAG_WINDOW_MS: Final = 10_000
MAX_DETAIL: Final = 200

MODE_KEYS: Final[Mapping[str, Mode]] = {"A": Mode.TOTAL, "B": Mode.PARTIAL, "C": Mode.NIGHT}
ACTION_KINDS: Final[Mapping[CommandAction, Kind]] = {
    CommandAction.ARM: Kind.ARM,
    CommandAction.DISARM: Kind.DISARM,
    CommandAction.STATUS: Kind.STATUS,
    CommandAction.PHOTO: Kind.PHOTO,
    CommandAction.SOS: Kind.PANIC,
    CommandAction.UNLOCK: Kind.UNLOCK,
    CommandAction.REVOKE_TAG: Kind.REVOKE_TAG,
    CommandAction.LISTEN: Kind.LISTEN,
    CommandAction.LISTEN_STOP: Kind.LISTEN_STOP,
    CommandAction.CLIP: Kind.CLIP,
}
MAX_SECONDS: Final[Mapping[CommandAction, int]] = {
    CommandAction.LISTEN: 120,
    CommandAction.CLIP: 30,
}
"""Longest silent call and clip (CONTRACT §9)."""
TIMER_KINDS: Final[Mapping[Timer, Kind]] = {
    Timer.EXIT: Kind.EXIT_END,
    Timer.ENTRY: Kind.ENTRY_END,
    Timer.SIREN: Kind.SIREN_END,
}
RESTORED_TIMERS: Final[Mapping[State, Timer]] = {
    State.ARMING: Timer.EXIT,
    State.PENDING: Timer.ENTRY,
    State.TRIGGERED: Timer.SIREN,
}
"""The timer without which a restored state could never be left."""


class Panel:
    """The alarm panel: ``start(now_ms)`` once, then ``handle(input, now_ms) -> actions``.

    Each call takes the wall clock (``now_ms``, epoch ms: event times) and, optionally,
    elapsed time (``mono_ms``, a monotonic clock: timers). Without ``mono_ms`` the wall
    clock stands in for both, as in tests that move one clock.
    """

    def __init__(self, config: SiteConfig, saved: PanelSnapshot | None = None) -> None:
        self._cfg = config
        self._restored = saved is not None
        record = PanelSnapshot() if saved is None else saved.copy()
        record.open_zones = frozenset(z for z in record.open_zones if config.zone(z) is not None)
        # Time each durable timer still had to run; they restart from that at ``start``.
        self._remaining = {k: v for k, v in record.timers.items() if k in DURABLE_TIMERS}
        record.timers = {}  # the recorder keeps the deadlines of the live timers
        self._record = record
        self.recorder = Recorder(record)
        self.credentials = Credentials(config, record, self.recorder)
        self.machine = Machine(config, record, self.recorder, self.credentials)
        self._digits: list[str] = []  # typed digits: memory only, never logged or stored
        self._overflow = False
        self._tag_user: User | None = None
        self._tag_uid: str | None = None

    # -------------------------------------------------------------- the public side

    def start(self, now_ms: int, mono_ms: int | None = None) -> list[Action]:
        """First call: records ``restart`` when restored, restarts timers, shows the state.

        A restored panel resolves fail-secure (docs/events.md, "Restart"): each durable
        timer runs for the time it had left (the time the panel was off is unknown and
        does not count, whatever the clock says now), an entry delay cut short by the
        restart ends in the alarm at once, and an alarm in progress sounds again.
        """
        out = self.recorder
        out.begin(now_ms, now_ms if mono_ms is None else mono_ms)
        if self._restored:
            out.event(EventType.RESTART, Method.SYSTEM, detail=f"state {self._record.state}")
            self._restore_timers()
            if self._record.state is State.PENDING:
                self.machine.dispatch(Request(Kind.ENTRY_END, Method.SYSTEM))
        else:
            self._record.since_ms = now_ms
        self._fire_due(at_deadline=False)
        for name, at_ms in sorted(out.timers.items(), key=lambda item: item[1]):
            out.actions.append(StartTimer(name, at_ms))
        out.actions.append(SetSiren(self._record.siren))
        out.say(self.status_text())
        out.actions.append(StateChanged(self.view()))
        return out.finish()

    def handle(self, inp: Input, now_ms: int, mono_ms: int | None = None) -> list[Action]:
        """Take one input at ``now_ms`` (epoch ms) and ``mono_ms`` (elapsed time, ms).

        Timers already due on the elapsed line fire first; a wall clock moved forward or
        back does not make any fall due.
        """
        self.recorder.begin(now_ms, now_ms if mono_ms is None else mono_ms)
        self.machine.reply = None
        before = self.view()
        self._fire_due()
        self._take(inp)
        self._fire_due()
        if self.machine.reply is not None:
            result = Result(self.machine.reply.id, True, state=self._record.state)
            self.recorder.actions.append(Reply(result))
        after = self.view()
        if after != before:
            self.recorder.actions.append(StateChanged(after))
        return self.recorder.finish()

    def snapshot(self) -> PanelSnapshot:
        """Everything durable, to commit with the events of the last call.

        Timers are given as the time they still have to run after the last call.
        """
        out = self.recorder
        timers = {k: max(0, at - out.mono) for k, at in out.timers.items() if k in DURABLE_TIMERS}
        return dataclasses.replace(self._record, timers=timers)

    def view(self) -> StateSnapshot:
        """The visible state."""
        return self.machine.view()

    def status_text(self) -> str:
        """What the keypad display shows when nobody is typing."""
        return self.machine.status_text()

    @property
    def timers(self) -> Mapping[str, int]:
        """Timers pending now (durable and keypad ones), name -> deadline in monotonic ms."""
        return dict(self.recorder.timers)

    @property
    def locked(self) -> bool:
        """Whether the keypad and tag reader are locked out."""
        return self.credentials.locked

    # -------------------------------------------------------------- inputs

    def _take(self, inp: Input) -> None:
        match inp:
            case KeyPressed():
                self._on_key(inp)
            case TagPresented():
                self._on_tag(inp)
            case TagRefused():
                self._on_tag_refused(inp)
            case ZoneChanged():
                self._on_zone(inp)
            case TamperDetected():
                self.machine.dispatch(Request(Kind.TAMPER, Method.SYSTEM, zone=inp.source))
            case DeviceLost():
                # A driver's reason can be a long exception text; events stay small.
                reason = inp.reason[:MAX_DETAIL]
                req = Request(Kind.DEVICE_LOST, Method.SYSTEM, zone=inp.device, detail=reason)
                self.machine.dispatch(req)
            case DeviceBack():
                self.machine.dispatch(Request(Kind.DEVICE_BACK, Method.SYSTEM, zone=inp.device))
            case TimerFired():
                self._on_timer_fired(inp)
            case RemoteCommand():
                self._on_command(inp.command)
            case PhotoCaptured():
                self._on_photo(inp)
            case ListenEnded():
                req = Request(
                    Kind.LISTEN_DONE,
                    Method.SYSTEM,
                    photo_id=inp.listen_id,
                    seconds=inp.seconds,
                    detail=None if inp.detail is None else inp.detail[:MAX_DETAIL],
                )
                self.machine.dispatch(req)
            case ClipCaptured():
                self._on_clip(inp)
            case ClockSync():
                self.recorder.synchronised = inp.synchronised
            case StoreNotice():
                # Recorded like any event: while the store fails it waits in memory too.
                self.recorder.event(EventType(inp.kind), Method.SYSTEM, detail=inp.detail)
            case TagRemoved() | ClimateReading():
                pass  # nothing to do (the process publishes climate readings itself)
            case _:
                _LOGGER.warning("ignoring an input of unknown type %s", type(inp).__name__)

    # -------------------------------------------------------------- timers

    def _fire_due(self, *, at_deadline: bool = True) -> None:
        out = self.recorder
        for _ in range(100):  # bounded: alarms and lockouts last at least a second
            due = [(at_ms, name) for name, at_ms in out.timers.items() if at_ms <= out.mono]
            if not due:
                return
            at_ms, name = min(due)
            del out.timers[name]
            out.actions.append(CancelTimer(name))  # the process's own timer is now stale
            # A timer fires at its deadline: its events carry that time, not the input's
            # (the wall clock then, as far as elapsed time tells).
            now, mono = out.now, out.mono
            if at_deadline:
                out.now, out.mono = now - (mono - at_ms), at_ms
            try:
                self._on_timer(Timer(name))
            finally:
                out.now, out.mono = now, mono
        _LOGGER.error("timers keep falling due at %d; the rest wait for the next input", out.now)

    def _restore_timers(self) -> None:
        """Restart each stored timer for the time it had left, at most its full length."""
        rec = self._record
        full = {name: self._full_ms(name) for name in DURABLE_TIMERS}
        remaining = {Timer(k): min(v, full[Timer(k)]) for k, v in self._remaining.items()}
        # A restored state must have its timer, or it could never leave that state.
        needed = RESTORED_TIMERS.get(rec.state)
        if needed is not None and needed not in remaining:
            _LOGGER.warning("restored %s without its %s timer; restarting it", rec.state, needed)
            remaining[needed] = full[needed]
        if rec.locked_until_ms is None:
            remaining.pop(Timer.LOCKOUT, None)
        elif Timer.LOCKOUT not in remaining:
            remaining[Timer.LOCKOUT] = full[Timer.LOCKOUT]
        mono = self.recorder.mono
        self.recorder.timers = {name: mono + ms for name, ms in remaining.items()}
        if rec.locked_until_ms is not None:  # shown as a wall-clock time
            rec.locked_until_ms = self.recorder.now + remaining[Timer.LOCKOUT]

    def _full_ms(self, name: Timer) -> int:
        if name is Timer.LOCKOUT:
            return self.credentials.lockout_ms(max(1, self._record.lockout_level))
        return self.machine.delay_ms(name)

    def _on_timer_fired(self, inp: TimerFired) -> None:
        # Timers due by ``now`` have fired already; a name no longer pending is stale.
        if inp.timer not in self.recorder.timers:
            _LOGGER.debug("stale timer %s ignored", inp.timer)
            return
        del self.recorder.timers[inp.timer]
        self._on_timer(Timer(inp.timer))

    def _on_timer(self, name: Timer) -> None:
        match name:
            case Timer.EXIT | Timer.ENTRY | Timer.SIREN:
                self.machine.dispatch(Request(TIMER_KINDS[name], Method.SYSTEM))
            case Timer.LOCKOUT:
                self.credentials.unlock(Method.SYSTEM, None)
                self.recorder.say(self.status_text())
            case Timer.KEYPAD_IDLE:
                self._clear_digits()
                self.recorder.say(self.status_text())
            case Timer.TAG_WINDOW:
                self._tag_user = self._tag_uid = None
                self.recorder.say(self.status_text())

    # -------------------------------------------------------------- keypad

    def _on_key(self, inp: KeyPressed) -> None:
        key = inp.key
        out = self.recorder
        if key not in KEYS:
            _LOGGER.warning("unknown key %r from %s ignored", key, inp.device)
            return
        if key == "P":  # panic works even while the keypad is locked out
            self._clear_digits()
            self.machine.dispatch(Request(Kind.PANIC, Method.KEYPAD, zone=inp.device))
            return
        if self.locked:
            out.say("LOCKED", Tone.ERROR)
            return
        if key.isdigit():
            self._forget_tag()
            if len(self._digits) < MAX_CODE_DIGITS:
                self._digits.append(key)
            else:
                self._overflow = True
            out.start_timer(Timer.KEYPAD_IDLE, KEYPAD_IDLE_MS)
            out.say("*" * len(self._digits), Tone.KEY)
        elif key == "*":
            self._clear_digits()
            self._forget_tag()
            out.say(self.status_text(), Tone.KEY)
        elif key == "#":  # reserved: neither clears nor submits
            out.beep(Tone.ERROR)
        else:
            self._command_key(key)

    def _command_key(self, key: str) -> None:
        """A/B/C/D: submit the digits typed, or act with the tag tapped just before."""
        kind = Kind.DISARM if key == "D" else Kind.ARM
        mode = MODE_KEYS.get(key)
        if self._digits or self._overflow:
            code = "".join(self._digits)
            overflow = self._overflow
            self._clear_digits()
            found = None if overflow else self.credentials.code_user(code)
            if found is None:
                self._failed_attempt(EventType.CODE_REJECTED, Method.KEYPAD, None, "wrong code")
                return
            user, duress = found
            if duress:  # silent: nothing on the keypad tells it apart
                self.recorder.event(EventType.DURESS, Method.KEYPAD, user=user.name)
            self._act(Request(kind, Method.KEYPAD, user=user, mode=mode))
        elif self._tag_user is not None:
            user, uid = self._tag_user, self._tag_uid
            self._forget_tag()
            self._act(Request(kind, Method.TAG, user=user, mode=mode, tag=uid))
        else:
            self.recorder.say("CODE OR TAG FIRST", Tone.ERROR)

    def _act(self, req: Request) -> None:
        """A request by a person at the panel; only one carried out clears the wrong attempts.

        A valid code or tag whose action is refused (a role that may not, a state where it
        means nothing, open zones) neither counts as wrong nor clears the counter, so typing
        one's own code between guesses cannot side-step the lockout.
        """
        if self.machine.request(req):
            self.credentials.succeeded()

    def _clear_digits(self) -> None:
        self._digits.clear()
        self._overflow = False
        self.recorder.cancel_timer(Timer.KEYPAD_IDLE)

    def _forget_tag(self) -> None:
        self._tag_user = self._tag_uid = None
        self.recorder.cancel_timer(Timer.TAG_WINDOW)

    def _failed_attempt(
        self, event_type: EventType, method: Method, tag: str | None, reason: str
    ) -> None:
        if self.credentials.failed_attempt(event_type, method, tag, reason):
            self._clear_digits()
            self._forget_tag()

    # -------------------------------------------------------------- tags

    def _on_tag_refused(self, inp: TagRefused) -> None:
        # The reader refused the tag (a SUN message that does not verify, a replay, …).
        if self.locked:
            self.recorder.say("LOCKED", Tone.ERROR)
            return
        reason = inp.reason[:MAX_DETAIL]
        self._failed_attempt(EventType.TAG_REJECTED, Method.TAG, inp.uid.upper(), reason)

    def _on_tag(self, inp: TagPresented) -> None:
        if self.locked:
            self.recorder.say("LOCKED", Tone.ERROR)
            return
        uid = inp.uid.upper()
        user = self.credentials.tag_user(uid)
        if isinstance(user, str):
            self._failed_attempt(EventType.TAG_REJECTED, Method.TAG, uid, user)
            if uid in self._record.revoked_tags:
                self._photograph_tag(uid)
            return
        self._clear_digits()  # a tap alone clears nothing: only the action it leads to
        if self._record.state is State.DISARMED:
            self._tag_user, self._tag_uid = user, uid
            self.recorder.start_timer(Timer.TAG_WINDOW, TAG_WINDOW_MS)
            self.recorder.say(f"{user.name.upper()}: A B C TO ARM", Tone.OK)
        else:
            self._forget_tag()
            self._act(Request(Kind.DISARM, Method.TAG, user=user, tag=uid))

    def _photograph_tag(self, uid: str) -> None:
        """A revoked (reported stolen) tag at the reader: a photo from every camera, now.

        Each ``photo_requested`` (and later ``photo_ready``) carries method ``tag`` and the
        tag's UID, right after the ``tag_rejected`` of the attempt they belong to.
        """
        for camera in self._cfg.cameras:
            self.machine.dispatch(Request(Kind.PHOTO, Method.TAG, camera=camera.name, tag=uid))

    # -------------------------------------------------------------- zones, photos

    def _on_zone(self, inp: ZoneChanged) -> None:
        rec = self._record
        if self._cfg.zone(inp.zone) is None:
            _LOGGER.warning("report from unknown zone %r ignored", inp.zone)
            return
        if not inp.open:
            rec.open_zones -= {inp.zone}
            return
        if inp.zone in rec.open_zones:
            return  # only a change counts
        rec.open_zones |= {inp.zone}
        req = self.machine.zone_request(inp.zone)
        if req is not None:
            self.machine.dispatch(req)

    def _on_photo(self, inp: PhotoCaptured) -> None:
        photos = self.machine.photos
        if inp.photo_id not in photos:
            _LOGGER.warning(
                "photo %s was not requested (or before a restart); ignored", inp.photo_id
            )
            return
        if not inp.ok:
            photos.pop(inp.photo_id)
            _LOGGER.warning("photo %s from %s failed: %s", inp.photo_id, inp.camera, inp.detail)
            return
        req = Request(Kind.PHOTO_DONE, Method.SYSTEM, camera=inp.camera, photo_id=inp.photo_id)
        self.machine.dispatch(req)

    def _on_clip(self, inp: ClipCaptured) -> None:
        if inp.clip_id not in self.machine.clips:
            _LOGGER.warning("clip %s was not requested (or before a restart); ignored", inp.clip_id)
            return
        if not inp.ok:
            self.machine.clips.pop(inp.clip_id)
            _LOGGER.warning("clip %s from %s failed: %s", inp.clip_id, inp.camera, inp.detail)
            return
        req = Request(Kind.CLIP_DONE, Method.SYSTEM, camera=inp.camera, photo_id=inp.clip_id)
        self.machine.dispatch(req)

    # -------------------------------------------------------------- remote commands

    def _on_command(self, cmd: Command) -> None:
        method = Method(cmd.via.value)
        kind = ACTION_KINDS[cmd.action]
        req = Request(
            kind, method, mode=cmd.mode, camera=cmd.camera, seconds=cmd.seconds, command=cmd
        )
        problem = self._bad_request(cmd)
        if problem is not None:
            self.machine.refuse(req, ErrorCode.BAD_REQUEST, problem)
            return
        if cmd.code is not None:
            self._command_code(req, cmd.code)
            return
        user = self._cfg.user(cmd.user)
        if user is None:
            self.machine.refuse(req, ErrorCode.UNKNOWN_USER, f"no user {cmd.user!r} on this panel")
            return
        tag = (cmd.tag or "").upper() if kind is Kind.REVOKE_TAG else None
        self.machine.request(dataclasses.replace(req, user=user, tag=tag))
        if self._tag_uid is not None and self._tag_uid in self._record.revoked_tags:
            self._forget_tag()  # a pending tag arming by a tag revoked just now

    def _command_code(self, req: Request, code: str) -> None:
        """A code typed elsewhere (Home Assistant): checked exactly like a keypad code."""
        if self.locked:  # ignored while locked out, and not counted
            self.machine.refuse(req, ErrorCode.FORBIDDEN, "the keypad is locked out")
            return
        found = self.credentials.code_user(code)
        if found is None:
            self._failed_attempt(EventType.CODE_REJECTED, req.method, None, "wrong code")
            self.machine.refuse(req, ErrorCode.FORBIDDEN, "wrong code")
            return
        user, duress = found
        if duress:
            self.recorder.event(EventType.DURESS, req.method, user=user.name)
        self._act(dataclasses.replace(req, user=user))

    def _bad_request(self, cmd: Command) -> str | None:
        if cmd.action is CommandAction.ARM and cmd.mode is None:
            return "arm needs a mode (total, partial or night)"
        if cmd.action in (CommandAction.PHOTO, CommandAction.CLIP):
            if not cmd.camera:
                return f"{cmd.action} needs a camera"
            if self._cfg.camera(cmd.camera) is None:
                return f"no camera {cmd.camera!r} on this panel"
        longest = MAX_SECONDS.get(cmd.action)
        if longest is not None and not (cmd.seconds is not None and 1 <= cmd.seconds <= longest):
            return f"{cmd.action} needs seconds from 1 to {longest}"
        if cmd.action is CommandAction.REVOKE_TAG and not (cmd.tag and TAG_RE.fullmatch(cmd.tag)):
            return "revoke_tag needs a tag UID in hex (4 to 10 bytes)"
        return None
