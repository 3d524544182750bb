"""Files and config (issue 10 item 8): owner-only stores, owner-only secrets, hostile TOML.

Stores are real SQLite files; the CLI runs as a real subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.errors import ConfigError
from common.files import mode_of
from hub.config import load_hub_file
from hub.store import HubStore
from panel.config import load_site_file
from panel.store import PanelStore
from protocol.keys import generate_key

SITE = """
[panel]
id = "p1"
site = "demo"

[[users]]
name = "alice"
code = "1234"
role = "{role}"

[[users]]
name = "bob"
code = "2468"
role = "arm_only"

[[zones]]
name = "front_door"
kind = "entry"
"""


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask: whatever is created owner-only is so by the code itself."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("open_umask")
def test_the_panel_store_is_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "var" / "lib" / "p1.db"
    store = PanelStore(path)
    try:
        store.set_meta("x", "1")  # the WAL file exists once something is written
        assert mode_of(path) == 0o600
        assert mode_of(path.parent) == 0o700
        for side in ("-wal", "-shm"):
            assert mode_of(path.with_name(path.name + side)) == 0o600, side
    finally:
        store.close()


@pytest.mark.usefixtures("open_umask")
def test_the_hub_store_is_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "hub" / "hub.db"
    store = HubStore(path)
    try:
        assert mode_of(path) == 0o600
        assert mode_of(path.parent) == 0o700
        for side in ("-wal", "-shm"):
            assert mode_of(path.with_name(path.name + side)) == 0o600, side
    finally:
        store.close()


def test_an_existing_store_readable_by_others_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "p1.db"
    PanelStore(path).close()
    path.chmod(0o644)
    PanelStore(path).close()
    assert mode_of(path) == 0o600


def _site(tmp_path: Path, extra: str, role: str = "master") -> Path:
    path = tmp_path / "site.toml"
    path.write_text(SITE.format(role=role) + extra)
    return path


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_link_key_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    key = tmp_path / "p1.key"
    key.write_text(generate_key() + "\n")
    key.chmod(mode)
    path = _site(tmp_path, '[link]\nkey_file = "p1.key"\n')
    with pytest.raises(ConfigError) as caught:
        load_site_file(path)
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: link.key_file: ")
    assert f"mode {mode:04o}" in text and "chmod 600" in text
    key.chmod(0o600)
    assert load_site_file(path).link.key is not None


def test_a_broker_password_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "mqtt.txt"
    secret.write_text("pw\n")
    secret.chmod(0o644)
    path = _site(tmp_path, '[mqtt]\nusername = "p1"\npassword_file = "mqtt.txt"\n')
    with pytest.raises(ConfigError, match=r"mqtt\.password_file: .*accessible by others"):
        load_site_file(path)


def test_a_hub_panel_key_and_tls_key_readable_by_others_are_refused(tmp_path: Path) -> None:
    (tmp_path / "p1.key").write_text(generate_key() + "\n")
    (tmp_path / "p1.key").chmod(0o604)
    hub = tmp_path / "hub.toml"
    hub.write_text('[hub]\nsite = "demo"\n\n[[panels]]\nid = "p1"\nkey_file = "p1.key"\n')
    with pytest.raises(ConfigError, match=r"panels\[0\]\.key_file: .*accessible by others"):
        load_hub_file(hub)
    (tmp_path / "p1.key").chmod(0o600)
    for name in ("ca.pem", "hub.pem", "hub.key"):
        (tmp_path / name).write_text("x")
    (tmp_path / "hub.key").chmod(0o640)
    hub.write_text(
        hub.read_text() + '\n[cloud]\nbroker = "mqtts://cloud.example"\nca = "ca.pem"\n'
        'cert = "hub.pem"\nkey = "hub.key"\n'
    )
    with pytest.raises(ConfigError, match=r"cloud\.key: .*accessible by others"):
        load_hub_file(hub)


def test_a_site_where_nobody_may_disarm_is_a_config_error(tmp_path: Path) -> None:
    path = _site(tmp_path, "", role="arm_only")
    with pytest.raises(ConfigError, match=r"users: every user is arm_only: nobody could disarm"):
        load_site_file(path)
    assert load_site_file(_site(tmp_path, "", role="user")).users[0].name == "alice"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "centinela", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("opener", ["[", "{a="])
def test_deeply_nested_toml_is_one_line_and_exit_2(tmp_path: Path, opener: str) -> None:
    path = tmp_path / "deep.toml"
    path.write_text("x = " + opener * 100_000 + "\n")
    done = _cli("panel", "--config", str(path))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr[-2000:]
    assert str(path) in lines[0] and "nested too deeply" in lines[0]
    assert "Traceback" not in done.stderr


def test_a_secret_readable_by_others_stops_the_cli_with_one_line(tmp_path: Path) -> None:
    key = tmp_path / "p1.key"
    key.write_text(generate_key() + "\n")
    key.chmod(0o644)
    path = _site(tmp_path, '[link]\nkey_file = "p1.key"\n')
    done = _cli("panel", "--config", str(path))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "link.key_file" in lines[0] and "chmod 600" in lines[0]
