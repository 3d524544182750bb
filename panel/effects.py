"""What each row of the transition table does: events, timers, siren and keypad display.

Every function here is ``effect(machine, request, previous_state)``; panel.transitions
names one in each row. The machine has already moved to the row's next state when the
effect runs, so ``machine.record.state`` is the new state and ``prev`` the old one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from panel import eventcodes
from panel.actions import CaptureClip, CapturePhoto, StartListen, StopListen, Timer, Tone
from panel.request import Kind, Request
from protocol.messages import EventType, Method, State

if TYPE_CHECKING:
    from panel.machine import Machine

ALARM_EVENTS: Final[Mapping[Kind, EventType]] = {
    Kind.PANIC: EventType.PANIC,
    Kind.FIRE: EventType.FIRE,
    Kind.TAMPER: EventType.TAMPER,
}


def _user(req: Request | None) -> str | None:
    return req.user.name if req is not None and req.user is not None else None


def nothing(m: Machine, req: Request, prev: State) -> None:
    """Accepted; nothing changes (a status query, an entry zone while already pending)."""


def start_exit(m: Machine, req: Request, prev: State) -> None:
    """Arming: remember who armed and how, record ``arming``, start the exit delay."""
    rec = m.record
    rec.mode = req.mode
    rec.armed_by = _user(req)
    rec.armed_method = req.method
    rec.armed_tag = req.tag
    m.out.event(EventType.ARMING, req.method, user=rec.armed_by, tag=req.tag)
    m.out.start_timer(Timer.EXIT, m.delay_ms(Timer.EXIT))
    m.out.say(m.status_text(), Tone.OK)


def armed(m: Machine, req: Request, prev: State) -> None:
    """Exit delay over: record ``armed``; zones still open are judged as if they opened now."""
    rec = m.record
    method = rec.armed_method or Method.SYSTEM
    codes = eventcodes.armed_codes(rec.mode, method)
    m.out.event(EventType.ARMED, method, user=rec.armed_by, tag=rec.armed_tag, codes=codes)
    m.out.say(m.status_text())
    for zone in m.cfg.zones:
        if zone.name in rec.open_zones and not zone.always_active:
            follow = m.zone_request(zone.name)
            if follow is not None:
                m.dispatch(follow)


def disarm(m: Machine, req: Request, prev: State) -> None:
    """Disarm from any armed, arming, pending or triggered state: every timer and the siren stop."""
    for name in (Timer.EXIT, Timer.ENTRY, Timer.SIREN):
        m.out.cancel_timer(name)
    m.set_siren(False)
    codes = eventcodes.disarmed_codes(req.method, from_alarm=prev is State.TRIGGERED)
    m.out.event(EventType.DISARMED, req.method, user=_user(req), tag=req.tag, codes=codes)
    rec = m.record
    rec.mode = rec.armed_by = rec.armed_method = rec.armed_tag = None
    m.clear_alarm()
    m.out.say(m.status_text(), Tone.OK)


def alarm_24h(m: Machine, req: Request, prev: State) -> None:
    """Panic, fire or tamper, in any state: the alarm event, the siren and its time.

    A new kind of alarm (fire during a burglary) gets its full siren time; the same kind
    again (a flapping tamper switch) does not keep the siren on for ever.
    """
    rec = m.record
    if prev is not State.TRIGGERED:
        rec.alarm_zones = frozenset()
    m.out.cancel_timer(Timer.EXIT)
    m.out.cancel_timer(Timer.ENTRY)
    rec.entry_zone = None
    event_type = ALARM_EVENTS[req.kind]
    if req.kind is Kind.TAMPER:
        codes = eventcodes.tamper_codes(device_lost=False)
    else:
        codes = eventcodes.fixed_codes(event_type)
    m.out.event(
        event_type, req.method, user=_user(req), zone=req.zone, detail=req.detail, codes=codes
    )
    if req.zone is not None:
        rec.alarm_zones |= {req.zone}
    if prev is not State.TRIGGERED or m.alarm != codes:
        m.out.start_timer(Timer.SIREN, m.delay_ms(Timer.SIREN))
    m.alarm = codes
    m.set_siren(True)
    m.out.say(f"{event_type.value.upper()} {req.zone or ''}".strip())


def start_entry(m: Machine, req: Request, prev: State) -> None:
    """An armed entry zone opened: record ``entry``, start the entry delay."""
    m.record.entry_zone = req.zone
    m.out.event(EventType.ENTRY, Method.SYSTEM, zone=req.zone)
    m.out.start_timer(Timer.ENTRY, m.delay_ms(Timer.ENTRY))
    m.out.say("ENTRY - CODE OR TAG")


def burglary(m: Machine, req: Request, prev: State) -> None:
    """A watched zone while armed or pending, or the entry delay ran out: the alarm sounds."""
    rec = m.record
    m.out.cancel_timer(Timer.ENTRY)
    zone = req.zone if req.zone is not None else rec.entry_zone
    kind = req.zone_kind
    if kind is None and zone is not None:
        found = m.cfg.zone(zone)
        kind = found.kind if found is not None else None
    codes = eventcodes.alarm_codes(kind)
    m.out.event(EventType.ALARM, Method.SYSTEM, zone=zone, codes=codes)
    rec.alarm_zones = frozenset() if zone is None else frozenset({zone})
    rec.entry_zone = None
    m.alarm = codes
    m.set_siren(True)
    m.out.start_timer(Timer.SIREN, m.delay_ms(Timer.SIREN))
    m.out.say(f"ALARM {zone or ''}".strip())


def more_burglary(m: Machine, req: Request, prev: State) -> None:
    """Another watched zone while triggered: reported once per zone, siren time unchanged."""
    if req.zone is None or req.zone in m.record.alarm_zones:
        return
    m.record.alarm_zones |= {req.zone}
    codes = eventcodes.alarm_codes(req.zone_kind)
    m.out.event(EventType.ALARM, Method.SYSTEM, zone=req.zone, codes=codes)


def end_alarm(m: Machine, req: Request, prev: State) -> None:
    """Siren time over: ``alarm_end``, then re-armed in the mode it was in (or disarmed).

    Zones still open stay out until they close: a broken window must not loop alarms.
    """
    rec = m.record
    m.set_siren(False)
    alarm = m.alarm or eventcodes.alarm_codes(None)
    zone = min(rec.alarm_zones) if rec.alarm_zones else None
    m.out.event(
        EventType.ALARM_END, Method.SYSTEM, zone=zone, codes=eventcodes.restore_codes(alarm)
    )
    m.clear_alarm()
    if rec.mode is not None:
        codes = eventcodes.armed_codes(rec.mode, Method.SYSTEM)
        m.out.event(EventType.ARMED, Method.SYSTEM, codes=codes)
    m.out.say(m.status_text())


def photo(m: Machine, req: Request, prev: State) -> None:
    """A photo request (remote, or a revoked tag presented): ``photo_requested`` and a
    capture on that camera."""
    assert req.camera is not None
    photo_id = f"{m.cfg.panel_id}-{m.record.next_seq}"
    m.out.event(
        EventType.PHOTO_REQUESTED,
        req.method,
        user=_user(req),
        zone=req.camera,
        tag=req.tag,
        photo=photo_id,
    )
    m.photos[photo_id] = dataclasses.replace(req, photo_id=photo_id)
    m.out.actions.append(CapturePhoto(req.camera, photo_id))


def photo_ready(m: Machine, req: Request, prev: State) -> None:
    """The camera delivered: ``photo_ready`` on behalf of whoever asked."""
    asked = m.photos.pop(req.photo_id or "", None)
    m.out.event(
        EventType.PHOTO_READY,
        asked.method if asked is not None else Method.SYSTEM,
        user=_user(asked),
        zone=req.camera,
        tag=asked.tag if asked is not None else None,
        photo=req.photo_id,
    )


def listen(m: Machine, req: Request, prev: State) -> None:
    """A silent call: ``listen_started`` and the microphone streams; nothing at the panel shows
    it (no display, no beep, no siren: CONTRACT §9)."""
    assert req.seconds is not None
    listen_id = f"{m.cfg.panel_id}-{m.record.next_seq}"
    m.out.event(
        EventType.LISTEN_STARTED,
        req.method,
        user=_user(req),
        photo=listen_id,
        detail=f"up to {req.seconds:g} s",
    )
    m.listening = dataclasses.replace(req, photo_id=listen_id)
    m.out.actions.append(StartListen(listen_id, int(req.seconds)))


def listen_stop(m: Machine, req: Request, prev: State) -> None:
    """The customer ends the silent call early; ``listen_ended`` follows when the stream ends."""
    assert m.listening is not None
    assert m.listening.photo_id is not None
    m.out.actions.append(StopListen(m.listening.photo_id))


def listen_ended(m: Machine, req: Request, prev: State) -> None:
    """The stream ended: ``listen_ended`` with who listened, how, and for how long."""
    asked = m.listening
    if asked is None or asked.photo_id != req.photo_id:
        return  # a stream from before a restart, or already reported
    m.listening = None
    seconds = req.seconds or 0.0
    detail = f"{seconds:.1f} s" if req.detail is None else f"{seconds:.1f} s; {req.detail}"
    m.out.event(
        EventType.LISTEN_ENDED, asked.method, user=_user(asked), photo=req.photo_id, detail=detail
    )


def clip(m: Machine, req: Request, prev: State) -> None:
    """A remote clip request: ``clip_requested`` and the encoding of the camera's last seconds."""
    assert req.camera is not None
    assert req.seconds is not None
    clip_id = f"{m.cfg.panel_id}-{m.record.next_seq}"
    m.out.event(
        EventType.CLIP_REQUESTED,
        req.method,
        user=_user(req),
        zone=req.camera,
        photo=clip_id,
        detail=f"{req.seconds:g} s",
    )
    m.clips[clip_id] = dataclasses.replace(req, photo_id=clip_id)
    m.out.actions.append(CaptureClip(req.camera, clip_id, int(req.seconds)))


