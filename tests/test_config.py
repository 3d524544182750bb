"""The site file: typed values and defaults, and one test per kind of error.

Every error names the file, the key path and the reason, as the CLI prints it.
"""

from __future__ import annotations

import hmac
from pathlib import Path

import pytest

from common.errors import ConfigError
from panel.config import Role, ZoneKind, load_site_file, load_site_mapping
from protocol.messages import Mode

BASE = """
[panel]
id = "p1"
site = "demo"

[[users]]
name = "alice"
code = "1234"
role = "master"
tags = ["04a1b2c3d4e5f6"]
duress_code = "1235"

[[zones]]
name = "front_door"
kind = "entry"
"""

KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
KEY2 = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

FULL = f"""
spec = 1

[panel]
id = "p1"
site = "demo"

[timing]
exit_delay = 45
entry_delay = 20
alarm_duration = 120
[timing.night]
exit_delay = 5
[timing.partial]
entry_delay = 10
alarm_duration = 60

[security]
max_attempts = 4
lockout = 120

[[users]]
name = "alice"
code = "1234"
role = "master"
tags = ["04a1b2c3d4e5f6", "04A1B2C3D4E5F7"]
duress_code = "1235"

[[users]]
name = "bob"
code = "00001111"
role = "arm_only"

[[users]]
name = "carol"
code = "5555"

[[zones]]
name = "front_door"
kind = "entry"
pin = 17

[[zones]]
name = "garage"
kind = "interior"
modes = ["total", "night"]
pin = 27
normally = "open"

[[zones]]
name = "smoke"
kind = "fire"
pin = 22

[[cameras]]
name = "hall"
device = "/dev/video0"

[devices]
keypad = "serial:///dev/ttyUSB0"
nfc = "udp:127.0.0.1:54321"
zones = "gpio:"
climate = "bme280:1:0x76"
camera = "v4l2:/dev/video0"

[mqtt]
broker = "mqtts://broker.example:8884"
username = "p1"
password_file = "secrets/mqtt.txt"
ca = "tls/ca.pem"
cert = "tls/p1.pem"
key = "tls/p1.key"

[link]
key_file = "secrets/link.key"
previous_key = "{KEY2}"
heartbeat = 15

[store]
path = "data/panel.db"

[telemetry]
interval = 30
"""


