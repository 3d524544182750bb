"""The simulator's command line: what a person types in the view, parsed into typed steps."""

from __future__ import annotations

import re
from dataclasses import dataclass

from panel.inputs import KEYS
from sim.scenario import Broker, Cloud, Power, Press, Restart, SetZone, Step, Tamper, Tap
from sim.site import SiteFacts

HELP = (
    "keys: code+A/B/C arm, code+D disarm, P panic · tap USER · open/close/tamper ZONE · "
    "arm total|partial|night [USER] · disarm [USER] · status · photo CAMERA · sos · unlock · "
    "listen SECONDS|stop · clip CAMERA SECONDS · "
    "revoke USER|TAG · broker stop|start · restart|stop|start panel|hub · quit"
)
HELP_LINES = (
    ("1234A  or  k 1234 A", "keys as typed on the keypad: code + A/B/C arms total/partial/night"),
    ("1234D", "code + D disarms; P is panic; * clears; the digits show as *"),
    ("tap alice  or  tap 04A1B2C3D4E5F6", "a user's first tag (or a UID) at the reader"),
    ("open hall_pir / close hall_pir", "a zone faults or restores"),
    ("tamper hall_pir  or  tamper keypad", "a zone's or the keypad's tamper switch"),
    ("arm total|partial|night [USER] [app|web]", "a cloud command, as the app or the web sends it"),
    ("disarm | status | sos | unlock [USER] [app|web]", "more cloud commands (default: a master)"),
    ("photo hall [USER]", "a photo request; the view says where the picture is saved"),
    ("listen 30 [USER]  /  listen stop", "a silent call; the view saves the sound as WebM"),
    ("clip hall 10 [USER]", "a clip of the camera's last seconds, saved as WebM"),
    ("revoke alice|UID [BY_USER]", "revoke a user's first tag (or a UID)"),
    ("broker stop|start", "the link goes down and comes back"),
    ("stop|start|restart panel|hub", "power a process off, on, or restart it"),
    ("help  /  quit (or Ctrl-C)", "this list / leave; any command closes this list"),
)
"""Every command of the view, with an example and what it does."""
MODES = ("total", "partial", "night")
_KEYS_ONLY = re.compile(r"^[0-9*#A-DP]+$")


@dataclass(frozen=True, slots=True)
class Quit:
    """Leave the simulator."""


@dataclass(frozen=True, slots=True)
class ShowHelp:
    """Show every command with an example."""


Command = Step | Quit | ShowHelp


class CommandError(ValueError):
    """The line does not parse; the message says why, in a few words."""


def masks_code(text: str) -> bool:
    """True when the line is key presses, which the view shows as ``*``."""
    stripped = text.lstrip()
    return bool(stripped) and (
        stripped[0].isdigit() or stripped.lower().startswith(("k ", "press ", "keys "))
    )


def parse_command(text: str, facts: SiteFacts) -> Command:
    """One line typed by a person -> a step (the same steps scenarios use), quit or help."""
    words = text.split()
    if not words:
        raise CommandError("type a command (help lists them)")
    verb, rest = words[0].lower(), words[1:]
    if len(words) == 1 and (_KEYS_ONLY.match(words[0]) or words[0].upper() in KEYS):
        # Keys as typed on the keypad (letters in capitals, or a single key).
        return Press(words[0].upper())
    if verb in ("k", "press", "keys"):
        keys = "".join(rest).upper()
        if not keys or any(k not in KEYS for k in keys):
            raise CommandError("keys are 0-9 * # A B C D P")
        return Press(keys)
    if verb in ("q", "quit", "exit"):
        return Quit()
    if verb in ("h", "help", "?"):
        return ShowHelp()
    if verb == "tap":
        who = _one(rest, "tap USER or tap UID")
        if who in facts.users and not facts.users[who]:
            raise CommandError(f"{who} has no tag")
        if who not in facts.users and not re.fullmatch(r"[0-9A-Fa-f]{8,20}", who):
            raise CommandError(f"no user {who!r} (users: {', '.join(facts.users)})")
        return Tap(who)
    if verb in ("open", "close", "tamper"):
        zone = _one(rest, f"{verb} ZONE")
        if zone not in facts.zones and not (verb == "tamper" and zone == "keypad"):
            raise CommandError(f"no zone {zone!r} (zones: {', '.join(facts.zones)})")
        return Tamper(zone) if verb == "tamper" else SetZone(zone, verb == "open")
    if verb == "broker" and rest in (["stop"], ["start"]):
        return Broker(rest[0] == "start")
    if verb == "restart" and rest in (["panel"], ["hub"]):
        return Restart(rest[0])
    if verb in ("stop", "start") and rest in (["panel"], ["hub"]):
        return Power(rest[0], verb == "start")
    return _cloud(verb, rest, facts)


def _cloud(verb: str, rest: list[str], facts: SiteFacts) -> Cloud:
    master = next((n for n, r in facts.roles.items() if r == "master"), next(iter(facts.roles), ""))
    via = "app"
    if rest and rest[-1] in ("app", "web"):
        via = rest.pop()
    if verb == "arm":
        if not rest or rest[0] not in MODES:
            raise CommandError("arm total|partial|night [USER] [app|web]")
        return Cloud(
            {"action": "arm", "mode": rest[0], "user": _user(rest[1:], master), "via": via}
        )
    if verb in ("disarm", "status", "sos", "unlock"):
        return Cloud({"action": verb, "user": _user(rest, master), "via": via})
    if verb == "photo":
        if not rest:
            raise CommandError(f"photo CAMERA [USER] (cameras: {', '.join(facts.cameras)})")
        return Cloud(
            {"action": "photo", "camera": rest[0], "user": _user(rest[1:], master), "via": via}
        )
    if verb == "listen":
        if rest and rest[0] == "stop":
            return Cloud({"action": "listen_stop", "user": _user(rest[1:], master), "via": via})
        if not rest or not rest[0].isdigit():
            raise CommandError("listen SECONDS [USER] (1 to 120)  or  listen stop")
        return Cloud(
            {
                "action": "listen",
                "seconds": int(rest[0]),
                "user": _user(rest[1:], master),
                "via": via,
            }
        )
    if verb == "clip":
        if len(rest) < 2 or not rest[1].isdigit():
            raise CommandError(f"clip CAMERA SECONDS [USER] (cameras: {', '.join(facts.cameras)})")
        return Cloud(
            {
                "action": "clip",
                "camera": rest[0],
                "seconds": int(rest[1]),
                "user": _user(rest[2:], master),
                "via": via,
            }
        )
    if verb == "revoke":
        if not rest:
            raise CommandError("revoke USER|TAG [BY_USER]")
        tags = facts.users.get(rest[0])
        tag = tags[0] if tags else rest[0].upper()
        return Cloud(
            {"action": "revoke_tag", "tag": tag, "user": _user(rest[1:], master), "via": via}
        )
    raise CommandError(f"unknown command {verb!r} — {HELP}")


def _one(rest: list[str], usage: str) -> str:
    if len(rest) != 1:
        raise CommandError(usage)
    return rest[0]


def _user(rest: list[str], default: str) -> str:
    return rest[0] if rest else default
