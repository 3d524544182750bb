"""Device URLs: what each [devices] entry accepts, and the one-line errors for the rest."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from common.errors import ConfigError
from drivers.camera import FfmpegCamera
from drivers.climate import Bme280Climate
from drivers.keypad_serial import SerialKeypad
from drivers.keypad_usb import UsbHidKeypad
from drivers.nfc import NfcReader
from drivers.registry import check_url, open_camera, open_climate, open_keypad, open_nfc
from drivers.sim_camera import SimCameraDriver
from drivers.urls import parse

GOOD = [
    ("keypad", "sim:"),
    ("keypad", "sim:socket"),
    ("keypad", "sim:usbhid"),
    ("keypad", "serial:///dev/ttyUSB0"),
    ("keypad", "serial:///dev/ttyAMA0?baud=115200"),
    ("keypad", "socket://192.168.1.20:4001"),
    ("keypad", "usbhid:1a2c:0E24"),
    ("nfc", "sim:"),
    ("nfc", "udp:127.0.0.1:54321"),
    ("nfc", "udp:localhost:5000"),
    ("nfc", "tty:S0:pn532"),
    ("nfc", "tty:USB0:pn532"),
    ("nfc", "usb:054c:06c1"),
    ("nfc", "usb:04cc"),
    ("nfc", "usb:001:023"),
    ("nfc", "usb:"),
    ("zones", "sim:"),
    ("zones", "gpio:"),
    ("zones", "gpio:?siren=17&strobe=27&tamper=22&active=low&debounce=0.1"),
    ("climate", "sim:"),
    ("climate", "bme280:1:0x76"),
    ("climate", "bme280:0:0x77?interval=30"),
    ("camera", "sim:"),
    ("camera", "sim:?delay=0.5"),
    ("camera", "v4l2:/dev/video0"),
    ("camera", "v4l2:/dev/video0?size=1280x720&format=mjpeg"),
    ("camera", "v4l2:hall=/dev/video0,garage=/dev/video2"),
]

BAD = [
    ("keypad", "", "empty device URL"),
    ("keypad", "ttyUSB0", "not a device URL"),
    ("keypad", "bluetooth:aa:bb", "unknown keypad URL scheme 'bluetooth'"),
    ("keypad", "sim:bluetooth", "unknown simulated keypad"),
    ("keypad", "serial://ttyUSB0", "absolute device path"),
    ("keypad", "serial:///dev/ttyUSB0?baud=9601", "baud 9601 is not one of"),
    ("keypad", "serial:///dev/ttyUSB0?baud=fast", "baud is not a number"),
    ("keypad", "serial:///dev/ttyUSB0?parity=E", "unknown option 'parity'"),
    ("keypad", "serial:///dev/ttyUSB0?baud=9600&baud=19200", "baud given twice"),
    ("keypad", "socket://host", "HOST:PORT"),
    ("keypad", "socket://host:99999", "port 99999 is out of range"),
    ("keypad", "socket:host:4001", "socket://HOST:PORT"),
    ("keypad", "usbhid:1a2c", "VID:PID"),
    ("keypad", "usbhid:xyz1:0e24", "VID:PID"),
    ("keypad", "serial:///dev/tty USB0", "whitespace"),
    ("nfc", "udp:192.168.1.5:54321", "must stay on 127.0.0.1"),
    ("nfc", "tty:S0", "PORT:DRIVER"),
    ("nfc", "tty:S0:acr999", "unknown nfcpy serial driver"),
    ("nfc", "usb:zz", "usb: takes"),
    ("nfc", "nfc:", "unknown NFC URL scheme"),
    ("nfc", "sim:extra", "takes no parameters"),
    ("zones", "gpio:?siren=17&strobe=17", "GPIO17 is both siren and strobe"),
    ("zones", "gpio:?siren=64", "out of range 0-53"),
    ("zones", "gpio:?active=middle", "active must be high or low"),
    ("zones", "gpio:?buzzer=4", "unknown option 'buzzer'"),
    ("zones", "gpio:17", "as a query"),
    ("zones", "pifacedigital:", "unknown zones URL scheme"),
    ("climate", "bme280:1", "BUS:ADDRESS"),
    ("climate", "bme280:1:0x99", "I2C address 0x99 is out of range 0x03-0x77"),
    ("climate", "bme280:one:0x76", "I2C bus is not a number"),
    ("climate", "dht22:4", "unknown climate URL scheme"),
    ("climate", "sim:?interval=0", "interval 0 is out of range"),
    ("camera", "v4l2:", "needs a device"),
    ("camera", "v4l2:video0", "under /dev"),
    ("camera", "v4l2:/dev/video0?size=big", "size looks like"),
    ("camera", "v4l2:hall=/tmp/x", "NAME=/dev/videoN"),
    ("camera", "rtsp://cam/stream", "unknown camera URL scheme"),
]


@pytest.mark.parametrize(("kind", "url"), GOOD)
def test_good_urls(kind: str, url: str) -> None:
    check_url(kind, url)


@pytest.mark.parametrize(("kind", "url", "reason"), BAD)
def test_bad_urls_name_file_key_and_reason(kind: str, url: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_url(kind, url, file="site.toml")
    assert info.value.file == "site.toml"
    assert info.value.key == f"devices.{kind}"
    assert reason in info.value.reason
    assert str(info.value).startswith(f"site.toml: devices.{kind}: ")
    assert "\n" not in str(info.value)


def test_unknown_device_kind() -> None:
    with pytest.raises(ConfigError, match=r"devices\.doorbell: unknown device kind"):
        check_url("doorbell", "sim:")


def test_urls_choose_the_driver() -> None:
    serial = open_keypad("serial:///dev/ttyAMA0?baud=19200")
    assert isinstance(serial, SerialKeypad)
    assert (serial.port, serial.baudrate) == ("/dev/ttyAMA0", 19200)
    assert isinstance(open_keypad("socket://127.0.0.1:4001"), SerialKeypad)
    usb = open_keypad("usbhid:1a2c:0e24")
    assert isinstance(usb, UsbHidKeypad)
    assert (usb.vid, usb.pid) == (0x1A2C, 0x0E24)
    reader = open_nfc("tty:S0:pn532")
    assert isinstance(reader, NfcReader)
    assert reader.path == "tty:S0:pn532"
    assert open_nfc("udp:localhost:5000").path == "udp:127.0.0.1:5000"
    climate = open_climate("bme280:1:0x77?interval=30")
    assert isinstance(climate, Bme280Climate)
    assert (climate.bus_number, climate.address, climate.interval) == (1, 0x77, 30.0)
    assert isinstance(open_camera("sim:", ["hall"]), SimCameraDriver)


def test_camera_urls_map_every_configured_camera() -> None:
    one = open_camera("v4l2:/dev/video0?format=mjpeg", ["hall", "door"])
    assert isinstance(one, FfmpegCamera)
    assert one.sources == {"hall": "/dev/video0", "door": "/dev/video0"}
    assert one.input_options == ("-input_format", "mjpeg")
    two = open_camera("v4l2:hall=/dev/video0,door=/dev/video2", ["hall", "door"])
    assert isinstance(two, FfmpegCamera)
    assert two.sources == {"hall": "/dev/video0", "door": "/dev/video2"}
    with pytest.raises(ConfigError, match="camera 'door' has no device"):
        open_camera("v4l2:hall=/dev/video0", ["hall", "door"])
    with pytest.raises(ConfigError, match="'attic' is not a configured camera"):
        open_camera("v4l2:hall=/dev/video0,attic=/dev/video1", ["hall"])


def test_sim_urls_come_with_a_twin() -> None:
    @dataclass(frozen=True)
    class Zone:
        name: str
        kind: str
        pin: int | None = None
        normally_open: bool = False

    from drivers.registry import open_zones

    for driver in (
        open_keypad("sim:"),
        open_keypad("sim:usbhid"),
        open_nfc("sim:"),
        open_zones("sim:", [Zone("door", "entry")]),
        open_climate("sim:"),
    ):
        assert driver.twin is not None
        assert driver.twin.driver is driver


def test_parse_keeps_what_the_driver_needs() -> None:
    plan = parse("zones", "gpio:?siren=17&active=low")
    assert plan.options == {"siren": 17, "active_low": True, "debounce": 0.05}


def test_per_camera_devices_override_the_url() -> None:
    camera = open_camera(
        "v4l2:/dev/video0", ["hall", "door"], devices={"hall": None, "door": "/dev/video4"}
    )
    assert isinstance(camera, FfmpegCamera)
    assert camera.sources == {"hall": "/dev/video0", "door": "/dev/video4"}
    with pytest.raises(ConfigError, match=r"cameras\.door\.device: must be a V4L2 node"):
        open_camera("v4l2:/dev/video0", ["door"], devices={"door": "video4"}, file="f")
    assert isinstance(
        open_camera("sim:", ["hall"], devices={"hall": "/dev/video9"}), SimCameraDriver
    )
