"""``CLOUD.toml``: broker, store, web, mail and installations, validated with one-line errors."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from cloud.store import Retention
from common.configcheck import NAME_RE, Section, load_toml, parse_broker_url, read_secret_file
from common.extras import require
from common.mqtt import BrokerConfig

NUMBER_RE: Final = re.compile(r"[0-9]{4,12}")
UID_RE: Final = re.compile(r"(?:[0-9A-Fa-f]{2}){4,10}")
ROLES: Final = ("master", "user", "arm_only")
KEEP_DAYS_MAX: Final = 36_500  # a hundred years: "keep everything"


@dataclass(frozen=True, slots=True)
class Holder:
    """A panel user who may create an account for an installation."""

    user: str
    keyword: str = field(repr=False)
    role: str = "user"


@dataclass(frozen=True, slots=True)
class Installation:
    """One installation a customer can sign up for: a site (and its panel)."""

    number: str
    site: str
    panel: str | None
    holders: tuple[Holder, ...]
    cameras: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()  # (uid, user)
    time_zone: str = "UTC"

    def holder(self, user: str) -> Holder | None:
        """The holder of panel user ``user``."""
        return next((h for h in self.holders if h.user == user), None)


@dataclass(frozen=True, slots=True)
class MailConfig:
    """Where notification e-mails go out."""

    host: str
    port: int
    sender: str


@dataclass(frozen=True, slots=True)
class CloudConfig:
    """Everything ``centinela cloud`` reads from its file."""

    broker: BrokerConfig
    store_url: str
    listen_host: str
    listen_port: int
    installations: tuple[Installation, ...]
    mail: MailConfig | None = None
    command_timeout: float = 15.0
    rate_limit: int = 20  # log-in, sign-up and unblock attempts per minute, per address and email
    secure_cookies: bool = False
    client_id: str = "centinela-cloud"
    store_password: str | None = field(default=None, repr=False)  # PostgreSQL's, from a file
    share_group: str | None = None  # MQTT 5 shared subscriptions: workers share the ingest
    session_expiry: int = 3600  # seconds the broker keeps a worker's session and its messages
    retention: Retention = field(default_factory=Retention)  # how long things are kept
    # Lookups by number and by site: an operator's file lists 100,000 installations, and
    # every message and request names one.
    _by_number: dict[str, Installation] = field(init=False, repr=False, compare=False)
    _by_site: dict[str, Installation] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_site: dict[str, Installation] = {}
        for inst in self.installations:
            by_site.setdefault(inst.site, inst)  # the first one listed, as before
        object.__setattr__(self, "_by_number", {i.number: i for i in self.installations})
        object.__setattr__(self, "_by_site", by_site)

    def installation(self, number: str) -> Installation | None:
        """The installation with this number."""
        return self._by_number.get(number)

    def by_site(self, site: str) -> Installation | None:
        """The installation of this site."""
        return self._by_site.get(site)


def load_cloud_file(path: str | Path) -> CloudConfig:
    """Read and validate a cloud file; a ConfigError names file, key and reason."""
    name = str(path)
    return load_cloud_mapping(load_toml(name), name, base=Path(name).resolve().parent)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def store_path(url: str) -> Path:
    """The file of a ``sqlite:///…`` store URL."""
    return Path(url.removeprefix("sqlite://"))


