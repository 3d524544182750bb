"""Device URLs (CONTRACT §3 ``[devices]``) parsed into plans; every mistake is a ConfigError."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field

from common.errors import ConfigError

BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
SIM_KEYPADS = ("pty", "socket", "usbhid")
NFC_TTY_DRIVERS = ("pn532", "pn533", "arygon", "rcs956")
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_MAX_PIN = 53


class _Bad(Exception):
    """A reason, turned into a ConfigError by the caller that knows file and key."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What a URL asks for: a scheme and the parsed parameters."""

    kind: str
    scheme: str
    target: str = ""
    options: dict[str, object] = field(default_factory=dict)


def _split(url: str) -> tuple[str, str, dict[str, str]]:
    if not isinstance(url, str) or not url.strip():
        raise _Bad("empty device URL")
    if url != url.strip() or any(ch.isspace() for ch in url):
        raise _Bad(f"device URL contains whitespace: {url!r}")
    scheme, sep, rest = url.partition(":")
    if not sep or not re.fullmatch(r"[a-z][a-z0-9]*", scheme):
        raise _Bad(f"not a device URL (scheme:...): {url!r}")
    rest, _, query = rest.partition("?")
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise _Bad(f"malformed query in {url!r}") from None
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            raise _Bad(f"{key} given twice")
        params[key] = value
    return scheme, rest, params


