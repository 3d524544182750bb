"""What the customer reads for states, events, methods and command answers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from cloud.i18n import N_

STATE_WORDS: Final = {
    "disarmed": N_("Disarmed"),
    "arming": N_("Arming"),
    "armed_total": N_("Armed total"),
    "armed_partial": N_("Armed partial"),
    "armed_night": N_("Armed night"),
    "pending": N_("Entry delay"),
    "triggered": N_("Alarm"),
    "offline": N_("Offline"),
    "unknown": N_("Unknown"),
}

HOW_WORDS: Final = {
    "keypad": N_("Keypad"),
    "tag": N_("Tag"),
    "app": N_("App"),
    "web": N_("Web"),
    "system": N_("System"),
}

ROLE_WORDS: Final = {"master": N_("master"), "user": N_("user"), "arm_only": N_("arm only")}

MODE_WORDS: Final = {"total": N_("total"), "partial": N_("partial"), "night": N_("night")}

EVENT_WORDS: Final = {
    "arming": N_("Arming started"),
    "armed": N_("Armed"),
    "disarmed": N_("Disarmed"),
    "entry": N_("Entry delay started"),
    "alarm": N_("Intrusion alarm"),
    "panic": N_("Panic (SOS)"),
    "duress": N_("Duress code used"),
    "tamper": N_("Tamper"),
    "fire": N_("Fire alarm"),
    "code_rejected": N_("Wrong code"),
    "tag_rejected": N_("Tag rejected"),
    "keypad_locked": N_("Keypad locked"),
    "keypad_unlocked": N_("Keypad unlocked"),
    "arm_refused": N_("Arming refused"),
    "tag_revoked": N_("Tag revoked"),
    "photo_requested": N_("Photo requested"),
    "photo_ready": N_("Photo ready"),
    "restart": N_("Panel restarted"),
    "alarm_end": N_("Siren stopped"),
    "device_lost": N_("Device lost"),
    "device_back": N_("Device back"),
    "listen_started": N_("Silent call started"),
    "listen_ended": N_("Silent call ended"),
    "clip_requested": N_("Clip requested"),
    "clip_ready": N_("Clip ready"),
}
ALARM_TYPES: Final = frozenset({"alarm", "panic", "duress", "tamper", "fire"})
ARM_TYPES: Final = frozenset({"arming", "armed", "disarmed"})

ERROR_WORDS: Final = {
    "forbidden": N_("Your user is not allowed to do that."),
    "invalid_state": N_("That is not possible in the current state."),
    "panel_offline": N_("The panel is offline: nothing was sent."),
    "timeout": N_("The panel did not answer in time."),
    "unknown_user": N_("The panel does not know your user."),
    "bad_request": N_("The panel refused the request."),
}

OK_WORDS: Final = {
    "arm": N_("Arming started: %(mode)s."),
    "disarm": N_("Disarmed."),
    "sos": N_("SOS sent: the alarm is sounding."),
    "photo": N_("Photo requested from %(camera)s: it will appear in Photos."),
    "clip": N_("Clip of the last seconds requested from %(camera)s: it will appear in Photos."),
    "revoke_tag": N_("The tag is revoked; photos were requested from every camera."),
    "listen": N_("Silent call started."),
}


def place(name: str | None) -> str:
    """A zone or camera name as a person writes it: kitchen_window -> Kitchen window."""
    if not name:
        return ""
    text = name.replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:]


def state_word(state: Mapping[str, Any] | None, availability: str | None) -> str:
    """The key of the word for a panel's state (offline wins)."""
    if availability == "offline":
        return "offline"
    if not state:
        return "unknown"
    value = str(state.get("state"))
    return value if value in STATE_WORDS else "unknown"


def answer(result: Mapping[str, Any], action: str, _: Callable[[str], str], **facts: str) -> str:
    """A command's result in words."""
    if result.get("ok"):
        template = _(OK_WORDS.get(action, N_("Done.")))
        mode = _(MODE_WORDS.get(facts.get("mode", ""), facts.get("mode", "")))
        return template % {"mode": mode, "camera": place(facts.get("camera"))}
    error = str(result.get("error"))
    detail = str(result.get("detail") or "")
    prefix = next((p for p in ("open zones:", "open:") if detail.startswith(p)), None)
    if error == "invalid_state" and prefix:
        zones = [place(z.strip()) for z in detail[len(prefix) :].split(",") if z.strip()]
        if len(zones) == 1:
            return _("Cannot arm: %(zone)s is open.") % {"zone": zones[0]}
        return _("Cannot arm: %(zones)s are open.") % {"zones": ", ".join(zones)}
    return _(ERROR_WORDS.get(error, N_("The request failed.")))


def who(event: Mapping[str, Any], _: Callable[[str], str]) -> str:
    """The person in an activity row (or "Unknown tag")."""
    if event.get("user"):
        return place(str(event["user"]))
    if event.get("type") == "tag_rejected":
        return _("Unknown tag")
    return "—"


def what(event: Mapping[str, Any], _: Callable[[str], str]) -> str:
    """What happened, in words."""
    kind = str(event.get("type"))
    text = _(EVENT_WORDS.get(kind, kind))
    mode = event.get("mode")
    if kind in ("armed", "arming") and mode in MODE_WORDS:
        text = f"{text} ({_(MODE_WORDS[mode])})"
    zone = event.get("zone")
    if zone and kind not in ("arming", "armed", "disarmed"):
        text = f"{text}: {place(str(zone))}"
    if kind == "tag_rejected" and event.get("detail") == "revoked":
        text = f"{text} ({_('revoked tag')})"
    if kind == "arm_refused" and str(event.get("detail") or "").startswith("open:"):
        zones = ", ".join(place(z.strip()) for z in str(event["detail"])[5:].split(","))
        text = f"{_(EVENT_WORDS[kind])}: {_('open')} {zones}"
    return text
