"""What an input asks of the arming machine once it is resolved: a ``Request`` of one ``Kind``."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from panel.config import User, ZoneKind
from protocol.messages import Command, Method, Mode


class Kind(enum.StrEnum):
    """What an input means once the keypad grammar, credentials and zone kinds are resolved."""

    ARM = "arm"  # a user asks to arm: code/tag + A/B/C, or a remote arm
    DISARM = "disarm"  # code + D, a tag tap while not disarmed, a remote disarm
    PANIC = "panic"  # key P, a remote sos, a panic zone
    FIRE = "fire"  # a fire zone
    TAMPER = "tamper"  # a tamper zone or tamper switch
    ENTRY_ZONE = "entry_zone"  # a watched entry zone opened
    INSTANT_ZONE = "instant_zone"  # a watched perimeter or interior zone opened
    EXIT_END = "exit_end"  # exit delay over
    ENTRY_END = "entry_end"  # entry delay over
    SIREN_END = "siren_end"  # alarm duration over
    STATUS = "status"  # a remote status query
    PHOTO = "photo"  # a remote photo request
    PHOTO_DONE = "photo_done"  # the camera delivered a requested photo
    UNLOCK = "unlock"  # a master clears a keypad lockout remotely
    REVOKE_TAG = "revoke_tag"  # a master revokes a tag remotely
    DEVICE_LOST = "device_lost"  # a device stopped answering
    DEVICE_BACK = "device_back"  # a lost device answers again
    LISTEN = "listen"  # a remote silent call (CONTRACT §9)
    LISTEN_STOP = "listen_stop"  # end the silent call in progress
    LISTEN_DONE = "listen_done"  # the microphone stream ended (time up, stopped, failed)
    CLIP = "clip"  # a remote video clip request
    CLIP_DONE = "clip_done"  # the clip is encoded and on its way


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
    photo_id: str | None = None  # a photo, clip or listen-in id
    seconds: float | None = None  # listen, clip: asked for; listen_done: how long it lasted
    detail: str | None = None
    command: Command | None = None
