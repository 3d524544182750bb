"""`[arc]` in the hub file: good values load, each mistake is one line naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from common.errors import ConfigError
from hub.config import load_hub_mapping
from protocol.keys import generate_key


def load(tmp_path: Path, arc: dict[str, Any]) -> Any:
    return load_hub_mapping(
        {
            "hub": {"site": "demo", "store": "hub.db"},
            "panels": [{"id": "p1", "key": generate_key()}, {"id": "p2", "key": generate_key()}],
            "arc": arc,
        },
        str(tmp_path / "hub.toml"),
    )


BASE = {"receivers": ["tcp://127.0.0.1:12000", "tcp://arc2.example:12001"], "account": "aaa1"}


def test_a_full_section_loads(tmp_path: Path) -> None:
    (tmp_path / "arc.key").write_text("0123456789ABCDEF01234567\n")
    (tmp_path / "arc.key").chmod(0o600)  # a secret: owner-only or refused
    arc = load(tmp_path, {**BASE, "key_file": "arc.key", "format": "ADM-CID", "supervision": 30,
                          "accounts": {"p2": "bbb2"}, "users": {"alice": 1},
                          "zones": {"front_door": 7}, "receiver": "1a", "line": "2",
                          "attempts": 5}).arc  # fmt: skip
    assert [r.url for r in arc.receivers] == BASE["receivers"]
    assert (
        arc.account == "AAA1" and arc.account_of("p2") == "BBB2" and arc.account_of("p1") == "AAA1"
    )
    assert arc.key == b"0123456789ABCDEF01234567" and arc.format == "ADM-CID"
    assert (arc.receiver_number, arc.line, arc.attempts) == ("1A", "2", 5)
    assert "0123456789ABCDEF" not in repr(arc) and "0123456789ABCDEF" not in arc.describe()
    assert "AES-192" in arc.describe()


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        ({"receivers": []}, "arc.receivers", "at least one"),
        ({"receivers": ["udp://127.0.0.1:1"]}, "arc.receivers[0]", "tcp://HOST:PORT"),
        ({"receivers": ["tcp://127.0.0.1:70000"]}, "arc.receivers[0]", "tcp://HOST:PORT"),
        ({"account": "XYZ"}, "arc.account", "hex"),
        ({"account": "AB"}, "arc.account", "hex"),
        ({"key": "secret"}, "arc.key", "16/24/32"),
        ({"format": "SIA-DC03"}, "arc.format", "one of"),
        ({"supervision": 0}, "arc.supervision", "between"),
        ({"accounts": {"p9": "AAA2"}}, "arc.accounts.p9", "not a panel"),
        ({"users": {"alice": 1, "bob": 1}}, "arc.users.bob", "twice"),
        ({"zones": {"door": 1000}}, "arc.zones.door", "between"),
        ({"colour": "red"}, "arc.colour", "unknown key"),
    ],
)
def test_mistakes_name_the_key(
    tmp_path: Path, change: dict[str, Any], key: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, {**BASE, **change})
    assert info.value.key == key and reason in info.value.reason
    assert "secret" not in str(info.value)
