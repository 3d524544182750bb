"""The panel link's MQTT topics (docs/link.md): the one place both ends take them from."""

from __future__ import annotations

from typing import Final

LINK_PREFIX: Final = "centinela-link"


def link_topics(site: str, panel_id: str) -> tuple[str, str, str]:
    """The (up, down, status) topics of one panel."""
    base = f"{LINK_PREFIX}/{site}/{panel_id}"
    return f"{base}/up", f"{base}/down", f"{base}/status"
