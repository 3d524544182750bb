"""The customer area of a simulated site: a cloud configuration made from the site, a demo login."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.site import SiteFacts

DEMO_NUMBER = "1234567"
DEMO_PASSWORD = "Demo1234"  # noqa: S105 (the demo's published login)
KEYWORDS = ("girasol", "amapola", "lavanda", "jazmin", "azahar", "romero")


@dataclass(frozen=True, slots=True)
class DemoLogin:
    """What the banner prints."""

    url: str
    email: str
    password: str
    number: str
    keywords: dict[str, str]  # panel user -> keyword


def cloud_mapping(
    facts: SiteFacts, broker_url: str, workdir: Path, listen: str | None = None
) -> dict[str, Any]:
    """A CLOUD.toml mapping for the site: every user may sign up with a keyword of its own."""
    users = list(facts.users)
    return {
        "broker": {"url": broker_url, "client_id": f"centinela-sim-area-{secrets.token_hex(3)}"},
        "store": {"url": f"sqlite:///{(workdir / 'cloud.db').resolve()}"},
        "web": {
            "listen": listen or os.environ.get("CENTINELA_CLOUD_LISTEN", "127.0.0.1:8080"),
            "rate_limit": 100,
        },
        "installations": [
            {
                "number": DEMO_NUMBER,
                "site": facts.site,
                "panel": facts.panel,
                "cameras": list(facts.cameras),
                "holders": [
                    {"user": u, "keyword": KEYWORDS[i % len(KEYWORDS)], "role": facts.roles[u]}
                    for i, u in enumerate(users)
                ],
                "tags": [
                    {"uid": t.upper(), "user": u} for u, tags in facts.users.items() for t in tags
                ],
            }
        ],
    }


async def start_customer_area(
    site: Any, workdir: Path, listen: str | None = None
) -> tuple[Any, DemoLogin]:
    """Start the customer area on the site's broker, with a ready account for its first master."""
    from cloud.accounts import HASHER
    from cloud.config import load_cloud_mapping
    from cloud.service import CloudService
    from common.errors import UsageError

    facts: SiteFacts = site.facts
    mapping = cloud_mapping(facts, site.broker_url, workdir, listen)
    config = load_cloud_mapping(mapping, f"{site.source} (customer area)")
    service = CloudService(config)
    try:
        await service.start()
    except UsageError:
        await service.stop()
        mapping["web"]["listen"] = "127.0.0.1:0"  # 8080 is taken: any free port
        config = load_cloud_mapping(mapping, f"{site.source} (customer area)")
        service = CloudService(config)
        await service.start()
    masters = [u for u, r in facts.roles.items() if r == "master"] or list(facts.users)
    owner = masters[0]
    email = f"{owner}@demo.example"
    service.store.create_account(
        email, owner.capitalize(), "+34 600 000 000", HASHER.hash(DEMO_PASSWORD), DEMO_NUMBER, owner
    )
    keywords = {h["user"]: h["keyword"] for h in mapping["installations"][0]["holders"]}
    return service, DemoLogin(service.url, email, DEMO_PASSWORD, DEMO_NUMBER, keywords)
