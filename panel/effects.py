"""What each row of the transition table does: events, timers, siren, display."""

from __future__ import annotations

import dataclasses

from panel import eventcodes
from panel.actions import CapturePhoto, Timer, Tone
from panel.config import SiteConfig
from panel.machine import ALARM_EVENTS, Machine, PanelSnapshot, Request
from panel.transitions import Effect, Kind
from protocol.messages import EventType, Method, State


class Effects(Machine):
    """The effect of every transition; the table in panel.transitions says which runs when."""

    def __init__(self, config: SiteConfig, saved: PanelSnapshot | None = None) -> None:
        super().__init__(config, saved)
        self._effects.update(
            {
                Effect.START_EXIT: self._start_exit,
                Effect.DISARM: self._disarm,
                Effect.ALARM_24H: self._alarm_24h,
                Effect.START_ENTRY: self._start_entry,
                Effect.BURGLARY: self._burglary,
                Effect.MORE_BURGLARY: self._more_burglary,
                Effect.ARMED: self._armed,
                Effect.END_ALARM: self._end_alarm,
                Effect.STATUS: self._nothing,
                Effect.PHOTO: self._photo,
                Effect.PHOTO_READY: self._photo_ready,
                Effect.UNLOCK: self._unlock_effect,
                Effect.REVOKE_TAG: self._revoke_tag,
                Effect.DEVICE_LOST: self._device_lost,
                Effect.DEVICE_BACK: self._device_back,
                Effect.NOTHING: self._nothing,
            }
        )

    def _nothing(self, req: Request, prev: State) -> None:
        """Accepted; nothing changes."""

    def _user_name(self, req: Request) -> str | None:
        return req.user.name if req.user is not None else None

    def _start_exit(self, req: Request, prev: State) -> None:
        self._mode = req.mode
        self._armed_by = self._user_name(req)
        self._armed_method = req.method
        self._armed_tag = req.tag
        self._event(EventType.ARMING, req.method, user=self._armed_by, tag=req.tag)
        self._start_timer(Timer.EXIT, self._delay_ms(Timer.EXIT))
        self._say(self.status_text(), Tone.OK)

    def _disarm(self, req: Request, prev: State) -> None:
        for name in (Timer.EXIT, Timer.ENTRY, Timer.SIREN):
            self._cancel_timer(name)
        self._set_siren(False)
        codes = eventcodes.disarmed_codes(req.method, from_alarm=prev is State.TRIGGERED)
        self._event(
            EventType.DISARMED, req.method, user=self._user_name(req), tag=req.tag, codes=codes
        )
        self._mode = None
        self._armed_by = None
        self._armed_method = None
        self._armed_tag = None
        self._clear_alarm()
        self._say(self.status_text(), Tone.OK)

    def _clear_alarm(self) -> None:
        self._alarm = None
        self._alarm_zones.clear()
        self._entry_zone = None

    def _alarm_24h(self, req: Request, prev: State) -> None:
        if prev is not State.TRIGGERED:
            self._alarm_zones.clear()
        self._cancel_timer(Timer.EXIT)
        self._cancel_timer(Timer.ENTRY)
        self._entry_zone = None
        event_type = ALARM_EVENTS[req.kind]
        if req.kind is Kind.TAMPER:
            codes = eventcodes.tamper_codes(device_lost=False)
        else:
            codes = eventcodes.fixed_codes(event_type)
        self._event(
            event_type,
            req.method,
            user=self._user_name(req),
            zone=req.zone,
            detail=req.detail,
            codes=codes,
        )
        if req.zone is not None:
            self._alarm_zones.add(req.zone)
        # A new kind of alarm (fire during a burglary) gets its full siren time; the same
        # kind again (a flapping tamper switch) does not keep the siren on for ever.
        if prev is not State.TRIGGERED or self._alarm != codes:
            self._start_timer(Timer.SIREN, self._delay_ms(Timer.SIREN))
        self._alarm = codes
        self._set_siren(True)
        self._say(f"{event_type.value.upper()} {req.zone or ''}".strip())

    def _start_entry(self, req: Request, prev: State) -> None:
        self._entry_zone = req.zone
        self._event(EventType.ENTRY, Method.SYSTEM, zone=req.zone)
        self._start_timer(Timer.ENTRY, self._delay_ms(Timer.ENTRY))
        self._say("ENTRY - CODE OR TAG")

    def _burglary(self, req: Request, prev: State) -> None:
        self._cancel_timer(Timer.ENTRY)
        zone = req.zone if req.zone is not None else self._entry_zone
        kind = req.zone_kind
        if kind is None and zone is not None:
            found = self._cfg.zone(zone)
            kind = found.kind if found is not None else None
        codes = eventcodes.alarm_codes(kind)
        self._event(EventType.ALARM, Method.SYSTEM, zone=zone, codes=codes)
        self._alarm_zones = {zone} if zone is not None else set()
        self._entry_zone = None
        self._alarm = codes
        self._set_siren(True)
        self._start_timer(Timer.SIREN, self._delay_ms(Timer.SIREN))
        self._say(f"ALARM {zone or ''}".strip())

    def _more_burglary(self, req: Request, prev: State) -> None:
        if req.zone is None or req.zone in self._alarm_zones:
            return
        self._alarm_zones.add(req.zone)
        codes = eventcodes.alarm_codes(req.zone_kind)
        self._event(EventType.ALARM, Method.SYSTEM, zone=req.zone, codes=codes)

    def _armed(self, req: Request, prev: State) -> None:
        method = self._armed_method or Method.SYSTEM
        codes = eventcodes.armed_codes(self._mode, method)
        self._event(EventType.ARMED, method, user=self._armed_by, tag=self._armed_tag, codes=codes)
        self._say(self.status_text())
        # Zones still open when the exit delay ends are judged as if they opened now.
        for zone in self._cfg.zones:
            if zone.name in self._open and not zone.always_active:
                follow = self._zone_request(zone.name)
                if follow is not None:
                    self._dispatch(follow)

    def _end_alarm(self, req: Request, prev: State) -> None:
        self._set_siren(False)
        alarm = self._alarm or eventcodes.alarm_codes(None)
        zone = min(self._alarm_zones) if self._alarm_zones else None
        codes = eventcodes.restore_codes(alarm)
        self._event(EventType.ALARM_END, Method.SYSTEM, zone=zone, codes=codes)
        self._clear_alarm()
        if self._mode is not None:
            # Zones still open stay out until they close: a broken window must not loop alarms.
            codes = eventcodes.armed_codes(self._mode, Method.SYSTEM)
            self._event(EventType.ARMED, Method.SYSTEM, codes=codes)
        self._say(self.status_text())

    def _photo(self, req: Request, prev: State) -> None:
        photo_id = f"{self._cfg.panel_id}-{self._seq}"
        self._event(
            EventType.PHOTO_REQUESTED,
            req.method,
            user=self._user_name(req),
            zone=req.camera,
            photo=photo_id,
        )
        self._photos[photo_id] = dataclasses.replace(req, photo_id=photo_id)
        assert req.camera is not None
        self._out.append(CapturePhoto(req.camera, photo_id))

    def _photo_ready(self, req: Request, prev: State) -> None:
        asked = self._photos.pop(req.photo_id or "", None)
        self._event(
            EventType.PHOTO_READY,
            asked.method if asked is not None else Method.SYSTEM,
            user=self._user_name(asked) if asked is not None else None,
            zone=req.camera,
            photo=req.photo_id,
        )

    def _unlock_effect(self, req: Request, prev: State) -> None:
        self._unlock(req.method, self._user_name(req))
        self._level = 0  # a master vouched for whoever is at the keypad

    def _unlock(self, method: Method, user: str | None) -> None:
        self._cancel_timer(Timer.LOCKOUT)
        self._locked_until = None
        self._failed = 0
        self._event(EventType.KEYPAD_UNLOCKED, method, user=user)
        self._say(self.status_text())

    def _revoke_tag(self, req: Request, prev: State) -> None:
        assert req.tag is not None
        if req.tag in self._revoked:
            return
        self._revoked.add(req.tag)
        owner = self._cfg.user_by_tag(req.tag)
        detail = f"held by {owner.name}" if owner is not None else "not assigned to a user"
        self._event(
            EventType.TAG_REVOKED, req.method, user=self._user_name(req), tag=req.tag, detail=detail
        )
        self._tag_revoked(req.tag)

    def _tag_revoked(self, uid: str) -> None:
        """Hook: the keypad forgets a pending tag arming by that tag."""

    def _device_lost(self, req: Request, prev: State) -> None:
        codes = eventcodes.tamper_codes(device_lost=True)
        self._event(EventType.TAMPER, Method.SYSTEM, zone=req.zone, detail=req.detail, codes=codes)

    def _device_back(self, req: Request, prev: State) -> None:
        self._event(EventType.DEVICE_BACK, Method.SYSTEM, zone=req.zone)
