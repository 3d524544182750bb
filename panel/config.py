"""The site file (CONTRACT §3 plus the panel process sections) as typed, validated values."""

from __future__ import annotations

import enum
import logging
import os
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from common.configcheck import (
    NAME_RE,
    Section,
    broker_section,
    check_device_url,
    load_toml,
    parse_hex_key,
    read_secret_file,
)
from common.configcheck import TAG_RE as TAG_RE  # the panel core checks UIDs with it too
from common.mqtt import BrokerConfig
from panel.codes import CODE_RE, CodeHasher
from protocol.messages import Mode

_LOGGER = logging.getLogger(__name__)


DEVICE_SCHEMES: Final[Mapping[str, tuple[str, ...]]] = types.MappingProxyType(
    {
        "keypad": ("sim", "serial", "socket", "usbhid"),
        "nfc": ("sim", "udp", "tty", "usb"),
        "zones": ("sim", "gpio"),
        "climate": ("sim", "bme280"),
        "camera": ("sim", "v4l2"),
        "microphone": ("sim", "alsa"),
    }
)
"""Device URL schemes each kind of device accepts."""


class Role(enum.StrEnum):
    """What a user may do."""

    MASTER = "master"
    USER = "user"
    ARM_ONLY = "arm_only"


class ZoneKind(enum.StrEnum):
    """How a zone behaves."""

    ENTRY = "entry"
    PERIMETER = "perimeter"
    INTERIOR = "interior"
    PANIC = "panic"
    TAMPER = "tamper"
    FIRE = "fire"


ALWAYS_ACTIVE: Final = frozenset({ZoneKind.PANIC, ZoneKind.TAMPER, ZoneKind.FIRE})
"""Kinds that alarm in every state, even disarmed."""

DEFAULT_MODES: Final[Mapping[ZoneKind, frozenset[Mode]]] = types.MappingProxyType(
    {
        ZoneKind.ENTRY: frozenset(Mode),
        ZoneKind.PERIMETER: frozenset(Mode),
        ZoneKind.INTERIOR: frozenset({Mode.TOTAL}),
        ZoneKind.PANIC: frozenset(Mode),
        ZoneKind.TAMPER: frozenset(Mode),
        ZoneKind.FIRE: frozenset(Mode),
    }
)


@dataclass(frozen=True, slots=True)
class Timing:
    """Delays of one mode, in seconds."""

    exit_delay: float = 30.0
    entry_delay: float = 30.0
    alarm_duration: float = 180.0


@dataclass(frozen=True, slots=True)
class User:
    """A panel user; codes are kept only as keyed digests."""

    name: str
    role: Role
    tags: frozenset[str] = frozenset()
    code_digest: bytes = field(default=b"", repr=False)
    duress_digest: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Zone:
    """A detector loop; ``modes`` lists the arming modes that watch it."""

    name: str
    kind: ZoneKind
    modes: frozenset[Mode]
    pin: int | None = None
    normally_open: bool = False

    @property
    def always_active(self) -> bool:
        """Panic, tamper and fire zones alarm in every state."""
        return self.kind in ALWAYS_ACTIVE


@dataclass(frozen=True, slots=True)
class Camera:
    """A camera that can take photos on request and keeps its recent recording for clips."""

    name: str
    device: str | None = None
    ring_seconds: int = 30  # how much recent recording a clip can come from
    ring_fps: int = 5  # frames kept per second


@dataclass(frozen=True, slots=True)
class Devices:
    """Device URLs; ``sim:`` simulates the device."""

    keypad: str = "sim:"
    nfc: str = "sim:"
    zones: str = "sim:"
    climate: str = "sim:"
    camera: str = "sim:"
    microphone: str = "sim:"


@dataclass(frozen=True, slots=True)
class LinkConfig:
    """The panel <-> hub link; ``key`` is None when the file names none (the simulator's case)."""

    key: bytes | None = field(default=None, repr=False)
    previous_key: bytes | None = field(default=None, repr=False)
    heartbeat: float = 30.0


DEFAULT_TAG_URL: Final = "https://centinela.invalid/t"
"""Where an enrolled tag's URI points when ``[nfc] url`` names nothing else."""


