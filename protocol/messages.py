"""The typed vocabulary of the panel <-> hub link: enums and frozen message dataclasses.

These are plain values with no dependency on construct; the codec in
``protocol.codec`` turns them into bytes and back. The panel core, the hub and
the simulator all speak in these types.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class State(enum.StrEnum):
    """Panel states (CONTRACT §4)."""

    DISARMED = "disarmed"
    ARMING = "arming"
    ARMED_TOTAL = "armed_total"
    ARMED_PARTIAL = "armed_partial"
    ARMED_NIGHT = "armed_night"
    PENDING = "pending"
    TRIGGERED = "triggered"


class Mode(enum.StrEnum):
    """Arming modes."""

    TOTAL = "total"
    PARTIAL = "partial"
    NIGHT = "night"


ARMED_STATE = {
    Mode.TOTAL: State.ARMED_TOTAL,
    Mode.PARTIAL: State.ARMED_PARTIAL,
    Mode.NIGHT: State.ARMED_NIGHT,
}


class EventType(enum.StrEnum):
    """Event types (CONTRACT §5)."""

    ARMING = "arming"
    ARMED = "armed"
    DISARMED = "disarmed"
    ENTRY = "entry"
    ALARM = "alarm"
    PANIC = "panic"
    DURESS = "duress"
    TAMPER = "tamper"
    FIRE = "fire"
    CODE_REJECTED = "code_rejected"
    TAG_REJECTED = "tag_rejected"
    KEYPAD_LOCKED = "keypad_locked"
    KEYPAD_UNLOCKED = "keypad_unlocked"
    ARM_REFUSED = "arm_refused"
    TAG_REVOKED = "tag_revoked"
    PHOTO_REQUESTED = "photo_requested"
    PHOTO_READY = "photo_ready"
    RESTART = "restart"
    # Extensions beyond the contract's list.
    ALARM_END = "alarm_end"  # siren time over (the panel re-arms, or stays disarmed)
    DEVICE_LOST = "device_lost"  # a keypad, reader or sensor stopped answering
    DEVICE_BACK = "device_back"
    STORAGE_FAULT = "storage_fault"  # the panel's store cannot be written; events wait in memory
    STORAGE_OK = "storage_ok"  # the store is written again; everything held is on disk
    STORE_RESET = "store_reset"  # a store was lost or replaced (detail: panel or hub)
    LISTEN_STARTED = "listen_started"  # a silent call began (CONTRACT §9)
    LISTEN_ENDED = "listen_ended"  # it ended; ``detail`` gives its duration
    CLIP_REQUESTED = "clip_requested"
    CLIP_READY = "clip_ready"  # the clip is on its way to the cloud, under ``photo`` (its id)


class Method(enum.StrEnum):
    """How an action was taken."""

    KEYPAD = "keypad"
    TAG = "tag"
    APP = "app"
    WEB = "web"
    SYSTEM = "system"


class Action(enum.StrEnum):
    """Remote command actions (CONTRACT §5)."""

    ARM = "arm"
    DISARM = "disarm"
    STATUS = "status"
    PHOTO = "photo"
    SOS = "sos"
    UNLOCK = "unlock"
    REVOKE_TAG = "revoke_tag"
    LISTEN = "listen"  # silent call (CONTRACT §9), with ``seconds``
    LISTEN_STOP = "listen_stop"  # end the silent call in progress early
    CLIP = "clip"  # a video clip of a camera's recent recording, with ``seconds``


class MediaKind(enum.StrEnum):
    """What a media stream carries."""

    AUDIO = "audio"  # a silent call: WebM with Opus
    CLIP = "clip"  # a video clip: WebM with VP8


class Via(enum.StrEnum):
    """Where a remote command came from."""

    APP = "app"
    WEB = "web"


class ErrorCode(enum.StrEnum):
    """Result error codes (CONTRACT §5)."""

    BAD_REQUEST = "bad_request"
    UNKNOWN_USER = "unknown_user"
    FORBIDDEN = "forbidden"
    INVALID_STATE = "invalid_state"
    PANEL_OFFLINE = "panel_offline"
    TIMEOUT = "timeout"
    BUSY = "busy"  # the hub's command queue is full (never sent by a panel)


@dataclass(frozen=True, slots=True)
class Event:
    """One panel event; ``seq`` rises by one per panel across restarts."""

    seq: int
    time_ms: int  # Unix epoch milliseconds, UTC
    type: EventType
    method: Method
    cid: str  # Contact ID qualifier + event code, e.g. "3401"
    sia: str  # SIA code, e.g. "CL"
    mode: Mode | None = None
    user: str | None = None
    zone: str | None = None  # zone or device name
    tag: str | None = None  # tag UID (hex) for tag events
    photo: str | None = None  # photo, clip or listen-in id for media events
    detail: str | None = None  # free text, e.g. the open zones of an arm_refused
    clock_unsynced: bool = False  # the panel's clock was known to be wrong: time_ms is unsure


@dataclass(frozen=True, slots=True)
class Command:
    """A remote command, relayed by the hub from the cloud."""

    id: str
    action: Action
    user: str
    via: Via
    mode: Mode | None = None
    camera: str | None = None
    tag: str | None = None
    # A code typed elsewhere (Home Assistant's keypad): the panel checks it as a keypad code
    # and acts as the user it belongs to. Only inside sealed frames; never in a repr or log.
    code: str | None = field(default=None, repr=False)
    # The hub's clock (epoch ms) after which the command must not be executed; None only
    # from hubs older than protocol 1.1 (docs/protocol.md).
    deadline_ms: int | None = None
    seconds: int | None = None  # listen, clip: how long (CONTRACT §9)


@dataclass(frozen=True, slots=True)
class Result:
    """The answer to a command."""

    id: str
    ok: bool
    state: State | None = None
    error: ErrorCode | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class StateSnapshot:
    """The panel's visible state."""

    state: State
    since_ms: int
    siren: bool = False
    open_zones: tuple[str, ...] = ()
    locked: bool = False
    locked_until_ms: int | None = None
    mode: Mode | None = None


