"""The MQTT client behind one small interface: broker settings and client options.

Both the panel and the hub build their aiomqtt clients here, so TLS, TCP_NODELAY
and the quiet in-flight logger are the same everywhere (reconnects: common.backoff).
"""

from __future__ import annotations

import enum
import logging
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from common.backoff import Backoff as Backoff  # the one implementation, also importable here
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
    mqtt5: bool = True  # protocol = "5" (default) or "3.1.1"

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


MAX_PACKET: Final = 65_536
"""The largest MQTT packet a panel or hub link accepts (announced to MQTT 5 brokers).

Link frames are at most 8 KiB and cloud commands at most 4 KiB: a broker that knows
the limit drops anything bigger instead of handing it over to be buffered."""


def link_options(cfg: BrokerConfig, *, session_expiry: int = 0) -> dict[str, Any]:
    """``client_options`` plus the session and, on MQTT 5, the announced ``MAX_PACKET``.

    ``session_expiry`` 0 asks for a clean session (nothing kept while disconnected); more
    keeps the session, its subscriptions and its QoS 1 messages that long after a
    disconnect (MQTT 5: clean start off with that Session Expiry Interval; MQTT 3.1.1:
    clean session off, kept for as long as the broker's own settings say).
    """
    options = client_options(cfg)
    if not cfg.mqtt5:
        return {**options, "clean_session": session_expiry == 0}
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.MaximumPacketSize = MAX_PACKET
    properties.SessionExpiryInterval = session_expiry
    return {
        **options,
        "protocol": aiomqtt.ProtocolVersion.V5,
        "clean_start": session_expiry == 0,
        "properties": properties,
    }


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
