"""Installs that fit the host: a missing optional library is one line naming the extra, exit 2.

Each command runs in its own interpreter with the optional modules made
unimportable by an import hook, as on a host that installed a smaller extra.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from common.extras import EXTRAS, MissingDependency, installed, missing, missing_from, require
from drivers.registry import modules_needed
from drivers.urls import parse

ROOT = Path(__file__).resolve().parent.parent
PANEL_ONLY = ("serial", "serial_asyncio_fast", "usb", "nfc", "ndef", "gpiozero", "smbus2")
SIM_ONLY = ("PIL", "prompt_toolkit", "amqtt", "yaml")

# Runs `centinela ARGS...` with the modules named in argv[1] refusing to import, the way
# Python refuses a module that is not installed.
SHIM = """
import sys
blocked = set(filter(None, sys.argv[1].split(",")))

class NotInstalled:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled)
from centinela.cli import main
sys.exit(main(sys.argv[2:]))
"""

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
pin = 5

[[cameras]]
name = "hall"

[store]
path = "{store}"

[link]
key = "{key}"

[devices]
{devices}
"""


def centinela(
    blocked: tuple[str, ...], *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the command with ``blocked`` not importable; a command that hangs fails the test."""
    return subprocess.run(
        [sys.executable, "-c", SHIM, ",".join(blocked), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def site_file(tmp_path: Path, **devices: str) -> Path:
    """A site whose devices are simulated unless ``devices`` names others."""
    lines = "\n".join(f'{kind} = "{url}"' for kind, url in devices.items())
    path = tmp_path / "panel.toml"
    path.write_text(SITE.format(store=tmp_path / "panel.db", devices=lines, key="ab" * 31 + "cd"))
    return path


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The whole of stderr, which must be one line and no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("devices", "blocked", "expected"),
    [
        ({}, "nfc", "devices.nfc: nfcpy is not installed; install centinela[panel]"),
        ({}, "serial", "devices.keypad: pyserial is not installed; install centinela[panel]"),
        ({}, "gpiozero", "devices.zones: gpiozero is not installed; install centinela[panel]"),
        ({}, "PIL", "devices.camera: Pillow is not installed; install centinela[sim]"),
        (
            {"keypad": "usbhid:16c0:27db"},
            "usb",
            "devices.keypad: pyusb is not installed; install centinela[panel]",
        ),
        (
            {"keypad": "sim:usbhid"},
            "usb",
            "devices.keypad: pyusb is not installed; install centinela[panel]",
        ),
        (
            {"climate": "bme280:1:0x76"},
            "smbus2",
            "devices.climate: smbus2 is not installed; install centinela[panel]",
        ),
        (
            {"nfc": "tty:S0:pn532"},
            "nfc",
            "devices.nfc: nfcpy is not installed; install centinela[panel]",
        ),
        (
            {"zones": "gpio:?siren=17"},
            "gpiozero",
            "devices.zones: gpiozero is not installed; install centinela[panel]",
        ),
    ],
)
def test_panel_device_without_its_library(
    tmp_path: Path, devices: dict[str, str], blocked: str, expected: str
) -> None:
    site = site_file(tmp_path, **devices)
    result = centinela((blocked,), "panel", "--config", str(site), cwd=tmp_path)
    assert one_line(result) == f"centinela panel: {site}: {expected}"
    assert result.returncode == 2


def test_simulator_without_yaml(tmp_path: Path) -> None:
    result = centinela(("yaml",), "sim", "--headless", cwd=tmp_path)
    assert one_line(result) == "centinela sim: PyYAML is not installed; install centinela[sim]"
    assert result.returncode == 2


def test_scenarios_without_yaml(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("spec: 1\nsteps: []\n")
    result = centinela(("yaml",), "scenario", "run", str(scenario), cwd=tmp_path)
    assert one_line(result) == "centinela scenario: PyYAML is not installed; install centinela[sim]"
    assert result.returncode == 2


def test_simulator_embedded_broker_without_amqtt(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "CENTINELA_SIM_BROKER": "amqtt"}
    result = centinela(("amqtt",), "sim", "--headless", cwd=tmp_path, env=env)
    assert one_line(result) == (
        "centinela sim: the embedded broker: amqtt is not installed; install centinela[sim]"
    )
    assert result.returncode == 2


def test_hub_host_commands_need_no_panel_or_simulator_library(tmp_path: Path) -> None:
    blocked = PANEL_ONLY + SIM_ONLY
    for args in (("hub", "--help"), ("events", "--help"), ("keygen",)):
        result = centinela(blocked, *args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
    key = centinela(blocked, "keygen", cwd=tmp_path).stdout.strip()
    assert len(key) == 64
    int(key, 16)


def test_doctor_on_a_host_without_the_panel_libraries(tmp_path: Path) -> None:
    site = site_file(tmp_path, keypad="serial:///dev/ttyUSB9")
    result = centinela(PANEL_ONLY + SIM_ONLY, "doctor", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "pyserial is not installed; install centinela[panel]" in result.stdout
    assert "pyusb is not installed; install centinela[panel]" in result.stdout
    result = centinela(PANEL_ONLY, "doctor", "--config", str(site), cwd=tmp_path)
    assert "Traceback" not in result.stderr
    assert result.returncode == 1  # the configured devices cannot be served here
    keypad = next(line for line in result.stdout.splitlines() if "devices.keypad" in line)
    assert keypad.split()[0] == "error"
    assert keypad.endswith(
        "serial:///dev/ttyUSB9: pyserial is not installed; install centinela[panel]"
    )


def test_every_optional_module_is_in_its_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    base = " ".join(project["dependencies"])
    for module, (distribution, extra) in EXTRAS.items():
        named = [req.split(">")[0].split("<")[0].split("[")[0] for req in extras[extra]]
        assert distribution in named, f"{distribution} ({module}) is not in [{extra}]"
        assert distribution not in base, f"{distribution} is optional but in the base"
    assert {"centinela[panel,hub,sim,cloud]"} <= set(extras["dev"])


def test_the_message_names_what_needs_it_and_the_extra() -> None:
    assert str(MissingDependency("PIL")) == "Pillow is not installed; install centinela[sim]"
    assert str(MissingDependency("nfc", "site.toml: devices.nfc")) == (
        "site.toml: devices.nfc: nfcpy is not installed; install centinela[panel]"
    )


def test_require_finds_the_first_missing_module(monkeypatch: pytest.MonkeyPatch) -> None:
    assert installed("json")
    assert missing("json", "nfc") is None
    monkeypatch.setitem(sys.modules, "nfc", None)  # how Python marks a module as unimportable
    assert not installed("nfc")
    absent = missing("json", "nfc", "PIL", where="w")
    assert absent is not None
    assert (absent.module, absent.distribution, absent.extra) == ("nfc", "nfcpy", "panel")
    with pytest.raises(MissingDependency, match=r"^w: nfcpy is not installed"):
        require("json", "nfc", where="w")


def test_a_failed_import_of_an_optional_module_is_recognised() -> None:
    found = missing_from(ModuleNotFoundError("No module named 'nfc.clf'", name="nfc.clf"))
    assert found is not None
    assert found.distribution == "nfcpy"
    assert missing_from(ModuleNotFoundError("No module named 'x'", name="x")) is None
    assert missing_from(ModuleNotFoundError("no name")) is None


@pytest.mark.parametrize(
    ("kind", "url", "modules"),
    [
        ("keypad", "sim:", ("serial", "serial_asyncio_fast")),
        ("keypad", "sim:usbhid", ("usb",)),
        ("keypad", "serial:///dev/ttyUSB0", ("serial", "serial_asyncio_fast")),
        ("keypad", "usbhid:16c0:27db", ("usb",)),
        ("nfc", "udp:127.0.0.1:54321", ("nfc",)),
        ("zones", "sim:", ("gpiozero",)),
        ("climate", "sim:", ()),
        ("climate", "bme280:1:0x76", ("smbus2",)),
        ("camera", "sim:", ("PIL",)),
        ("camera", "v4l2:/dev/video0", ()),
    ],
)
def test_modules_each_device_url_needs(kind: str, url: str, modules: tuple[str, ...]) -> None:
    assert modules_needed(parse(kind, url)) == modules


def test_scenarios_on_a_host_without_the_panel_libraries(tmp_path: Path) -> None:
    scenario = ROOT / "sim" / "scenarios" / "02_arm_total_code.yaml"
    result = centinela(("nfc",), "scenario", "run", str(scenario), cwd=tmp_path)
    line = one_line(result)
    assert line.startswith("centinela scenario: ")
    assert line.endswith("devices.nfc: nfcpy is not installed; install centinela[panel]")
    assert result.returncode == 2


def test_interactive_simulator_without_prompt_toolkit(tmp_path: Path) -> None:
    master, slave = os.openpty()  # the view needs a terminal on stdin and stdout
    try:
        result = subprocess.run(
            [sys.executable, "-c", SHIM, "prompt_toolkit", "sim"],
            cwd=tmp_path,
            stdin=slave,
            stdout=slave,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(slave)
        os.close(master)
    assert one_line(result) == (
        "centinela sim: the interactive view (--headless needs none): prompt_toolkit is not"
        " installed; install centinela[sim]"
    )
    assert result.returncode == 2


def test_the_customer_area_without_its_libraries(tmp_path: Path) -> None:
    config = tmp_path / "cloud.toml"
    config.write_text("")
    for module, distribution in (("starlette", "starlette"), ("argon2", "argon2-cffi")):
        result = centinela((module,), "cloud", "--config", str(config), cwd=tmp_path)
        assert one_line(result) == (
            f"centinela cloud: {distribution} is not installed; install centinela[cloud]"
        )
        assert result.returncode == 2
