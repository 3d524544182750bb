"""The app API against a real site (simulated panel, real hub, real broker, the service's own
server); every response is checked against the OpenAPI description the service serves."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from tests.cloud_site import Area, running_area

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _no_leftover_tasks() -> None:
    """The site runs on a loop of its own thread (tests/cloud_site.py) and is checked there."""


class Checked:
    """An httpx client whose every response must match the served OpenAPI description."""

    def __init__(self, area: Area) -> None:
        self.http = httpx.Client(base_url=area.url, timeout=30)
        self.spec = self.http.get("/api/v1/openapi.json").json()
        self.token: str | None = None
        self.checked: set[tuple[str, str, int]] = set()

    def close(self) -> None:
        self.http.close()

    def _template(self, path: str) -> str:
        for template in self.spec["paths"]:
            pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
            if re.match(pattern, path):
                return str(template)
        raise AssertionError(f"{path} is not in the OpenAPI description")

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = kw.pop("headers", {})
        if self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        r = self.http.request(method, path, headers=headers, **kw)
        template = self._template(path.split("?")[0])
        op = self.spec["paths"][template][method.lower()]
        assert str(r.status_code) in op["responses"], (method, path, r.status_code, r.text)
        described = op["responses"][str(r.status_code)]
        content = described.get("content", {})
        ctype = r.headers.get("content-type", "").split(";")[0]
        if content:
            assert ctype in content, (path, ctype)
            if ctype == "application/json":
                schema = {**content[ctype]["schema"], "components": self.spec["components"]}
                jsonschema.validate(r.json(), schema, cls=jsonschema.Draft202012Validator)
        self.checked.add((method, template, r.status_code))
        return r


@pytest.fixture(scope="module")
def area(mosquitto: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Area]:
    with running_area(mosquitto.url, tmp_path_factory.mktemp("api"), site="apidemo") as running:
        yield running


def test_app_api_end_to_end_matches_its_openapi(area: Area) -> None:
    api = Checked(area)
    base = "/api/v1/installations/1234567"
    try:
        assert api.call("POST", "/api/v1/login", json={"email": 1}).status_code == 400
        assert api.call("GET", "/api/v1/installations").status_code == 401
        r = api.call(
            "POST",
            "/api/v1/login",
            json={"email": area.login.email, "password": area.login.password},
        )
        api.token = r.json()["token"]
        inst = api.call("GET", "/api/v1/installations").json()["installations"]
        assert [(i["number"], i["user"], i["role"]) for i in inst] == [
            ("1234567", "alice", "master")
        ]
        assert inst[0]["cameras"] == ["hall", "garden"]
        area.wait_for(lambda: area.service.store.panel_states("apidemo") != [])
        state = api.call("GET", base + "/state").json()
        assert state["word"] == "disarmed" and state["availability"] == "online"
        r = api.call("POST", base + "/commands", json={"action": "arm", "mode": "total"})
        assert r.status_code == 200 and r.json()["state"] == "arming"
        r = api.call("POST", base + "/commands", json={"action": "arm", "mode": "night"})
        assert r.status_code == 409 and r.json()["error"] == "invalid_state"
        area.wait_for(
            lambda: any(e["type"] == "arming" and e["method"] == "app" for e in area.cloud_events())
        )
        assert api.call("POST", base + "/commands", json={"action": "disarm"}).status_code == 200
        assert api.call("POST", base + "/commands", json={"action": "fly"}).status_code == 400
        assert (
            api.call(
                "POST", base + "/commands", json={"action": "arm", "mode": "total", "colour": "red"}
            ).status_code
            == 400
        )
        r = api.call("POST", base + "/commands", json={"action": "photo", "camera": "hall"})
        assert r.status_code == 200
        area.wait_for(
            lambda: any(p["ready"] and p["has_jpeg"] for p in area.service.store.photos("apidemo"))
        )
        photos = api.call("GET", base + "/photos").json()["photos"]
        ready = [p for p in photos if p["status"] == "ready"]
        assert ready and ready[0]["camera"] == "hall"
        jpeg = api.call("GET", f"{base}/photos/{ready[0]['id']}")
        assert jpeg.headers["content-type"] == "image/jpeg" and jpeg.content[:2] == b"\xff\xd8"
        assert api.call("GET", f"{base}/photos/none").status_code == 404
        # Silent call and clips (CONTRACT §9) through the app API.
        r = api.call("POST", base + "/commands", json={"action": "listen", "seconds": "5"})
        assert r.status_code == 400 and "seconds" in r.json()["detail"]
        r = api.call("POST", base + "/commands", json={"action": "listen", "seconds": 5})
        assert r.status_code == 200 and r.json()["ok"] is True
        r = api.call("POST", base + "/commands", json={"action": "listen", "seconds": 5})
        assert r.status_code == 409 and r.json()["error"] == "invalid_state"
        assert (
            api.call("POST", base + "/commands", json={"action": "listen_stop"}).status_code == 200
        )
        area.wait_for(
            lambda: any(
                e["type"] == "listen_ended" and e["method"] == "app" for e in area.cloud_events()
            ),
            timeout=30,
        )
        # Events: newest first, paged with next/before.
        page1 = api.call("GET", base + "/events?limit=2").json()
        assert len(page1["events"]) == 2 and page1["next"]
        page2 = api.call("GET", f"{base}/events?limit=2&before={page1['next']}").json()
        seqs = [e["seq"] for e in page1["events"] + page2["events"]]
        assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == 4
        assert api.call("GET", base + "/events?limit=0").status_code == 400
        area.wait_for(lambda: len(area.service.store.telemetry("apidemo", "2000")) >= 1)
        climate = api.call("GET", base + "/climate").json()
        assert climate["current"]["temperature"] is not None
        assert api.call("GET", "/api/v1/installations/7654321/state").status_code == 404
        # An arm_only holder signs up from the app: each wrong field named, then the account.
        carol = Checked(area)
        form = {
            "number": "1234567",
            "keyword": "lavanda",
            "name": "Carol",
            "mobile": "600111222",
            "email": "carol@example.org",
            "password": "carol",
        }
        r = carol.call("POST", "/api/v1/signup", json={**form, "keyword": "x"})
        assert r.status_code == 400
        assert set(r.json()["fields"]) == {"keyword", "password"}
        assert area.service.store.account_by_email("carol@example.org") is None
        r = carol.call("POST", "/api/v1/signup", json={**form, "password": "Carol123"})
        assert r.status_code == 201
        carol.token = r.json()["token"]
        assert (
            carol.call(
                "POST", base + "/commands", json={"action": "arm", "mode": "partial"}
            ).status_code
            == 200
        )
        r = carol.call("POST", base + "/commands", json={"action": "disarm"})
        assert r.status_code == 403 and r.json()["error"] == "forbidden"
        assert api.call("POST", base + "/commands", json={"action": "disarm"}).status_code == 200
        # Blocking: 5 wrong passwords, then 423 even with the right one.
        for _ in range(5):
            assert carol.call(
                "POST", "/api/v1/login", json={"email": "carol@example.org", "password": "Nope1234"}
            ).status_code in (401, 423)
        assert (
            carol.call(
                "POST", "/api/v1/login", json={"email": "carol@example.org", "password": "Carol123"}
            ).status_code
            == 423
        )
        # Unblocked from the app: the new password works, the old one not.
        carol.token = None
        r = carol.call(
            "POST",
            "/api/v1/unblock",
            json={"email": "carol@example.org", "keyword": "wrong", "password": "Carol456"},
        )
        assert r.status_code == 400
        r = carol.call(
            "POST",
            "/api/v1/unblock",
            json={"email": "carol@example.org", "keyword": "lavanda", "password": "Carol456"},
        )
        assert r.status_code == 200
        assert (
            carol.call(
                "POST", "/api/v1/login", json={"email": "carol@example.org", "password": "Carol123"}
            ).status_code
            == 401
        )
        assert (
            carol.call(
                "POST", "/api/v1/login", json={"email": "carol@example.org", "password": "Carol456"}
            ).status_code
            == 200
        )
        carol.close()
        api.checked |= carol.checked
        # The panel goes away: commands answer 503 at once.
        area.call(area.site.power("panel", False))
        area.wait_for(
            lambda: area.service.store.panel_states("apidemo")[0]["availability"] == "offline"
        )
        assert api.call("GET", base + "/state").json()["word"] == "offline"
        r = api.call("POST", base + "/commands", json={"action": "arm", "mode": "total"})
        assert r.status_code == 503 and r.json()["error"] == "panel_offline"
        area.call(area.site.power("panel", True))
        assert api.call("POST", "/api/v1/logout").status_code == 200
        assert api.call("GET", "/api/v1/installations").status_code == 401
    finally:
        api.close()
    statuses = {s for _m, _t, s in api.checked}
    assert {200, 201, 400, 401, 403, 404, 409, 423, 503} <= statuses


def test_openapi_names_every_api_route(area: Area) -> None:
    spec = httpx.get(f"{area.url}/api/v1/openapi.json").json()
    described = {re.sub(r"\{[^}]+\}", "{}", p) for p in spec["paths"]}
    served = {
        re.sub(r"\{[^}]+\}", "{}", r.path)
        for r in area.service.app.routes
        if getattr(r, "path", "").startswith("/api/v1/") and "openapi" not in r.path
    }
    assert served == described
    doc = (Path(__file__).resolve().parent.parent / "docs" / "app-api.md").read_text()
    for path in spec["paths"]:
        written = re.sub(r"\{(\w+)\}", lambda m: "<" + m.group(1) + ">", path)
        assert written.removeprefix("/api/v1") in doc, path
