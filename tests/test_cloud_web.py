"""The customer area in-process (httpx over ASGI): accounts, security, pages and languages."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cloud.service import CloudService
from cloud.words import STATE_WORDS
from tests.cloud_app import client_for, csrf_of, event, form, service_for, sign_up


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[CloudService]:
    service = service_for(tmp_path)
    yield service
    service.store.close()


# -- sign-up ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"number": "9999999"}, "number", "no installation"),
        ({"keyword": "wrong"}, "keyword", "does not match"),
        ({"name": " "}, "name", "Write your name"),
        ({"mobile": "call me"}, "mobile", "mobile number"),
        ({"email": "not-an-email"}, "email", "valid e-mail"),
        ({"password": "abcdef", "repeat": "abcdef"}, "password", "At least 6"),
        ({"password": "ABCDEF1", "repeat": "ABCDEF1"}, "password", "At least 6"),
        ({"password": "Abc12", "repeat": "Abc12"}, "password", "At least 6"),
        ({"repeat": "Other123"}, "repeat", "different"),
    ],
)
async def test_sign_up_error_next_to_its_field_and_nothing_stored(
    svc: CloudService, fields: dict[str, str], field: str, message: str
) -> None:
    base = {
        "number": "1234567",
        "keyword": "girasol",
        "name": "Alice",
        "mobile": "+34 600 000 000",
        "email": "alice@example.org",
        "password": "Secret12",
        "repeat": "Secret12",
    }
    async with client_for(svc) as c:
        r = await form(c, "/signup", "/signup", **{**base, **fields})
    assert r.status_code == 400
    found = re.search(rf'<p class="error" id="e-{field}">([^<]*)</p>', r.text)
    assert found and message in found.group(1)
    assert f'id="f-{field}" name="{field}"' in r.text and 'aria-describedby="e-' + field in r.text
    assert svc.store.account_by_email("alice@example.org") is None


async def test_sign_up_acts_as_the_holder_and_a_taken_email_is_refused(svc: CloudService) -> None:
    async with client_for(svc) as c:
        r = await sign_up(c, "Bob@Example.org", keyword="amapola")
        assert r.status_code == 303
        home = await c.get("/")
        assert "You act as bob (arm only)" in home.text
    account = svc.store.account_by_email("bob@example.org")
    assert account is not None
    assert [(m.number, m.panel_user) for m in svc.store.memberships(account.id)] == [
        ("1234567", "bob")
    ]
    assert account.password_hash.startswith("$argon2id$")
    async with client_for(svc) as c:
        r = await sign_up(c, "bob@example.org", keyword="girasol")
        assert r.status_code == 400 and "already has an account" in r.text
        # Without the right keyword nobody learns whether the e-mail is taken.
        r = await sign_up(c, "bob@example.org", keyword="nope")
        assert "already has an account" not in r.text


# -- log-in, blocking, unblocking --------------------------------------------------------


async def test_five_wrong_passwords_block_and_unblock_restores(svc: CloudService) -> None:
    async with client_for(svc) as c:
        await sign_up(c, "alice@example.org")
    texts = []
    async with client_for(svc) as c:
        for _ in range(5):
            r = await form(c, "/", "/login", email="alice@example.org", password="Wrong123")
            texts.append(r.text)
        assert all("Wrong e-mail or password" in t for t in texts[:4])
        assert "blocked" in texts[4] and "My user is blocked" in texts[4]
        r = await form(c, "/", "/login", email="alice@example.org", password="Secret12")
        assert r.status_code == 401 and "blocked" in r.text
        # The same words for an e-mail that has no account.
        for _ in range(5):
            r2 = await form(c, "/", "/login", email="ghost@example.org", password="Wrong123")
        assert _alert(r2.text) == _alert(r.text)
        # Unblock: a wrong keyword and an unknown e-mail read the same.
        bad = await form(
            c,
            "/unblock",
            "/unblock",
            email="alice@example.org",
            keyword="x",
            password="Newpass1",
            repeat="Newpass1",
        )
        ghost = await form(
            c,
            "/unblock",
            "/unblock",
            email="ghost@example.org",
            keyword="x",
            password="Newpass1",
            repeat="Newpass1",
        )
        assert _alert(bad.text) == _alert(ghost.text) and "do not match" in _alert(bad.text)
        weak = await form(
            c,
            "/unblock",
            "/unblock",
            email="alice@example.org",
            keyword="girasol",
            password="weak",
            repeat="weak",
        )
        assert "At least 6" in weak.text
        ok = await form(
            c,
            "/unblock",
            "/unblock",
            email="alice@example.org",
            keyword="girasol",
            password="Newpass1",
            repeat="Newpass1",
        )
        assert "unblocked" in ok.text
        old = await form(c, "/", "/login", email="alice@example.org", password="Secret12")
        assert old.status_code == 401
        new = await form(c, "/", "/login", email="alice@example.org", password="Newpass1")
        assert new.status_code == 303


def _alert(html: str) -> str:
    found = re.search(r'role="alert"[^>]*>([^<]*)<', html)
    return found.group(1).strip() if found else ""


async def test_log_out_ends_the_session(svc: CloudService) -> None:
    async with client_for(svc) as c:
        await sign_up(c, "alice@example.org")
        home = await c.get("/i/1234567")
        assert home.status_code == 200
        r = await c.post("/logout", data={"csrf": csrf_of(home.text)})
        assert r.status_code == 303
        assert (await c.get("/i/1234567")).status_code == 303


# -- security ------------------------------------------------------------------------------


async def test_cookies_headers_and_csrf(svc: CloudService) -> None:
    async with client_for(svc) as c:
        page = await c.get("/")
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert (
            "HttpOnly" in page.headers["set-cookie"]
            and "SameSite=Strict" in page.headers["set-cookie"]
        )
        r = await sign_up(c, "alice@example.org")
        session = r.headers["set-cookie"]
        assert "httponly" in session.lower() and "samesite=lax" in session.lower()
        assert "secure" not in session.lower()  # plain HTTP here; [web] secure_cookies adds it
        # No token, a wrong token, another origin: refused, nothing done.
        for data, headers in (
            ({"action": "arm_total"}, {}),
            ({"action": "arm_total", "csrf": "forged"}, {}),
            (
                {"action": "arm_total", "csrf": csrf_of((await c.get("/")).text)},
                {"origin": "http://evil.example"},
            ),
        ):
            r = await c.post("/i/1234567/command", data=data, headers=headers)
            assert r.status_code == 403
        r = await c.post("/settings", data={"on_arm": "1"})
        assert r.status_code == 403
    assert svc.store.events("demo", __import__("cloud.store").store.EventFilter(), 10) == []


async def test_rate_limit_on_log_in_sign_up_and_unblock(tmp_path: Path) -> None:
    service = service_for(tmp_path, rate_limit=3)
    try:
        async with client_for(service) as c:
            for path in ("/login", "/unblock", "/signup"):
                codes = []
                for i in range(4):
                    r = await form(
                        c,
                        "/signup",
                        path,
                        email=f"x{i}@example.org",
                        password="a",
                        keyword="a",
                        repeat="a",
                    )
                    codes.append(r.status_code)
                assert codes[-1] == 429 and 429 not in codes[:3]
            r = await c.post(
                "/api/v1/login",
                json={"email": "y@example.org", "password": "a"},
            )
            assert r.status_code in (401, 429)
    finally:
        service.store.close()


def _paths(service: CloudService, number: str) -> list[tuple[str, str]]:
    """Every route of the app, with its parameters filled in."""
    out = []
    for route in service.app.routes:
        path = getattr(route, "path", "")
        methods = getattr(route, "methods", None) or {"GET"}
        if not path or path.startswith("/static"):
            continue
        filled = (
            path.replace("{number}", number)
            .replace("{photo_id}", "p1-1")
            .replace("{uid}", "04A1B2C3D4E5F6")
            .replace("{code}", "es")
        )
        for method in sorted(methods - {"HEAD"}):
            out.append((method, filled))
    return out


PUBLIC = {
    "/",
    "/login",
    "/signup",
    "/trouble",
    "/unblock",
    "/lang/es",
    "/api/v1/login",
    "/api/v1/signup",
    "/api/v1/unblock",
    "/api/v1/openapi.json",
}


async def test_every_route_as_nobody_and_as_another_customer(svc: CloudService) -> None:
    photo_topic = "centinela/demo/p1/photo/p1-1"
    svc.link.take(photo_topic, b"\xff\xd8jpeg")
    svc.link.take(*event(1, type="photo_requested", photo="p1-1", zone="hall"))
    async with client_for(svc) as owner, client_for(svc) as other, client_for(svc) as nobody:
        await sign_up(owner, "alice@example.org")
        await sign_up(other, "zoe@example.org", number="7654321", keyword="violeta")
        token = (
            await other.post(
                "/api/v1/login", json={"email": "zoe@example.org", "password": "Secret12"}
            )
        ).json()["token"]
        routes = _paths(svc, "1234567")
        assert len(routes) >= 25
        for method, path in routes:
            api = path.startswith("/api/")
            # Nobody: pages send to the log-in form, the API says 401.
            r = await nobody.request(method, path, data={"csrf": "x"} if method == "POST" else None)
            if path in PUBLIC:
                assert r.status_code != 401, path
            elif api:
                assert r.status_code == 401, (method, path)
            elif method == "GET":
                assert r.status_code == 303 and r.headers["location"] == "/", (method, path)
            else:
                assert r.status_code in (303, 403), (method, path)
            if "1234567" not in path:
                continue
            # Another customer: as if the installation did not exist.
            if api:
                r = await other.request(method, path, headers={"authorization": f"Bearer {token}"})
            else:
                page = await other.get("/")
                r = await other.request(
                    method, path, data={"csrf": csrf_of(page.text)} if method == "POST" else None
                )
            assert r.status_code == 404, (method, path)
            assert b"jpeg" not in r.content
        # The owner reaches the photo.
        r = await owner.get("/i/1234567/photos/p1-1.jpg")
        assert r.status_code == 200 and r.content == b"\xff\xd8jpeg"


# -- what the hub sends, and the pages that show it ------------------------------------------


async def test_events_idempotent_newest_first_paged_and_kept_across_restarts(
    tmp_path: Path,
) -> None:
    service = service_for(tmp_path)
    for seq in range(1, 121):
        service.link.take(*event(seq, method="keypad" if seq % 2 else "web"))
    service.link.take(*event(120))  # a repeat after a hub reconnection
    service.link.take(
        *event(
            121,
            type="tag_rejected",
            user=None,
            method="tag",
            tag="04FFFFFFFFFFFF",
            detail="unknown tag",
        )
    )
    assert service.link.counters["duplicate_event"] == 1
    service.store.close()
    service = service_for(tmp_path)  # the service restarts on the same store
    try:
        async with client_for(service) as c:
            await sign_up(c, "alice@example.org")
            page = await c.get("/i/1234567/activity")
            rows = re.findall(r"<tr class=\"[^\"]*\">(.*?)</tr>", page.text, re.S)
            assert len(rows) == 50
            assert "Tag rejected" in rows[0] and "Unknown tag" in rows[0]
            assert "Armed (total)" in rows[1] and "Web" in rows[1]
            older = re.search(r'href="(\?[^"]*before=[^"]*)" rel="next"', page.text)
            assert older
            page2 = await c.get("/i/1234567/activity" + older.group(1).replace("&amp;", "&"))
            rows2 = re.findall(r"<tr class=\"[^\"]*\">(.*?)</tr>", page2.text, re.S)
            assert len(rows2) == 50 and rows2[0] != rows[0]
            times = re.findall(r'<time datetime="([^"]+)"', page.text + page2.text)
            assert times == sorted(times, reverse=True) and len(set(times)) == 100
            web = await c.get("/i/1234567/activity?type=armed&user=alice")
            assert "Unknown tag" not in web.text and "Armed (total)" in web.text
            tag = await c.get("/i/1234567/activity?tag=04ffffffffffff")
            assert len(re.findall(r"<tr class=", tag.text)) == 1
            day = await c.get("/i/1234567/activity?date=2026-11-27")
            assert "Nothing yet" in day.text
            day = await c.get("/i/1234567/activity?date=2026-11-26")
            assert "Armed (total)" in day.text
    finally:
        service.store.close()


async def test_home_shows_state_words_open_zones_and_offline(svc: CloudService) -> None:
    async with client_for(svc) as c:
        await sign_up(c, "alice@example.org")
        svc.link.take("centinela/demo/p1/availability", b"online")
        svc.link.take(
            "centinela/demo/p1/state",
            b'{"state":"pending","since":"2026-11-26T10:00:00.000Z",'
            b'"open_zones":["front_door","kitchen_window"]}',
        )
        home = await c.get("/")
        assert "Entry delay" in home.text and "Front door, Kitchen window" in home.text
        assert "Online" in home.text
        svc.link.take("centinela/demo/p1/availability", b"offline")
        home = await c.get("/")
        assert re.search(r'id="state-word"[^>]*>Offline<', home.text)
        # With the link down, a command is answered in words, not with a code.
        r = await c.post(
            "/i/1234567/command",
            headers={"accept": "application/json"},
            data={"csrf": csrf_of(home.text), "action": "arm_total"},
        )
        assert r.json() == {"ok": False, "message": "The panel is offline: nothing was sent."}
        r = await c.post(
            "/i/1234567/command",
            headers={"accept": "application/json"},
            data={"csrf": csrf_of(home.text), "action": "listen"},
        )
        assert r.json() == {"ok": False, "message": "The panel is offline: nothing was sent."}
        # SOS without confirmation asks first.
        r = await c.post("/i/1234567/command", data={"csrf": csrf_of(home.text), "action": "sos"})
        assert "Are you sure?" in r.text and ">Confirm<" in r.text


async def test_spanish_by_browser_language_and_by_switch(svc: CloudService) -> None:
    async with client_for(svc, headers={"accept-language": "es-ES,es;q=0.9,en;q=0.5"}) as c:
        page = await c.get("/")
        assert '<html lang="es">' in page.text and "Iniciar sesión" in page.text
        assert "Crear cuenta" in page.text
        await sign_up(c, "alice@example.org")
        home = await c.get("/")
        for word in (
            "Conectar total",
            "Conectar parcial",
            "Conectar noche",
            "Desconectar",
            "Pedir foto",
            "Escucha silenciosa",
            "Cerrar sesión",
        ):
            assert word in home.text
        r = await c.get("/lang/en?next=/i/1234567/activity")
        assert r.status_code == 303 and r.headers["location"] == "/i/1234567/activity"
        page = await c.get("/i/1234567/activity")
        assert "When" in page.text and "Cuándo" not in page.text
        r = await c.get("/lang/en?next=//evil.example")
        assert r.headers["location"] == "/"


def test_every_word_has_a_spanish_translation() -> None:
    from cloud.i18n import translations

    es = translations("es")
    pattern = re.compile(r"""\b(?:N_|_)\(\s*((?:"(?:[^"\\]|\\.)*"\s*)+)""")
    root = Path(__file__).resolve().parent.parent / "cloud"
    ids = set()
    for f in [*root.glob("*.py"), *root.glob("templates/*.html")]:
        for m in pattern.finditer(f.read_text()):
            ids.add("".join(re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1))))
    assert len(ids) > 150
    same = {"SOS", "App", "Web", "total"}
    missing = sorted(i for i in ids if es.gettext(i) == i and i not in same)
    assert missing == []
    assert set(STATE_WORDS) >= {
        "disarmed",
        "arming",
        "armed_total",
        "armed_partial",
        "armed_night",
        "pending",
        "triggered",
        "offline",
    }