def clip_ready(m: Machine, req: Request, prev: State) -> None:
    """The clip is on its way to the cloud: ``clip_ready`` on behalf of whoever asked."""
    asked = m.clips.pop(req.photo_id or "", None)
    m.out.event(
        EventType.CLIP_READY,
        asked.method if asked is not None else Method.SYSTEM,
        user=_user(asked),
        zone=req.camera,
        photo=req.photo_id,
        detail=None if asked is None or asked.seconds is None else f"{asked.seconds:g} s",
    )


def unlock(m: Machine, req: Request, prev: State) -> None:
    """A master clears the lockout remotely; the lockouts no longer escalate."""
    m.credentials.unlock(req.method, _user(req), vouched=True)
    m.out.say(m.status_text())


def revoke_tag(m: Machine, req: Request, prev: State) -> None:
    """A master revokes a tag: refused from now on, across restarts."""
    assert req.tag is not None
    m.credentials.revoke(req.tag, req.method, _user(req))


def device_lost(m: Machine, req: Request, prev: State) -> None:
    """A device stopped answering: a tamper event naming it (no alarm)."""
    codes = eventcodes.tamper_codes(device_lost=True)
    m.out.event(EventType.TAMPER, Method.SYSTEM, zone=req.zone, detail=req.detail, codes=codes)


def device_back(m: Machine, req: Request, prev: State) -> None:
    """A lost device answers again."""
    m.out.event(EventType.DEVICE_BACK, Method.SYSTEM, zone=req.zone)