def write(tmp_path: Path, text: str, name: str = "site.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> ConfigError:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_site_file(path)
    assert caught.value.file == str(path)
    assert str(caught.value).startswith(f"{path}: ")
    return caught.value


# ------------------------------------------------------------------ what loads


def test_the_full_file_loads_into_typed_values(tmp_path: Path) -> None:
    for rel in ("secrets/mqtt.txt", "secrets/link.key", "tls/ca.pem", "tls/p1.pem", "tls/p1.key"):
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        (tmp_path / rel).write_text("x\n")
    (tmp_path / "secrets/mqtt.txt").write_text("s3cret\n")
    (tmp_path / "secrets/link.key").write_text(KEY + "\n")
    for rel in ("secrets/mqtt.txt", "secrets/link.key", "tls/p1.key"):
        (tmp_path / rel).chmod(0o600)  # secrets are owner-only or refused
    with pytest.raises(ConfigError, match=r"store\.path: the folder .*/data does not exist"):
        load_site_file(write(tmp_path, FULL))
    (tmp_path / "data").mkdir()
    cfg = load_site_file(write(tmp_path, FULL))
    assert (cfg.panel_id, cfg.site, cfg.source) == ("p1", "demo", str(tmp_path / "site.toml"))
    assert cfg.timing[Mode.TOTAL].exit_delay == 45
    assert cfg.timing[Mode.NIGHT].exit_delay == 5
    assert cfg.timing[Mode.NIGHT].entry_delay == 20  # inherited from [timing]
    assert cfg.timing[Mode.PARTIAL].alarm_duration == 60
    assert cfg.timing_for(None).alarm_duration == 120
    assert (cfg.max_attempts, cfg.lockout) == (4, 120)
    alice, bob, carol = cfg.users
    assert alice.tags == frozenset({"04A1B2C3D4E5F6", "04A1B2C3D4E5F7"})
    assert (alice.role, bob.role, carol.role) == (Role.MASTER, Role.ARM_ONLY, Role.USER)
    assert cfg.hasher.matches("1234", alice.code_digest)
    assert alice.duress_digest is not None
    assert cfg.hasher.matches("1235", alice.duress_digest)
    assert carol.duress_digest is None
    assert cfg.user_by_tag("04a1b2c3d4e5f7") is alice
    door, garage, smoke = cfg.zones
    assert door.modes == frozenset(Mode)
    assert (garage.modes, garage.pin, garage.normally_open) == (
        frozenset({Mode.TOTAL, Mode.NIGHT}),
        27,
        True,
    )
    assert smoke.always_active
    assert smoke.kind is ZoneKind.FIRE
    assert cfg.cameras[0].device == "/dev/video0"
    assert cfg.devices.zones == "gpio:"
    m = cfg.mqtt
    assert (m.host, m.port, m.tls, m.username, m.password) == (
        "broker.example",
        8884,
        True,
        "p1",
        "s3cret",
    )
    assert m.ca == tmp_path / "tls/ca.pem"
    assert cfg.link.key == bytes.fromhex(KEY)
    assert cfg.link.previous_key == bytes.fromhex(KEY2)
    assert cfg.link.heartbeat == 15
    assert cfg.store.path == tmp_path / "data/panel.db"
    assert cfg.telemetry.interval == 30
    assert "s3cret" not in repr(cfg)
    assert KEY not in repr(cfg)


def test_defaults(tmp_path: Path) -> None:
    cfg = load_site_file(write(tmp_path, BASE))
    assert cfg.timing[Mode.PARTIAL].exit_delay == 30
    assert cfg.timing[Mode.TOTAL].alarm_duration == 180
    assert (cfg.max_attempts, cfg.lockout) == (5, 90)
    assert cfg.devices.keypad == cfg.devices.camera == "sim:"
    assert (cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.tls) == ("127.0.0.1", 1883, False)
    assert cfg.link.key is None
    assert cfg.store.path == tmp_path / "p1.db"
    assert cfg.telemetry.interval == 60
    assert cfg.user("alice") is not None
    assert cfg.user("alice").role is Role.MASTER  # type: ignore[union-attr]


def test_interior_defaults_to_total_and_entry_to_every_mode(tmp_path: Path) -> None:
    cfg = load_site_file(
        write(
            tmp_path,
            BASE + '[[zones]]\nname = "hall"\nkind = "interior"\n'
            '[[zones]]\nname = "win"\nkind = "perimeter"\n',
        )
    )
    assert cfg.zone("hall").modes == frozenset({Mode.TOTAL})  # type: ignore[union-attr]
    assert cfg.zone("win").modes == frozenset(Mode)  # type: ignore[union-attr]


def test_codes_are_kept_only_as_keyed_digests(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    first, second = load_site_file(path), load_site_file(path)
    digest = first.users[0].code_digest
    assert len(digest) == 32
    assert b"1234" not in digest
    assert "1234" not in repr(first)
    # A new secret at every load: digests cannot be compared across loads.
    assert not hmac.compare_digest(digest, second.users[0].code_digest)


def test_a_scenario_mapping_loads_with_its_source_in_errors() -> None:
    data = {
        "panel": {"id": "p1", "site": "demo"},
        "users": [{"name": "alice", "code": "1234", "role": "master"}],
        "zones": [{"name": "front_door", "kind": "entry"}],
    }
    cfg = load_site_mapping(data, "scenarios/x.yaml")
    assert cfg.source == "scenarios/x.yaml"
    data["users"] = [{"name": "alice", "code": "12"}]
    with pytest.raises(ConfigError, match=r"^scenarios/x.yaml: users\[0\].code: must be 4 to 8"):
        load_site_mapping(data, "scenarios/x.yaml")
    with pytest.raises(ConfigError, match="must be a table"):
        load_site_mapping(["not", "a", "table"], "x.yaml")  # type: ignore[arg-type]


# ------------------------------------------------------------------ the file itself


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: no such file"):
        load_site_file(tmp_path / "nope.toml")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_site_file(tmp_path)


def test_not_toml(tmp_path: Path) -> None:
    err = error_of(tmp_path, "[panel\nid = 1\n")
    assert "not valid TOML" in err.reason
    assert "line 1" in err.reason


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_bytes(b'[panel]\nid = "\xff"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_site_file(path)


# ------------------------------------------------------------------ one test per kind of error

CASES = [
    # (what is changed, key path, reason)
    (("", "spec = 2\n"), "spec", "must be 1, not 2"),
    (('id = "p1"', 'id = "P 1"'), "panel.id", "must be 1 to 32 of a-z 0-9 _ -"),
    (('id = "p1"\n', ""), "panel.id", "required"),
    (('site = "demo"', "site = 7"), "panel.site", "must be a string, not an integer"),
    (("", "[timing]\nexit_delay = '30'\n"), "timing.exit_delay", "must be a number, not a string"),
    (("", "[timing.total]\nentry_delay = 900\n"), "timing.total.entry_delay", "between 0 and 600"),
    (("", "[timing.total]\nsiren = 3\n"), "timing.total.siren", "unknown key"),
    (("", "[timing]\nalarm_duration = 0\n"), "timing.alarm_duration", "between 1 and 3600"),
    (("", "[security]\nmax_attempts = 0\n"), "security.max_attempts", "between 1 and 100"),
    (("", "[security]\nlockout = true\n"), "security.lockout", "must be a number, not a boolean"),
    (("", "colour = 'red'\n"), "colour", "unknown key (expected one of:"),
    (
        ('duress_code = "1235"', 'duress_code = "1235"\ncolour = 1'),
        "users[0].colour",
        "unknown key",
    ),
    (('code = "1234"', 'code = "12a4"'), "users[0].code", "must be 4 to 8 digits"),
    (('code = "1234"', 'code = "123456789"'), "users[0].code", "must be 4 to 8 digits"),
    (('code = "1234"', "code = 1234"), "users[0].code", "in quotes (a string), not a number"),
    (('code = "1234"\n', ""), "users[0].code", "required"),
    (
        ('role = "master"', 'role = "admin"'),
        "users[0].role",
        "must be one of arm_only, master, user",
    ),
    (('name = "alice"', 'name = "Alice"'), "users[0].name", "must be 1 to 32 of a-z 0-9 _ -"),
    (('tags = ["04a1b2c3d4e5f6"]', 'tags = ["xyz"]'), "users[0].tags[0]", "must be a UID in hex"),
    (
        ('tags = ["04a1b2c3d4e5f6"]', 'tags = ["04C0FFEE00"]'),
        "users[0].tags[0]",
        "4, 7 or 10 bytes",
    ),
    (('tags = ["04a1b2c3d4e5f6"]', 'tags = "04a1"'), "users[0].tags", "must be a list of strings"),
    (
        ('tags = ["04a1b2c3d4e5f6"]', 'tags = ["04A1B2C3", "04a1b2c3"]'),
        "users[0].tags[1]",
        "listed twice",
    ),
    (('duress_code = "1235"', 'duress_code = "1234"'), "users[0].duress_code", "same code as"),
    (
        ("", '[[users]]\nname = "alice"\ncode = "9999"\n'),
        "users[1].name",
        "'alice' is already users[0]",
    ),
    (
        ("", '[[users]]\nname = "bob"\ncode = "1234"\n'),
        "users[1].code",
        "same code as users[0].code",
    ),
    (
        ("", '[[users]]\nname = "bob"\ncode = "1235"\n'),
        "users[1].code",
        "same code as users[0].duress_code",
    ),
    (
        ("", '[[users]]\nname = "bob"\ncode = "9999"\nduress_code = "1234"\n'),
        "users[1].duress_code",
        "same code as users[0].code",
    ),
    (
        ("", '[[users]]\nname = "bob"\ncode = "9999"\ntags = ["04A1B2C3D4E5F6"]\n'),
        "users[1].tags[0]",
        "tag 04A1B2C3D4E5F6 is already users[0]'s",
    ),
    (('kind = "entry"', 'kind = "door"'), "zones[0].kind", "must be one of entry, fire, interior"),
    (('kind = "entry"', 'kind = "entry"\nmodes = []'), "zones[0].modes", "at least one mode"),
    (('kind = "entry"', 'kind = "entry"\nmodes = ["away"]'), "zones[0].modes[0]", "must be one of"),
    (('kind = "entry"', 'kind = "fire"\nmodes = ["total"]'), "zones[0].modes", "every state"),
    (('kind = "entry"', 'kind = "entry"\npin = 99'), "zones[0].pin", "between 0 and 53"),
    (('kind = "entry"', 'kind = "entry"\nnormally = "shut"'), "zones[0].normally", "one of closed"),
    (
        ("", '[[zones]]\nname = "front_door"\nkind = "fire"\n'),
        "zones[1].name",
        "already zones[0]",
    ),
    (
        (
            'kind = "entry"',
            'kind = "entry"\npin = 4\n[[zones]]\nname = "b"\nkind = "fire"\npin = 4',
        ),
        "zones[1].pin",
        "GPIO 4 is already zones[0]'s",
    ),
    (("", '[devices]\nzones = "gpio:"\n'), "zones[0].pin", "required when devices.zones is gpio:"),
    (("", '[devices]\nkeypad = "/dev/ttyUSB0"\n'), "devices.keypad", "must be a device URL"),
    (("", '[devices]\nnfc = "bluetooth:1"\n'), "devices.nfc", "unknown device URL scheme"),
    (("", '[[cameras]]\nname = "a"\n[[cameras]]\nname = "a"\n'), "cameras[1].name", "twice"),
    (("", "[[cameras]]\nname = 'a'\nmodel = 'x'\n"), "cameras[0].model", "unknown key"),
    (("", '[mqtt]\nbroker = "http://x:1"\n'), "mqtt.broker", "mqtt:// or mqtts://"),
    (("", '[mqtt]\nbroker = "mqtt://:1883"\n'), "mqtt.broker", "names no host"),
    (("", '[mqtt]\nbroker = "mqtt://h:99999"\n'), "mqtt.broker", "not a valid URL"),
    (("", '[mqtt]\npassword = "x"\n'), "mqtt.password", "needs a username"),
    (
        ("", '[mqtt]\nusername = "u"\npassword = "x"\npassword_file = "p"\n'),
        "mqtt.password_file",
        "not both",
    ),
    (("", '[mqtt]\nusername = "u"\npassword_file = "nope.txt"\n'), "mqtt.password_file", "no such"),
    (("", '[mqtt]\nca = "site.toml"\n'), "mqtt.ca", "TLS files need an mqtts:// broker"),
    (
        ("", '[mqtt]\nbroker = "mqtts://h"\ncert = "site.toml"\n'),
        "mqtt.key",
        "cert and key go together",
    ),
    (("", '[link]\nkey = "abc"\n'), "link.key", "must be 64 hex digits"),
    (("", f'[link]\nkey = "{"00" * 32}"\n'), "link.key", "placeholder"),
    (("", f'[link]\nprevious_key = "{KEY}"\n'), "link.previous_key", "needs a current key"),
    (("", f'[link]\nkey = "{KEY}"\nkey_file = "k"\n'), "link.key_file", "not both"),
    (("", "[link]\nheartbeat = 0\n"), "link.heartbeat", "between 1 and 3600"),
    (("", '[store]\npath = ""\n'), "store.path", "must not be empty"),
    (("", "[telemetry]\ninterval = 0\n"), "telemetry.interval", "between 1 and 86400"),
]


@pytest.mark.parametrize(
    ("change", "key", "reason"), CASES, ids=[f"{k}:{r[:24]}" for _c, k, r in CASES]
)
def test_each_error_names_file_key_and_reason(
    tmp_path: Path, change: tuple[str, str], key: str, reason: str
) -> None:
    old, new = change
    if old:
        assert old in BASE, old
        text = BASE.replace(old, new, 1)
    else:
        text = new + BASE if "[" not in new.split("\n")[0] else BASE + new
    err = error_of(tmp_path, text)
    assert err.key == key, str(err)
    assert reason in err.reason, str(err)
    assert str(err) == f"{tmp_path / 'site.toml'}: {key}: {err.reason}"


@pytest.mark.parametrize(
    ("data", "key", "reason"),
    [
        ({"panel": 3}, "panel", "must be a table, not an integer"),
        ({"panel": {"id": "p1", "site": "s"}, "users": 3}, "users", "must be a list of tables"),
        ({"panel": {"id": "p1", "site": "s"}, "users": [3]}, "users[0]", "must be a table"),
        (
            {
                "panel": {"id": "p1", "site": "s"},
                "users": [{"name": "a", "code": "1234"}],
                "zones": {},
            },
            "zones",
            "must be a list of tables",
        ),
    ],
)
def test_wrong_shapes_in_a_mapping(data: dict[str, object], key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_site_mapping(data, "s.yaml")
    assert (caught.value.file, caught.value.key) == ("s.yaml", key)
    assert reason in caught.value.reason


def test_no_users_is_an_error(tmp_path: Path) -> None:
    text = BASE[: BASE.index("[[users]]")] + BASE[BASE.index("[[zones]]") :]
    err = error_of(tmp_path, text)
    assert (err.key, err.reason) == ("users", "at least one user is needed (nobody could disarm)")


def test_errors_never_repeat_a_code(tmp_path: Path) -> None:
    for text in (
        BASE.replace('duress_code = "1235"', 'duress_code = "1234"'),
        BASE + '[[users]]\nname = "bob"\ncode = "1234"\n',
        BASE.replace('code = "1234"', 'code = "98765432109"'),
    ):
        err = error_of(tmp_path, text)
        for code in ("1234", "98765432109"):
            assert code not in str(err)
