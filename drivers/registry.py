"""Device URLs to drivers: the one place that knows which class serves which scheme.

``sim:`` gives the real driver reading a simulated twin on the real wire (the
camera, whose wire is ffmpeg, gets a simulated driver instead); the twin is the
driver's ``.twin``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from common.errors import ConfigError
from common.extras import require
from drivers.camera import CameraDriver
from drivers.climate import ClimateDriver
from drivers.keypad import KeypadDriver
from drivers.urls import Plan, parse
from drivers.zones import GpioOptions, ZonesDriver, ZoneSpec

if TYPE_CHECKING:
    from drivers.microphone import Microphone
    from drivers.nfc import NfcDriver
    from drivers.ntag424 import SunPolicy

__all__ = [
    "check_installed",
    "check_url",
    "modules_needed",
    "open_camera",
    "open_climate",
    "open_keypad",
    "open_nfc",
    "open_zones",
]


def check_url(kind: str, url: str, *, file: str = "config") -> None:
    """Validate a ``[devices]`` URL without opening anything; raises ConfigError."""
    parse(kind, url, file=file)


def check_installed(kind: str, url: str, *, file: str = "config") -> None:
    """Raise MissingDependency when the driver for ``url`` needs a library not installed here."""
    _plan(kind, url, file)


def modules_needed(plan: Plan) -> tuple[str, ...]:
    """The optional modules the driver for ``plan`` imports (common.extras names their extra)."""
    if plan.kind == "keypad":
        usb = plan.scheme == "usbhid" or (plan.scheme == "sim" and plan.target == "usbhid")
        return ("usb",) if usb else ("serial", "serial_asyncio_fast")
    if plan.kind == "nfc":
        return ("nfc",)
    if plan.kind == "zones":
        return ("gpiozero",)  # the simulated zones are gpiozero's mock pins
    if plan.kind == "climate" and plan.scheme == "bme280":
        return ("smbus2",)
    if plan.kind == "camera" and plan.scheme == "sim":
        return ("PIL",)  # the simulated camera draws its pictures
    return ()


def _plan(kind: str, url: str, file: str) -> Plan:
    """Parse ``url``; a driver whose library is not installed is a one-line error here."""
    plan = parse(kind, url, file=file)
    require(*modules_needed(plan), where=f"{file}: devices.{kind}")
    return plan


def open_keypad(url: str, *, file: str = "config") -> KeypadDriver:
    """A keypad driver for ``url`` (enter it with ``async with``)."""
    plan = _plan("keypad", url, file)
    if plan.scheme == "sim":
        return _sim_keypad(plan.target)
    if plan.scheme in ("serial", "socket"):
        from drivers.keypad_serial import SerialKeypad

        baud = plan.options.get("baud", 9600)
        assert isinstance(baud, int)
        return SerialKeypad(plan.target, baudrate=baud)
    from drivers.keypad_usb import UsbHidKeypad

    vid, pid = plan.options["vid"], plan.options["pid"]
    assert isinstance(vid, int)
    assert isinstance(pid, int)
    return UsbHidKeypad(vid, pid)


def _sim_keypad(variant: str) -> KeypadDriver:
    driver: KeypadDriver
    if variant == "usbhid":
        from drivers.keypad_usb import UsbHidKeypad
        from drivers.sim_usb import SimUsbKeypad

        usb_twin = SimUsbKeypad()
        driver = UsbHidKeypad(usb_twin.backend.vid, usb_twin.backend.pid, backend=usb_twin.backend)
        driver.twin = usb_twin
        usb_twin.attach(driver)
        return driver
    from drivers.keypad_serial import SerialKeypad
    from drivers.sim_keypad import SimKeypad, SimSocketKeypad

    twin = SimSocketKeypad() if variant == "socket" else SimKeypad()
    driver = SerialKeypad(twin.driver_port)  # re-read from the twin once it has started
    driver.twin = twin
    twin.attach(driver)
    return driver


def open_nfc(url: str, *, file: str = "config", sun: SunPolicy | None = None) -> NfcDriver:
    """An NFC reader driver for ``url``; with ``sun`` it accepts only genuine, fresh SUN reads."""
    plan = _plan("nfc", url, file)
    from drivers.nfc import NfcReader

    if plan.scheme == "sim":
        from drivers.sim_nfc import SimTagEmulator

        twin = SimTagEmulator()
        # The path is re-read once the emulator has bound.
        reader = NfcReader(twin.path, frontend=twin.open_frontend, sun=sun)
        reader.twin = twin
        twin.attach(reader)
        return reader
    return NfcReader(plan.target, sun=sun)


def open_zones(url: str, zones: Sequence[ZoneSpec], *, file: str = "config") -> ZonesDriver:
    """Zones (and siren/strobe) for ``url``; each gpio: zone needs a pin."""
    from drivers.zones import GpioZones

    plan = _plan("zones", url, file)
    if plan.scheme == "sim":
        from drivers.sim_zones import SimZones

        twin = SimZones(zones)
        driver = GpioZones(
            twin.zones, twin.options, tamper_pins=twin.tamper_pins, pin_factory=twin.factory
        )
        driver.twin = twin
        twin.attach(driver)
        return driver
    options = _gpio_options(plan)
    _check_pins(zones, options, file)
    return GpioZones(zones, options)


def _gpio_options(plan: Plan) -> GpioOptions:
    def pin(role: str) -> int | None:
        value = plan.options.get(role)
        assert value is None or isinstance(value, int)
        return value

    active_low, debounce = plan.options["active_low"], plan.options["debounce"]
    assert isinstance(active_low, bool)
    assert isinstance(debounce, float)
    return GpioOptions(pin("siren"), pin("strobe"), pin("tamper"), active_low, debounce)


def _check_pins(zones: Sequence[ZoneSpec], options: GpioOptions, file: str) -> None:
    used: dict[int, str] = {}
    for role in ("siren", "strobe", "tamper"):
        pin = getattr(options, role)
        if pin is not None:
            used[pin] = f"the {role}"
    for zone in zones:
        key = f"zones.{zone.name}.pin"
        if zone.pin is None:
            raise ConfigError(file, key, "a gpio: zone needs a pin (BCM GPIO number)")
        if not 0 <= zone.pin <= 53:
            raise ConfigError(file, key, f"GPIO{zone.pin} does not exist (0-53)")
        if zone.pin in used:
            raise ConfigError(file, key, f"GPIO{zone.pin} is already used by {used[zone.pin]}")
        used[zone.pin] = f"zone {zone.name}"


def open_climate(
    url: str, *, file: str = "config", clock: Callable[[], float] | None = None
) -> ClimateDriver:
    """A climate sensor driver; ``clock`` (epoch seconds) drives the simulated day."""
    from drivers.climate import Bme280Climate

    plan = _plan("climate", url, file)
    interval = plan.options["interval"]
    assert isinstance(interval, float)
    if plan.scheme == "sim":
        from drivers.sim_climate import SimClimate

        twin = SimClimate(clock)
        driver = Bme280Climate(1, twin.sensor.address, bus_factory=twin.bus, interval=interval)
        driver.twin = twin
        twin.attach(driver)
        return driver
    bus, address = plan.options["bus"], plan.options["address"]
    assert isinstance(bus, int)
    assert isinstance(address, int)
    return Bme280Climate(bus, address, interval=interval)


def open_microphone(url: str, *, file: str = "config") -> Microphone:
    """A microphone for the silent call: ``sim:`` (a tone or a file) or ``alsa:DEVICE``."""
    from drivers.microphone import AlsaMicrophone, SimMicrophone

    plan = parse("microphone", url, file=file)
    if plan.scheme == "sim":
        tone, path = plan.options["tone"], plan.options["file"]
        assert isinstance(tone, float)
        assert path is None or isinstance(path, str)
        return SimMicrophone(tone=tone, file=path)
    return AlsaMicrophone(plan.target)


def open_camera(
    url: str,
    cameras: Sequence[str],
    *,
    file: str = "config",
    devices: Mapping[str, str | None] | None = None,
    rings: Mapping[str, tuple[int, int]] | None = None,
) -> CameraDriver:
    """A camera driver serving the named cameras.

    ``devices`` maps a camera name to its own V4L2 node (``[[cameras]] device``),
    overriding the node in a ``v4l2:`` URL; it is ignored for ``sim:``.
    """
    plan = _plan("camera", url, file)
    if plan.scheme == "sim":
        from drivers.sim_camera import SimCamera, SimCameraDriver

        delay = plan.options["delay"]
        assert isinstance(delay, float)
        return SimCameraDriver(cameras, SimCamera(delay=delay), rings=rings)
    from drivers.camera import FfmpegCamera

    sources = _camera_sources(plan, cameras, file)
    for name, node in (devices or {}).items():
        if node is None:
            continue
        if name not in sources:
            raise ConfigError(file, f"cameras.{name}", "not a configured camera")
        if not node.startswith("/dev/"):
            raise ConfigError(file, f"cameras.{name}.device", "must be a V4L2 node under /dev")
        sources[name] = node
    options = plan.options["options"]
    timeout = plan.options["timeout"]
    assert isinstance(options, list)
    assert isinstance(timeout, float)
    return FfmpegCamera(sources, input_options=options, timeout=timeout, rings=rings)


def _camera_sources(plan: Plan, cameras: Sequence[str], file: str) -> dict[str, str]:
    mapped = plan.options["sources"]
    assert isinstance(mapped, dict)
    if not mapped:
        return dict.fromkeys(cameras, plan.target)
    for name in cameras:
        if name not in mapped:
            raise ConfigError(file, "devices.camera", f"camera {name!r} has no device in the URL")
    for name in mapped:
        if name not in cameras:
            raise ConfigError(file, "devices.camera", f"{name!r} is not a configured camera")
    return {str(k): str(v) for k, v in mapped.items()}
