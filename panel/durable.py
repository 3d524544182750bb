"""What the panel keeps across a restart: one record, and its JSON form for the store.

``PanelSnapshot`` is the only list of durable fields. The core keeps one live record
that its parts (panel.machine, panel.credentials, panel.recorder) read and write, and
hands out copies of it; the store writes a copy as JSON with ``to_json``/``from_json``,
which follow the field list, so a new durable field is one line here.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from collections.abc import Mapping
from typing import Any, Final

from protocol.messages import Method, Mode, State

JSON_VERSION: Final = 2
"""Version of the JSON document. Version 1 held timers as wall-clock deadlines; it is
read by taking each deadline relative to ``since_ms`` (the core then caps every timer
at its full length). Any other version is refused."""


@dataclasses.dataclass(slots=True)
class PanelSnapshot:
    """Everything the panel keeps across a restart; nothing derived from a code.

    Values are immutable (enums, strings, numbers, frozensets, a mapping that is replaced
    whole, never changed in place), so a shallow copy is an independent snapshot.
    """

    state: State = State.DISARMED
    mode: Mode | None = None  # mode armed (when triggered: the mode to re-arm in)
    since_ms: int = 0
    armed_by: str | None = None
    armed_method: Method | None = None
    armed_tag: str | None = None
    # durable timer -> ms it still had to run when the snapshot was taken: time while the
    # panel is off does not count (without a clock that survives power loss it is unknown)
    timers: Mapping[str, int] = dataclasses.field(default_factory=dict)
    siren: bool = False
    alarm_cid: str | None = None  # codes of the alarm in progress, for its end event
    alarm_sia: str | None = None
    alarm_zones: frozenset[str] = frozenset()
    entry_zone: str | None = None
    failed_attempts: int = 0
    locked_until_ms: int | None = None
    lockout_level: int = 0  # lockouts since the last action done with a code or tag
    revoked_tags: frozenset[str] = frozenset()
    next_seq: int = 1
    open_zones: frozenset[str] = frozenset()
    clock_ms: int = 0  # the latest time stamped on an event: a clock behind it is wrong

    def copy(self) -> PanelSnapshot:
        """An independent copy (the values are immutable)."""
        return dataclasses.replace(self)


def _encode(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, Mapping):
        return dict(sorted(value.items()))
    return value


def to_json(snap: PanelSnapshot) -> str:
    """The snapshot as one compact JSON document: enums by value, sets sorted."""
    doc: dict[str, Any] = {"v": JSON_VERSION}
    for f in dataclasses.fields(PanelSnapshot):
        doc[f.name] = _encode(getattr(snap, f.name))
    return json.dumps(doc, separators=(",", ":"))


def _decode(hint: Any, value: Any, name: str) -> Any:
    """``value`` read back as the type ``hint`` of field ``name``; raises ValueError."""
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _decode(inner, value, name)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if origin is frozenset:
        if not isinstance(value, list):
            raise ValueError(f"{name}: expected a list")
        return frozenset(_decode(args[0], v, name) for v in value)
    if origin is Mapping:
        if not isinstance(value, dict):
            raise ValueError(f"{name}: expected an object")
        return {str(k): _decode(args[1], v, name) for k, v in value.items()}
    if hint is bool:
        return bool(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name}: expected a number")
        return int(value)
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"{name}: expected a string")
        return value
    raise TypeError(f"{name}: no JSON form for {hint!r}")


_HINTS: Final = typing.get_type_hints(PanelSnapshot)


def from_json(text: str) -> PanelSnapshot:
    """The snapshot from ``to_json``; raises ValueError when it cannot be read.

    ``state`` and ``next_seq`` are required; any other field missing takes its default.
    """
    doc = json.loads(text)
    if not isinstance(doc, dict) or doc.get("v") not in (1, JSON_VERSION):
        raise ValueError(
            f"unknown snapshot version {doc.get('v') if isinstance(doc, dict) else doc!r}"
        )
    for required in ("state", "next_seq", "since_ms"):
        if required not in doc:
            raise KeyError(required)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(PanelSnapshot):
        if f.name in doc and (doc[f.name] is not None or _optional(_HINTS[f.name])):
            values[f.name] = _decode(_HINTS[f.name], doc[f.name], f.name)
    snap = PanelSnapshot(**values)
    if doc["v"] == 1:  # deadlines then: the time left counted from the last state change
        snap.timers = {k: max(0, at - snap.since_ms) for k, at in snap.timers.items()}
    return snap


def _optional(hint: Any) -> bool:
    return type(None) in typing.get_args(hint)
