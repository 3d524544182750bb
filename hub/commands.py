"""Cloud commands: validation of the JSON (pure) and the commands waiting for a panel's answer."""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

from common.clock import Clock, TimerHandle
from common.configcheck import NAME_RE, TAG_RE
from hub.cloudapi import dumps, result_json
from hub.store import OutboxItem
from protocol.messages import Action, Command, ErrorCode, Mode, Result, Via

MAX_COMMAND: Final = 4096
"""Largest command payload in bytes; anything bigger is dropped and counted."""
MAX_RESPONSE_TOPIC: Final = 256

_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f]")
_FIELDS: Final = frozenset(
    {"id", "panel", "action", "mode", "user", "via", "camera", "tag", "seconds", "expires"}
)
_NEEDS: Final = {
    Action.ARM: "mode",
    Action.PHOTO: "camera",
    Action.REVOKE_TAG: "tag",
    Action.CLIP: "camera",
}
MAX_SECONDS: Final = {Action.LISTEN: 120, Action.CLIP: 30}
"""Longest silent call and clip in seconds (CONTRACT §9)."""


@dataclass(frozen=True, slots=True)
class Accepted:
    """A valid command for ``panel``."""

    panel: str
    command: Command
    expires_ms: int | None = None  # the sender's own deadline ("expires"), epoch ms


@dataclass(frozen=True, slots=True)
class Rejected:
    """A command with a usable id that gets a ``bad_request`` result."""

    id: str
    panel: str | None
    detail: str

    def result(self) -> Result:
        """The ``bad_request`` result."""
        return Result(self.id, False, error=ErrorCode.BAD_REQUEST, detail=self.detail)


@dataclass(frozen=True, slots=True)
class Dropped:
    """A command that cannot be answered (no usable id, too big): counted as ``reason``."""

    reason: str
    detail: str


Parsed = Accepted | Rejected | Dropped


def parse_command(payload: bytes, panels: Collection[str]) -> Parsed:
    """Validate one command payload against the configured ``panels``."""
    if len(payload) > MAX_COMMAND:
        return Dropped("oversized_command", f"{len(payload)} bytes (at most {MAX_COMMAND})")
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return Dropped("bad_command", f"not JSON: {exc}")
    if not isinstance(data, dict):
        return Dropped("bad_command", "not a JSON object")
    command_id = data.get("id")
    if not isinstance(command_id, str) or not _valid_id(command_id):
        return Dropped(
            "bad_command", "no usable id (a string of 1 to 64 characters, valid Unicode)"
        )
    panel = data.get("panel")
    known_panel = panel if isinstance(panel, str) and panel in panels else None
    problem = _unencodable(data) or _problem(data, panels)
    if problem is not None:
        return Rejected(command_id, known_panel, problem)
    assert known_panel is not None
    action = Action(data["action"])
    return Accepted(
        known_panel,
        Command(
            id=command_id,
            action=action,
            user=data["user"],
            via=Via(data["via"]),
            mode=Mode(data["mode"]) if action is Action.ARM else None,
            camera=data["camera"] if _NEEDS.get(action) == "camera" else None,
            tag=data["tag"].upper() if action is Action.REVOKE_TAG else None,
            seconds=data["seconds"] if action in MAX_SECONDS else None,
        ),
        _expires_ms(data.get("expires")),
    )


