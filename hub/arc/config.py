"""The ``[arc]`` section of the hub configuration (CONTRACT §8, docs/configuration.md)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from common.configcheck import Section, read_secret_file
from hub.arc.dc09 import KEY_SIZES
from hub.arc.reports import FORMATS, SIA_DCS, Numbering

ACCOUNT_RE: Final = re.compile(r"[0-9A-Fa-f]{3,16}")
PREFIX_RE: Final = re.compile(r"[0-9A-Fa-f]{1,6}")
KEY_RE: Final = re.compile(r"[!-~]{16}|[!-~]{24}|[!-~]{32}")
_URL_RE: Final = re.compile(r"tcp://(?P<host>\[[0-9A-Fa-f:]+\]|[A-Za-z0-9_.-]+):(?P<port>\d{1,5})")


@dataclass(frozen=True, slots=True)
class Receiver:
    """One receiver of the centre."""

    host: str
    port: int

    @property
    def url(self) -> str:
        """``tcp://host:port``."""
        return f"tcp://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ArcConfig:
    """Where and how the hub reports to an alarm receiving centre."""

    receivers: tuple[Receiver, ...]  # primary first, then backup(s)
    account: str
    key: bytes | None = field(default=None, repr=False)
    format: str = SIA_DCS
    supervision: float = 90.0
    accounts: Mapping[str, str] = field(default_factory=dict)  # panel id -> its own account
    users: Mapping[str, int] = field(default_factory=dict)
    zones: Mapping[str, int] = field(default_factory=dict)
    receiver_number: str = "0"
    line: str = "0"
    ack_timeout: float = 10.0
    attempts: int = 3
    retry: float = 1.0
    primary_retry: float = 60.0

    def account_of(self, panel: str) -> str:
        """The account that reports ``panel``'s events."""
        return self.accounts.get(panel, self.account)

    @property
    def numbering(self) -> Numbering:
        """User and zone numbers."""
        return Numbering(self.users, self.zones)

    def describe(self) -> str:
        """One line for ``centinela doctor`` and the logs (never the key)."""
        receivers = ", ".join(r.url for r in self.receivers)
        crypto = f"AES-{len(self.key) * 8}" if self.key else "unencrypted"
        return (
            f"{self.format} to {receivers} (primary first), account {self.account}, {crypto}, "
            f"NULL every {self.supervision:g} s, failover after {self.attempts} attempt(s)"
        )


def parse_arc(sec: Section, base: Path, panels: frozenset[str]) -> ArcConfig:
    """Validate ``[arc]``."""
    urls = sec.get_str_list("receivers")
    if not urls:
        raise sec.error("receivers", "at least one tcp://HOST:PORT is required")
    receivers = []
    for i, url in enumerate(urls):
        match = _URL_RE.fullmatch(url)
        if match is None or not 0 < int(match["port"]) < 65536:
            raise sec.error(f"receivers[{i}]", f"{url!r} is not tcp://HOST:PORT")
        receivers.append(Receiver(match["host"].strip("[]"), int(match["port"])))
    account = sec.get_str("account", pattern=ACCOUNT_RE, what="3 to 16 hex digits").upper()
    key = _key(sec, base)
    fmt = sec.get_str("format", SIA_DCS, choices=FORMATS)
    supervision = sec.get_number("supervision", 90, minimum=0.1, maximum=86400)
    accounts: dict[str, str] = {}
    acc_sec = sec.get_section("accounts")
    for panel in acc_sec.data:
        if panel not in panels:
            raise acc_sec.error(panel, "is not a panel of this hub")
        accounts[panel] = acc_sec.get_str(
            panel, pattern=ACCOUNT_RE, what="3 to 16 hex digits"
        ).upper()
    acc_sec.finish()
    users = _numbers(sec.get_section("users"))
    zones = _numbers(sec.get_section("zones"))
    receiver_number = sec.get_str("receiver", "0", pattern=PREFIX_RE, what="1 to 6 hex digits")
    line = sec.get_str("line", "0", pattern=PREFIX_RE, what="1 to 6 hex digits")
    ack_timeout = sec.get_number("ack_timeout", 10, minimum=0.05, maximum=300)
    attempts = sec.get_int("attempts", 3, minimum=1, maximum=100)
    retry = sec.get_number("retry", 1, minimum=0, maximum=3600)
    primary_retry = sec.get_number("primary_retry", 60, minimum=0.1, maximum=86400)
    sec.finish()
    return ArcConfig(
        receivers=tuple(receivers),
        account=account,
        key=key,
        format=fmt,
        supervision=supervision,
        accounts=accounts,
        users=users,
        zones=zones,
        receiver_number=receiver_number.upper(),
        line=line.upper(),
        ack_timeout=ack_timeout,
        attempts=attempts,
        retry=retry,
        primary_retry=primary_retry,
    )


def _key(sec: Section, base: Path) -> bytes | None:
    if sec.has("key") and sec.has("key_file"):
        raise sec.error("key_file", "give key or key_file, not both")
    if sec.has("key_file"):
        text = read_secret_file(sec, "key_file", base).strip()
        where = "key_file"
    else:
        value = sec.get_opt_str("key")
        if value is None:
            return None
        text, where = value, "key"
    if not KEY_RE.fullmatch(text):
        # Never echo the key itself.
        raise sec.error(
            where, f"must be {'/'.join(map(str, KEY_SIZES))} printable characters, not {len(text)}"
        )
    return text.encode("ascii")


def _numbers(sec: Section) -> dict[str, int]:
    out: dict[str, int] = {}
    for name in sec.data:
        number = sec.get_int(name, minimum=1, maximum=999)
        if number in out.values():
            raise sec.error(name, f"number {number} is given twice")
        out[name] = number
    sec.finish()
    return out
