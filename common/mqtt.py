"""The MQTT client behind one small interface: broker settings, client options, backoff.

Both the panel and the hub build their aiomqtt clients here, so TLS, TCP_NODELAY,
the quiet in-flight logger and the reconnect policy are the same everywhere.
"""

from __future__ import annotations

import enum
import logging
import random
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from common.errors import ConfigError

_LOGGER = logging.getLogger(__name__)


class LinkState(enum.Enum):
    """Where a broker connection stands."""

    DOWN = "down"
    CONNECTING = "connecting"
    UP = "up"


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """How to reach one broker."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_broker_url(url: str, *, file: str, key: str) -> tuple[str, int, bool]:
    """``mqtt://HOST[:PORT]`` or ``mqtts://HOST[:PORT]`` -> (host, port, tls)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(file, key, f"not a valid URL: {exc}") from None
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ConfigError(file, key, f"must start with mqtt:// or mqtts://, not {url!r}")
    if not parts.hostname:
        raise ConfigError(file, key, f"names no host: {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(file, key, f"must be mqtt[s]://HOST:PORT only, not {url!r}")
    if parts.username or parts.password:
        raise ConfigError(
            file, key, "must not carry a user name or password (use username/password)"
        )
    tls = parts.scheme == "mqtts"
    return parts.hostname, port if port is not None else (8883 if tls else 1883), tls


def tls_context(cfg: BrokerConfig) -> ssl.SSLContext | None:
    """The TLS context for ``cfg`` (None for plain MQTT)."""
    if not cfg.tls:
        return None
    context = ssl.create_default_context(cafile=str(cfg.ca) if cfg.ca else None)
    if cfg.cert:
        context.load_cert_chain(str(cfg.cert), str(cfg.key) if cfg.key else None)
    return context


NODELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)

# aiomqtt warns on every publish beyond 10 in flight (the links keep a window of their own),
# and paho logs a dropped connection as an error; the links report their state themselves.
_QUIET = logging.getLogger("common.mqtt.client")
_QUIET.setLevel(logging.CRITICAL)


def client_options(cfg: BrokerConfig) -> dict[str, Any]:
    """Keyword arguments for ``aiomqtt.Client`` (hostname and port included)."""
    return {
        "hostname": cfg.host,
        "port": cfg.port,
        "username": cfg.username,
        "password": cfg.password,
        "tls_context": tls_context(cfg),
        "socket_options": NODELAY,
        "logger": _QUIET,
        "timeout": 10,
        "keepalive": 30,
    }


class Backoff:
    """Capped exponential backoff, equal jitter: ``min(cap, base * 2 ** n)`` times U(0.5, 1)."""

    def __init__(
        self, base: float = 0.1, cap: float = 10.0, rng: random.Random | None = None
    ) -> None:
        self.base = base
        self.cap = cap
        self.attempt = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        """The delay before the next attempt."""
        ceiling = min(self.cap, self.base * 2**self.attempt)
        self.attempt += 1
        return float(ceiling / 2 + self._rng.uniform(0, ceiling / 2))

    def reset(self) -> None:
        """Call after a successful connection."""
        self.attempt = 0
