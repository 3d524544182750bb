"""Looking for hardware without opening it for real: what ``centinela doctor`` reports."""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import shutil
import socket
import threading
from dataclasses import dataclass
from typing import Any

from common.extras import missing
from drivers import bme280

OK, MISSING, ERROR = "ok", "missing", "error"

NOT_ADVISED = {(0x072F, 0x2200)}  # ACR122U: nfcpy advises against it (no reliable card mode)
READER_NAMES = {
    "pn531": "PN531",
    "pn533": "PN533",
    "rcs956": "Sony RC-S330/360/370",
    "rcs380": "Sony RC-S380",
    "acr122": "ACS ACR122U",
}
NO_LIBUSB = "no libusb backend (apt-get install libusb-1.0-0)"


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the doctor's report."""

    topic: str
    verdict: str
    detail: str
    needed: bool = False


@dataclass(frozen=True, slots=True)
class UsbDevice:
    """A USB device as enumerated."""

    vid: int
    pid: int
    reader: str | None  # nfcpy driver name when it is a known NFC reader
    keyboard: bool  # has a HID boot keyboard interface

    @property
    def ids(self) -> str:
        return f"{self.vid:04x}:{self.pid:04x}"


def serial_ports() -> list[str]:
    """Serial ports pyserial finds, with what they say they are."""
    from serial.tools import list_ports

    found = []
    for port in sorted(list_ports.comports(), key=lambda p: p.device):
        extra = f" {port.vid:04x}:{port.pid:04x}" if port.vid is not None else ""
        desc = port.description if port.description and port.description != "n/a" else ""
        found.append(f"{port.device}{extra} {desc}".strip())
    return found


def usb_devices(backend: Any = None) -> list[UsbDevice]:
    """Every USB device; raises usb.core.NoBackendError when libusb is missing."""
    import usb.core
    from nfc.clf.device import usb_device_map

    devices = []
    for dev in usb.core.find(find_all=True, backend=backend):
        vid, pid = int(dev.idVendor), int(dev.idProduct)
        keyboard = False
        with contextlib.suppress(usb.core.USBError, ValueError, NotImplementedError):
            for cfg in dev:
                for intf in cfg:
                    boot = (intf.bInterfaceSubClass, intf.bInterfaceProtocol) == (1, 1)
                    keyboard = keyboard or (intf.bInterfaceClass == 3 and boot)
        devices.append(UsbDevice(vid, pid, usb_device_map.get((vid, pid)), keyboard))
    return devices


def reader_label(dev: UsbDevice) -> str:
    """``Sony RC-S380 at usb:054c:06c1`` (with nfcpy's advice where it has some)."""
    name = READER_NAMES.get(dev.reader or "", dev.reader or "reader")
    label = f"{name} at usb:{dev.ids}"
    if (dev.vid, dev.pid) in NOT_ADVISED:
        label += " (not advised: nfcpy recommends another reader)"
    return label


def i2c_buses() -> list[int]:
    """Numbers of the /dev/i2c-N buses."""
    buses = []
    for path in glob.glob("/dev/i2c-*"):
        with contextlib.suppress(ValueError):
            buses.append(int(path.rsplit("-", 1)[1]))
    return sorted(buses)


def probe_bme280(bus: int, address: int, bus_factory: Any = None) -> tuple[str, str]:
    """(verdict, detail) for a BME280 at ``address`` on ``bus``."""
    try:
        if bus_factory is not None:
            smbus = bus_factory(bus)
        else:
            import smbus2

            smbus = smbus2.SMBus(bus)
    except OSError as exc:
        return (
            MISSING if not os.path.exists(f"/dev/i2c-{bus}") else ERROR
        ), f"/dev/i2c-{bus}: {exc.strerror or exc}"
    try:
        chip = smbus.read_byte_data(address, bme280.CHIP_ID)
    except OSError:
        return MISSING, f"nothing answers at 0x{address:02x} on I2C bus {bus}"
    finally:
        with contextlib.suppress(OSError):
            smbus.close()
    if chip == bme280.BME280_ID:
        return OK, f"BME280 at bme280:{bus}:0x{address:02x}"
    if chip in bme280.BMP280_IDS:
        return OK, f"BMP280 (no humidity) at bme280:{bus}:0x{address:02x}"
    return ERROR, f"chip id 0x{chip:02x} at 0x{address:02x} is not a BME280"


