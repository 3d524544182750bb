"""Hardware-in-the-loop: the scenario target for a real panel wired to a test rig (real time).

Keys go out on a serial port wired to the panel's keypad input, tags are shown
to the panel's reader by an nfcpy tag emulator, zones are GPIO outputs wired to
the panel's zone inputs, and cloud commands, events and state go through the
real hub's cloud broker. See docs/rig.md for the wiring and the file format.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import ConfigError, UsageError
from common.mqtt import BrokerConfig, parse_broker_url
from sim.cloud import CloudStandIn
from sim.runner import Observed, ScenarioOutcome, ScenarioRun
from sim.scenario import Scenario
from sim.site import SiteFacts, read_site_file

_LOGGER = logging.getLogger(__name__)
KEY_GAP_S = 0.02  # between key bytes, as a person's fastest typing
TAG_HOLD_S = 1.5  # longest a tag stays in the field waiting for the reader to read it
COMMANDS = (
    "broker_stop",
    "broker_start",
    "restart_panel",
    "restart_hub",
    "stop_panel",
    "start_panel",
    "stop_hub",
    "start_hub",
)


@dataclass(frozen=True, slots=True)
class RigConfig:
    """A rig file, validated."""

    source: str
    facts: SiteFacts
    broker: BrokerConfig
    keypad_port: str | None = None
    baudrate: int = 9600
    nfc_emulator: str | None = None
    zone_pins: Mapping[str, int] = field(default_factory=dict)
    tamper_pins: Mapping[str, int] = field(default_factory=dict)
    active_high: bool = True
    commands: Mapping[str, str] = field(default_factory=dict)


def _table(data: Mapping[str, Any], name: str, source: str) -> Mapping[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, Mapping):
        raise ConfigError(source, name, "expected a table")
    return value


def _pins(table: Mapping[str, Any], name: str, source: str) -> dict[str, int]:
    pins: dict[str, int] = {}
    for zone, pin in table.items():
        if zone == "active_high":
            continue
        if isinstance(pin, bool) or not isinstance(pin, int) or not 0 <= pin <= 63:
            raise ConfigError(source, f"{name}.{zone}", "expected a GPIO (BCM) pin number")
        pins[zone] = pin
    return pins


def load_rig(path: str | Path) -> RigConfig:
    """Read and validate a rig file; errors name the file, key and reason."""
    source = str(path)
    data = read_site_file(path)
    rig = _table(data, "rig", source)
    site_file = rig.get("site")
    if not isinstance(site_file, str):
        raise ConfigError(source, "rig.site", "required: the site file the panel under test runs")
    site_path = (Path(source).parent / site_file).resolve()
    facts = SiteFacts.from_mapping(read_site_file(site_path))
    cloud = _table(data, "cloud", source)
    url = cloud.get("broker")
    if not isinstance(url, str):
        raise ConfigError(source, "cloud.broker", "required: the hub's cloud broker URL")
    host, port, tls = parse_broker_url(url, file=source, key="cloud.broker")
    ca = cloud.get("ca")
    broker = BrokerConfig(
        host,
        port,
        tls,
        cloud.get("username"),
        cloud.get("password"),
        (Path(source).parent / ca) if isinstance(ca, str) else None,
    )
    if cloud.get("site", facts.site) != facts.site:
        raise ConfigError(source, "cloud.site", f"differs from the site file's {facts.site!r}")
    keypad = _table(data, "keypad", source)
    nfc = _table(data, "nfc", source)
    zones = _table(data, "zones", source)
    tamper = _table(data, "tamper", source)
    for name in zones:
        if name != "active_high" and name not in facts.zones:
            raise ConfigError(source, f"zones.{name}", "not a zone of the site file")
    commands = _table(data, "commands", source)
    for name, command in commands.items():
        if name not in COMMANDS or not isinstance(command, str):
            raise ConfigError(source, f"commands.{name}", f"expected one of {', '.join(COMMANDS)}")
    emulator = nfc.get("emulator")
    if emulator is not None and not (isinstance(emulator, str) and emulator.startswith("udp:")):
        raise ConfigError(source, "nfc.emulator", "expected udp:HOST:PORT (an nfcpy UDP path)")
    return RigConfig(
        source=source,
        facts=facts,
        broker=broker,
        keypad_port=keypad.get("port"),
        baudrate=int(keypad.get("baudrate", 9600)),
        nfc_emulator=emulator,
        zone_pins=_pins(zones, "zones", source),
        tamper_pins=_pins(tamper, "tamper", source),
        active_high=bool(zones.get("active_high", True)),
        commands=dict(commands),
    )


class RigTarget:
    """Drives a real panel through the rig's serial port, tag emulator and GPIO outputs."""

    virtual = False

    def __init__(self, config: RigConfig) -> None:
        self.config = config
        self._cloud = CloudStandIn(config.broker, config.facts.site)
        self._serial: Any = None
        self._emulator: Any = None
        self._outputs: dict[str, Any] = {}

    @property
    def facts(self) -> SiteFacts:
        return self.config.facts

    @property
    def cloud(self) -> CloudStandIn:
        return self._cloud

    async def start(self) -> None:
        """Open the serial port, start the tag emulator and the GPIO outputs, connect the cloud."""
        config = self.config
        if config.keypad_port:
            import serial

            try:
                self._serial = serial.serial_for_url(config.keypad_port, config.baudrate, timeout=1)
            except (serial.SerialException, ValueError) as exc:
                raise ConfigError(config.source, "keypad.port", f"cannot open: {exc}") from None
        if config.nfc_emulator:
            from drivers.sim_nfc import SimTagEmulator

            port = int(config.nfc_emulator.rsplit(":", 1)[1])
            self._emulator = SimTagEmulator(port)
            self._emulator.start()
        if config.zone_pins or config.tamper_pins:
            from gpiozero import DigitalOutputDevice

            for name, pin in {**config.zone_pins, **_prefixed(config.tamper_pins)}.items():
                self._outputs[name] = DigitalOutputDevice(pin, active_high=config.active_high)
        await self._cloud.start()

    async def stop(self) -> None:
        """Release everything the rig opened."""
        await self._cloud.stop()
        for output in self._outputs.values():
            with contextlib.suppress(Exception):
                output.close()
        self._outputs.clear()
        if self._emulator is not None:
            await asyncio.to_thread(self._emulator.close)
            self._emulator = None
        if self._serial is not None:
            self._serial.close()
            self._serial = None

    def _need(self, thing: Any, what: str) -> Any:
        if thing is None:
            raise UsageError(f"the rig file has no {what}")
        return thing

    async def press(self, keys: str) -> None:
        port = self._need(self._serial, "[keypad] port")
        for key in keys:
            await asyncio.to_thread(port.write, key.encode("ascii"))
            await asyncio.sleep(KEY_GAP_S)
        await asyncio.to_thread(port.flush)

    async def tap(self, uid: str) -> None:
        emulator = self._need(self._emulator, "[nfc] emulator")
        reads = emulator.reads
        emulator.present(uid)
        for _ in range(int(TAG_HOLD_S / 0.01)):
            if emulator.reads != reads:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        emulator.remove()

    async def set_zone(self, zone: str, is_open: bool) -> None:
        output = self._need(self._outputs.get(zone), f"[zones] pin for {zone}")
        # A faulted (open) zone drives its output active, like a broken loop.
        output.on() if is_open else output.off()

    async def tamper(self, target: str) -> None:
        output = self._need(self._outputs.get(f"tamper:{target}"), f"[tamper] pin for {target}")
        output.on()
        await asyncio.sleep(0.2)
        output.off()

    async def _command(self, name: str) -> None:
        command = self.config.commands.get(name)
        if command is None:
            raise UsageError(f"the rig file has no [commands] {name}")
        proc = await asyncio.to_thread(
            subprocess.run, shlex.split(command), capture_output=True, timeout=60
        )
        if proc.returncode != 0:
            raise UsageError(f"{name} exited {proc.returncode}: {proc.stderr.decode()[-200:]}")

    async def set_broker(self, up: bool) -> None:
        await self._command("broker_start" if up else "broker_stop")

    async def restart(self, which: str) -> None:
        await self._command(f"restart_{which}")

    async def power(self, which: str, on: bool) -> None:
        await self._command(f"{'start' if on else 'stop'}_{which}")

    def observe(self) -> Observed:
        state = self._cloud.states.get(self.facts.panel, {})
        siren = state.get("siren")
        locked = state.get("locked")
        return Observed(
            state=state.get("state"),
            siren=None if siren is None else siren in ("on", True),
            locked=None if locked is None else bool(locked),
            open_zones=tuple(state.get("open_zones") or ()),
        )

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    async def settle(self) -> None:
        # A real panel cannot say it is idle: give it a moment, then drain the cloud side.
        await asyncio.sleep(0.05)
        await self._cloud.flush()

    async def run_for(self, seconds: float, until: Callable[[], bool] | None) -> None:
        end = time.monotonic() + seconds
        while until is None or not until():
            left = end - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(0.05, left))


def _prefixed(pins: Mapping[str, int]) -> dict[str, int]:
    return {f"tamper:{name}": pin for name, pin in pins.items()}


async def run_on_rig(
    scenario: Scenario, config: RigConfig, out: Callable[[str], None]
) -> ScenarioOutcome:
    """Run one scenario on the rig (real time)."""
    target = RigTarget(config)
    try:
        await target.start()
    except Exception as exc:
        await target.stop()
        message = f"the rig did not start: {exc}"
        out(f"✗ {scenario.path}: {message}")
        return ScenarioOutcome(scenario.path, scenario.name, "error", message=message)
    try:
        await target.settle()
        return await ScenarioRun(scenario, target, out).run()
    finally:
        await target.stop()
