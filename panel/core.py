"""The panel core: inputs and the time in, actions out; no I/O, no clock, no asyncio.

Here inputs are resolved: the keypad grammar (code + A/B/C/D, tag + A/B/C, ``*``,
``P``), credentials and their lockout, zone kinds and remote commands become a
``Request`` that the transition table judges (panel.machine, panel.transitions).
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
from collections.abc import Callable, Mapping
from typing import Final

from panel.actions import (
    Action,
    Beep,
    CancelTimer,
    Reply,
    SetSiren,
    StartTimer,
    StateChanged,
    Timer,
    Tone,
)
from panel.codes import CODE_RE, MAX_CODE_DIGITS
from panel.config import TAG_RE, SiteConfig, User
from panel.effects import Effects
from panel.inputs import (
    KEYS,
    ClimateReading,
    DeviceBack,
    DeviceLost,
    Input,
    KeyPressed,
    PhotoCaptured,
    RemoteCommand,
    TagPresented,
    TagRemoved,
    TamperDetected,
    TimerFired,
    ZoneChanged,
)
from panel.machine import PanelSnapshot, Request
from panel.transitions import Kind
from protocol.messages import Action as CommandAction
from protocol.messages import (
    Command,
    ErrorCode,
    EventType,
    Method,
    Mode,
    Result,
    State,
)

__all__ = ["Panel", "PanelSnapshot"]

_LOGGER = logging.getLogger(__name__)

KEYPAD_IDLE_MS: Final = 10_000
TAG_WINDOW_MS: Final = 10_000
MAX_DETAIL: Final = 200
MAX_LOCKOUT_MS: Final = 86_400_000
"""Lockouts double up to one day."""

MODE_KEYS: Final[Mapping[str, Mode]] = {"A": Mode.TOTAL, "B": Mode.PARTIAL, "C": Mode.NIGHT}
ACTION_KINDS: Final[Mapping[CommandAction, Kind]] = {
    CommandAction.ARM: Kind.ARM,
    CommandAction.DISARM: Kind.DISARM,
    CommandAction.STATUS: Kind.STATUS,
    CommandAction.PHOTO: Kind.PHOTO,
    CommandAction.SOS: Kind.PANIC,
    CommandAction.UNLOCK: Kind.UNLOCK,
    CommandAction.REVOKE_TAG: Kind.REVOKE_TAG,
}


class Panel(Effects):
    """The alarm panel: ``handle(input, now_ms) -> actions``."""

    def __init__(self, config: SiteConfig, saved: PanelSnapshot | None = None) -> None:
        super().__init__(config, saved)
        self._digits: list[str] = []  # typed digits: memory only, never logged or stored
        self._overflow = False
        self._tag_user: User | None = None
        self._tag_uid: str | None = None
        self._handlers: dict[type, Callable[[object], None]] = {
            KeyPressed: self._on_key,  # type: ignore[dict-item]
            TagPresented: self._on_tag,  # type: ignore[dict-item]
            TagRemoved: self._ignore,
            ZoneChanged: self._on_zone,  # type: ignore[dict-item]
            TamperDetected: self._on_tamper,  # type: ignore[dict-item]
            ClimateReading: self._ignore,  # the process publishes telemetry itself
            DeviceLost: self._on_device_lost,  # type: ignore[dict-item]
            DeviceBack: self._on_device_back,  # type: ignore[dict-item]
            TimerFired: self._on_timer_fired,  # type: ignore[dict-item]
            RemoteCommand: self._on_command,  # type: ignore[dict-item]
            PhotoCaptured: self._on_photo,  # type: ignore[dict-item]
        }

    def start(self, now_ms: int) -> list[Action]:
        """First call: records ``restart`` when restored, re-requests timers, shows the state."""
        self._begin(now_ms)
        if self._restored:
            self._event(EventType.RESTART, Method.SYSTEM, detail=f"state {self._state}")
            self._repair_timers()
        else:
            self._since = now_ms
        self._fire_due(at_deadline=False)  # what fell due while the panel was off happens now
        for name, at_ms in sorted(self._timers.items(), key=lambda item: item[1]):
            self._out.append(StartTimer(name, at_ms))
        self._out.append(SetSiren(self._siren))
        self._say(self.status_text())
        self._out.append(StateChanged(self.view()))
        return self._finish()

    def handle(self, inp: Input, now_ms: int) -> list[Action]:
        """Take one input at ``now_ms`` (epoch ms); timers already due fire first."""
        self._begin(now_ms)
        before = self.view()
        self._fire_due()
        handler = self._handlers.get(type(inp))
        if handler is None:
            _LOGGER.warning("ignoring an input of unknown type %s", type(inp).__name__)
        else:
            handler(inp)
        self._fire_due()
        if self._reply is not None:
            self._out.append(Reply(Result(self._reply.id, True, state=self._state)))
        after = self.view()
        if after != before:
            self._out.append(StateChanged(after))
        return self._finish()

    @property
    def locked(self) -> bool:
        """Whether the keypad and tag reader are locked out."""
        return self._locked_until is not None

    # -------------------------------------------------------------- plumbing

    def _begin(self, now_ms: int) -> None:
        self._now = now_ms
        self._out = []
        self._reply = None

    def _finish(self) -> list[Action]:
        out, self._out = self._out, []
        return out

    def _fire_due(self, *, at_deadline: bool = True) -> None:
        for _ in range(100):  # bounded: alarms and lockouts last at least a second
            due = [(at_ms, name) for name, at_ms in self._timers.items() if at_ms <= self._now]
            if not due:
                return
            at_ms, name = min(due)
            del self._timers[name]
            self._out.append(CancelTimer(name))  # the process's own timer is now stale
            # A timer fires at its deadline: its events carry that time, not the input's.
            now, self._now = self._now, (at_ms if at_deadline else self._now)
            try:
                self._on_timer(Timer(name))
            finally:
                self._now = now
        _LOGGER.error("timers keep falling due at %d; the rest wait for the next input", self._now)

    def _repair_timers(self) -> None:
        # A restored state must have its timer, or it could never leave that state.
        needed = {
            State.ARMING: Timer.EXIT,
            State.PENDING: Timer.ENTRY,
            State.TRIGGERED: Timer.SIREN,
        }
        name = needed.get(self._state)
        if name is not None and name not in self._timers:
            _LOGGER.warning("restored %s without its %s timer; restarting it", self._state, name)
            self._timers[name] = self._now + self._delay_ms(name)
        if self._locked_until is not None and Timer.LOCKOUT not in self._timers:
            self._timers[Timer.LOCKOUT] = self._locked_until

    def _on_timer_fired(self, inp: TimerFired) -> None:
        # Timers due by ``now`` have fired already; a name no longer pending is stale.
        if inp.timer not in self._timers:
            _LOGGER.debug("stale timer %s ignored", inp.timer)
            return
        del self._timers[inp.timer]
        self._on_timer(Timer(inp.timer))

    def _on_timer(self, name: Timer) -> None:
        if name is Timer.EXIT:
            self._dispatch(Request(Kind.EXIT_END, Method.SYSTEM))
        elif name is Timer.ENTRY:
            self._dispatch(Request(Kind.ENTRY_END, Method.SYSTEM))
        elif name is Timer.SIREN:
            self._dispatch(Request(Kind.SIREN_END, Method.SYSTEM))
        elif name is Timer.LOCKOUT:
            self._unlock(Method.SYSTEM, None)
        elif name is Timer.KEYPAD_IDLE:
            self._clear_digits()
            self._say(self.status_text())
        elif name is Timer.TAG_WINDOW:
            self._tag_user = self._tag_uid = None
            self._say(self.status_text())

    def _ignore(self, inp: object) -> None:
        _LOGGER.debug("%s: nothing to do", type(inp).__name__)

    # -------------------------------------------------------------- keypad

    def _on_key(self, inp: KeyPressed) -> None:
        key = inp.key
        if key not in KEYS:
            _LOGGER.warning("unknown key %r from %s ignored", key, inp.device)
            return
        if key == "P":  # panic works even while the keypad is locked out
            self._clear_digits()
            self._dispatch(Request(Kind.PANIC, Method.KEYPAD, zone=inp.device))
            return
        if self.locked:
            self._say("LOCKED", Tone.ERROR)
            return
        if key.isdigit():
            self._forget_tag()
            if len(self._digits) < MAX_CODE_DIGITS:
                self._digits.append(key)
            else:
                self._overflow = True
            self._start_timer(Timer.KEYPAD_IDLE, KEYPAD_IDLE_MS)
            self._say("*" * len(self._digits), Tone.KEY)
        elif key == "*":
            self._clear_digits()
            self._forget_tag()
            self._say(self.status_text(), Tone.KEY)
        elif key == "#":  # reserved: neither clears nor submits
            self._out.append(Beep(Tone.ERROR))
        else:
            self._command_key(key)

    def _command_key(self, key: str) -> None:
        kind = Kind.DISARM if key == "D" else Kind.ARM
        mode = MODE_KEYS.get(key)
        if self._digits or self._overflow:
            code = "".join(self._digits)
            overflow = self._overflow
            self._clear_digits()
            found = None if overflow else self._check_code(code)
            if found is None:
                self._failed_attempt(EventType.CODE_REJECTED, Method.KEYPAD, None, "wrong code")
                return
            user, duress = found
            self._valid_credential()
            if duress:  # silent: nothing on the keypad tells it apart
                self._event(EventType.DURESS, Method.KEYPAD, user=user.name)
            self._request(Request(kind, Method.KEYPAD, user=user, mode=mode))
        elif self._tag_user is not None:
            user, uid = self._tag_user, self._tag_uid
            self._forget_tag()
            self._request(Request(kind, Method.TAG, user=user, mode=mode, tag=uid))
        else:
            self._say("CODE OR TAG FIRST", Tone.ERROR)

    def _check_code(self, code: str) -> tuple[User, bool] | None:
        """The user whose code (or duress code) this is; every digest is compared."""
        if not CODE_RE.fullmatch(code):
            return None
        typed = self._cfg.hasher.digest(code)
        found: tuple[User, bool] | None = None
        for user in self._cfg.users:
            if hmac.compare_digest(typed, user.code_digest):
                found = (user, False)
            if user.duress_digest is not None and hmac.compare_digest(typed, user.duress_digest):
                found = (user, True)
        return found

    def _clear_digits(self) -> None:
        self._digits.clear()
        self._overflow = False
        self._cancel_timer(Timer.KEYPAD_IDLE)

    def _forget_tag(self) -> None:
        self._tag_user = self._tag_uid = None
        self._cancel_timer(Timer.TAG_WINDOW)

    def _tag_revoked(self, uid: str) -> None:
        if self._tag_uid == uid:
            self._forget_tag()

    # -------------------------------------------------------------- tags

    def _on_tag(self, inp: TagPresented) -> None:
        if self.locked:
            self._say("LOCKED", Tone.ERROR)
            return
        uid = inp.uid.upper()
        user = self._cfg.user_by_tag(uid)
        if uid in self._revoked or user is None:
            reason = "revoked" if uid in self._revoked else "unknown tag"
            self._failed_attempt(EventType.TAG_REJECTED, Method.TAG, uid, reason)
            return
        self._valid_credential()
        self._clear_digits()
        if self._state is State.DISARMED:
            self._tag_user, self._tag_uid = user, uid
            self._start_timer(Timer.TAG_WINDOW, TAG_WINDOW_MS)
            self._say(f"{user.name.upper()}: A B C TO ARM", Tone.OK)
        else:
            self._forget_tag()
            self._request(Request(Kind.DISARM, Method.TAG, user=user, tag=uid))

    # -------------------------------------------------------------- lockout

    def _failed_attempt(
        self, event_type: EventType, method: Method, tag: str | None, reason: str
    ) -> None:
        self._failed += 1
        self._event(event_type, method, tag=tag, detail=reason)
        if self._failed < self._cfg.max_attempts:
            self._say(reason.upper(), Tone.ERROR)
            return
        self._level += 1
        duration = min(round(self._cfg.lockout * 1000) << (self._level - 1), MAX_LOCKOUT_MS)
        self._failed = 0
        self._locked_until = self._now + duration
        self._start_timer(Timer.LOCKOUT, duration)
        self._clear_digits()
        self._forget_tag()
        detail = f"{self._cfg.max_attempts} failed attempts; locked for {duration // 1000} s"
        self._event(EventType.KEYPAD_LOCKED, method, tag=tag, detail=detail)
        self._say("LOCKED", Tone.ERROR)

    def _valid_credential(self) -> None:
        self._failed = 0
        self._level = 0

    # -------------------------------------------------------------- zones, devices

    def _on_zone(self, inp: ZoneChanged) -> None:
        if self._cfg.zone(inp.zone) is None:
            _LOGGER.warning("report from unknown zone %r ignored", inp.zone)
            return
        if not inp.open:
            self._open.discard(inp.zone)
            return
        if inp.zone in self._open:
            return  # only a change counts
        self._open.add(inp.zone)
        req = self._zone_request(inp.zone)
        if req is not None:
            self._dispatch(req)

    def _on_tamper(self, inp: TamperDetected) -> None:
        self._dispatch(Request(Kind.TAMPER, Method.SYSTEM, zone=inp.source))

    def _on_device_lost(self, inp: DeviceLost) -> None:
        # A driver's reason can be a long exception text; events stay small.
        reason = inp.reason[:MAX_DETAIL]
        self._dispatch(Request(Kind.DEVICE_LOST, Method.SYSTEM, zone=inp.device, detail=reason))

    def _on_device_back(self, inp: DeviceBack) -> None:
        self._dispatch(Request(Kind.DEVICE_BACK, Method.SYSTEM, zone=inp.device))

    def _on_photo(self, inp: PhotoCaptured) -> None:
        if inp.photo_id not in self._photos:
            _LOGGER.warning(
                "photo %s was not requested (or before a restart); ignored", inp.photo_id
            )
            return
        if not inp.ok:
            self._photos.pop(inp.photo_id)
            _LOGGER.warning("photo %s from %s failed: %s", inp.photo_id, inp.camera, inp.detail)
            return
        self._dispatch(
            Request(Kind.PHOTO_DONE, Method.SYSTEM, camera=inp.camera, photo_id=inp.photo_id)
        )

    # -------------------------------------------------------------- remote commands

    def _on_command(self, inp: RemoteCommand) -> None:
        cmd = inp.command
        method = Method(cmd.via.value)
        kind = ACTION_KINDS[cmd.action]
        req = Request(kind, method, mode=cmd.mode, camera=cmd.camera, command=cmd)
        problem = self._bad_request(cmd)
        if problem is not None:
            self._refuse(req, ErrorCode.BAD_REQUEST, problem)
            return
        if cmd.code is not None:
            self._command_code(req, cmd.code)
            return
        user = self._cfg.user(cmd.user)
        if user is None:
            self._refuse(req, ErrorCode.UNKNOWN_USER, f"no user {cmd.user!r} on this panel")
            return
        tag = (cmd.tag or "").upper() if kind is Kind.REVOKE_TAG else None
        self._request(dataclasses.replace(req, user=user, tag=tag))

    def _command_code(self, req: Request, code: str) -> None:
        """A code typed elsewhere (Home Assistant): checked exactly like a keypad code."""
        if self.locked:  # ignored while locked out, and not counted
            self._refuse(req, ErrorCode.FORBIDDEN, "the keypad is locked out")
            return
        found = self._check_code(code)
        if found is None:
            self._failed_attempt(EventType.CODE_REJECTED, req.method, None, "wrong code")
            self._refuse(req, ErrorCode.FORBIDDEN, "wrong code")
            return
        user, duress = found
        self._valid_credential()
        if duress:
            self._event(EventType.DURESS, req.method, user=user.name)
        self._request(dataclasses.replace(req, user=user))

    def _bad_request(self, cmd: Command) -> str | None:
        if cmd.action is CommandAction.ARM and cmd.mode is None:
            return "arm needs a mode (total, partial or night)"
        if cmd.action is CommandAction.PHOTO:
            if not cmd.camera:
                return "photo needs a camera"
            if self._cfg.camera(cmd.camera) is None:
                return f"no camera {cmd.camera!r} on this panel"
        if cmd.action is CommandAction.REVOKE_TAG and not (cmd.tag and TAG_RE.fullmatch(cmd.tag)):
            return "revoke_tag needs a tag UID in hex (4 to 10 bytes)"
        return None
