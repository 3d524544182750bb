"""Home Assistant MQTT discovery: one HA device per panel, its entities, and HA's commands.

Pure functions: ``discovery`` gives the retained config messages for every
configured panel (docs/home-assistant.md shows them); ``parse_ha_command``
turns what HA's alarm panel publishes on the command topic into a panel
command carrying the code typed in HA, which the panel checks exactly like a
keypad code. Entities read the hub's own cloud topics (state, telemetry,
photos, availability), so nothing is published twice.
"""

from __future__ import annotations

import importlib.metadata
import itertools
import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from common.configcheck import NAME_RE, Section
from hub.cloudapi import Topics
from protocol.messages import Action, Command, Mode, Via

ZONE_KINDS: Final = ("entry", "perimeter", "interior", "panic", "tamper", "fire")
DEVICE_CLASS: Final = {
    "entry": "door",
    "perimeter": "window",
    "interior": "motion",
    "fire": "smoke",
    "tamper": "tamper",
    "panic": "safety",
}
HA_STATE: Final = {
    "disarmed": "disarmed",
    "arming": "arming",
    "armed_total": "armed_away",
    "armed_partial": "armed_home",
    "armed_night": "armed_night",
    "pending": "pending",
    "triggered": "triggered",
}
HA_ACTIONS: Final = {
    "ARM_AWAY": (Action.ARM, Mode.TOTAL),
    "ARM_HOME": (Action.ARM, Mode.PARTIAL),
    "ARM_NIGHT": (Action.ARM, Mode.NIGHT),
    "DISARM": (Action.DISARM, None),
}
COMMAND_TEMPLATE: Final = '{"action": "{{ action }}", "code": "{{ code or \'\' }}"}'
MAX_COMMAND: Final = 256
_CODE_RE: Final = re.compile(r"[0-9A-Za-z]{1,32}")
_PREFIX_RE: Final = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_/-]{0,63}")


@dataclass(frozen=True, slots=True)
class HaPanel:
    """What Home Assistant is told about one panel."""

    id: str
    name: str
    zones: Mapping[str, str] = field(default_factory=dict)  # zone name -> kind
    cameras: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class HaConfig:
    """The ``[homeassistant]`` section."""

    discovery_prefix: str = "homeassistant"
    code_arm_required: bool = True
    arm_user: str | None = None  # who arms when HA sends no code (code_arm_required = false)
    model: str = "centinela panel"
    panels: tuple[HaPanel, ...] = ()


def parse_homeassistant(sec: Section, panels: frozenset[str]) -> HaConfig:
    """Validate ``[homeassistant]`` (and its ``[homeassistant.panels.<id>]`` tables)."""
    prefix = sec.get_str(
        "discovery_prefix", "homeassistant", pattern=_PREFIX_RE, what="an MQTT topic prefix"
    )
    code_arm_required = sec.get_bool("code_arm_required", True)
    arm_user = sec.get_opt_str("arm_user", pattern=NAME_RE, what="a panel user name")
    if not code_arm_required and arm_user is None:
        raise sec.error("arm_user", "required when code_arm_required = false (who arms)")
    model = sec.get_str("model", "centinela panel")
    described = sec.get_section("panels")
    out: list[HaPanel] = []
    for panel_id in sorted(panels):
        psec = described.get_section(panel_id)
        name = psec.get_str("name", f"centinela {panel_id}")
        zsec = psec.get_section("zones")
        zones = {}
        for zone in zsec.data:
            if not NAME_RE.fullmatch(zone):
                raise zsec.error(zone, "a zone name is 1 to 32 of a-z 0-9 _ -")
            zones[zone] = zsec.get_str(zone, choices=ZONE_KINDS)
        zsec.finish()
        cameras = psec.get_str_list("cameras", [], pattern=NAME_RE, what="a camera name")
        psec.finish()
        out.append(HaPanel(panel_id, name, zones, tuple(cameras)))
    for key in described.data:
        if key not in panels:
            raise described.error(key, "is not a panel of this hub")
    sec.finish()
    return HaConfig(prefix, code_arm_required, arm_user, model, tuple(out))


def software_version() -> str:
    """The installed centinela version (the panel and hub run the same release)."""
    try:
        return importlib.metadata.version("centinela")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def node_id(site: str, panel: str) -> str:
    """The discovery node id (and HA device identifier) of a panel."""
    return f"centinela_{site}_{panel}"


def command_topic(site: str, panel: str) -> str:
    """Where HA's alarm panel publishes its commands."""
    return f"centinela/{site}/{panel}/ha/command"


def command_subscription(site: str) -> str:
    """The hub's subscription to every panel's HA command topic."""
    return f"centinela/{site}/+/ha/command"


def discovery(site: str, config: HaConfig, version: str | None = None) -> dict[str, bytes]:
    """Retained config topic -> JSON payload, for every entity of every configured panel."""
    version = version or software_version()
    out: dict[str, bytes] = {}
    for panel in config.panels:
        out.update(panel_discovery(site, config, panel, version))
    return out


