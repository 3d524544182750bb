"""The cloud side's vocabulary: topics and the JSON of events, states, telemetry and results.

Pure functions from the typed messages of ``protocol.messages`` to the payloads
of CONTRACT §5 (docs/cloud-api.md shows every one).
"""

from __future__ import annotations

import datetime
import json
from typing import Any, Final

from protocol.messages import Event, EventType, Result, StateSnapshot, Telemetry

_MAX_MS: Final = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
_EPOCH: Final = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def iso_ms(time_ms: int) -> str:
    """Epoch ms as ISO-8601 UTC with milliseconds and ``Z`` (clamped to years 1970-9999)."""
    time_ms = min(max(time_ms, 0), _MAX_MS)
    secs, millis = divmod(time_ms, 1000)
    moment = _EPOCH + datetime.timedelta(seconds=secs)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis:03d}Z"


class Topics:
    """The cloud topics of one site."""

    def __init__(self, site: str) -> None:
        self.site = site
        base = f"centinela/{site}"
        self.command = f"{base}/command"
        self.result = f"{base}/result"
        self.event = f"{base}/event"
        self.diagnostics = f"{base}/hub/diagnostics"
        self.diagnostics_request = f"{base}/hub/diagnostics/get"
        self.hub_availability = f"{base}/hub/availability"

    def state(self, panel: str) -> str:
        """Retained state of ``panel``."""
        return f"centinela/{self.site}/{panel}/state"

    def telemetry(self, panel: str) -> str:
        """Climate readings of ``panel``."""
        return f"centinela/{self.site}/{panel}/telemetry"

    def availability(self, panel: str) -> str:
        """Retained ``online``/``offline`` of ``panel``."""
        return f"centinela/{self.site}/{panel}/availability"

    def photo(self, panel: str, photo_id: str) -> str:
        """The JPEG of one photo."""
        return f"centinela/{self.site}/{panel}/photo/{photo_id}"

    def media(self, panel: str, kind: str, media_id: str) -> str:
        """The WebM messages of one listen-in (``audio``) or clip (``clip``), CONTRACT §9."""
        return f"centinela/{self.site}/{panel}/{kind}/{media_id}"


EVENT_FIELDS: Final = frozenset(
    {"site", "panel", "seq", "time", "type", "mode", "user", "method", "zone", "cid", "sia"}
    | {"tag", "photo", "detail", "received", "clock_unsynced", "audio", "clip"}
)
MEDIA_ID_KEY: Final = {
    EventType.LISTEN_STARTED: "audio",
    EventType.LISTEN_ENDED: "audio",
    EventType.CLIP_REQUESTED: "clip",
    EventType.CLIP_READY: "clip",
}
"""Events whose media id (carried in the event's photo field) the cloud names otherwise."""
"""Every key a cloud event object may have (what scenario files may check)."""


def event_json(
    site: str, panel: str, event: Event, received_ms: int | None = None
) -> dict[str, Any]:
    """The cloud event object (CONTRACT §5); ``tag``, ``photo``, ``detail`` and
    ``clock_unsynced`` only when set.

    ``received`` is the hub's own clock when it stored the event: the panel's ``time``
    may be wrong (a Pi has no real-time clock), the hub's is a second opinion.
    """
    out: dict[str, Any] = {
        "site": site,
        "panel": panel,
        "seq": event.seq,
        "time": iso_ms(event.time_ms),
        "type": str(event.type),
        "mode": None if event.mode is None else str(event.mode),
        "user": event.user,
        "method": str(event.method),
        "zone": event.zone,
        "cid": event.cid,
        "sia": event.sia,
    }
    for name in ("tag", "photo", "detail"):
        value = getattr(event, name)
        if value is not None:
            out[MEDIA_ID_KEY.get(event.type, name) if name == "photo" else name] = value
    if event.clock_unsynced:
        out["clock_unsynced"] = True
    if received_ms is not None:
        out["received"] = iso_ms(received_ms)
    return out


def state_json(snapshot: StateSnapshot) -> dict[str, Any]:
    """The retained state object; ``siren`` is ``"on"``/``"off"`` as in scenarios."""
    out: dict[str, Any] = {
        "state": str(snapshot.state),
        "since": iso_ms(snapshot.since_ms),
        "open_zones": list(snapshot.open_zones),
        "siren": "on" if snapshot.siren else "off",
        "locked": snapshot.locked,
        "mode": None if snapshot.mode is None else str(snapshot.mode),
    }
    if snapshot.locked and snapshot.locked_until_ms is not None:
        out["locked_until"] = iso_ms(snapshot.locked_until_ms)
    return out


def telemetry_json(reading: Telemetry) -> dict[str, Any]:
    """A climate reading; a value the sensor could not read is null."""
    return {
        "time": iso_ms(reading.time_ms),
        "temperature": reading.temperature,
        "humidity": reading.humidity,
    }


RESULT_FIELDS: Final = frozenset({"id", "ok", "panel", "state", "error", "detail"})
"""Every key a command result may have."""


def result_json(result: Result, panel: str | None = None) -> dict[str, Any]:
    """A command result: ``state`` when known, ``error`` and ``detail`` when it failed."""
    out: dict[str, Any] = {"id": result.id, "ok": result.ok}
    if panel is not None:
        out["panel"] = panel
    if result.state is not None:
        out["state"] = str(result.state)
    if result.error is not None:
        out["error"] = str(result.error)
    if result.detail is not None:
        out["detail"] = result.detail
    return out


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
