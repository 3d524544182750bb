"""``centinela doctor``: serial ports, USB, NFC readers, I2C, GPIO, cameras, config, broker.

Every line has a plain verdict (ok / missing / error) and a reason. The exit
status is 0 when everything the configuration needs is present, 1 when
something it needs is missing or failing, 2 when the configuration itself is
wrong. On a machine with no hardware at all it simply says what is not there.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import logging
import secrets
import ssl
import sys
import tomllib
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import aiomqtt

from common.errors import ConfigError
from common.extras import missing
from common.mqtt import BrokerConfig, client_options
from drivers import probe
from drivers.probe import ERROR, MISSING, OK, Check
from drivers.registry import modules_needed
from drivers.urls import PARSERS, Plan, parse
from protocol.keys import fingerprint
from sim.site import HUB_SECTIONS

_LOGGER = logging.getLogger(__name__)


def run_doctor(args: argparse.Namespace) -> int:
    """The command: print the report, return the exit status."""
    if not getattr(args, "verbose", False):
        logging.getLogger("nfc.clf").setLevel(logging.WARNING)  # nfcpy narrates each search
    return report(getattr(args, "config", None), out=sys.stdout)


def report(config: str | None, *, out: TextIO, usb_backend: Any = None) -> int:
    """Print every check; 0 when all that the config needs is ok, 1 if not, 2 on a bad config."""
    checks = list(machine_checks(usb_backend))
    if config is not None:
        checks += config_checks(config, usb_backend)
    for check in checks:
        mark = "*" if check.needed else " "
        print(f"{check.verdict:<8}{mark}{check.topic:<18}{check.detail}", file=out)
    failed = [c for c in checks if c.needed and c.verdict != OK]
    if config is None:
        print("no --config given: listing only (exit 0)", file=out)
        return 0
    if not failed:
        print(f"{config}: everything it needs is present", file=out)
        return 0
    print(f"{config}: {len(failed)} problem(s): {', '.join(c.topic for c in failed)}", file=out)
    return 2 if any(c.topic == "config" for c in failed) else 1


# -- the machine ---------------------------------------------------------------------------
def machine_checks(usb_backend: Any = None) -> Iterator[Check]:
    """What this machine has, needed or not."""
    yield from _serial_checks()
    yield from _usb_checks(usb_backend)
    buses = probe.i2c_buses()
    if not buses:
        yield Check("i2c", MISSING, "no /dev/i2c-* (enable I2C: sudo raspi-config nonint do_i2c 0)")
    no_smbus = missing("smbus2")
    for bus in buses:
        if no_smbus is not None:
            yield Check("i2c", OK, f"/dev/i2c-{bus} (not probed: {no_smbus})")
            continue
        found = False
        for address in (0x76, 0x77):
            verdict, detail = probe.probe_bme280(bus, address)
            if verdict == OK:
                found = True
                yield Check("bme280", OK, detail)
        if not found:
            yield Check("i2c", OK, f"/dev/i2c-{bus} (no BME280 at 0x76 or 0x77)")
    yield Check("gpio", *probe.gpio_state())
    videos = sorted(glob.glob("/dev/video*"))
    yield (
        Check("cameras", OK, ", ".join(videos))
        if videos
        else Check("cameras", MISSING, "no /dev/video*")
    )
    yield Check("ffmpeg", *probe.ffmpeg_state())
    yield Check("microphones", *probe.microphones_state())
    yield Check("media encoder", *probe.media_encoder_state())


def _serial_checks() -> Iterator[Check]:
    absent = missing("serial")
    if absent is not None:
        yield Check("serial ports", MISSING, f"not listed: {absent}")
        return
    try:
        ports = probe.serial_ports()
    except OSError as exc:
        yield Check("serial ports", ERROR, str(exc))
        return
    for port in ports:
        yield Check("serial port", OK, port)
    if not ports:
        yield Check("serial ports", MISSING, "none found")


def _usb_checks(backend: Any) -> Iterator[Check]:
    absent = missing("usb", "nfc")
    if absent is not None:
        yield Check("usb", MISSING, f"not listed: {absent}")
        return
    import usb.core

    try:
        devices = probe.usb_devices(backend)
    except usb.core.NoBackendError:
        yield Check("usb", ERROR, probe.NO_LIBUSB)
        yield Check(
            "nfc readers", MISSING, "USB not readable; serial readers are checked when configured"
        )
        return
    except usb.core.USBError as exc:
        yield Check("usb", ERROR, str(exc))
        return
    yield Check("usb", OK, f"{len(devices)} device(s)")
    readers = [d for d in devices if d.reader]
    for dev in readers:
        verdict = ERROR if (dev.vid, dev.pid) in probe.NOT_ADVISED else OK
        yield Check("nfc reader", verdict, probe.reader_label(dev))
    if not readers:
        yield Check(
            "nfc readers", MISSING, "none on USB; serial readers are checked when configured"
        )
    for dev in devices:
        if dev.keyboard:
            yield Check("usb keypad", OK, f"HID keyboard at usbhid:{dev.ids}")


# -- the configuration ---------------------------------------------------------------------
def config_checks(path: str, usb_backend: Any = None) -> list[Check]:
    """The file, each configured device, the broker."""
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except OSError as exc:
        return [Check("config", ERROR, f"{path}: {exc.strerror or exc}", True)]
    except tomllib.TOMLDecodeError as exc:
        return [Check("config", ERROR, f"{path}: not valid TOML: {exc}", True)]
    except RecursionError:
        return [Check("config", ERROR, f"{path}: not valid TOML: nested too deeply", True)]
    if "hub" in raw and "panel" not in raw:
        return _hub_checks(path, raw)
    checks = [_site_check(path, raw)]
    if checks[0].verdict == OK and "panel" in raw:
        checks.append(_tags_check(path))
        checks.append(_store_check(path))
    devices = raw.get("devices", {})
    zones = [z for z in raw.get("zones", []) if isinstance(z, dict)]
    if isinstance(devices, dict):
        for kind in PARSERS:
            url = devices.get(kind, "sim:")
            checks.append(_device_check(path, kind, url, zones, usb_backend))
    mqtt = raw.get("mqtt")
    if isinstance(mqtt, dict) and "broker" in mqtt:
        checks.append(_site_broker_check(path, str(mqtt["broker"])))
    if isinstance(raw.get("arc"), dict):
        checks += _site_arc_checks(path, raw)
    return checks


def _site_broker_check(path: str, url: str) -> Check:
    """Log in as the panel would (user, password, TLS) when the file loads; else the URL only."""
    try:
        broker = _panel_site(path).mqtt
    except (ImportError, ConfigError):
        return _broker_check(url)
    return Check("broker", *broker_login(broker), True)


def _hub_checks(path: str, raw: dict[str, Any]) -> list[Check]:
    """A hub file: the file itself, then the local (panel link) and cloud brokers."""
    from hub.config import load_hub_file

    try:
        hub = load_hub_file(path)
    except ConfigError as exc:
        return [Check("config", ERROR, str(exc), True)]
    checks = [
        Check("config", OK, f"{path}: hub of site {hub.site}, {len(hub.panels)} panel(s)", True)
    ]
    for panel in hub.panels:
        checks.append(Check(f"key {panel.id}", OK, _fingerprints(panel.key, panel.previous_key)))
    brokers = {"local": hub.local, "cloud": hub.cloud}
    for name, broker in brokers.items():
        if name == "cloud" and broker == hub.local:
            continue
        checks.append(Check(f"broker ({name})", *broker_login(broker), True))
    kept = hub.cloud_session_expiry
    session = f"session kept {kept} s while the hub is away" if kept else "clean session"
    checks.append(Check("cloud session", OK, f"client id {hub.cloud_client_id}, {session}"))
    if hub.arc is not None:
        checks += arc_checks(hub.arc, hub.store)
    return checks


def arc_checks(arc: Any, store: Any = None) -> list[Check]:
    """The centre (SIA DC-09): its settings, each receiver's reachability, the last link state."""
    from hub.arc.outbox import read_status

    checks = [Check("arc", OK, arc.describe(), True)]
    for i, receiver in enumerate(arc.receivers):
        role = "primary" if i == 0 else "backup"
        verdict, detail = probe.tcp_reachable(receiver.host, receiver.port)
        checks.append(Check(f"arc {role}", verdict, detail, True))
    status = read_status(store) if store is not None and store.exists() else None
    if status is not None:
        link = str(status.get("link"))
        detail = (
            f"link {link} through {status.get('receiver')}"
            f"{' (backup)' if status.get('backup') else ''}, "
            f"{status.get('backlog')} event(s) waiting (as the hub last recorded)"
        )
        checks.append(Check("arc link", ERROR if link == "lost" else OK, detail, False))
    return checks