def _expires_ms(value: object) -> int | None:
    """``expires`` (an ISO 8601 time with its offset) as epoch ms; None when absent or bad."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return round(moment.timestamp() * 1000)


def _valid_id(value: str) -> bool:
    return 1 <= len(value) <= 64 and not _CONTROL_RE.search(value) and _encodable(value)


def _encodable(text: str) -> bool:
    """Whether ``text`` is Unicode that UTF-8 can carry (JSON's ``\\ud800`` escapes are not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _unencodable(value: Any, field: str | None = None) -> str | None:
    """``"<field>: …"`` for the first key or string in ``value`` that UTF-8 cannot carry."""
    if isinstance(value, str):
        return None if _encodable(value) else f"{field}: not valid Unicode text (a lone surrogate)"
    if isinstance(value, dict):
        for key, item in value.items():
            name = key if field is None else f"{field}.{key}"
            if not _encodable(key):
                return f"{name!a}: a field name that is not valid Unicode (a lone surrogate)"
            problem = _unencodable(item, name)
            if problem is not None:
                return problem
    if isinstance(value, list):
        for index, item in enumerate(value):
            problem = _unencodable(item, f"{field}[{index}]")
            if problem is not None:
                return problem
    return None


def _choices(enum_values: Collection[str]) -> str:
    return ", ".join(enum_values)


def _problem(data: Mapping[str, Any], panels: Collection[str]) -> str | None:
    """The first thing wrong with a command, naming the field; None when it is valid."""
    unknown = sorted(k for k in data if k not in _FIELDS)
    if unknown:
        return f"{unknown[0]}: unknown field"
    panel = data.get("panel")
    if not isinstance(panel, str):
        return "panel: required (a panel id)"
    if panel not in panels:
        return f"panel: unknown panel {panel[:40]!r}"
    action = data.get("action")
    if action not in {a.value for a in Action}:
        return f"action: must be one of {_choices([a.value for a in Action])}"
    user = data.get("user")
    if not isinstance(user, str) or not NAME_RE.fullmatch(user):
        return "user: required, 1 to 32 of a-z 0-9 _ -"
    via = data.get("via")
    if via not in {v.value for v in Via}:
        return f"via: must be one of {_choices([v.value for v in Via])}"
    if "expires" in data and _expires_ms(data["expires"]) is None:
        return "expires: must be a time with its offset, such as 2026-11-26T10:00:05.000Z"
    longest = MAX_SECONDS.get(Action(action))
    seconds = data.get("seconds")
    if longest is None and "seconds" in data:
        return f"seconds: not a field of {action}"
    if longest is not None and (
        type(seconds) is not int or not 1 <= seconds <= longest  # bool is no number here
    ):
        return f"seconds: required, a whole number from 1 to {longest}"
    needed = _NEEDS.get(Action(action))
    for name in ("mode", "camera", "tag"):
        if name in data and name != needed:
            return f"{name}: not a field of {action}"
    if needed is None:
        return None
    value = data.get(needed)
    if needed == "mode" and value not in {m.value for m in Mode}:
        return f"mode: must be one of {_choices([m.value for m in Mode])}"
    if needed == "camera" and (not isinstance(value, str) or not NAME_RE.fullmatch(value)):
        return "camera: required, a camera name (1 to 32 of a-z 0-9 _ -)"
    if needed == "tag" and (not isinstance(value, str) or not TAG_RE.fullmatch(value)):
        return "tag: required, the tag UID in hex (4, 7 or 10 bytes)"
    return None


def reply_to(
    properties: object, prefix: str, result_topic: str
) -> tuple[str | None, bytes | None, str | None]:
    """MQTT 5 ``(response topic, correlation data, problem)`` of a command message.

    Only the site's result topic and topics under ``prefix`` are accepted: a client
    that may publish commands must not make the hub publish where it may not.
    """
    topic = getattr(properties, "ResponseTopic", None)
    correlation = getattr(properties, "CorrelationData", None)
    correlation = None if correlation is None else bytes(correlation)
    if topic is None:
        return None, correlation, None
    if (
        not isinstance(topic, str)
        or not 0 < len(topic) <= MAX_RESPONSE_TOPIC
        or "+" in topic
        or "#" in topic
    ):
        return None, correlation, f"response topic {str(topic)[:60]!r}"
    if topic != result_topic and not (topic.startswith(prefix) and len(topic) > len(prefix)):
        return None, correlation, f"response topic {topic[:60]!r} is not under {prefix!r}"
    return topic, correlation, None


def result_items(
    result_topic: str,
    result: Result,
    panel: str | None,
    response_topic: str | None,
    correlation: bytes | None,
) -> list[OutboxItem]:
    """The publishes of one result: the site's result topic, and the response topic if any."""
    payload = dumps(result_json(result, panel))
    if response_topic is None:
        return [OutboxItem(result_topic, payload)]
    if response_topic == result_topic:
        return [OutboxItem(result_topic, payload, correlation=correlation)]
    return [
        OutboxItem(result_topic, payload),
        OutboxItem(response_topic, payload, correlation=correlation),
    ]


@dataclass(slots=True)
class Pending:
    """A command sent to a panel, waiting for its result."""

    panel: str
    command: Command
    response_topic: str | None
    correlation: bytes | None
    timer: TimerHandle | None = None


class PendingCommands:
    """Commands in flight, each with a timeout on the clock."""

    def __init__(
        self, clock: Clock, timeout_s: float, on_timeout: Callable[[Pending], None]
    ) -> None:
        self._clock = clock
        self._timeout_ms = round(timeout_s * 1000)
        self._on_timeout = on_timeout
        self._pending: dict[str, Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, command_id: object) -> bool:
        return command_id in self._pending

    def deadline(self, received_ms: int) -> int:
        """When a command received at ``received_ms`` is answered ``timeout`` at the latest."""
        return received_ms + self._timeout_ms

    def add(self, pending: Pending) -> None:
        """Start waiting for ``pending``'s result, until its command's deadline."""
        command_id = pending.command.id
        deadline = pending.command.deadline_ms
        if deadline is None:
            deadline = self.deadline(self._clock.now_ms())
        pending.timer = self._clock.call_at(deadline, lambda: self._expire(command_id))
        self._pending[command_id] = pending

    def discard(self, command_id: str) -> Pending | None:
        """Stop waiting for a command (it could not be sent)."""
        pending = self._pending.pop(command_id, None)
        if pending is not None and pending.timer is not None:
            pending.timer.cancel()
        return pending

    def resolve(self, panel: str, result: Result) -> Pending | None:
        """The pending command ``result`` answers, if any (it is no longer pending)."""
        pending = self._pending.get(result.id)
        if pending is None or pending.panel != panel:
            return None
        return self.discard(result.id)

    def take_all(self) -> list[Pending]:
        """Stop waiting for every command and return them (the hub is stopping)."""
        return [p for cid in list(self._pending) if (p := self.discard(cid)) is not None]

    def _expire(self, command_id: str) -> None:
        pending = self._pending.pop(command_id, None)
        if pending is not None:
            self._on_timeout(pending)
