"""The hub's configuration (TOML): site, store, the two brokers and the panels' link keys."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.configcheck import (
    NAME_RE,
    Section,
    broker_section,
    load_toml,
    parse_hex_key,
    read_secret_file,
)
from common.mqtt import BrokerConfig
from hub.arc.config import ArcConfig, parse_arc
from hub.homeassistant import HaConfig, parse_homeassistant
from hub.linkkeys import derived_key_id

DEFAULT_BROKER = "mqtt://127.0.0.1:1883"
MAX_SESSION_EXPIRY = 7 * 86_400
"""The longest ``[cloud] session_expiry``: seconds the broker keeps a hub's session while it
is away (and the commands sent meanwhile)."""
CLIENT_ID_RE = re.compile(r"[!-~]{1,128}")
"""A cloud client id: 1 to 128 printable ASCII characters, no spaces (MQTT itself only
promises 23 of 0-9 a-z A-Z; every broker in use takes more)."""


@dataclass(frozen=True, slots=True)
class PanelKeys:
    """One panel the hub relays for, and its link key(s)."""

    id: str
    key: bytes = field(repr=False)
    previous_key: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class HubConfig:
    """A validated hub configuration."""

    site: str
    store: Path
    local: BrokerConfig
    cloud: BrokerConfig
    panels: tuple[PanelKeys, ...]
    command_timeout: float = 10.0
    offline_after: float = 90.0
    source: str = "<memory>"
    media_max_bytes: int = 256 * 1024 * 1024  # photos (and any media) kept, at most
    media_max_days: float = 30.0  # photos older than this (by receipt) are pruned
    max_clock_skew: float = 0.0  # seconds a panel frame's time may be off the hub's; 0: unchecked
    response_prefix: str = ""  # MQTT 5 response topics must be under it ("" = the default)
    command_queue: int = 64  # commands waiting to be handled; beyond it: `busy`
    arc: ArcConfig | None = None  # [arc]: SIA DC-09 to an alarm receiving centre
    homeassistant: HaConfig | None = None  # [homeassistant]: MQTT discovery
    cloud_client_id: str = ""  # [cloud] client_id ("" = centinela-hub-<site>-cloud)
    cloud_session_expiry: int = 0  # [cloud] session_expiry: seconds; 0 = a clean session

    def __post_init__(self) -> None:
        if not self.response_prefix:
            object.__setattr__(self, "response_prefix", default_response_prefix(self.site))
        if not self.cloud_client_id:
            object.__setattr__(self, "cloud_client_id", default_client_id(self.site))

    @property
    def cloud_mqtt5(self) -> bool:
        """Whether the cloud link speaks MQTT 5 (response topics, correlation data)."""
        return self.cloud.mqtt5

    def panel(self, panel_id: str) -> PanelKeys | None:
        """The panel called ``panel_id``, if configured."""
        return next((p for p in self.panels if p.id == panel_id), None)

    @property
    def panel_ids(self) -> frozenset[str]:
        """Ids of every configured panel."""
        return frozenset(p.id for p in self.panels)


def default_client_id(site: str) -> str:
    """The hub's client id on the cloud broker unless configured."""
    return f"centinela-hub-{site}-cloud"


def default_response_prefix(site: str) -> str:
    """Where MQTT 5 response topics may point unless configured: under the result topic."""
    return f"centinela/{site}/result/"


def load_hub_file(path: str | os.PathLike[str]) -> HubConfig:
    """Read and validate a hub configuration file."""
    name = os.fspath(path)
    return load_hub_mapping(load_toml(name), name)


