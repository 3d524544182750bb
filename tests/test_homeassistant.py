"""Home Assistant discovery: every payload against HA's schema, templates rendered as HA does,
removal, and the alarm panel driven through its command topic exactly as HA drives it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import voluptuous as vol

from common.clock import RealClock
from hub import homeassistant as ha
from hub.config import load_hub_mapping
from hub.counters import Counters
from hub.integrations import Integrations
from hub.store import HubStore, OutboxItem
from protocol.keys import generate_key
from protocol.messages import Action, Mode, State
from sim.site import DEMO_SITE, SimSite, read_site_file
from tests.ha_schema import DISCOVERY_TOPIC, SCHEMAS, render

ZONES = {"front_door": "entry", "kitchen_window": "perimeter", "hall_pir": "interior",
         "panic_button": "panic", "siren_box": "tamper", "smoke_hall": "fire"}  # fmt: skip
CONFIG = ha.HaConfig(panels=(ha.HaPanel("p1", "Home", ZONES, ("hall", "garden")),))


def payloads(config: ha.HaConfig = CONFIG) -> dict[str, dict[str, Any]]:
    return {t: json.loads(p) for t, p in ha.discovery("demo", config, "1.2.3").items()}


def test_every_payload_passes_home_assistants_schema() -> None:
    found = payloads()
    components: dict[str, int] = {}
    for topic, payload in found.items():
        match = DISCOVERY_TOPIC.fullmatch(topic)
        assert match is not None, topic
        assert match["prefix"] == "homeassistant" and match["node"] == "centinela_demo_p1"
        component = match["component"]
        components[component] = components.get(component, 0) + 1
        try:
            SCHEMAS[component](payload)
        except vol.Invalid as exc:
            pytest.fail(f"{topic}: {exc}")
    assert components == {"alarm_control_panel": 1, "sensor": 2, "binary_sensor": 6, "image": 1}
    # One HA device for the panel, with its id, model and firmware version.
    devices = {json.dumps(p["device"], sort_keys=True) for p in found.values()}
    assert len(devices) == 1
    device = next(iter(found.values()))["device"]
    assert device["identifiers"] == ["centinela_demo_p1"] and device["serial_number"] == "p1"
    assert device["sw_version"] == "1.2.3" and device["model"] == "centinela panel"
    unique = [p["unique_id"] for p in found.values()]
    assert len(set(unique)) == len(unique)
    for p in found.values():
        assert [a["topic"] for a in p["availability"]] == [
            "centinela/demo/hub/availability",
            "centinela/demo/p1/availability",
        ]
        assert p["availability_mode"] == "all"


def test_a_wrong_payload_fails_the_schema() -> None:
    """The schema check has teeth: what HA would refuse or drop is caught."""
    alarm = next(p for t, p in payloads().items() if "/alarm_control_panel/" in t)
    for broken in (
        {k: v for k, v in alarm.items() if k != "command_topic"},
        {**alarm, "command_topic": "centinela/demo/+/ha/command"},
        {**alarm, "supported_features": ["arm_total"]},
        {**alarm, "code_arm_required": "yes"},
        {**alarm, "colour": "red"},
        {**alarm, "device": {"name": "no identifiers"}},
    ):
        with pytest.raises(vol.Invalid):
            SCHEMAS["alarm_control_panel"](broken)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [("disarmed", "disarmed"), ("arming", "arming"), ("armed_total", "armed_away"),
     ("armed_partial", "armed_home"), ("armed_night", "armed_night"), ("pending", "pending"),
     ("triggered", "triggered")],
)  # fmt: skip
def test_alarm_states_map_to_home_assistants_words(ours: str, theirs: str) -> None:
    assert ours in {str(s) for s in State}
    alarm = next(p for t, p in payloads().items() if "/alarm_control_panel/" in t)
    state = {"state": ours, "since": "…", "open_zones": [], "siren": "off", "locked": False}
    assert render(alarm["value_template"], value_json=state) == theirs


def test_zone_and_climate_templates() -> None:
    found = payloads()
    door = found["homeassistant/binary_sensor/centinela_demo_p1/zone_front_door/config"]
    assert door["device_class"] == "door"
    classes = {t.split("/")[3][5:]: p["device_class"] for t, p in found.items() if "/zone_" in t}
    assert classes == {z: ha.DEVICE_CLASS[k] for z, k in ZONES.items()}
    assert set(classes.values()) == {"door", "window", "motion", "safety", "tamper", "smoke"}
    state = {"state": "disarmed", "open_zones": ["front_door"]}
    assert render(door["value_template"], value_json=state) == door["payload_on"]
    assert render(door["value_template"], value_json={"open_zones": []}) == door["payload_off"]
    temp = found["homeassistant/sensor/centinela_demo_p1/temperature/config"]
    hum = found["homeassistant/sensor/centinela_demo_p1/humidity/config"]
    reading = {"time": "…", "temperature": 21.5, "humidity": 44.0}
    assert render(temp["value_template"], value_json=reading) == "21.5"
    assert render(hum["value_template"], value_json=reading) == "44.0"
    assert (temp["unit_of_measurement"], hum["unit_of_measurement"]) == ("°C", "%")
    image = found["homeassistant/image/centinela_demo_p1/photo/config"]
    assert image["image_topic"] == "centinela/demo/p1/photo/+"


@pytest.mark.parametrize(
    ("action", "code", "expected"),
    [("ARM_AWAY", "1234", (Action.ARM, Mode.TOTAL, "1234")),
     ("ARM_HOME", "1234", (Action.ARM, Mode.PARTIAL, "1234")),
     ("ARM_NIGHT", "1234", (Action.ARM, Mode.NIGHT, "1234")),
     ("DISARM", "5678", (Action.DISARM, None, "5678"))],
)  # fmt: skip
def test_what_home_assistant_renders_becomes_a_panel_command(
    action: str, code: str, expected: tuple[Any, ...]
) -> None:
    alarm = next(p for t, p in payloads().items() if "/alarm_control_panel/" in t)
    payload = render(alarm["command_template"], action=action, code=code).encode()
    parsed = ha.parse_ha_command(alarm["command_topic"], payload, "demo", CONFIG)
    assert isinstance(parsed, ha.HaCommand) and parsed.panel == "p1"
    cmd = parsed.command
    assert (cmd.action, cmd.mode, cmd.code) == expected and cmd.user == ""
    assert code not in repr(parsed)


def test_commands_without_a_code_or_malformed_are_refused() -> None:
    topic = ha.command_topic("demo", "p1")
    alarm = next(p for t, p in payloads().items() if "/alarm_control_panel/" in t)
    no_code = render(alarm["command_template"], action="ARM_AWAY", code=None).encode()
    assert ha.parse_ha_command(topic, no_code, "demo", CONFIG) == ha.HaRefused(
        "ha_no_code", "ARM_AWAY without a code"
    )
    relaxed = ha.HaConfig(code_arm_required=False, arm_user="carol", panels=CONFIG.panels)
    parsed = ha.parse_ha_command(topic, no_code, "demo", relaxed)
    assert isinstance(parsed, ha.HaCommand) and parsed.command.user == "carol"
    assert parsed.command.code is None
    disarm = render(alarm["command_template"], action="DISARM", code=None).encode()
    assert isinstance(ha.parse_ha_command(topic, disarm, "demo", relaxed), ha.HaRefused)
    for bad in (b'{"action": "ARM_VACATION", "code": "1"}', b"[1]", b"x" * 300,
                b'{"action": "DISARM", "code": "12 34"}'):  # fmt: skip
        assert isinstance(ha.parse_ha_command(topic, bad, "demo", CONFIG), ha.HaRefused)
    other = ha.command_topic("demo", "p9")
    assert ha.parse_ha_command(other, b"DISARM", "demo", CONFIG).reason == "ha_unknown_panel"


def _hub_config(
    tmp_path: Path, ha_section: dict[str, Any] | None, panels: tuple[str, ...] = ("p1",)
) -> Any:
    data: dict[str, Any] = {
        "hub": {"site": "demo", "store": str(tmp_path / "hub.db")},
        "panels": [{"id": p, "key": generate_key()} for p in panels],
    }
    if ha_section is not None:
        data["homeassistant"] = ha_section
    return load_hub_mapping(data, str(tmp_path / "hub.toml"))


async def _published(tmp_path: Path, config: Any) -> list[OutboxItem]:
    queued: list[OutboxItem] = []
    integrations = Integrations(config, RealClock(), Counters(int), queued.extend)
    await integrations.start()
    await integrations.stop()
    return queued


async def test_a_panel_removed_from_the_hub_loses_its_entities(tmp_path: Path) -> None:
    store = HubStore(tmp_path / "hub.db")
    both = await _published(tmp_path, _hub_config(tmp_path, {}, ("p1", "p2")))
    assert {i.topic.split("/")[2] for i in both} == {"centinela_demo_p1", "centinela_demo_p2"}
    one = await _published(tmp_path, _hub_config(tmp_path, {}, ("p1",)))
    emptied = {i.topic for i in one if i.payload == b""}
    assert emptied == {i.topic for i in both if "centinela_demo_p2" in i.topic}
    assert all(i.retain for i in one)
    # Home Assistant dropped from the configuration altogether: every entity goes.
    none = await _published(tmp_path, _hub_config(tmp_path, None))
    assert {i.topic for i in none} == {i.topic for i in one if i.payload}
    assert all(i.payload == b"" and i.retain for i in none)
    assert await _published(tmp_path, _hub_config(tmp_path, None)) == []
    store.close()


async def test_removed_entities_get_empty_retained_configs(tmp_path: Path) -> None:
    queued: list[OutboxItem] = []
    store = HubStore(tmp_path / "hub.db")
    full = {"panels": {"p1": {"zones": dict(ZONES), "cameras": ["hall"]}}}
    first = Integrations(_hub_config(tmp_path, full), RealClock(), Counters(int), queued.extend)
    await first.start()
    await first.stop()
    published = {i.topic for i in queued}
    assert all(i.retain and i.payload for i in queued) and len(published) == 10
    queued.clear()
    fewer = {"panels": {"p1": {"zones": {"front_door": "entry"}}}}
    second = Integrations(_hub_config(tmp_path, fewer), RealClock(), Counters(int), queued.extend)
    await second.start()
    await second.stop()
    store.close()
    emptied = {i.topic for i in queued if i.payload == b""}
    assert all(i.retain for i in queued)
    assert emptied == {t for t in published if "zone_front_door" not in t and (
        "/binary_sensor/" in t or "/image/" in t)}  # fmt: skip
    assert {i.topic for i in queued if i.payload} == published - emptied


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    from common.errors import ConfigError

    for section, key in (
        ({"code_arm_required": False}, "homeassistant.arm_user"),
        ({"panels": {"p2": {}}}, "homeassistant.panels.p2"),
        ({"panels": {"p1": {"zones": {"door": "gate"}}}}, "homeassistant.panels.p1.zones.door"),
        ({"discovery_prefix": "a/+/b"}, "homeassistant.discovery_prefix"),
    ):
        with pytest.raises(ConfigError) as info:
            _hub_config(tmp_path, section)
        assert info.value.key == key, info.value


# -- the round trip through a running site -------------------------------------------------


class FakeHomeAssistant:
    """What HA's MQTT integration does with our discovery: subscribe, render, publish."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.configs: dict[str, dict[str, Any]] = {}
        self.alarm_state: str | None = None
        self.changed = asyncio.Event()

    @property
    def alarm(self) -> dict[str, Any]:
        return next(p for t, p in self.configs.items() if "/alarm_control_panel/" in t)

    async def listen(self) -> None:
        async for message in self.client.messages:
            topic = str(message.topic)
            payload = message.payload if isinstance(message.payload, bytes) else b""
            if topic.startswith("homeassistant/") and topic.endswith("/config"):
                if payload:
                    self.configs[topic] = json.loads(payload)
                    if "/alarm_control_panel/" in topic:
                        await self.client.subscribe(self.alarm["state_topic"], qos=1)
                else:
                    self.configs.pop(topic, None)
            elif self.configs and topic == self.alarm["state_topic"]:
                self.alarm_state = render(
                    self.alarm["value_template"], value_json=json.loads(payload)
                )
            self.changed.set()

    async def until(self, predicate: Callable[[], bool], timeout: float = 15) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

    async def press(self, action_key: str, code: str | None) -> None:
        """A user presses a button on HA's alarm card (and types a code on its keypad)."""
        alarm = self.alarm
        required = alarm["code_arm_required"] if action_key != "disarm" else True
        if required and not code:
            return  # HA's frontend does not send it (REMOTE_CODE wants a code)
        action = alarm.get(f"payload_{action_key}", action_key.upper())
        payload = render(alarm["command_template"], action=action, code=code)
        await self.client.publish(alarm["command_topic"], payload, qos=alarm.get("qos", 0))