def load_cloud_mapping(data: dict[str, object], file: str, base: Path | None = None) -> CloudConfig:
    """Validate an already parsed cloud configuration."""
    base = base or Path.cwd()
    root = Section(data, file)
    broker_sec = root.get_section("broker", required=True)
    host, port, tls = parse_broker_url(broker_sec, "url", broker_sec.get_str("url"))
    username = broker_sec.get_opt_str("username")
    password = broker_sec.get_opt_str("password")
    if broker_sec.has("password_file"):
        password = read_secret_file(broker_sec, "password_file", base)
    if password is not None and username is None:
        raise broker_sec.error("password", "needs a username")
    ca = broker_sec.get_path("ca", base)
    if ca is not None and not tls:
        raise broker_sec.error("ca", "TLS files need an mqtts:// broker")
    client_id = broker_sec.get_str(
        "client_id",
        "centinela-cloud",
        pattern=re.compile(r"[A-Za-z0-9_-]{1,64}"),
        what="1 to 64 of A-Z a-z 0-9 _ -",
    )
    share_group = broker_sec.get_opt_str(
        "share_group", pattern=re.compile(r"[A-Za-z0-9_-]{1,64}"), what="1 to 64 of A-Z a-z 0-9 _ -"
    )
    session_expiry = broker_sec.get_int("session_expiry", 3600, minimum=0, maximum=7 * 86400)
    broker_sec.finish()
    broker = BrokerConfig(host, port, tls, username, password, ca)

    store = root.get_section("store", required=True)
    url = store.get_str("url")
    store_password: str | None = None
    if url.startswith(("postgresql://", "postgres://")):
        pg = urlsplit(url)
        try:
            pg.port  # noqa: B018 (validates the port)
        except ValueError:
            raise store.error("url", f"bad port in {url!r}") from None
        if not pg.hostname or not pg.username or pg.path.strip("/") == "" or "/" in pg.path[1:]:
            raise store.error(
                "url", f"must be postgresql://USER@HOST[:PORT]/DB, not {_without_password(url)!r}"
            )
        if pg.password is not None:
            raise store.error(
                "url", "carries a password: put it in store.password_file (one line, mode 0600)"
            )
        if store.has("password_file"):
            store_password = read_secret_file(store, "password_file", base)
        require("psycopg", "psycopg_pool", where=f"{file}: store.url")
    elif not url.startswith("sqlite:///") or url == "sqlite:///":
        raise store.error(
            "url", f"must be sqlite:///PATH or postgresql://USER@HOST/DB, not {url!r}"
        )
    elif not store_path(url).parent.is_dir():
        raise store.error("url", f"no such directory: {store_path(url).parent}")
    keep = Retention()  # the defaults
    retention = Retention(
        events_days=_days(store, "keep_events_days", keep.events_days),
        telemetry_days=_days(store, "keep_telemetry_days", keep.telemetry_days),
        media_days=_days(store, "keep_media_days", keep.media_days),
    )
    store.finish()

    web = root.get_section("web", required=True)
    listen = web.get_str("listen", "127.0.0.1:8080")
    parts = urlsplit(f"//{listen}")
    try:
        lport = parts.port
    except ValueError:
        lport = None
    if not parts.hostname or lport is None or parts.path:
        raise web.error("listen", f"must be HOST:PORT, not {listen!r}")
    timeout = web.get_number("command_timeout", 15.0, minimum=1, maximum=120)
    rate = web.get_int("rate_limit", 20, minimum=1, maximum=10_000)
    secure = web.get_bool("secure_cookies", False)
    web.finish()

    mail: MailConfig | None = None
    if root.has("mail"):
        m = root.get_section("mail")
        smtp = m.get_str("smtp")
        sp = urlsplit(smtp)
        try:
            mport = sp.port or 25
        except ValueError:
            mport = -1
        if sp.scheme != "smtp" or not sp.hostname or mport < 0:
            raise m.error("smtp", f"must be smtp://HOST[:PORT], not {smtp!r}")
        sender = m.get_str(
            "sender", pattern=re.compile(r"[^@\s]+@[^@\s]+"), what="an e-mail address"
        )
        m.finish()
        mail = MailConfig(sp.hostname, mport, sender)

    installations: list[Installation] = []
    numbers: set[str] = set()
    for sec in root.get_sections("installations"):
        number = sec.get_str("number", pattern=NUMBER_RE, what="4 to 12 digits")
        if number in numbers:
            raise sec.error("number", f"installation {number} is listed twice")
        numbers.add(number)
        site = sec.get_str("site", pattern=NAME_RE, what="1 to 32 of a-z 0-9 _ -")
        panel = sec.get_opt_str("panel", pattern=NAME_RE, what="1 to 32 of a-z 0-9 _ -")
        cameras = sec.get_str_list("cameras", [], pattern=NAME_RE, what="a camera name")
        tz = sec.get_str("time_zone", "UTC")
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(tz)
        except Exception:
            raise sec.error("time_zone", f"unknown time zone {tz!r}") from None
        holders: list[Holder] = []
        for h in sec.get_sections("holders"):
            user = h.get_str("user", pattern=NAME_RE, what="a panel user name")
            keyword = h.get_str("keyword")
            if len(keyword) < 4:
                raise h.error("keyword", "must be at least 4 characters")
            role = h.get_str("role", "user", choices=ROLES)
            h.finish()
            if any(x.user == user for x in holders):
                raise h.error("user", f"{user!r} is listed twice")
            holders.append(Holder(user, keyword, role))
        tags: list[tuple[str, str]] = []
        for t in sec.get_sections("tags"):
            uid = t.get_str("uid", pattern=UID_RE, what="4 to 10 bytes in hex").upper()
            user = t.get_str("user", pattern=NAME_RE, what="a panel user name")
            t.finish()
            tags.append((uid, user))
        sec.finish()
        if not holders:
            raise sec.error("holders", "at least one holder is needed")
        installations.append(
            Installation(number, site, panel, tuple(holders), tuple(cameras), tuple(tags), tz)
        )
    if not installations:
        raise root.error("installations", "at least one installation is needed")
    root.finish()
    return CloudConfig(
        broker,
        url,
        parts.hostname,
        lport,
        tuple(installations),
        mail,
        timeout,
        rate,
        secure,
        client_id,
        store_password,
        share_group,
        session_expiry,
        retention,
    )


def _days(section: Section, key: str, default: int) -> int:
    """A number of days to keep something: a whole number from 1 up."""
    return section.get_int(key, default, minimum=1, maximum=KEEP_DAYS_MAX)