def _site_check(path: str, raw: dict[str, Any]) -> Check:
    if "panel" not in raw:
        return Check("config", OK, f"{path}: no [panel] table, site checks skipped", True)
    try:
        from panel.config import load_site_mapping
    except ImportError as exc:
        return Check("config", ERROR, f"the site loader is not available: {exc}", True)
    # [arc] and [homeassistant] are for the simulator's hub (CONTRACT §8), not the panel.
    panel_part = {k: v for k, v in raw.items() if k not in HUB_SECTIONS}
    try:
        site = load_site_mapping(panel_part, path, base_dir=Path(path).resolve().parent)
    except ConfigError as exc:
        return Check("config", ERROR, str(exc), True)
    detail = f"{path}: panel {site.panel_id} of site {site.site}"
    if site.link.key is not None:
        detail += f"; link {_fingerprints(site.link.key, site.link.previous_key)}"
    return Check("config", OK, detail, True)


def _fingerprints(key: bytes, previous: bytes | None) -> str:
    """Keys by fingerprint (never the key): compare the panel's line with the hub's."""
    text = f"key fingerprint {fingerprint(key)}"
    if previous is not None:
        text += f", previous key {fingerprint(previous)}"
    return text


def _panel_site(path: str) -> Any:
    """The site file as the panel loads it (``[arc]`` and ``[homeassistant]`` are its hub's)."""
    from common.configcheck import load_toml
    from panel.config import load_site_mapping

    raw = load_toml(path)
    panel_part = {k: v for k, v in raw.items() if k not in HUB_SECTIONS}
    return load_site_mapping(panel_part, path, base_dir=Path(path).resolve().parent)