@dataclass(frozen=True, slots=True)
class Telemetry:
    """A climate reading; a missing value means the sensor could not be read."""

    time_ms: int
    temperature: float | None = None
    humidity: float | None = None


@dataclass(frozen=True, slots=True)
class Ack:
    """Hub -> panel: every event up to and including ``upto_seq`` is stored at the hub."""

    upto_seq: int


@dataclass(frozen=True, slots=True)
class Resume:
    """Hub -> panel (protocol v2): your store is new; the hub holds your events up to ``last_seq``.

    The panel numbers its events after ``last_seq`` (docs/link.md, "A store lost or
    replaced"), so the site's seq keeps rising with no repeats.
    """

    last_seq: int


@dataclass(frozen=True, slots=True)
class TagCounters:
    """Both ways (protocol 2.1): the highest accepted SUN read counter of each tag.

    Panel -> hub after each accepted SUN read and on every connect; hub -> panel
    when the panel has a new store, so that it never accepts an old message again
    (docs/link.md, "A store lost or replaced"). ``counters`` holds (tag UID, counter).
    """

    counters: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class PhotoChunk:
    """One piece of a JPEG; ``index`` counts from 0 to ``count - 1``."""

    photo_id: str
    index: int
    count: int
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class MediaChunk:
    """One piece of a media stream (a listen-in or a clip), outside the event log's seq.

    The pieces of one ``media_id``, concatenated by ``index`` from 0, form one WebM file;
    the piece with ``last`` set ends it (its data may be empty).
    """

    kind: MediaKind
    media_id: str
    index: int
    last: bool
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Periodic liveness; ``last_seq`` is the newest event seq the panel has recorded."""

    time_ms: int
    last_seq: int


Message = (
    Event
    | Command
    | Result
    | StateSnapshot
    | Telemetry
    | Ack
    | PhotoChunk
    | Heartbeat
    | Resume
    | TagCounters
    | MediaChunk
)