def gpio_state() -> tuple[str, str]:
    """(verdict, detail) for GPIO through gpiozero and lgpio."""
    chips = sorted(glob.glob("/dev/gpiochip*"))
    if not chips:
        return MISSING, "no /dev/gpiochip* (not a Raspberry Pi?)"
    absent = missing("gpiozero")
    if absent is not None:
        return ERROR, f"{chips[0]} present, but {absent}"
    if importlib.util.find_spec("lgpio") is None:
        return ERROR, f"{chips[0]} present, but the lgpio module is missing (pip install lgpio)"
    return OK, f"{', '.join(chips)} through gpiozero and lgpio"


def tcp_reachable(host: str, port: int, timeout: float = 2.0) -> tuple[str, str]:
    """(verdict, detail) for a TCP connection to host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return OK, f"{host}:{port} accepts connections"
    except TimeoutError:
        return ERROR, f"{host}:{port}: no answer within {timeout:g} s"
    except OSError as exc:
        return ERROR, f"{host}:{port}: {exc.strerror or exc}"


def path_state(path: str) -> tuple[str, str]:
    """(verdict, detail) for a device node the panel opens read-write."""
    if not os.path.exists(path):
        return MISSING, f"{path} not found"
    if not os.access(path, os.R_OK | os.W_OK):
        return ERROR, f"{path}: permission denied (add the user to its group, e.g. dialout)"
    return OK, f"{path} present"


def open_nfc_reader(path: str, timeout: float = 8.0) -> tuple[str, str]:
    """Open the reader with nfcpy, in a thread with a deadline, and close it again."""
    from drivers.nfc import open_frontend

    result: list[tuple[str, str]] = []

    def attempt() -> None:
        try:
            clf = open_frontend(path)
        except Exception as exc:
            text = str(exc) or type(exc).__name__
            result.append((MISSING, NO_LIBUSB if "backend" in text.lower() else text))
            return
        try:
            result.append((OK, f"{clf.device} at {path}"))
        finally:
            clf.close()

    # A daemon thread: a reader that hangs must not keep the doctor from exiting.
    thread = threading.Thread(target=attempt, name="centinela-doctor-nfc", daemon=True)
    thread.start()
    thread.join(timeout)
    if not result:
        return ERROR, f"the reader did not answer within {timeout:g} s"
    return result[0]


def ffmpeg_state() -> tuple[str, str]:
    """(verdict, detail) for the ffmpeg the camera driver runs."""
    path = shutil.which("ffmpeg")
    return (OK, path) if path else (MISSING, "ffmpeg not found (apt-get install ffmpeg)")


def microphones_state(root: str = "/proc/asound") -> tuple[str, str]:
    """(verdict, detail) listing the ALSA capture devices, as ``alsa:hw:C,D`` URLs."""
    from drivers.microphone import alsa_cards

    cards = alsa_cards(root)
    if not cards:
        return MISSING, "no ALSA capture device (a USB microphone shows up as alsa:hw:1,0)"
    return OK, ", ".join(f"alsa:{dev} ({name})" for dev, name in cards)


def alsa_device_state(device: str, root: str = "/proc/asound") -> tuple[str, str]:
    """(verdict, detail) for one ALSA device name such as ``hw:1,0`` or ``default``."""
    from drivers.microphone import alsa_cards

    cards = dict(alsa_cards(root))
    if not cards:
        return MISSING, "no ALSA capture device"
    wanted = device.removeprefix("plug")
    if wanted in cards:
        return OK, f"{cards[wanted]}"
    if ":" not in device:  # default, dsnoop ...: ALSA resolves it at open
        return OK, f"ALSA name (capture devices: {', '.join(cards)})"
    return MISSING, f"no capture device {device} (there are: {', '.join(cards)})"


def media_encoder_state() -> tuple[str, str]:
    """(verdict, detail) for PyAV and the Opus and VP8 encoders of its FFmpeg."""
    try:
        import av
    except ImportError:
        return MISSING, "PyAV missing: pip install 'centinela[panel]'"
    missing = []
    for name in ("libopus", "libvpx"):
        try:
            av.codec.Codec(name, "w")
        except Exception:
            missing.append(name)
    if missing:
        return ERROR, f"PyAV {av.__version__} lacks {', '.join(missing)}"
    return OK, f"PyAV {av.__version__}: Opus and VP8 in WebM"
