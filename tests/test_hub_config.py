"""The hub configuration: defaults, relative paths, secrets from files, and one clear error each."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from common.errors import ConfigError
from hub.config import load_hub_file, load_hub_mapping
from hub.linkkeys import derived_key_id
from protocol.keys import generate_key

KEY = generate_key()
OTHER = generate_key()

FULL = f"""
[hub]
site = "demo"
store = "data/hub.db"
command_timeout = 5
offline_after = 45.5

[local]
broker = "mqtt://127.0.0.1:1883"
username = "hub"
password_file = "hub.secret"

[cloud]
broker = "mqtts://cloud.example.com"
username = "site-demo"
password = "s3cret"
ca = "ca.pem"
cert = "hub.pem"
key = "hub.key"

[[panels]]
id = "p1"
key = "{KEY}"

[[panels]]
id = "p2"
key_file = "p2.key"
previous_key = "{OTHER}"
"""


def test_a_full_file(tmp_path: Path) -> None:
    for name in ("ca.pem", "hub.pem", "hub.key"):
        (tmp_path / name).write_text("x")
    (tmp_path / "hub.secret").write_text("pw-from-file\n")
    other_id = derived_key_id(bytes.fromhex(OTHER))  # key ids are 1-255: keys may share one
    p2_key = next(k for k in iter(generate_key, "") if derived_key_id(bytes.fromhex(k)) != other_id)
    (tmp_path / "p2.key").write_text(p2_key + "\n")
    for name in ("hub.key", "hub.secret", "p2.key"):
        (tmp_path / name).chmod(0o600)  # secrets are owner-only or refused
    path = tmp_path / "hub.toml"
    path.write_text(FULL)
    with pytest.raises(ConfigError, match=r"hub\.store: the folder .*/data does not exist"):
        load_hub_file(path)  # a typo in the store's folder would start an empty store
    (tmp_path / "data").mkdir()
    config = load_hub_file(path)
    assert config.site == "demo"
    assert config.store == tmp_path / "data" / "hub.db"
    assert config.command_timeout == 5
    assert config.offline_after == 45.5
    assert (config.local.host, config.local.port, config.local.tls) == ("127.0.0.1", 1883, False)
    assert (config.local.username, config.local.password) == ("hub", "pw-from-file")
    assert (config.cloud.host, config.cloud.port, config.cloud.tls) == (
        "cloud.example.com",
        8883,
        True,
    )
    assert config.cloud.ca == tmp_path / "ca.pem"
    assert config.cloud.key == tmp_path / "hub.key"
    p1, p2 = config.panels
    assert p1.key == bytes.fromhex(KEY)
    assert p1.previous_key is None
    assert p2.key == bytes.fromhex(p2_key)
    assert p2.previous_key == bytes.fromhex(OTHER)
    assert config.panel("p2") is p2
    assert config.panel("p3") is None
    assert KEY not in repr(config)


def test_defaults_and_cloud_defaults_to_local(tmp_path: Path) -> None:
    config = load_hub_mapping(
        {"hub": {"site": "s"}, "local": {"broker": "mqtt://10.0.0.2:1884"},
         "panels": [{"id": "p1", "key": KEY}]},
        str(tmp_path / "hub.toml"),
    )  # fmt: skip
    assert config.store == tmp_path / "hub.db"
    assert config.command_timeout == 10
    assert config.offline_after == 90
    assert config.cloud == config.local
    assert config.local.url == "mqtt://10.0.0.2:1884"


BASE: dict[str, Any] = {"hub": {"site": "s"}, "panels": [{"id": "p1", "key": KEY}]}


def _with(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    node: Any = data
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    last: Any = int(parts[-1]) if parts[-1].isdigit() else parts[-1]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return data


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "key", "words"),
    [
        ("hub", _DELETE, "hub", "required"),
        ("hub.site", "Demo Site", "hub.site", "a-z"),
        ("hub.site", _DELETE, "hub.site", "required"),
        ("hub.colour", "red", "hub.colour", "unknown key"),
        ("extra", {}, "extra", "unknown key"),
        ("hub.command_timeout", 0, "hub.command_timeout", "between"),
        ("hub.command_timeout", "10", "hub.command_timeout", "number"),
        ("hub.offline_after", -1, "hub.offline_after", "between"),
        ("local.broker", "http://x", "local.broker", "mqtt://"),
        ("local.broker", "mqtt://", "local.broker", "host"),
        ("local.broker", "mqtt://u:p@host", "local.broker", "user name"),
        ("local.password", "pw", "local.password", "username"),
        ("local.ca", "ca.pem", "local.ca", "mqtts://"),
        ("cloud.broker", "mqtts://h", None, None),
        ("cloud.port", 1, "cloud.port", "unknown key"),
        ("panels", [], "panels", "at least one"),
        ("panels", _DELETE, "panels", "at least one"),
        ("panels.0.key", "abc", "panels[0].key", "64 hex"),
        ("panels.0.key", _DELETE, "panels[0].key", "required"),
        ("panels.0.key_file", "nope.key", "panels[0].key_file", "give key or key_file"),
        ("panels.0.previous_key", KEY, "panels[0].previous_key", "same as key"),
        ("panels.0.id", "P 1", "panels[0].id", "a-z"),
        ("panels.0.name", "x", "panels[0].name", "unknown key"),
    ],
)
def test_each_mistake_is_one_error_naming_file_and_key(
    path: str, value: Any, key: str | None, words: str | None
) -> None:
    data = _with(path, value)
    if key is None:
        load_hub_mapping(data, "hub.toml")  # valid: for contrast
        return
    with pytest.raises(ConfigError) as info:
        load_hub_mapping(data, "hub.toml")
    assert info.value.file == "hub.toml"
    assert info.value.key == key
    assert words is not None
    assert words in info.value.reason
    assert "\n" not in str(info.value)


def test_files_named_by_the_config_must_exist(tmp_path: Path) -> None:
    data = _with("local", {"broker": "mqtts://h", "ca": "missing.pem"})
    with pytest.raises(ConfigError, match=r"local\.ca: no such file"):
        load_hub_mapping(data, str(tmp_path / "hub.toml"))
    data = _with("local", {"broker": "mqtts://h", "cert": "c.pem"})
    (tmp_path / "c.pem").write_text("x")
    with pytest.raises(ConfigError, match=r"local\.key: cert and key go together"):
        load_hub_mapping(data, str(tmp_path / "hub.toml"))


def test_duplicate_panels_and_colliding_key_ids() -> None:
    data = copy.deepcopy(BASE)
    data["panels"].append({"id": "p1", "key": OTHER})
    with pytest.raises(ConfigError, match=r"panels\[1\]\.id: panel 'p1' is listed twice"):
        load_hub_mapping(data, "hub.toml")
    key = bytes.fromhex(KEY)
    twin = next(
        k for k in (bytes.fromhex(generate_key()) for _ in range(10_000))
        if derived_key_id(k) == derived_key_id(key) and k != key
    )  # fmt: skip
    data = _with("panels.0.previous_key", twin.hex())
    with pytest.raises(ConfigError, match="same key id"):
        load_hub_mapping(data, "hub.toml")


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_hub_file(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[hub\nsite=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_hub_file(bad)
    secret = tmp_path / "empty.key"
    secret.write_text("\n")
    secret.chmod(0o600)
    data = _with("panels.0", {"id": "p1", "key_file": str(secret)})
    with pytest.raises(ConfigError, match=r"panels\[0\]\.key_file: .* is empty"):
        load_hub_mapping(data, str(tmp_path / "hub.toml"))


def test_cloud_protocol_defaults_to_mqtt5_and_accepts_3_1_1() -> None:
    base = {"hub": {"site": "demo"}, "panels": [{"id": "p1", "key": generate_key()}]}
    assert load_hub_mapping(base, "<t>").cloud_mqtt5 is True
    old = load_hub_mapping({**base, "cloud": {"protocol": "3.1.1"}}, "<t>")
    assert old.cloud_mqtt5 is False
    with pytest.raises(ConfigError, match=r"cloud\.protocol"):
        load_hub_mapping({**base, "cloud": {"protocol": "4"}}, "<t>")