async def test_tags_notifications_climate_and_photos_pages(svc: CloudService) -> None:
    svc.link.take(*event(1, type="disarmed", method="tag", tag="04A1B2C3D4E5F6"))
    svc.link.take(
        "centinela/demo/p1/telemetry",
        b'{"time":"' + _recent() + b'","temperature":21.5,"humidity":44.0}',
    )
    svc.link.take(*event(2, type="photo_requested", photo="p1-2", zone="hall", method="web"))
    async with client_for(svc) as c:
        await sign_up(c, "alice@example.org")
        tags = await c.get("/i/1234567/tags")
        assert "04A1B2C3D4E5F6" in tags.text and "Alice" in tags.text
        assert "Report stolen" in tags.text and "never" not in tags.text
        photos = await c.get("/i/1234567/photos")
        assert "Pending" in photos.text and "Hall" in photos.text
        svc.link.take("centinela/demo/p1/photo/p1-2", b"\xff\xd8data")
        svc.link.take(*event(3, type="photo_ready", photo="p1-2", zone="hall", method="web"))
        photos = await c.get("/i/1234567/photos")
        assert "Ready" in photos.text and 'src="/i/1234567/photos/p1-2.jpg"' in photos.text
        climate = await c.get("/i/1234567/climate")
        assert "21.5" in climate.text and "44" in climate.text and "<polyline" in climate.text
        page = await c.get("/settings")
        r = await c.post("/settings", data={"csrf": csrf_of(page.text), "on_photo": "1"})
        assert "Saved." in r.text
        account = svc.store.account_by_email("alice@example.org")
        assert account is not None
        assert svc.store.notify_settings(account.id) == {
            "on_alarm": False,
            "on_photo": True,
            "on_arm": False,
        }
    async with client_for(svc) as c:  # an arm_only holder sees no Report stolen
        await sign_up(c, "bob@example.org", keyword="amapola")
        assert "Report stolen" not in (await c.get("/i/1234567/tags")).text