def panel_discovery(site: str, config: HaConfig, panel: HaPanel, version: str) -> dict[str, bytes]:
    """The configs of one panel's entities, all on one HA device."""
    topics = Topics(site)
    node = node_id(site, panel.id)
    common = {
        "availability": [
            {"topic": topics.hub_availability},
            {"topic": topics.availability(panel.id)},
        ],
        "availability_mode": "all",
        "device": {
            "identifiers": [node],
            "name": panel.name,
            "manufacturer": "centinela",
            "model": config.model,
            "sw_version": version,
            "serial_number": panel.id,
        },
        "origin": {"name": "centinela hub", "sw_version": version},
    }
    out: dict[str, bytes] = {}

    def put(component: str, object_id: str, payload: dict[str, Any]) -> None:
        topic = f"{config.discovery_prefix}/{component}/{node}/{object_id}/config"
        body = {"unique_id": f"{node}_{object_id}", **payload, **common}
        out[topic] = json.dumps(body, sort_keys=True).encode()

    states = json.dumps(HA_STATE, sort_keys=True).replace('"', "'")
    put("alarm_control_panel", "alarm", {
        "name": None,
        "state_topic": topics.state(panel.id),
        "value_template": f"{{{{ {states}[value_json.state] }}}}",
        "command_topic": command_topic(site, panel.id),
        "command_template": COMMAND_TEMPLATE,
        "code": "REMOTE_CODE",
        "code_arm_required": config.code_arm_required,
        "code_disarm_required": True,
        "supported_features": ["arm_home", "arm_away", "arm_night"],
        "qos": 1,
    })  # fmt: skip
    for what, unit in (("temperature", "°C"), ("humidity", "%")):
        put("sensor", what, {
            "name": what.capitalize(),
            "state_topic": topics.telemetry(panel.id),
            "value_template": f"{{{{ value_json.{what} }}}}",
            "device_class": what,
            "state_class": "measurement",
            "unit_of_measurement": unit,
        })  # fmt: skip
    for zone, kind in panel.zones.items():
        put("binary_sensor", f"zone_{zone}", {
            "name": zone.replace("_", " ").capitalize(),
            "state_topic": topics.state(panel.id),
            "value_template": f"{{{{ 'ON' if '{zone}' in value_json.open_zones else 'OFF' }}}}",
            "device_class": DEVICE_CLASS[kind],
            "payload_on": "ON",
            "payload_off": "OFF",
        })  # fmt: skip
    if panel.cameras:
        put("image", "photo", {
            "name": "Last photo",
            "image_topic": topics.photo(panel.id, "+"),
            "content_type": "image/jpeg",
        })  # fmt: skip
    return out


def removals(published: Iterable[str], current: Iterable[str]) -> list[str]:
    """Config topics published before and no longer wanted (each gets an empty retained config)."""
    keep = set(current)
    return sorted(t for t in published if t not in keep)


@dataclass(frozen=True, slots=True)
class HaCommand:
    """A command from HA, ready for the panel."""

    panel: str
    command: Command


@dataclass(frozen=True, slots=True)
class HaRefused:
    """A message on an HA command topic that goes nowhere, and why (counted, never the code)."""

    reason: str
    detail: str


_ids = itertools.count(1)
_RUN: Final = secrets.token_hex(3)  # command ids stay unique across hub restarts


def parse_ha_command(
    topic: str, payload: bytes, site: str, config: HaConfig
) -> HaCommand | HaRefused:
    """What HA's alarm panel published (rendered from ``COMMAND_TEMPLATE``) -> a panel command."""
    parts = topic.split("/")
    panel = parts[2] if len(parts) == 5 else ""
    if topic != command_topic(site, panel) or panel not in {p.id for p in config.panels}:
        return HaRefused("ha_unknown_panel", f"command on {topic[:80]!r}")
    if len(payload) > MAX_COMMAND:
        return HaRefused("ha_bad_command", f"{len(payload)} bytes")
    text = payload.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = {"action": text}  # HA's default template sends the bare action
    if not isinstance(data, dict):
        return HaRefused("ha_bad_command", "not a JSON object")
    action = data.get("action")
    if action not in HA_ACTIONS:
        return HaRefused("ha_bad_command", f"action {str(action)[:20]!r}")
    code = data.get("code")
    if isinstance(code, int) and not isinstance(code, bool):
        code = str(code)
    if code in (None, "", "None"):
        code = None
    elif not isinstance(code, str) or not _CODE_RE.fullmatch(code):
        return HaRefused("ha_bad_command", "code: not 1 to 32 letters or digits")
    verb, mode = HA_ACTIONS[action]
    user = ""
    if code is None:
        if verb is Action.DISARM or config.code_arm_required or config.arm_user is None:
            return HaRefused("ha_no_code", f"{action} without a code")
        user = config.arm_user
    command = Command(f"ha-{panel}-{_RUN}-{next(_ids)}", verb, user, Via.APP, mode=mode, code=code)
    return HaCommand(panel, command)