def _site_arc_checks(path: str, raw: dict[str, Any]) -> list[Check]:
    """A site file's ``[arc]``, as ``centinela sim`` hands it to its hub."""
    from common.configcheck import Section
    from hub.arc.config import parse_arc

    panel = raw.get("panel", {})
    panel_id = str(panel.get("id", "")) if isinstance(panel, dict) else ""
    try:
        arc = parse_arc(
            Section(raw["arc"], path, "arc"), Path(path).resolve().parent, frozenset({panel_id})
        )
    except ConfigError as exc:
        return [Check("config", ERROR, str(exc), True)]
    return arc_checks(arc)


WARN = "warn"


def _tags_check(path: str) -> Check:
    """How tags prove themselves: a warning in uid mode; the keys were checked by the loader."""
    site = _panel_site(path)
    if not site.nfc.sun:
        return Check(
            "nfc tags",
            WARN,
            "uid mode: tags can be copied (a UID is sent in clear and fits on a writable card); "
            'enrol NTAG 424 DNA tags and set [nfc] tags = "sun" (docs/drivers.md)',
        )
    short = sorted(t for u in site.users for t in u.tags if len(t) != 14)
    if short:
        return Check(
            "nfc tags",
            ERROR,
            f"sun mode: {', '.join(short)} cannot be NTAG 424 DNA tags (their UIDs have 7 bytes)",
            True,
        )
    return Check("nfc tags", OK, "sun mode: meta and file keys of the right form (128-bit)", True)


MIN_FREE_BYTES = 1 << 20
"""Less free space than this on the store's file system is a storage fault."""


def _store_check(path: str) -> Check:
    """The panel store: owner-only, writable now (a real commit), room on its disk."""
    import shutil

    from common.files import mode_of
    from panel.journal import STORE_ERRORS
    from panel.store import PanelStore, StoreError

    site = _panel_site(path)
    file = site.store.path
    if not file.exists():
        return Check("storage", OK, f"{file}: not created yet (it will be, owner-only)", True)
    if mode_of(file) & 0o077:
        return Check("storage", ERROR, f"{file}: readable by others ({mode_of(file):04o})", True)
    try:
        free = shutil.disk_usage(file.parent).free
        store = PanelStore(file, max_size=site.store.max_size)
    except (StoreError, OSError) as exc:
        return Check("storage", ERROR, f"storage_fault: {exc}", True)
    try:
        store.probe()  # the panel's next writes would fail the same way
    except STORE_ERRORS as exc:
        return Check("storage", ERROR, f"storage_fault: {file} cannot be written: {exc}", True)
    finally:
        store.close()
    if free < MIN_FREE_BYTES:
        return Check("storage", ERROR, f"storage_fault: {file}: only {free} bytes free", True)
    return Check("storage", OK, f"{file}: writable, {free // (1 << 20)} MiB free", True)


def _device_check(
    path: str, kind: str, url: object, zones: Sequence[dict[str, Any]], usb_backend: Any
) -> Check:
    topic = f"devices.{kind}"
    if not isinstance(url, str):
        return Check(topic, ERROR, "must be a string (a device URL)", True)
    try:
        plan = parse(kind, url, file=path)
    except ConfigError as exc:
        return Check(topic, ERROR, exc.reason, True)
    absent = missing(*modules_needed(plan))
    if absent is not None:
        return Check(topic, ERROR, f"{url}: {absent}", True)
    if plan.scheme == "sim":
        return Check(topic, OK, f"{url} (simulated)", True)
    verdict, detail = _presence(plan, zones, usb_backend)
    if verdict != OK:
        # The panel starts anyway, so that the rest of the alarm works; it reports the device
        # as lost (a tamper event) and keeps trying to open it.
        detail += "; the panel still starts, reports it lost and keeps retrying"
    return Check(topic, verdict, f"{url}: {detail}", True)


