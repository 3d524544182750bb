"""Home Assistant's MQTT discovery schemas, written down from its source for the tests.

Taken from home-assistant/core, homeassistant/components/mqtt/: schemas.py
(availability, device, origin, the entity options every platform shares),
config.py (``MQTT_BASE_SCHEMA``, ``MQTT_RO_SCHEMA``), alarm_control_panel.py,
sensor.py, binary_sensor.py and image.py (each ``PLATFORM_SCHEMA_MODERN``), and
the device and state classes of the sensor and binary_sensor components. HA
drops unknown keys of a discovery payload silently (``REMOVE_EXTRA``); these
schemas refuse them instead, so that no key we send is lost on the way.
Templates are checked to compile with Jinja2, the engine HA renders them with.
"""

from __future__ import annotations

import re
from typing import Any

import jinja2
import voluptuous as vol

_TOPIC_CHARS = re.compile(r"[^\x00#+]+")


def publish_topic(value: Any) -> str:
    """HA's ``valid_publish_topic``: no wildcards, no NUL, 1 to 65535 bytes."""
    if not isinstance(value, str) or not value or len(value.encode()) > 65535:
        raise vol.Invalid("a topic is a non-empty string of at most 65535 bytes")
    if not _TOPIC_CHARS.fullmatch(value):
        raise vol.Invalid(f"wildcards are not allowed in a publish topic: {value!r}")
    return value


def subscribe_topic(value: Any) -> str:
    """HA's ``valid_subscribe_topic``: ``+`` a whole level, ``#`` only as the last level."""
    if not isinstance(value, str) or not value or "\x00" in value:
        raise vol.Invalid("a topic is a non-empty string")
    levels = value.split("/")
    for i, level in enumerate(levels):
        if "+" in level and level != "+":
            raise vol.Invalid(f"'+' must be a whole level: {value!r}")
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise vol.Invalid(f"'#' must be the whole last level: {value!r}")
    return value


def template(value: Any) -> str:
    """HA's ``cv.template``: a string Jinja2 compiles."""
    if not isinstance(value, str):
        raise vol.Invalid("a template is a string")
    try:
        jinja2.Environment(autoescape=False).parse(value)  # noqa: S701 (never HTML)
    except jinja2.TemplateSyntaxError as exc:
        raise vol.Invalid(f"template does not compile: {exc}") from None
    return value


def string(value: Any) -> str:
    """HA's ``cv.string`` for what we send: a string."""
    if not isinstance(value, str):
        raise vol.Invalid(f"expected a string, got {type(value).__name__}")
    return value


boolean = vol.Schema(bool)
positive_int = vol.All(int, vol.Range(min=0))

AVAILABILITY = {
    vol.Exclusive("availability_topic", "availability"): subscribe_topic,
    vol.Optional("availability_template"): template,
    vol.Optional("payload_available"): string,
    vol.Optional("payload_not_available"): string,
    vol.Optional("availability_mode"): vol.In(["all", "any", "latest"]),
    vol.Exclusive("availability", "availability"): [
        vol.Schema(
            {
                vol.Required("topic"): subscribe_topic,
                vol.Optional("payload_available"): string,
                vol.Optional("payload_not_available"): string,
                vol.Optional("value_template"): template,
            }
        )
    ],
}


def _one_identifier(device: dict[str, Any]) -> dict[str, Any]:
    if device.get("identifiers") or device.get("connections"):
        return device
    raise vol.Invalid("Device must have at least one identifying value")


DEVICE = vol.All(
    vol.Schema(
        {
            vol.Optional("identifiers"): vol.Any(string, [string]),
            vol.Optional("connections"): [vol.All([string], vol.Length(2, 2))],
            vol.Optional("manufacturer"): string,
            vol.Optional("model"): string,
            vol.Optional("model_id"): string,
            vol.Optional("name"): string,
            vol.Optional("hw_version"): string,
            vol.Optional("serial_number"): string,
            vol.Optional("sw_version"): string,
            vol.Optional("via_device"): string,
            vol.Optional("suggested_area"): string,
            vol.Optional("configuration_url"): string,
        }
    ),
    _one_identifier,
)
ORIGIN = vol.Schema(
    {
        vol.Required("name"): string,
        vol.Optional("sw_version"): string,
        vol.Optional("support_url"): string,
    }
)
ENTITY_COMMON = {
    **AVAILABILITY,
    vol.Optional("device"): DEVICE,
    vol.Optional("origin"): ORIGIN,
    vol.Optional("enabled_by_default"): boolean,
    vol.Optional("entity_category"): vol.In(["config", "diagnostic"]),
    vol.Optional("icon"): vol.Match(r"^[\w-]+:[\w-]+$"),
    vol.Optional("json_attributes_topic"): subscribe_topic,
    vol.Optional("json_attributes_template"): template,
    vol.Optional("object_id"): string,
    vol.Optional("default_entity_id"): string,
    vol.Optional("unique_id"): string,
}
BASE = {
    vol.Optional("qos"): vol.In([0, 1, 2]),
    vol.Optional("encoding"): vol.Any(string, ""),
}
READ_ONLY = {
    **BASE,
    vol.Required("state_topic"): subscribe_topic,
    vol.Optional("value_template"): template,
}

