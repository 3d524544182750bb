"""A panel + hub pair on a test broker, with a cloud-side subscriber: shared by link tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt

from hub.config import load_hub_mapping
from hub.process import HubProcess
from panel.config import load_site_mapping
from panel.process import PanelProcess
from protocol.keys import generate_key

SITE: dict[str, Any] = {
    "panel": {"id": "p1", "site": "demo"},
    "timing": {"exit_delay": 30, "entry_delay": 30, "alarm_duration": 180},
    "users": [
        {"name": "alice", "code": "1234", "role": "master", "tags": ["04A1B2C3D4E5F6"]},
        {"name": "bob", "code": "5678", "role": "arm_only"},
    ],
    "zones": [{"name": "front_door", "kind": "entry"}, {"name": "hall", "kind": "interior"}],
    "cameras": [{"name": "hall"}],
}


@dataclass
class Cloud:
    """Everything the cloud side saw, by kind."""

    events: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    other: list[tuple[str, bytes]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, predicate: Callable[[Cloud], bool], timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self):
                self.changed.clear()
                await self.changed.wait()


@contextlib.asynccontextmanager
async def cloud_subscriber(
    host: str, port: int, site: str = "demo", *, identifier: str | None = None, **kwargs: Any
) -> AsyncIterator[tuple[aiomqtt.Client, Cloud]]:
    """A cloud-side client subscribed to the site's topics, collecting what arrives."""
    cloud = Cloud()
    async with aiomqtt.Client(
        host, port, identifier=identifier, clean_session=identifier is None, **kwargs
    ) as client:
        await client.subscribe(f"centinela/{site}/#", qos=1)

        async def collect() -> None:
            async for message in client.messages:
                topic = str(message.topic)
                payload = message.payload
                assert isinstance(payload, bytes)
                if topic.endswith("/event"):
                    cloud.events.append(json.loads(payload))
                elif topic.endswith("/result"):
                    cloud.results.append(json.loads(payload))
                else:
                    cloud.other.append((topic, payload))
                cloud.changed.set()

        task = asyncio.create_task(collect())
        try:
            yield client, cloud
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def make_configs(
    tmp: Path,
    broker_url: str,
    *,
    key: str | None = None,
    panel_mqtt: dict[str, Any] | None = None,
    hub_mqtt: dict[str, Any] | None = None,
) -> tuple[Any, Any]:
    """The panel's SiteConfig and the hub's HubConfig for one panel on ``broker_url``."""
    key = key or generate_key()
    site = dict(SITE)
    site["mqtt"] = {"broker": broker_url, **(panel_mqtt or {})}
    site["link"] = {"key": key, "heartbeat": 30}
    site["store"] = {"path": str(tmp / "p1.db")}
    panel = load_site_mapping(site, "<test>")
    hub = load_hub_mapping(
        {
            "hub": {"site": "demo", "store": str(tmp / "hub.db"), "command_timeout": 5},
            "local": {"broker": broker_url, **(hub_mqtt or {})},
            "panels": [{"id": "p1", "key": key}],
        },
        "<test>",
    )
    return panel, hub


@contextlib.asynccontextmanager
async def running(panel_cfg: Any, hub_cfg: Any) -> AsyncIterator[tuple[PanelProcess, HubProcess]]:
    """Hub and panel processes in this loop, stopped at the end."""
    async with HubProcess(hub_cfg) as hub, PanelProcess(panel_cfg) as panel:
        yield panel, hub


@dataclass
class Site:
    """A running panel and hub with a cloud subscriber."""

    panel_config: Any
    panel: PanelProcess
    hub: HubProcess
    cloud: Cloud
    client: aiomqtt.Client


@contextlib.asynccontextmanager
async def site_on(broker: Any, tmp: Path) -> AsyncIterator[Site]:
    """Configs for one panel on ``broker``, the cloud subscriber, then hub and panel."""
    panel_cfg, hub_cfg = make_configs(tmp, broker.url)
    async with (
        cloud_subscriber(broker.host, broker.port) as (client, cloud),
        running(panel_cfg, hub_cfg) as (panel, hub),
    ):
        yield Site(panel_cfg, panel, hub, cloud, client)
