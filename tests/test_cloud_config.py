"""``centinela cloud --config``: a bad file is one line naming file, key and reason; exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from centinela.cli import main
from cloud.config import load_cloud_file
from cloud.store import Retention

GOOD = """
[broker]
url = "mqtt://127.0.0.1:1883"
[store]
url = "sqlite:///{tmp}/cloud.db"
[web]
listen = "127.0.0.1:8080"
[mail]
smtp = "smtp://127.0.0.1:2525"
sender = "alarm@example.org"
[[installations]]
number = "1234567"
site = "demo"
cameras = ["hall"]
[[installations.holders]]
user = "alice"
keyword = "girasol"
role = "master"
"""


def write(tmp: Path, text: str) -> Path:
    path = tmp / "cloud.toml"
    path.write_text(text.replace("{tmp}", str(tmp)))
    return path


def test_a_good_file_loads(tmp_path: Path) -> None:
    cfg = load_cloud_file(write(tmp_path, GOOD))
    assert cfg.listen_port == 8080 and cfg.mail is not None and cfg.mail.port == 2525
    inst = cfg.installation("1234567")
    assert inst is not None and inst.holder("alice") is not None
    assert "girasol" not in repr(cfg)  # the keyword never shows in a repr


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        (('url = "mqtt://127.0.0.1:1883"', 'url = "http://x"'), "broker.url", "mqtt://"),
        (("sqlite:///{tmp}/cloud.db", "mysql://x"), "store.url", "sqlite:///PATH"),
        (
            ("sqlite:///{tmp}/cloud.db", "sqlite:///{tmp}/no/such/cloud.db"),
            "store.url",
            "no such directory",
        ),
        (("sqlite:///{tmp}/cloud.db", "postgresql://u:s3cret@h/db"), "store.url", "password_file"),
        (("sqlite:///{tmp}/cloud.db", "postgresql://h/db"), "store.url", "USER@HOST"),
        (('listen = "127.0.0.1:8080"', 'listen = "everywhere"'), "web.listen", "HOST:PORT"),
        (('smtp = "smtp://127.0.0.1:2525"', 'smtp = "mail.example"'), "mail.smtp", "smtp://"),
        (('number = "1234567"', 'number = "12ab"'), "installations[0].number", "digits"),
        (('site = "demo"', 'site = "Demo Site"'), "installations[0].site", "a-z"),
        (('role = "master"', 'role = "boss"'), "installations[0].holders[0].role", "one of"),
        (
            ('keyword = "girasol"', 'keyword = "ab"'),
            "installations[0].holders[0].keyword",
            "at least 4",
        ),
        (("[web]", "[web]\ncolour = 1"), "web.colour", "unknown key"),
        (("[store]", 'share_group = "a b"\n[store]'), "broker.share_group", "A-Z"),
        (("[store]", "session_expiry = -1\n[store]"), "broker.session_expiry", "0"),
        (
            ("sqlite:///{tmp}/cloud.db", 'postgresql://u@h/db"\npassword_file = "nope'),
            "store.password_file",
            "no such file",
        ),
        (("[web]", "keep_media_days = 0\n[web]"), "store.keep_media_days", "between 1 and"),
        (("[web]", 'keep_events_days = "1y"\n[web]'), "store.keep_events_days", "integer"),
        (("[web]", "keep_telemetry_days = 7.5\n[web]"), "store.keep_telemetry_days", "integer"),
        (("[web]", "keep_events_days = -3\n[web]"), "store.keep_events_days", "between 1 and"),
    ],
)
def test_a_bad_file_is_one_line_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: tuple[str, str],
    key: str,
    reason: str,
) -> None:
    path = write(tmp_path, GOOD.replace(*change))
    assert main(["cloud", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(path) in err and key in err and reason in err
    assert "Traceback" not in err and "s3cret" not in err


def test_a_postgresql_store_and_shared_subscriptions(tmp_path: Path) -> None:
    (tmp_path / "pg.pass").write_text("s3cret\n")
    (tmp_path / "pg.pass").chmod(0o600)
    text = GOOD.replace(
        "sqlite:///{tmp}/cloud.db",
        'postgresql://centinela@db:5433/cloud"\npassword_file = "pg.pass',
    )
    text = text.replace("[store]", 'share_group = "cloud"\nsession_expiry = 600\n[store]')
    cfg = load_cloud_file(write(tmp_path, text))
    assert cfg.store_url == "postgresql://centinela@db:5433/cloud"
    assert cfg.store_password == "s3cret" and "s3cret" not in repr(cfg)
    assert cfg.share_group == "cloud" and cfg.session_expiry == 600


def test_the_retention_rule_defaults_and_its_keys(tmp_path: Path) -> None:
    cfg = load_cloud_file(write(tmp_path, GOOD))
    assert cfg.retention == Retention(events_days=365, telemetry_days=31, media_days=30)
    text = GOOD.replace(
        "[web]", "keep_events_days = 730\nkeep_telemetry_days = 30\nkeep_media_days = 7\n[web]"
    )
    cfg = load_cloud_file(write(tmp_path, text))
    assert cfg.retention == Retention(events_days=730, telemetry_days=30, media_days=7)


def test_a_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["cloud", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "no such file" in capsys.readouterr().err
