"""The customer area's ASGI app in-process, for httpx tests: a store in a temporary file,
two installations of two customers, the MQTT link not connected (commands answer offline)."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from cloud.config import load_cloud_mapping
from cloud.service import CloudService


def mapping(tmp: Path, **web: Any) -> dict[str, Any]:
    return {
        "broker": {"url": "mqtt://127.0.0.1:9"},
        "store": {"url": f"sqlite:///{tmp / 'cloud.db'}"},
        "web": {"listen": "127.0.0.1:0", **web},
        "installations": [
            {
                "number": "1234567",
                "site": "demo",
                "panel": "p1",
                "cameras": ["hall"],
                "time_zone": "Europe/Madrid",
                "holders": [
                    {"user": "alice", "keyword": "girasol", "role": "master"},
                    {"user": "bob", "keyword": "amapola", "role": "arm_only"},
                ],
                "tags": [{"uid": "04A1B2C3D4E5F6", "user": "alice"}],
            },
            {
                "number": "7654321",
                "site": "other",
                "panel": "p1",
                "holders": [{"user": "zoe", "keyword": "violeta", "role": "master"}],
            },
        ],
    }


def service_for(tmp: Path, extra: dict[str, Any] | None = None, **web: Any) -> CloudService:
    data = mapping(tmp, **web)
    data.update(extra or {})
    return CloudService(load_cloud_mapping(data, "<test>"))


@contextlib.asynccontextmanager
async def client_for(service: CloudService, **kw: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", **kw) as c:
        yield c


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def form(client: httpx.AsyncClient, page: str, action: str, **fields: str) -> httpx.Response:
    """Open ``page``, then post its form to ``action`` with its CSRF token."""
    got = await client.get(page)
    return await client.post(action, data={"csrf": csrf_of(got.text), **fields})


async def sign_up(
    client: httpx.AsyncClient,
    email: str,
    *,
    number: str = "1234567",
    keyword: str = "girasol",
    password: str = "Secret12",  # noqa: S107
) -> httpx.Response:
    return await form(
        client,
        "/signup",
        "/signup",
        number=number,
        keyword=keyword,
        name="Someone",
        mobile="+34 600 000 000",
        email=email,
        password=password,
        repeat=password,
    )


def event(seq: int, site: str = "demo", **fields: Any) -> tuple[str, bytes]:
    body = {
        "site": site,
        "panel": "p1",
        "seq": seq,
        "time": f"2026-11-26T10:{seq // 60 % 60:02d}:{seq % 60:02d}.000Z",
        "type": "armed",
        "mode": "total",
        "user": "alice",
        "method": "keypad",
        "zone": None,
        "cid": "3401",
        "sia": "CL",
    }
    body.update(fields)
    return f"centinela/{site}/event", json.dumps(body).encode()