@dataclass(frozen=True, slots=True)
class NfcConfig:
    """``[nfc]``: how tags prove themselves; the SUN keys are secrets (never in a repr)."""

    tags: str = "uid"
    meta_key: bytes | None = field(default=None, repr=False)
    file_key: bytes | None = field(default=None, repr=False)
    url: str = DEFAULT_TAG_URL

    @property
    def sun(self) -> bool:
        """Whether only NTAG 424 DNA tags with a verified, fresh SUN message count."""
        return self.tags == "sun"


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Where the durable panel store lives, and how large it may grow."""

    path: Path
    max_size: int | None = None  # bytes; None: as large as the disk allows


@dataclass(frozen=True, slots=True)
class TelemetryConfig:
    """Climate readings."""

    interval: float = 60.0


@dataclass(frozen=True)
class SiteConfig:
    """One panel and its site, validated."""

    panel_id: str
    site: str
    timing: Mapping[Mode, Timing]
    max_attempts: int
    lockout: float
    users: tuple[User, ...]
    zones: tuple[Zone, ...]
    cameras: tuple[Camera, ...]
    devices: Devices
    mqtt: BrokerConfig
    link: LinkConfig
    store: StoreConfig
    telemetry: TelemetryConfig
    source: str
    hasher: CodeHasher = field(repr=False, compare=False)
    base_timing: Timing = Timing()
    nfc: NfcConfig = NfcConfig()

    def user(self, name: str) -> User | None:
        """The user called ``name``."""
        return next((u for u in self.users if u.name == name), None)

    def zone(self, name: str) -> Zone | None:
        """The zone called ``name``."""
        return next((z for z in self.zones if z.name == name), None)

    def camera(self, name: str) -> Camera | None:
        """The camera called ``name``."""
        return next((c for c in self.cameras if c.name == name), None)

    def user_by_tag(self, uid: str) -> User | None:
        """The user holding tag ``uid`` (any case)."""
        uid = uid.upper()
        return next((u for u in self.users if uid in u.tags), None)

    def timing_for(self, mode: Mode | None) -> Timing:
        """Delays of ``mode``; the base ``[timing]`` when disarmed."""
        return self.base_timing if mode is None else self.timing[mode]


def load_site_file(path: str | os.PathLike[str]) -> SiteConfig:
    """Load and validate a site/panel TOML file; raises ConfigError."""
    name = os.fspath(path)
    data = load_toml(name)
    return load_site_mapping(data, name, base_dir=Path(name).resolve().parent)


def load_site_mapping(
    data: Mapping[str, Any], source: str, *, base_dir: str | os.PathLike[str] | None = None
) -> SiteConfig:
    """Validate a site given as a mapping (a scenario's ``site:``); ``source`` names it in errors.

    Relative paths are taken from ``base_dir``, by default the directory of ``source`` when it
    names an existing file, else the current directory.
    """
    if not isinstance(data, Mapping):
        raise Section({}, source).error(None, "the site must be a table of keys")
    if base_dir is None:
        src = Path(source)
        base = src.resolve().parent if src.is_file() else Path.cwd()
    else:
        base = Path(base_dir)
    return _Loader(Section(data, source), base).load()


class _Loader:
    def __init__(self, root: Section, base: Path) -> None:
        self.root = root
        self.base = base
        self.hasher = CodeHasher.random()

    def load(self) -> SiteConfig:
        root = self.root
        if root.has("spec"):
            root.get_int("spec", minimum=1, maximum=1)
        panel = root.get_section("panel", required=True)
        panel_id = panel.get_str("id", pattern=NAME_RE, what="1 to 32 of a-z 0-9 _ -")
        site = panel.get_str("site", pattern=NAME_RE, what="1 to 32 of a-z 0-9 _ -")
        panel.finish()
        base_timing, timing = self._timing(root.get_section("timing"))
        security = root.get_section("security")
        max_attempts = security.get_int("max_attempts", 5, minimum=1, maximum=100)
        lockout = security.get_number("lockout", 90, minimum=1, maximum=86400)
        security.finish()
        users = self._users(root.get_sections("users"))
        devices = self._devices(root.get_section("devices"))
        zones = self._zones(root.get_sections("zones"), devices)
        cameras = self._cameras(root.get_sections("cameras"))
        mqtt = self._mqtt(root.get_section("mqtt"))
        link = self._link(root.get_section("link"))
        store_sec = root.get_section("store")
        store_path = store_sec.get_store_path("path", self.base)
        max_size = None
        if store_sec.has("max_size"):
            max_size = store_sec.get_int("max_size", minimum=65536, maximum=2**40)
        store_sec.finish()
        store = StoreConfig(store_path or self.base / f"{panel_id}.db", max_size)
        tele = root.get_section("telemetry")
        telemetry = TelemetryConfig(tele.get_number("interval", 60, minimum=1, maximum=86400))
        tele.finish()
        nfc = _nfc_section(root.get_section("nfc"), self.base)
        root.finish()
        return SiteConfig(
            panel_id=panel_id,
            site=site,
            timing=types.MappingProxyType(timing),
            max_attempts=max_attempts,
            lockout=lockout,
            users=users,
            zones=zones,
            cameras=cameras,
            devices=devices,
            mqtt=mqtt,
            link=link,
            store=store,
            telemetry=telemetry,
            source=root.file,
            hasher=self.hasher,
            base_timing=base_timing,
            nfc=nfc,
        )

    def _timing(self, sec: Section) -> tuple[Timing, dict[Mode, Timing]]:
        base = self._delays(sec, Timing())
        per_mode: dict[Mode, Timing] = {}
        for mode in Mode:
            sub = sec.get_section(mode.value)
            per_mode[mode] = self._delays(sub, base)
            sub.finish()
        sec.finish()
        return base, per_mode

    @staticmethod
    def _delays(sec: Section, defaults: Timing) -> Timing:
        return Timing(
            exit_delay=sec.get_number("exit_delay", defaults.exit_delay, minimum=0, maximum=600),
            entry_delay=sec.get_number("entry_delay", defaults.entry_delay, minimum=0, maximum=600),
            alarm_duration=sec.get_number(
                "alarm_duration", defaults.alarm_duration, minimum=1, maximum=3600
            ),
        )

    def _users(self, sections: list[Section]) -> tuple[User, ...]:
        if not sections:
            raise self.root.error("users", "at least one user is needed (nobody could disarm)")
        users: list[User] = []
        names: dict[str, int] = {}
        tags: dict[str, int] = {}
        codes: dict[bytes, str] = {}
        for i, sec in enumerate(sections):
            name = sec.get_str("name", pattern=NAME_RE, what="1 to 32 of a-z 0-9 _ -")
            if name in names:
                raise sec.error("name", f"{name!r} is already users[{names[name]}]")
            names[name] = i
            role = Role(sec.get_str("role", Role.USER.value, choices=[r.value for r in Role]))
            code = self._code(sec, "code", required=True)
            assert code is not None
            duress = self._code(sec, "duress_code", required=False)
            user_tags = [
                t.upper()
                for t in sec.get_str_list(
                    "tags", [], pattern=TAG_RE, what="a UID in hex: 4, 7 or 10 bytes"
                )
            ]
            for j, tag in enumerate(user_tags):
                if tag in tags and tags[tag] != i:
                    raise sec.error(f"tags[{j}]", f"tag {tag} is already users[{tags[tag]}]'s")
                if tag in user_tags[:j]:
                    raise sec.error(f"tags[{j}]", f"tag {tag} is listed twice")
                tags[tag] = i
            code_digest = self.hasher.digest(code)
            duress_digest = None if duress is None else self.hasher.digest(duress)
            for key, digest in (("code", code_digest), ("duress_code", duress_digest)):
                if digest is None:
                    continue
                if digest in codes:
                    raise sec.error(key, f"same code as {codes[digest]}; codes must all differ")
                codes[digest] = f"{sec.path}.{key}"
            sec.finish()
            users.append(User(name, role, frozenset(user_tags), code_digest, duress_digest))
        if all(u.role is Role.ARM_ONLY for u in users):
            raise self.root.error(
                "users", "every user is arm_only: nobody could disarm (make one master or user)"
            )
        return tuple(users)

    @staticmethod
    def _code(sec: Section, key: str, *, required: bool) -> str | None:
        if not sec.has(key):
            if required:
                raise sec.error(key, "required (4 to 8 digits, in quotes)")
            sec.get_opt_str(key)
            return None
        raw = sec.data[key]
        if isinstance(raw, int) and not isinstance(raw, bool):
            raise sec.error(key, "must be 4 to 8 digits in quotes (a string), not a number")
        return sec.get_str(key, pattern=CODE_RE, what="4 to 8 digits")

    def _devices(self, sec: Section) -> Devices:
        urls = {
            kind: check_device_url(sec, kind, sec.get_str(kind, "sim:"), schemes)
            for kind, schemes in DEVICE_SCHEMES.items()
        }
        sec.finish()
        return Devices(**urls)

    def _zones(self, sections: list[Section], devices: Devices) -> tuple[Zone, ...]:
        zones: list[Zone] = []
        names: dict[str, int] = {}
        pins: dict[int, int] = {}
        gpio = devices.zones.startswith("gpio:")
        for i, sec in enumerate(sections):
            name = sec.get_str("name", pattern=NAME_RE, what="1 to 32 of a-z 0-9 _ -")
            if name in names:
                raise sec.error("name", f"{name!r} is already zones[{names[name]}]")
            names[name] = i
            kind = ZoneKind(sec.get_str("kind", choices=[k.value for k in ZoneKind]))
            if sec.has("modes") and kind in ALWAYS_ACTIVE:
                raise sec.error("modes", f"not allowed: {kind} zones are active in every state")
            mode_names = sec.get_str_list(
                "modes", [m.value for m in DEFAULT_MODES[kind]], choices=[m.value for m in Mode]
            )
            if not mode_names:
                raise sec.error("modes", "must name at least one mode (or leave it out)")
            pin: int | None = None
            if sec.has("pin"):
                pin = sec.get_int("pin", minimum=0, maximum=53)
                if pin in pins:
                    raise sec.error("pin", f"GPIO {pin} is already zones[{pins[pin]}]'s")
                pins[pin] = i
            elif gpio:
                raise sec.error("pin", "required when devices.zones is gpio:")
            normally = sec.get_str("normally", "closed", choices=("closed", "open"))
            sec.finish()
            modes = frozenset(Mode(m) for m in mode_names)
            zones.append(Zone(name, kind, modes, pin, normally == "open"))
        return tuple(zones)

    @staticmethod
    def _cameras(sections: list[Section]) -> tuple[Camera, ...]:
        cameras: list[Camera] = []
        for sec in sections:
            name = sec.get_str("name", pattern=NAME_RE, what="1 to 32 of a-z 0-9 _ -")
            if any(c.name == name for c in cameras):
                raise sec.error("name", f"camera {name!r} is listed twice")
            device = sec.get_opt_str("device")
            if device == "":
                raise sec.error("device", "must not be empty")
            ring_seconds = sec.get_int("ring_seconds", 30, minimum=0, maximum=120)
            ring_fps = sec.get_int("ring_fps", 5, minimum=1, maximum=30)
            sec.finish()
            cameras.append(Camera(name, device, ring_seconds, ring_fps))
        return tuple(cameras)

    def _mqtt(self, sec: Section) -> BrokerConfig:
        return broker_section(sec, self.base, "mqtt://127.0.0.1:1883")

    def _link(self, sec: Section) -> LinkConfig:
        keys: dict[str, bytes | None] = {}
        for key in ("key", "previous_key"):
            file_key = f"{key}_file"
            if sec.has(key) and sec.has(file_key):
                raise sec.error(file_key, f"give {key} or {file_key}, not both")
            text = sec.get_opt_str(key)
            if sec.has(file_key):
                text = read_secret_file(sec, file_key, self.base)
                keys[key] = parse_hex_key(sec, file_key, text)
            else:
                keys[key] = None if text is None else parse_hex_key(sec, key, text)
        if keys["previous_key"] is not None and keys["key"] is None:
            raise sec.error("previous_key", "needs a current key too")
        heartbeat = sec.get_number("heartbeat", 30, minimum=1, maximum=3600)
        sec.finish()
        return LinkConfig(keys["key"], keys["previous_key"], heartbeat)


SUN_KEY_HEX: Final = 32


def _nfc_section(sec: Section, base: Path) -> NfcConfig:
    tags = sec.get_str("tags", "uid", choices=("uid", "sun"))
    keys: dict[str, bytes | None] = {}
    for key in ("meta_key", "file_key"):
        file_key = f"{key}_file"
        if sec.has(key) and sec.has(file_key):
            raise sec.error(file_key, f"give {key} or {file_key}, not both")
        if sec.has(file_key):
            keys[key] = _sun_key(sec, file_key, read_secret_file(sec, file_key, base))
        else:
            text = sec.get_opt_str(key)  # a wrong type is named, never the value
            keys[key] = None if text is None else _sun_key(sec, key, text)
    url = sec.get_str("url", DEFAULT_TAG_URL)
    if not re.fullmatch(r"https?://[^\s?#]+", url):
        raise sec.error("url", "must be an http:// or https:// URL without a query")
    sec.finish()
    meta, file = keys["meta_key"], keys["file_key"]
    if tags == "sun":
        for key, value in keys.items():
            if value is None:
                raise sec.error(key, 'required when tags = "sun" (32 hex digits, a 128-bit key)')
    if meta is not None and meta == file:
        raise sec.error("file_key", "must differ from meta_key")
    return NfcConfig(tags, meta, file, url)


def _sun_key(sec: Section, key: str, text: object) -> bytes:
    """A 128-bit AES key as 32 hex digits; the error never repeats the value."""
    value = text.strip() if isinstance(text, str) else None
    if value is None or len(value) != SUN_KEY_HEX or not re.fullmatch(r"[0-9A-Fa-f]+", value):
        got = f"{len(value)} characters" if value is not None else "not a string"
        raise sec.error(key, f"must be {SUN_KEY_HEX} hex digits (a 128-bit AES key), got {got}")
    raw = bytes.fromhex(value)
    if len(set(raw)) == 1:
        raise sec.error(key, "is a placeholder or the factory key (one byte repeated)")
    return raw