def _only(params: dict[str, str], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        hint = ", ".join(allowed) if allowed else "none"
        raise _Bad(f"unknown option {unknown[0]!r} (allowed: {hint})")


def _int(value: str, what: str, lo: int, hi: int, base: int = 10) -> int:
    try:
        number = int(value, base)
    except ValueError:
        raise _Bad(f"{what} is not a number: {value!r}") from None
    if not lo <= number <= hi:
        if base == 16 or (base == 0 and value.lower().startswith("0x")):
            raise _Bad(f"{what} {value} is out of range 0x{lo:02x}-0x{hi:02x}")
        raise _Bad(f"{what} {number} is out of range {lo}-{hi}")
    return number


def _float(value: str, what: str, lo: float, hi: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise _Bad(f"{what} is not a number: {value!r}") from None
    if not lo <= number <= hi:
        raise _Bad(f"{what} {number:g} is out of range {lo:g}-{hi:g}")
    return number


def _host_port(rest: str, what: str) -> tuple[str, int]:
    host, sep, port = rest.rpartition(":")
    if not sep or not host:
        raise _Bad(f"{what} needs HOST:PORT")
    return host.strip("[]"), _int(port, "port", 1, 65535)


def _keypad(url: str) -> Plan:
    scheme, rest, params = _split(url)
    if scheme == "sim":
        _only(params, ())
        variant = rest or "pty"
        if variant not in SIM_KEYPADS:
            raise _Bad(f"unknown simulated keypad {variant!r} (sim:, sim:socket, sim:usbhid)")
        return Plan("keypad", "sim", variant)
    if scheme == "serial":
        _only(params, ("baud",))
        path = rest[2:] if rest.startswith("//") else rest
        if not path.startswith("/"):
            raise _Bad("serial: needs an absolute device path, e.g. serial:///dev/ttyUSB0")
        baud = _int(params.get("baud", "9600"), "baud", 1, 4_000_000)
        if baud not in BAUDRATES:
            raise _Bad(f"baud {baud} is not one of {', '.join(map(str, BAUDRATES))}")
        return Plan("keypad", "serial", path, {"baud": baud})
    if scheme == "socket":
        _only(params, ())
        if not rest.startswith("//"):
            raise _Bad("socket: URLs look like socket://HOST:PORT")
        host, port = _host_port(rest[2:], "socket:")
        return Plan("keypad", "socket", f"socket://{host}:{port}", {"host": host, "port": port})
    if scheme == "usbhid":
        _only(params, ())
        vid, sep, pid = rest.partition(":")
        if not sep or not _HEX4.fullmatch(vid) or not _HEX4.fullmatch(pid):
            raise _Bad("usbhid: needs VID:PID in hex, e.g. usbhid:1a2c:0e24")
        return Plan("keypad", "usbhid", rest.lower(), {"vid": int(vid, 16), "pid": int(pid, 16)})
    raise _Bad(f"unknown keypad URL scheme {scheme!r} (sim:, serial://, socket://, usbhid:)")


def _nfc(url: str) -> Plan:
    scheme, rest, params = _split(url)
    _only(params, ())
    if scheme == "sim":
        if rest:
            raise _Bad("the simulated reader takes no parameters (sim:)")
        return Plan("nfc", "sim")
    if scheme == "udp":
        host, port = _host_port(rest, "udp:") if rest else ("127.0.0.1", 54321)
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise _Bad("udp: is a simulation link and must stay on 127.0.0.1")
        return Plan("nfc", "udp", f"udp:127.0.0.1:{port}")
    if scheme == "tty":
        tty, sep, driver = rest.partition(":")
        if not sep or not re.fullmatch(r"[A-Za-z]+[0-9]*", tty):
            raise _Bad("tty: needs PORT:DRIVER, e.g. tty:S0:pn532 or tty:USB0:pn532")
        if driver not in NFC_TTY_DRIVERS:
            raise _Bad(f"unknown nfcpy serial driver {driver!r} ({', '.join(NFC_TTY_DRIVERS)})")
        return Plan("nfc", "tty", url, {"device": f"/dev/tty{tty}"})
    if scheme == "usb":
        parts = rest.split(":") if rest else []
        ids = len(parts) <= 2 and all(_HEX4.fullmatch(p) for p in parts)
        bus_dev = len(parts) <= 2 and all(re.fullmatch(r"[0-9]{3}", p) for p in parts)
        if not (ids or bus_dev):
            raise _Bad("usb: takes VID[:PID] in hex (usb:054c:06c1) or BUS[:DEV] (usb:001:023)")
        return Plan("nfc", "usb", url if rest else "usb")
    raise _Bad(f"unknown NFC URL scheme {scheme!r} (sim:, udp:, tty:, usb:)")


def _zones(url: str) -> Plan:
    scheme, rest, params = _split(url)
    if scheme == "sim":
        _only(params, ())
        if rest:
            raise _Bad("the simulated zones take no parameters (sim:)")
        return Plan("zones", "sim")
    if scheme == "gpio":
        _only(params, ("siren", "strobe", "tamper", "active", "debounce"))
        if rest not in ("", "//"):
            raise _Bad("gpio: takes its settings as a query, e.g. gpio:?siren=17&strobe=27")
        opts: dict[str, object] = {}
        pins: dict[int, str] = {}
        for name in ("siren", "strobe", "tamper"):
            if name in params:
                pin = _int(params[name], f"{name} pin", 0, _MAX_PIN)
                if pin in pins:
                    raise _Bad(f"GPIO{pin} is both {pins[pin]} and {name}")
                pins[pin] = name
                opts[name] = pin
        active = params.get("active", "high")
        if active not in ("high", "low"):
            raise _Bad("active must be high or low (the relay board's trigger level)")
        opts["active_low"] = active == "low"
        opts["debounce"] = _float(params.get("debounce", "0.05"), "debounce", 0.0, 5.0)
        return Plan("zones", "gpio", "", opts)
    raise _Bad(f"unknown zones URL scheme {scheme!r} (sim:, gpio:)")


def _climate(url: str) -> Plan:
    scheme, rest, params = _split(url)
    _only(params, ("interval",))
    interval = _float(params.get("interval", "60"), "interval", 1.0, 86400.0)
    if scheme == "sim":
        if rest:
            raise _Bad("the simulated sensor takes no parameters (sim:)")
        return Plan("climate", "sim", "", {"interval": interval})
    if scheme == "bme280":
        bus, sep, addr = rest.partition(":")
        if not sep:
            raise _Bad("bme280: needs BUS:ADDRESS, e.g. bme280:1:0x76")
        number = _int(bus, "I2C bus", 0, 255)
        address = _int(addr, "I2C address", 0x03, 0x77, 0)
        return Plan(
            "climate", "bme280", "", {"bus": number, "address": address, "interval": interval}
        )
    raise _Bad(f"unknown climate URL scheme {scheme!r} (sim:, bme280:)")


def _camera(url: str) -> Plan:
    scheme, rest, params = _split(url)
    if scheme == "sim":
        _only(params, ("delay",))
        delay = _float(params.get("delay", "0"), "delay", 0.0, 60.0)
        return Plan("camera", "sim", "", {"delay": delay})
    if scheme == "v4l2":
        _only(params, ("size", "format", "timeout"))
        if not rest:
            raise _Bad("v4l2: needs a device, e.g. v4l2:/dev/video0")
        sources: dict[str, str] = {}
        if "=" in rest:
            for item in rest.split(","):
                name, sep, dev = item.partition("=")
                if not sep or not name or not dev.startswith("/dev/"):
                    raise _Bad("v4l2: maps cameras as NAME=/dev/videoN,NAME=/dev/videoM")
                sources[name] = dev
        elif not rest.startswith("/dev/"):
            raise _Bad("v4l2: needs a device path under /dev, e.g. v4l2:/dev/video0")
        options: list[str] = []
        if "size" in params:
            if not re.fullmatch(r"[1-9][0-9]{1,4}x[1-9][0-9]{1,4}", params["size"]):
                raise _Bad("size looks like 1280x720")
            options += ["-video_size", params["size"]]
        if "format" in params:
            if not re.fullmatch(r"[a-z0-9_]{2,16}", params["format"]):
                raise _Bad("format is a V4L2 input format such as mjpeg or yuyv422")
            options += ["-input_format", params["format"]]
        timeout = _float(params.get("timeout", "10"), "timeout", 0.5, 120.0)
        return Plan(
            "camera", "v4l2", rest, {"sources": sources, "options": options, "timeout": timeout}
        )
    raise _Bad(f"unknown camera URL scheme {scheme!r} (sim:, v4l2:)")


def _microphone(url: str) -> Plan:
    scheme, rest, params = _split(url)
    if scheme == "sim":
        _only(params, ("tone", "file"))
        tone = _float(params.get("tone", "1000"), "tone", 20.0, 20000.0)
        return Plan("microphone", "sim", "", {"tone": tone, "file": params.get("file")})
    if scheme == "alsa":
        _only(params, ())
        if not re.fullmatch(r"[A-Za-z0-9_]+(:[A-Za-z0-9_=,]+)?", rest):
            raise _Bad("alsa: needs an ALSA device such as alsa:hw:1,0 or alsa:default")
        return Plan("microphone", "alsa", rest, {})
    raise _Bad(f"unknown microphone URL scheme {scheme!r} (sim:, alsa:)")


PARSERS: dict[str, Callable[[str], Plan]] = {
    "keypad": _keypad,
    "nfc": _nfc,
    "zones": _zones,
    "climate": _climate,
    "camera": _camera,
    "microphone": _microphone,
}


def parse(kind: str, url: str, *, file: str = "config") -> Plan:
    """The plan for a ``[devices]`` entry; ConfigError(file, 'devices.KIND', reason) if wrong."""
    parser = PARSERS.get(kind)
    if parser is None:
        raise ConfigError(
            file, f"devices.{kind}", f"unknown device kind (known: {', '.join(PARSERS)})"
        )
    try:
        return parser(url)
    except _Bad as exc:
        raise ConfigError(file, f"devices.{kind}", str(exc)) from None