def _presence(plan: Plan, zones: Sequence[dict[str, Any]], usb_backend: Any) -> tuple[str, str]:
    opts = plan.options
    if plan.scheme == "serial":
        return probe.path_state(plan.target)
    if plan.scheme == "socket":
        return probe.tcp_reachable(str(opts["host"]), _num(opts["port"]))
    if plan.scheme == "usbhid":
        return _usb_present(_num(opts["vid"]), _num(opts["pid"]), usb_backend)
    if plan.scheme == "udp":
        return OK, "simulation link on 127.0.0.1 (not probed)"
    if plan.scheme in ("tty", "usb"):
        if plan.scheme == "tty":
            verdict, detail = probe.path_state(str(opts["device"]))
            if verdict != OK:
                return verdict, detail
        return probe.open_nfc_reader(plan.target)
    if plan.scheme == "gpio":
        verdict, detail = probe.gpio_state()
        pins = ", ".join(f"{z.get('name')}=GPIO{z.get('pin')}" for z in zones)
        return verdict, f"{detail}; zones {pins or 'none'}"
    if plan.scheme == "bme280":
        return probe.probe_bme280(_num(opts["bus"]), _num(opts["address"]))
    if plan.scheme == "v4l2":
        sources = opts["sources"]
        assert isinstance(sources, dict)
        nodes = [str(n) for n in sources.values()] or [plan.target]
        for node in nodes:
            verdict, detail = probe.path_state(node)
            if verdict != OK:
                return verdict, detail
        verdict, detail = probe.ffmpeg_state()
        return (
            (OK, f"{', '.join(nodes)} present, ffmpeg found")
            if verdict == OK
            else (verdict, detail)
        )
    if plan.scheme == "alsa":
        return probe.alsa_device_state(plan.target)
    return ERROR, f"no presence check for {plan.scheme}:"


def _num(value: object) -> int:
    assert isinstance(value, int)
    return value


def _usb_present(vid: int, pid: int, backend: Any) -> tuple[str, str]:
    import usb.core

    try:
        found = usb.core.find(idVendor=vid, idProduct=pid, backend=backend)
    except usb.core.NoBackendError:
        return ERROR, probe.NO_LIBUSB
    except usb.core.USBError as exc:
        return ERROR, str(exc)
    return (OK, "found") if found is not None else (MISSING, f"no USB device {vid:04x}:{pid:04x}")


def broker_login(cfg: BrokerConfig, timeout: float = 5.0) -> tuple[str, str]:
    """(verdict, detail) of a real MQTT log-in with the configured user, password and TLS."""
    who = f"as {cfg.username!r}" if cfg.username else "anonymously"

    async def attempt() -> None:
        options = {**client_options(cfg), "timeout": timeout}
        options["identifier"] = f"centinela-doctor-{secrets.token_hex(4)}"
        async with asyncio.timeout(timeout + 1), aiomqtt.Client(**options):
            pass

    try:
        asyncio.run(attempt())
    except ssl.SSLError as exc:
        return ERROR, f"{cfg.url}: TLS failed: {exc.reason or exc}"
    except aiomqtt.MqttCodeError as exc:
        return ERROR, f"{cfg.url}: refused the log-in {who}: {_words(exc)}"
    except TimeoutError:
        return ERROR, f"{cfg.url}: no MQTT answer within {timeout:g} s"
    except aiomqtt.MqttError as exc:
        text = str(exc)
        if "SSL" in text or "certificate" in text:
            return ERROR, f"{cfg.url}: TLS failed: {text}"
        return ERROR, f"{cfg.url}: {text}"
    except OSError as exc:
        return ERROR, f"{cfg.url}: {exc.strerror or exc}"
    return OK, f"{cfg.url}: logged in {who}{' over TLS' if cfg.tls else ''}"


def _words(exc: aiomqtt.MqttCodeError) -> str:
    """The broker's reason code in words (``not authorized``)."""
    rc = exc.rc
    if rc is None or isinstance(rc, int):
        return str(exc).removeprefix("Connection refused: ") or "refused"
    return str(rc).lower()


def _broker_check(url: str) -> Check:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        return Check("broker", ERROR, f"{url}: not an mqtt://HOST:PORT or mqtts:// URL", True)
    try:
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    except ValueError:
        return Check("broker", ERROR, f"{url}: bad port", True)
    verdict, detail = probe.tcp_reachable(parts.hostname, port)
    if verdict == OK and parts.scheme == "mqtts":
        detail += " (TCP only; the TLS handshake is not tried)"
    return Check("broker", verdict, detail, True)


if __name__ == "__main__":  # pragma: no cover - `python -m centinela.doctor`
    parser = argparse.ArgumentParser(prog="python -m centinela.doctor")
    parser.add_argument("--config")
    raise SystemExit(run_doctor(parser.parse_args()))