def _recent() -> bytes:
    from cloud.store import now_iso

    return now_iso().encode()


@pytest.mark.parametrize(
    ("result", "action", "words"),
    [
        ({"ok": True, "state": "arming"}, "arm", "Arming started: night."),
        ({"ok": True, "state": "disarmed"}, "disarm", "Disarmed."),
        (
            {"ok": False, "error": "invalid_state", "detail": "open zones: kitchen_window"},
            "arm",
            "Cannot arm: Kitchen window is open.",
        ),
        (
            {"ok": False, "error": "invalid_state", "detail": "open zones: a_b, front_door"},
            "arm",
            "Cannot arm: A b, Front door are open.",
        ),
        (
            {"ok": False, "error": "forbidden", "detail": "carol may only arm"},
            "disarm",
            "Your user is not allowed to do that.",
        ),
        ({"ok": False, "error": "panel_offline"}, "arm", "The panel is offline: nothing was sent."),
        ({"ok": False, "error": "timeout"}, "sos", "The panel did not answer in time."),
        ({"ok": False, "error": "something new"}, "sos", "The request failed."),
    ],
)
def test_answers_in_words(result: dict[str, object], action: str, words: str) -> None:
    from cloud.i18n import gettext_for
    from cloud.words import answer

    assert answer(result, action, gettext_for("en"), mode="night") == words
    spanish = answer(result, action, gettext_for("es"), mode="night")
    assert spanish and spanish != words


async def test_sessions_and_tokens_end_after_30_days(svc: CloudService) -> None:
    async with client_for(svc) as c:
        await sign_up(c, "alice@example.org")
        token = (
            await c.post(
                "/api/v1/login", json={"email": "alice@example.org", "password": "Secret12"}
            )
        ).json()["token"]
        assert (await c.get("/i/1234567")).status_code == 200
        store: Any = svc.store
        store.db.execute("UPDATE sessions SET created = '2020-01-01T00:00:00.000Z'")
        assert (await c.get("/i/1234567")).status_code == 303
        r = await c.get("/api/v1/installations", headers={"authorization": f"Bearer {token}"})
        assert r.status_code == 401
