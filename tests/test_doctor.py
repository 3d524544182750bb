"""`centinela doctor` on this machine (no alarm hardware at all) and on configurations."""

from __future__ import annotations

import io
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from centinela import doctor
from centinela.cli import main
from drivers import probe
from drivers.sim_usb import SimUsbKeypad
from sim.broker import BrokerSpec, Mosquitto, TlsFiles, make_ca

SITE = """
[panel]
id = "p1"
site = "demo"

[[users]]
name = "alice"
code = "1234"
role = "master"

[[zones]]
name = "front_door"
kind = "entry"
{zone_extra}

[devices]
{devices}

{mqtt}
"""

VERDICTS = ("ok", "missing", "error")


def write_site(tmp_path: Path, devices: str = "", mqtt: str = "", zone_extra: str = "") -> str:
    path = tmp_path / "site.toml"
    path.write_text(SITE.format(devices=devices, mqtt=mqtt, zone_extra=zone_extra))
    return str(path)


def run(config: str | None, usb_backend: object = None) -> tuple[int, list[str]]:
    out = io.StringIO()
    status = doctor.report(config, out=out, usb_backend=usb_backend)
    return status, out.getvalue().splitlines()


def verdict_of(lines: list[str], topic: str) -> str:
    for line in lines:
        if line[9:].startswith(topic):
            return line.split()[0]
    raise AssertionError(f"no line for {topic}: {lines}")


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return int(probe_socket.getsockname()[1])


def test_bare_machine_lists_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor"]) == 0
    out = capsys.readouterr()
    lines = out.out.splitlines()
    for topic in ("usb", "gpio", "cameras", "ffmpeg", "microphones", "media"):
        assert verdict_of(lines, topic) in VERDICTS
    assert all(line.split()[0] in (*VERDICTS, "no") for line in lines)
    assert "Traceback" not in out.err


def test_no_libusb_is_a_verdict_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    import usb.core

    def no_backend(backend: object = None) -> list[probe.UsbDevice]:
        raise usb.core.NoBackendError("No backend available")

    monkeypatch.setattr(probe, "usb_devices", no_backend)
    status, lines = run(None)
    assert status == 0
    assert verdict_of(lines, "usb") == "error"
    assert any("libusb" in line for line in lines)


def test_usb_keypads_and_readers_are_named() -> None:
    twin = SimUsbKeypad()
    status, lines = run(None, usb_backend=twin.backend)
    assert status == 0
    assert any("HID keyboard at usbhid:1a2c:0e24" in line for line in lines)
    assert verdict_of(lines, "nfc readers") == "missing"


def test_reader_labels_flag_the_acr122u() -> None:
    assert probe.reader_label(probe.UsbDevice(0x054C, 0x06C1, "rcs380", False)) == (
        "Sony RC-S380 at usb:054c:06c1"
    )
    assert "not advised" in probe.reader_label(probe.UsbDevice(0x072F, 0x2200, "acr122", False))