@pytest.mark.parametrize("code_arm_required", [True, False])
async def test_home_assistant_drives_the_panel_through_the_command_topic(
    tmp_path: Path, code_arm_required: bool
) -> None:
    data: dict[str, Any] = read_site_file(DEMO_SITE)
    data["homeassistant"] = {"code_arm_required": code_arm_required}
    if not code_arm_required:
        data["homeassistant"]["arm_user"] = "carol"
    site = SimSite(data, "ha-site", clock=RealClock(), workdir=tmp_path)
    await site.start()
    listener: asyncio.Task[None] | None = None
    try:
        host, port = site.broker_url.removeprefix("mqtt://").split(":")
        async with aiomqtt.Client(host, int(port)) as client:
            fake = FakeHomeAssistant(client)
            listener = asyncio.create_task(fake.listen())
            await client.subscribe("homeassistant/#", qos=1)
            await fake.until(lambda: len(fake.configs) == 10 and fake.alarm_state == "disarmed")
            for topic, payload in fake.configs.items():
                SCHEMAS[topic.split("/")[1]](payload)
            assert fake.alarm["code_arm_required"] is code_arm_required
            cloud = site.cloud
            assert cloud is not None

            async def event(kind: str) -> dict[str, Any]:
                async with asyncio.timeout(15):
                    while True:
                        found = [e for e in cloud.events if e["type"] == kind]
                        if found:
                            return found[-1]
                        await asyncio.sleep(0.02)

            if code_arm_required:
                await fake.press("arm_away", None)  # HA's frontend sends nothing
                await fake.press("arm_away", "2468")  # carol's code
            else:
                await fake.press("arm_away", None)  # carol, configured as arm_user
            await fake.until(lambda: fake.alarm_state == "arming")
            arming = await event("arming")
            assert (arming["user"], arming["method"], arming["mode"]) == ("carol", "app", "total")
            # carol (arm_only) may not disarm; a wrong code is a wrong code.
            await fake.press("disarm", "2468")
            await fake.press("disarm", "9999")
            await event("code_rejected")
            assert fake.alarm_state == "arming"
            await fake.press("disarm", "5678")  # bob
            await fake.until(lambda: fake.alarm_state == "disarmed")
            disarmed = await event("disarmed")
            assert (disarmed["user"], disarmed["method"]) == ("bob", "app")
            await fake.press("arm_home", "1234")
            await fake.until(lambda: fake.alarm_state == "arming")
            await fake.press("disarm", "1234")
            await fake.until(lambda: fake.alarm_state == "disarmed")
            assert site.hub.counters.get("ha_commands") >= 5
            assert site.hub.counters.get("ha_no_code", 0) == 0
    finally:
        if listener is not None:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        await site.stop()
