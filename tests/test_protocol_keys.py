"""Panel keys: generation, parsing with clear errors that never echo the key, `centinela keygen`."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest

from centinela.cli import main
from centinela.keygen import run_keygen
from common.configcheck import KEY_BYTES, parse_key
from common.errors import ConfigError
from protocol.frame import KEY_SIZE, Direction
from protocol.keys import fingerprint, generate_key
from protocol.messages import Heartbeat
from protocol.session import Receiver, Sender

HEX64 = re.compile(r"[0-9a-f]{64}")


def test_generated_keys_are_64_hex_digits_and_distinct() -> None:
    keys = {generate_key() for _ in range(200)}
    assert len(keys) == 200
    assert all(HEX64.fullmatch(k) for k in keys)


def test_a_generated_key_works_on_the_wire() -> None:
    key = parse_key(generate_key(), file="panel.toml", key="link.key")
    frame = Sender("p1", Direction.PANEL_TO_HUB, key).seal(Heartbeat(1, 1), 5)
    assert Receiver("p1", Direction.PANEL_TO_HUB, {0: key}).open(frame).message == Heartbeat(1, 1)


def test_parse_key_accepts_either_case_and_surrounding_blanks() -> None:
    text = bytes(range(32)).hex()
    assert parse_key(text, file="f", key="k") == bytes(range(32))
    assert parse_key(f"  {text.upper()}\n", file="f", key="k") == bytes(range(32))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "0123456789abcdef" * 3,
        "0123456789abcdef" * 5,
        "g" + "0" * 63,
        "0x" + "ab" * 31,
        "01 23" + "45" * 30,
    ],
)
def test_bad_keys_name_file_and_key_but_not_the_text(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_key(text, file="/etc/centinela/panel.toml", key="link.key")
    error = info.value
    assert (error.file, error.key) == ("/etc/centinela/panel.toml", "link.key")
    assert "64 hex digits" in error.reason
    assert "keygen" in error.reason
    if len(text) > 3:
        assert text not in str(error)


@pytest.mark.parametrize("text", ["00" * 32, "ff" * 32, "AA" * 32])
def test_placeholder_keys_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="placeholder"):
        parse_key(text, file="f", key="k")


def test_a_key_that_is_not_text_is_refused() -> None:
    with pytest.raises(ConfigError, match="string"):
        parse_key(1234, file="f", key="k")  # type: ignore[arg-type]


def test_fingerprint_is_short_stable_and_not_the_key() -> None:
    key = bytes(range(32))
    assert fingerprint(key) == fingerprint(bytes(range(32)))
    assert re.fullmatch(r"[0-9a-f]{8}", fingerprint(key))
    assert fingerprint(key) not in key.hex()
    assert fingerprint(key) != fingerprint(bytes(range(1, 33)))


def test_run_keygen_prints_one_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_keygen(argparse.Namespace()) == 0
    out = capsys.readouterr().out
    assert HEX64.fullmatch(out.strip())
    assert out.endswith("\n")


def test_cli_keygen(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keygen"]) == 0
    first = capsys.readouterr().out.strip()
    assert main(["keygen"]) == 0
    second = capsys.readouterr().out.strip()
    assert HEX64.fullmatch(first)
    assert HEX64.fullmatch(second)
    assert first != second


def test_keygen_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "centinela", "keygen"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert HEX64.fullmatch(done.stdout.strip())
    assert done.stderr == ""


def test_the_config_key_size_is_the_wire_key_size() -> None:
    assert KEY_BYTES == KEY_SIZE
