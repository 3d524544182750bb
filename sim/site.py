"""A whole simulated site in one process: private broker, panel, hub and the cloud stand-in."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from common.clock import Clock
from common.errors import ConfigError, UsageError
from common.mqtt import BrokerConfig, parse_broker_url
from protocol.keys import generate_key
from sim.cloud import CloudStandIn
from sim.embedded import PrivateBroker, private_broker

if TYPE_CHECKING:
    from drivers.twin import Twin
    from hub.config import HubConfig
    from hub.process import HubProcess
    from panel.config import SiteConfig
    from panel.process import PanelProcess

    _T = TypeVar("_T", bound=Twin)

_LOGGER = logging.getLogger(__name__)

DEMO_SITE = Path(__file__).parent / "sites" / "demo.toml"
VIRTUAL_START_MS = 1_767_258_000_000  # 2026-01-01T09:00:00Z: every scenario starts here
SETTLE_CAP_S = 3.0  # real seconds a settle waits for in-flight work at most
LINK_CAP_S = 15.0  # real seconds to wait for reconnections (the panel link backs off up to 5 s)


@dataclass(frozen=True, slots=True)
class SiteFacts:
    """The names a simulator needs, read from a site mapping (the loader validates the rest)."""

    site: str
    panel: str
    users: dict[str, tuple[str, ...]]  # name -> tag UIDs
    roles: dict[str, str]
    zones: dict[str, str]  # name -> kind
    cameras: tuple[str, ...]

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SiteFacts:
        """Read panel id, site, users, zones and cameras (missing parts are empty)."""
        panel = data.get("panel") or {}
        users = [u for u in data.get("users") or [] if isinstance(u, Mapping)]
        zones = [z for z in data.get("zones") or [] if isinstance(z, Mapping)]
        cameras = [c for c in data.get("cameras") or [] if isinstance(c, Mapping)]
        return cls(
            site=str(panel.get("site", "")),
            panel=str(panel.get("id", "")),
            users={str(u.get("name")): tuple(str(t) for t in u.get("tags") or []) for u in users},
            roles={str(u.get("name")): str(u.get("role", "")) for u in users},
            zones={str(z.get("name")): str(z.get("kind", "")) for z in zones},
            cameras=tuple(str(c.get("name")) for c in cameras),
        )


HUB_SECTIONS = ("arc", "homeassistant")


def hub_sections(extra: Mapping[str, Any], facts: SiteFacts) -> dict[str, Any]:
    """The site file's ``[arc]`` and ``[homeassistant]`` for its hub, completed from the site.

    Users and zones are numbered for the centre in the order the site lists them
    (1, 2, ...) unless ``[arc.users]`` / ``[arc.zones]`` number them; Home
    Assistant learns the zones, their kinds and the cameras.
    """
    out: dict[str, Any] = {}
    arc = extra.get("arc")
    if isinstance(arc, Mapping):
        arc = dict(arc)
        arc.setdefault("users", {name: i for i, name in enumerate(facts.users, 1)})
        arc.setdefault("zones", {name: i for i, name in enumerate(facts.zones, 1)})
        out["arc"] = arc
    elif arc is not None:
        out["arc"] = arc  # the hub's loader names the mistake
    ha = extra.get("homeassistant")
    if isinstance(ha, Mapping):
        ha = dict(ha)
        if "panels" not in ha:
            ha["panels"] = {
                facts.panel: {"zones": dict(facts.zones), "cameras": list(facts.cameras)}
            }
        out["homeassistant"] = ha
    elif ha is not None:
        out["homeassistant"] = ha
    return out


def read_site_file(path: str | Path) -> dict[str, Any]:
    """The mapping of a site TOML file; errors name the file and the reason."""
    source = str(path)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(source, "", "no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "", f"TOML syntax error: {exc}") from None
    except OSError as exc:
        raise ConfigError(source, "", f"cannot read: {exc}") from None


def new_link_key() -> str:
    """A fresh 256-bit panel link key, in hex."""
    return generate_key()


class SimSite:
    """Broker, panel, hub and cloud stand-in for one site, started and stopped together."""

    def __init__(
        self,
        data: Mapping[str, Any],
        source: str,
        *,
        clock: Clock,
        workdir: Path,
        broker_url: str | None = None,
        prefer_broker: str = "auto",
    ) -> None:
        self.source = source
        self.clock = clock
        self.workdir = workdir
        self.facts = SiteFacts.from_mapping(data)
        self._external_url = broker_url
        self._prefer = prefer_broker
        self.broker: PrivateBroker | None = None
        self.broker_url = broker_url or ""
        self.panel: PanelProcess | None = None
        self.hub: HubProcess | None = None
        self.cloud: CloudStandIn | None = None
        self._data = dict(data)
        self._key = str((data.get("link") or {}).get("key") or new_link_key())
        self._open_zones: set[str] = set()
        self._chips: dict[str, Any] = {}  # simulated NTAG 424 DNA tags of a sun site, by UID
        self._panel_config: SiteConfig | None = None
        self._hub_config: HubConfig | None = None
        self._hub_extra: dict[str, Any] = {}

    # -- life cycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Start the broker (unless external), the hub, the panel and the cloud stand-in."""
        from drivers.registry import check_installed
        from panel.config import load_site_mapping

        self.workdir.mkdir(parents=True, exist_ok=True)
        if self._external_url is None:
            self.broker = private_broker(self._prefer)
            self.broker_url = self.broker.url
        data = dict(self._data)
        # Hub-only sections (CONTRACT §8): the panel never sees them.
        self._hub_extra = {k: data.pop(k) for k in HUB_SECTIONS if k in data}
        mqtt = dict(data.get("mqtt") or {})
        mqtt["broker"] = self.broker_url
        if self.broker is not None and self.broker.kind == "amqtt":
            mqtt["protocol"] = "3.1.1"  # amqtt speaks MQTT 3.1.1 only
        data["mqtt"] = mqtt
        link = dict(data.get("link") or {})
        if "key" not in link and "key_file" not in link:  # an installer's file keeps its own
            link["key"] = self._key
        data["link"] = link
        store = dict(data.get("store") or {})
        store.setdefault("path", str(self.workdir / "panel.db"))
        data["store"] = store
        self._panel_config = load_site_mapping(data, self.source)
        for kind, url in dataclasses.asdict(self._panel_config.devices).items():
            # A device library missing on this host: say so before anything starts.
            check_installed(kind, url, file=self.source)
        if self._panel_config.link.key is not None:
            self._key = self._panel_config.link.key.hex()  # the hub gets the same key
        self._hub_config = self._hub_mapping(mqtt)
        if self.broker is not None:
            await self.broker.start()
        host, port, tls = parse_broker_url(self.broker_url, file=self.source, key="broker")
        cloud_broker = BrokerConfig(
            host, port, tls, mqtt.get("username"), mqtt.get("password"), _path(mqtt.get("ca"))
        )
        self.cloud = CloudStandIn(cloud_broker, self.facts.site)
        await self.cloud.start()
        await self._start_hub()
        await self._start_panel()
        await self.wait_linked()

    async def stop(self) -> None:
        """Stop everything this site started, in reverse order; the broker is always closed."""
        try:
            for name in ("panel", "hub"):
                proc = getattr(self, name)
                setattr(self, name, None)
                if proc is not None:
                    try:
                        await proc.stop()
                    except Exception:
                        _LOGGER.exception("the %s did not stop cleanly", name)
            if self.cloud is not None:
                cloud, self.cloud = self.cloud, None
                await cloud.stop()
        finally:
            if self.broker is not None:
                broker, self.broker = self.broker, None
                await asyncio.shield(broker.close())

    async def __aenter__(self) -> SimSite:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _hub_mapping(self, mqtt: Mapping[str, Any]) -> HubConfig:
        from hub.config import load_hub_mapping

        broker: dict[str, Any] = {"broker": self.broker_url}
        for key in ("username", "password", "ca", "cert", "key", "protocol"):
            if mqtt.get(key):
                broker[key] = mqtt[key]
        mapping = {
            "hub": {
                "site": self.facts.site,
                "store": str(self.workdir / "hub.db"),
                "command_timeout": 10,
            },
            "local": dict(broker),
            "cloud": dict(broker),
            "panels": [{"id": self.facts.panel, "key": self._key}],
            **hub_sections(self._hub_extra, self.facts),
        }
        return load_hub_mapping(mapping, f"{self.source} (hub)")

    async def _start_panel(self) -> None:
        from drivers.sim_zones import SimZones
        from panel.process import PanelProcess

        assert self._panel_config is not None, "site not started"
        panel = PanelProcess(self._panel_config, clock=self.clock, broker_url=self.broker_url)
        await panel.start()
        self.panel = panel
        for zone in sorted(self._open_zones):
            await self._twin("zones", SimZones).open(zone)

    async def _start_hub(self) -> None:
        from hub.process import HubProcess

        # A short reconnect cap: a `broker: start` step waits for the links to come back.
        assert self._hub_config is not None, "site not started"
        hub = HubProcess(self._hub_config, clock=self.clock, backoff_cap=0.5)
        await hub.start()
        self.hub = hub

    # -- what scenarios and the UI do ---------------------------------------------------

    async def restart(self, which: str) -> None:
        """Stop and start the panel or the hub (their stores keep their state)."""
        if which == "panel":
            panel, self.panel = self.panel, None
            if panel is not None:
                await panel.stop()
            await self._start_panel()
        else:
            hub, self.hub = self.hub, None
            if hub is not None:
                await hub.stop()
            await self._start_hub()
        await self.wait_linked()

    async def power(self, which: str, on: bool) -> None:
        """Stop the panel or hub and leave it down, or start it again."""
        running = getattr(self, which)
        if on and running is None:
            await (self._start_panel() if which == "panel" else self._start_hub())
            await self.wait_linked()
        elif not on and running is not None:
            setattr(self, which, None)
            await running.stop()

    async def set_broker(self, up: bool) -> None:
        """Stop or start the private broker."""
        if self.broker is None:
            raise UsageError("broker steps need the simulator's own broker, not --broker")
        await (self.broker.start() if up else self.broker.stop())
        if up:
            await self.wait_linked()

    def linked(self) -> bool:
        """Panel link, both hub links and the cloud stand-in are connected."""
        from common.mqtt import LinkState

        links = []
        if self.panel is not None and self.panel.link is not None:
            links.append(self.panel.link.state)
        if self.hub is not None:
            links += [self.hub.local.state, self.hub.cloud.state]
        cloud_up = self.cloud is None or self.cloud.connected.is_set()
        return cloud_up and all(state is LinkState.UP for state in links)

    async def wait_linked(self, cap_s: float = LINK_CAP_S) -> bool:
        """Wait (real time) until every link is up again; False if not within ``cap_s``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + cap_s
        while not self.linked():
            if loop.time() >= deadline:
                _LOGGER.warning("links still down after %.0f s", cap_s)
                return False
            await asyncio.sleep(0.01)
        return True

    def _running(self) -> PanelProcess:
        if self.panel is None:
            raise UsageError("the panel is stopped")
        return self.panel

    def device_twin(self, device: str, kind: type[_T]) -> _T | None:
        """The simulated twin behind the running panel's ``device``; None for a real device."""
        twin = getattr(getattr(self.panel, device, None), "twin", None)
        return twin if isinstance(twin, kind) else None

    def _twin(self, device: str, kind: type[_T]) -> _T:
        twin = self.device_twin(device, kind)
        if twin is None:
            self._running()
            raise UsageError(f"the panel's {device} is a real device, not a simulated one")
        return twin

    async def press(self, keys: str) -> None:
        """Type keys on the simulated keypad."""
        from drivers.sim_keypad import KeypadTwin

        await self._twin("keypad", KeypadTwin).type(keys)

    async def present_tag(self, uid: str) -> None:
        """Bring a tag into the reader's field.

        On a site with ``[nfc] tags = "sun"`` a 7-byte UID is an NTAG 424 DNA
        personalised with the site's keys (one chip per UID, its read counter kept
        across panel restarts); any other UID is a plain UID-only tag.
        """
        from drivers.sim_nfc import SimTagEmulator

        nfc = self._running().config.nfc
        tag: Any = uid
        if nfc.sun and len(uid) == 14 and nfc.meta_key and nfc.file_key:
            from drivers.ntag424 import SunKeys
            from drivers.sim_ntag424 import Ntag424Chip

            tag = self._chips.get(uid.upper())
            if tag is None:
                tag = Ntag424Chip(uid).personalise(SunKeys(nfc.meta_key, nfc.file_key), nfc.url)
                self._chips[uid.upper()] = tag
        await self._twin("nfc", SimTagEmulator).present(tag)

    async def remove_tag(self) -> None:
        """Take the tag away."""
        from drivers.sim_nfc import SimTagEmulator

        await self._twin("nfc", SimTagEmulator).remove()

    async def set_zone(self, zone: str, is_open: bool) -> None:
        """Fault or restore a zone (remembered across panel restarts, like a real door)."""
        from drivers.sim_zones import SimZones

        twin = self._twin("zones", SimZones)
        if is_open:
            self._open_zones.add(zone)
            await twin.open(zone)
        else:
            self._open_zones.discard(zone)
            await twin.close(zone)

    async def tamper(self, target: str) -> None:
        """Open the tamper switch of a zone or of the keypad (its enclosure switch)."""
        if target == "keypad":
            from panel.inputs import TamperDetected

            await self._running().submit(TamperDetected("keypad"))
            return
        from drivers.sim_zones import SimZones

        await self._twin("zones", SimZones).tamper(target)

    def idle(self) -> bool:
        """Panel and hub have nothing in flight (with the hub stopped, nothing can drain)."""
        panel, hub = self.panel, self.hub
        if hub is not None:
            return (panel is None or panel.idle()) and hub.idle()
        # With the hub stopped the outbox cannot drain: the inputs being handled is enough.
        return panel is None or panel.inputs_idle()

    async def settle(self, cap_s: float = SETTLE_CAP_S) -> bool:
        """Wait (real time, at most ``cap_s``) until what the site produced reached the cloud."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + cap_s
        delay = 0.0
        while True:
            for _ in range(3):
                await asyncio.sleep(0)
            if self.idle():
                cloud = self.cloud
                if cloud is None or not cloud.connected.is_set():
                    return True
                if await cloud.flush(max(0.05, deadline - loop.time())) and self.idle():
                    return True
            if loop.time() >= deadline:
                _LOGGER.debug("settle: still busy after %.1f s", cap_s)
                return False
            await asyncio.sleep(delay)
            delay = min(0.02, delay + 0.001)


def _path(value: object) -> Path | None:
    return Path(str(value)) if value else None
