"""The ``centinela`` command line: options, abbreviations, usage lines, the version."""

from __future__ import annotations

import subprocess
import sys

import pytest

from centinela.cli import build_parser, main


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "centinela", *argv],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_abbreviated_options_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["panel", "--conf", "base.toml"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "required: --config" in err  # --conf did not count as --config
    assert "usage: centinela panel" in err  # the subcommand's own usage line
    with pytest.raises(SystemExit):
        main(["events", "--sit", "demo", "--db", "x.db"])
    assert "unrecognized arguments: --sit demo" in capsys.readouterr().err


def test_verbose_is_accepted_before_and_after_the_subcommand() -> None:
    parser = build_parser()
    assert parser.parse_args(["-v", "keygen"]).verbose is True
    assert parser.parse_args(["keygen", "-v"]).verbose is True
    assert parser.parse_args(["hub", "-v", "--config", "h.toml"]).verbose is True
    assert parser.parse_args(["scenario", "run", "-v", "a.yaml"]).verbose is True
    assert parser.parse_args(["keygen"]).verbose is False


def test_a_wrong_option_shows_the_usage_of_its_subcommand() -> None:
    done = _run("sim", "--brokr", "x")
    assert done.returncode == 2
    assert "usage: centinela sim" in done.stderr
    assert "unrecognized arguments: --brokr" in done.stderr


def test_version() -> None:
    done = _run("--version")
    assert done.returncode == 0
    assert done.stdout.startswith("centinela ")
    assert done.stdout.split()[1][0].isdigit()


def test_a_bad_broker_option_is_blamed_on_the_option() -> None:
    done = _run("sim", "--headless", "--broker", "http://localhost:1883")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "centinela sim: error: --broker: must start with mqtt:// or mqtts://, "
        "not 'http://localhost:1883'"
    )