def test_simulated_site_with_a_reachable_broker_is_ready(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    pytest.importorskip("panel.config")
    path = write_site(tmp_path, mqtt=f'[mqtt]\nbroker = "{mosquitto.url}"')
    status, lines = run(path)
    assert status == 0, lines
    for topic in ("config", "devices.keypad", "devices.nfc", "devices.zones", "broker"):
        assert verdict_of(lines, topic) == "ok"


def test_unreachable_broker_fails(tmp_path: Path, closed_port: int) -> None:
    pytest.importorskip("panel.config")
    path = write_site(tmp_path, mqtt=f'[mqtt]\nbroker = "mqtt://127.0.0.1:{closed_port}"')
    status, lines = run(path)
    assert status == 1
    assert verdict_of(lines, "broker") == "error"
    assert "refused" in lines[-2].lower() or any("refused" in line.lower() for line in lines)


def test_the_broker_check_logs_in_with_the_configured_user(
    tmp_path: Path, broker_factory: Callable[[BrokerSpec], Mosquitto]
) -> None:
    broker = broker_factory(BrokerSpec(users={"p1": "right"}, acl="user p1\ntopic readwrite #\n"))
    for password, verdict in (("right", "ok"), ("wrong", "error")):
        mqtt = f'[mqtt]\nbroker = "{broker.url}"\nusername = "p1"\npassword = "{password}"'
        status, lines = run(write_site(tmp_path, mqtt=mqtt))
        line = next(x for x in lines if x[9:].startswith("broker"))
        assert verdict_of(lines, "broker") == verdict, lines
        if verdict == "ok":
            assert status == 0 and "logged in as 'p1'" in line
        else:
            assert status == 1
            assert "refused the log-in as 'p1'" in line
            assert "not authorized" in line or "bad user name or password" in line
            assert "wrong" not in line  # never the password


def test_the_broker_check_does_the_tls_handshake(
    tmp_path: Path, broker_factory: Callable[[BrokerSpec], Mosquitto], tls_files: TlsFiles
) -> None:
    broker = broker_factory(BrokerSpec(tls=tls_files))
    url = f"mqtts://127.0.0.1:{broker.port}"
    other = make_ca(tmp_path / "other")  # a CA that did not sign the broker's certificate
    for ca, verdict in ((tls_files.ca, "ok"), (other.ca, "error")):
        status, lines = run(write_site(tmp_path, mqtt=f'[mqtt]\nbroker = "{url}"\nca = "{ca}"'))
        assert status == (0 if verdict == "ok" else 1)
        line = next(x for x in lines if x[9:].startswith("broker"))
        assert verdict_of(lines, "broker") == verdict, lines
        assert ("over TLS" if verdict == "ok" else "TLS failed") in line


def test_missing_real_devices_fail_with_reasons(tmp_path: Path) -> None:
    pytest.importorskip("panel.config")
    devices = "\n".join(
        [
            'keypad = "serial:///dev/ttyCENTINELA9"',
            'zones = "gpio:?siren=17"',
            'climate = "bme280:97:0x76"',
            'camera = "v4l2:/dev/video-centinela-none"',
            'microphone = "alsa:hw:7,0"',
        ]
    )
    path = write_site(tmp_path, devices=devices, zone_extra="pin = 5")
    status, lines = run(path)
    assert status == 1
    assert verdict_of(lines, "devices.keypad") == "missing"
    assert verdict_of(lines, "devices.climate") == "missing"
    assert verdict_of(lines, "devices.camera") == "missing"
    assert verdict_of(lines, "devices.microphone") == "missing"
    assert verdict_of(lines, "devices.nfc") == "ok"  # still sim:
    assert "/dev/ttyCENTINELA9 not found" in "\n".join(lines)
    keypad = next(line for line in lines if "devices.keypad" in line)
    assert "the panel still starts, reports it lost and keeps retrying" in keypad
    assert "problem(s)" in lines[-1]


def test_a_bad_config_is_a_verdict_line_and_exit_2(tmp_path: Path) -> None:
    pytest.importorskip("panel.config")
    path = write_site(tmp_path, devices='keypad = "bluetooth:aa"')
    status, lines = run(path)
    assert status == 2
    assert verdict_of(lines, "config") == "error"
    assert verdict_of(lines, "devices.keypad") == "error"
    broken = tmp_path / "broken.toml"
    broken.write_text("[panel\n")
    status, lines = run(str(broken))
    assert status == 2
    assert "not valid TOML" in "\n".join(lines)
    status, lines = run(str(tmp_path / "absent.toml"))
    assert status == 2
    assert "No such file" in "\n".join(lines)


HUB = """\
[hub]
site = "demo"
store = "hub.db"

[local]
broker = "mqtt://127.0.0.1:{local}"

[cloud]
broker = "mqtt://127.0.0.1:{cloud}"

[[panels]]
id = "p1"
key = "{key}"
"""


def test_a_hub_file_checks_both_brokers(
    tmp_path: Path, mosquitto: Mosquitto, closed_port: int
) -> None:
    listener = mosquitto.port
    from protocol.keys import generate_key

    path = tmp_path / "hub.toml"
    path.write_text(HUB.format(local=listener, cloud=closed_port, key=generate_key()))
    status, lines = run(str(path))
    assert status == 1, lines
    assert verdict_of(lines, "config") == "ok"
    assert verdict_of(lines, "broker (local)") == "ok"
    assert verdict_of(lines, "broker (cloud)") == "error"
    path.write_text(HUB.format(local=listener, cloud=listener, key="00" * 32))
    status, lines = run(str(path))
    assert status == 2  # a bad configuration, as for a panel file
    assert verdict_of(lines, "config") == "error"


def test_keys_are_shown_by_fingerprint_on_both_sides(tmp_path: Path, closed_port: int) -> None:
    from protocol.keys import fingerprint, generate_key

    key = generate_key()
    hub = tmp_path / "hub.toml"
    hub.write_text(HUB.format(local=closed_port, cloud=closed_port, key=key))
    site = write_site(tmp_path, mqtt=f'[link]\nkey = "{key}"')
    expected = f"key fingerprint {fingerprint(bytes.fromhex(key))}"
    _, hub_lines = run(str(hub))
    _, site_lines = run(site)
    assert any(line[9:].startswith("key p1") and expected in line for line in hub_lines)
    assert any(line[9:].startswith("config") and expected in line for line in site_lines)
    assert key not in "\n".join(hub_lines + site_lines)


@pytest.fixture
def tcp_listener() -> Iterator[int]:
    """A port that accepts TCP connections (a receiver of the centre, as far as doctor looks)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield int(server.getsockname()[1])


def test_a_hub_file_shows_the_arc_link(
    tmp_path: Path, mosquitto: Mosquitto, tcp_listener: int, closed_port: int
) -> None:
    from protocol.keys import generate_key

    path = tmp_path / "hub.toml"
    arc = (
        f'\n[arc]\nreceivers = ["tcp://127.0.0.1:{tcp_listener}", '
        f'"tcp://127.0.0.1:{closed_port}"]\n'
        'account = "AAA1"\nkey = "0123456789ABCDEF"\nformat = "ADM-CID"\n'
    )
    hub = HUB.format(local=mosquitto.port, cloud=mosquitto.port, key=generate_key())
    path.write_text(hub + arc)
    status, lines = run(str(path))
    text = "\n".join(lines)
    assert status == 1, lines  # the backup does not answer
    assert verdict_of(lines, "arc ") == "ok"
    assert "ADM-CID" in text and "AES-128" in text and "0123456789ABCDEF" not in text
    assert verdict_of(lines, "arc primary") == "ok"
    assert verdict_of(lines, "arc backup") == "error"
    path.write_text(path.read_text().replace('key = "0123456789ABCDEF"', 'key = "short"'))
    status, lines = run(str(path))
    assert status == 2 and "arc.key" in "\n".join(lines) and "short" not in "\n".join(lines)


def test_a_site_file_with_arc_is_checked_as_sim_hands_it_over(
    tmp_path: Path, tcp_listener: int
) -> None:
    path = write_site(tmp_path)
    with open(path, "a") as fh:
        fh.write(f'\n[arc]\nreceivers = ["tcp://127.0.0.1:{tcp_listener}"]\naccount = "AAA1"\n')
    status, lines = run(path)
    assert verdict_of(lines, "config") == "ok", lines
    assert verdict_of(lines, "arc primary") == "ok"
    with open(path, "a") as fh:
        fh.write('format = "SIA-XYZ"\n')
    status, lines = run(path)
    assert status == 2 and "arc.format" in "\n".join(lines)


def test_microphones_are_listed_from_the_kernels_capture_devices(tmp_path: Path) -> None:
    from drivers import probe

    (tmp_path / "pcm").write_text(
        "00-00: bcm2835 Headphones : bcm2835 Headphones : playback 8\n"
        "01-00: USB Audio : USB Audio : playback 1 : capture 1\n"
    )
    assert probe.microphones_state(str(tmp_path)) == ("ok", "alsa:hw:1,0 (USB Audio)")
    assert probe.alsa_device_state("plughw:1,0", str(tmp_path)) == ("ok", "USB Audio")
    assert probe.alsa_device_state("hw:2,0", str(tmp_path))[0] == "missing"
    assert probe.microphones_state(str(tmp_path / "none"))[0] == "missing"
    assert probe.media_encoder_state()[0] == "ok"