def load_hub_mapping(data: Mapping[str, Any], source: str) -> HubConfig:
    """Validate a parsed hub configuration; relative paths are relative to ``source``'s folder."""
    base = Path(source).resolve().parent if source and not source.startswith("<") else Path.cwd()
    if not isinstance(data, Mapping):
        raise Section({}, source).error(None, "the configuration must be a table of keys")
    root = Section(data, source)
    hub = root.get_section("hub", required=True)
    site = hub.get_str("site", pattern=NAME_RE, what="1 to 32 of a-z 0-9 _ -")
    store = hub.get_store_path("store", base, default="hub.db")
    assert store is not None  # a default is given
    command_timeout = hub.get_number("command_timeout", 10, minimum=0.1, maximum=3600)
    offline_after = hub.get_number("offline_after", 90, minimum=1, maximum=86400)
    media_max_bytes = hub.get_int("media_max_bytes", 256 * 1024 * 1024, minimum=0, maximum=2**44)
    media_max_days = hub.get_number("media_max_days", 30, minimum=0.001, maximum=36500)
    max_clock_skew = hub.get_number("max_clock_skew", 0, minimum=0, maximum=86400)
    command_queue = hub.get_int("command_queue", 64, minimum=1, maximum=100_000)
    response_prefix = hub.get_str("response_prefix", default_response_prefix(site))
    problem = _prefix_problem(site, response_prefix)
    if problem is not None:
        raise hub.error("response_prefix", problem)
    hub.finish()

    local_sec = root.get_section("local")
    local = _broker(local_sec, base)
    cloud, client_id, session_expiry = local, default_client_id(site), 0
    if root.has("cloud"):
        cloud_sec = root.get_section("cloud")
        client_id = cloud_sec.get_str(
            "client_id", client_id, pattern=CLIENT_ID_RE,
            what="1 to 128 printable ASCII characters without spaces",
        )  # fmt: skip
        session_expiry = cloud_sec.get_int(
            "session_expiry", 0, minimum=0, maximum=MAX_SESSION_EXPIRY
        )
        cloud = _broker(cloud_sec, base)
        same_broker = (cloud.host, cloud.port) == (local.host, local.port)
        if same_broker and client_id == f"centinela-hub-{site}-local":
            raise cloud_sec.error(
                "client_id", "is the hub's own client id on that broker for the panels' link"
            )

    panels: list[PanelKeys] = []
    sections = root.get_sections("panels")
    if not sections:
        raise root.error("panels", "at least one [[panels]] table is required")
    for sec in sections:
        panel_id = sec.get_str("id", pattern=NAME_RE, what="1 to 32 of a-z 0-9 _ -")
        if any(p.id == panel_id for p in panels):
            raise sec.error("id", f"panel {panel_id!r} is listed twice")
        key = _key(sec, "key", base, required=True)
        assert key is not None
        previous = _key(sec, "previous_key", base, required=False)
        if previous == key:
            raise sec.error("previous_key", "is the same as key")
        if previous is not None and derived_key_id(previous) == derived_key_id(key):
            raise sec.error(
                "key", "has the same key id as previous_key: generate another (centinela keygen)"
            )
        sec.finish()
        panels.append(PanelKeys(panel_id, key, previous))
    ids = frozenset(p.id for p in panels)
    arc = parse_arc(root.get_section("arc"), base, ids) if root.has("arc") else None
    ha = root.get_section("homeassistant")
    homeassistant = parse_homeassistant(ha, ids) if root.has("homeassistant") else None
    root.finish()
    return HubConfig(
        site=site,
        store=store,
        local=local,
        cloud=cloud,
        panels=tuple(panels),
        command_timeout=command_timeout,
        offline_after=offline_after,
        source=source,
        media_max_bytes=media_max_bytes,
        media_max_days=media_max_days,
        max_clock_skew=max_clock_skew,
        response_prefix=response_prefix,
        command_queue=command_queue,
        arc=arc,
        homeassistant=homeassistant,
        cloud_client_id=client_id,
        cloud_session_expiry=session_expiry,
    )


def _prefix_problem(site: str, prefix: str) -> str | None:
    """Why ``prefix`` cannot hold response topics (None when it can)."""
    if not prefix.endswith("/") or len(prefix) < 2:
        return f"must end with '/', like {default_response_prefix(site)!r}"
    if "+" in prefix or "#" in prefix or prefix.startswith("$"):
        return "must not hold a wildcard (+, #) or start with $"
    own = f"centinela/{site}/"
    link = "centinela-link/"
    # Everything the hub publishes besides results is under these: none may be reachable.
    if own.startswith(prefix) or link.startswith(prefix):
        return f"would let commands steer the hub's own topics ({own}…)"
    if prefix.startswith(own) and not prefix.startswith(f"{own}result/"):
        return f"under {own} only {own}result/… may hold response topics"
    if prefix.startswith(link):
        return "must not be under the panels' link topics"
    return None


def _key(sec: Section, key: str, base: Path, *, required: bool) -> bytes | None:
    file_key = f"{key}_file"
    if sec.has(key) and sec.has(file_key):
        raise sec.error(file_key, f"give {key} or {file_key}, not both")
    if sec.has(file_key):
        return parse_hex_key(sec, file_key, read_secret_file(sec, file_key, base))
    text = sec.get_opt_str(key)
    if text is None:
        if required:
            raise sec.error(key, f"required (or {file_key}): 64 hex digits from centinela keygen")
        return None
    return parse_hex_key(sec, key, text)


def _broker(sec: Section, base: Path) -> BrokerConfig:
    return broker_section(sec, base, DEFAULT_BROKER)