ALARM_FEATURES = ["arm_home", "arm_away", "arm_night", "arm_vacation", "arm_custom_bypass",
                  "trigger"]  # fmt: skip
ALARM_CONTROL_PANEL = vol.Schema(
    {
        **BASE,
        vol.Optional("supported_features"): [vol.In(ALARM_FEATURES)],
        vol.Optional("code"): string,
        vol.Optional("code_arm_required"): boolean,
        vol.Optional("code_disarm_required"): boolean,
        vol.Optional("code_trigger_required"): boolean,
        vol.Optional("command_template"): template,
        vol.Required("command_topic"): publish_topic,
        vol.Optional("name"): vol.Any(string, None),
        vol.Optional("payload_arm_away"): string,
        vol.Optional("payload_arm_home"): string,
        vol.Optional("payload_arm_night"): string,
        vol.Optional("payload_arm_vacation"): string,
        vol.Optional("payload_arm_custom_bypass"): string,
        vol.Optional("payload_disarm"): string,
        vol.Optional("payload_trigger"): string,
        vol.Optional("retain"): boolean,
        vol.Required("state_topic"): subscribe_topic,
        vol.Optional("value_template"): template,
        **ENTITY_COMMON,
    }
)

SENSOR_DEVICE_CLASSES = [
    "apparent_power", "aqi", "atmospheric_pressure", "battery", "carbon_dioxide",
    "carbon_monoxide", "current", "data_rate", "data_size", "date", "distance", "duration",
    "energy", "enum", "frequency", "gas", "humidity", "illuminance", "irradiance", "moisture",
    "monetary", "nitrogen_dioxide", "nitrogen_monoxide", "nitrous_oxide", "ozone", "ph",
    "pm1", "pm10", "pm25", "power", "power_factor", "precipitation", "precipitation_intensity",
    "pressure", "reactive_power", "signal_strength", "sound_pressure", "speed",
    "sulphur_dioxide", "temperature", "timestamp", "volatile_organic_compounds", "voltage",
    "volume", "water", "weight", "wind_speed",
]  # fmt: skip
SENSOR = vol.Schema(
    {
        **READ_ONLY,
        vol.Optional("device_class"): vol.Any(vol.In(SENSOR_DEVICE_CLASSES), None),
        vol.Optional("expire_after"): positive_int,
        vol.Optional("force_update"): boolean,
        vol.Optional("last_reset_value_template"): template,
        vol.Optional("name"): vol.Any(string, None),
        vol.Optional("options"): [string],
        vol.Optional("suggested_display_precision"): positive_int,
        vol.Optional("state_class"): vol.Any(
            vol.In(["measurement", "measurement_angle", "total", "total_increasing"]), None
        ),
        vol.Optional("unit_of_measurement"): vol.Any(string, None),
        **ENTITY_COMMON,
    }
)

BINARY_SENSOR_DEVICE_CLASSES = [
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
    "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving", "occupancy",
    "opening", "plug", "power", "presence", "problem", "running", "safety", "smoke", "sound",
    "tamper", "update", "vibration", "window",
]  # fmt: skip
BINARY_SENSOR = vol.Schema(
    {
        **READ_ONLY,
        vol.Optional("device_class"): vol.Any(vol.In(BINARY_SENSOR_DEVICE_CLASSES), None),
        vol.Optional("expire_after"): positive_int,
        vol.Optional("force_update"): boolean,
        vol.Optional("name"): vol.Any(string, None),
        vol.Optional("off_delay"): positive_int,
        vol.Optional("payload_off"): string,
        vol.Optional("payload_on"): string,
        **ENTITY_COMMON,
    }
)


def _image_topics(config: dict[str, Any]) -> dict[str, Any]:
    if "image_topic" not in config and "url_topic" not in config:
        raise vol.Invalid("Expected one of [`image_topic`, `url_topic`], got none")
    if "content_type" in config and "url_topic" in config:
        raise vol.Invalid("Option `content_type` can not be used together with `url_topic`")
    return config


IMAGE = vol.All(
    vol.Schema(
        {
            **BASE,
            vol.Optional("content_type"): string,
            vol.Optional("name"): vol.Any(string, None),
            vol.Exclusive("url_topic", "image_topic"): subscribe_topic,
            vol.Exclusive("image_topic", "image_topic"): subscribe_topic,
            vol.Optional("image_encoding"): vol.In(["b64", "raw"]),
            vol.Optional("url_template"): template,
            **ENTITY_COMMON,
        }
    ),
    _image_topics,
)

SCHEMAS = {
    "alarm_control_panel": ALARM_CONTROL_PANEL,
    "sensor": SENSOR,
    "binary_sensor": BINARY_SENSOR,
    "image": IMAGE,
}
# <discovery_prefix>/<component>/[<node_id>/]<object_id>/config
DISCOVERY_TOPIC = re.compile(
    r"(?P<prefix>[^/]+(?:/[^/]+)*?)/(?P<component>[a-z_]+)/(?:(?P<node>[A-Za-z0-9_-]+)/)?"
    r"(?P<object>[A-Za-z0-9_-]+)/config"
)


def render(text: str, **variables: Any) -> str:
    """Render a template as HA does (Jinja2, no autoescape)."""
    env = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined)  # noqa: S701
    return env.from_string(text).render(**variables)
