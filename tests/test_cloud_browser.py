"""The customer area in a real browser (Chromium from the distribution, driven by Playwright),
against a real site: simulated panel, real hub, real broker, the customer area's own server.

Controls are found by the accessible names of CONTRACT §7, as a person finds them.
Screenshots of every page go to build/screens/.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import conftest
from tests.cloud_site import Area, running_area

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENS = Path(__file__).resolve().parent.parent / "build" / "screens"
ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
BOB_TAG = "04B0B1B2B3B4B5"
ALICE_TAG = "04A1B2C3D4E5F6"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _no_leftover_tasks() -> Iterator[None]:
    """Playwright's sync API keeps a loop of its own in this thread, so the suite's async task
    check cannot run here; the site's loop is checked when the module's site stops, and no
    test may leave a thread behind."""
    import threading

    before = {t.ident for t in threading.enumerate()}
    yield
    extra = [
        t.name
        for t in threading.enumerate()
        if t.ident not in before and t.is_alive() and not re.fullmatch(r".*_[0-9]+", t.name)
    ]  # executor pools (the site loop's, the simulated camera's) stay for the module
    assert extra == [], f"test left threads behind: {extra}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for all the browser tests (they are all in this module); Playwright's sync
    API holds a loop in this thread until it stops, so it stops when the module ends."""
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (make setup installs it)")
    before = conftest._children()
    pw = playwright_api.sync_playwright().start()
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    conftest._SESSION_CHILDREN.update(conftest._children() - before)
    SCREENS.mkdir(parents=True, exist_ok=True)
    try:
        yield browser
    finally:
        browser.close()
        pw.stop()


@pytest.fixture(scope="module")
def area(mosquitto: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Area]:
    with running_area(mosquitto.url, tmp_path_factory.mktemp("area")) as running:
        yield running


def new_page(browser: Any, area: Area, *, locale: str = "en-GB", width: int = 1100) -> Any:
    context = browser.new_context(
        locale=locale, viewport={"width": width, "height": 900}, base_url=area.url
    )
    context.set_default_timeout(15_000)
    return context.new_page()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(SCREENS / f"{name}.png"), full_page=True)


def accessible(page: Any) -> None:
    """axe-core finds nothing; every field has a label, every button and link a name, every
    image a text, the page a language."""
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page).response["violations"]
    assert [(v["id"], v["nodes"][0]["target"]) for v in violations] == []
    problems = page.evaluate(
        """() => {
        const out = [];
        if (!document.documentElement.lang) out.push('html has no lang');
        for (const el of document.querySelectorAll('input, select, textarea')) {
          if (el.type === 'hidden') continue;
          if (!(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
            out.push('field without label: ' + (el.name || el.id));
        }
        for (const el of document.querySelectorAll('button, a')) {
          const name = (el.getAttribute('aria-label') || el.textContent || '').trim();
          if (!name) out.push('unnamed ' + el.tagName + ' ' + el.outerHTML.slice(0, 60));
        }
        for (const el of document.querySelectorAll('img')) {
          if (!el.getAttribute('alt')) out.push('image without alt');
        }
        return out;
    }"""
    )
    assert problems == []


def log_in(page: Any, email: str, password: str) -> None:
    page.goto("/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def sign_up(page: Any, **fields: str) -> None:
    labels = {
        "number": "Installation number",
        "keyword": "Keyword",
        "name": "Name",
        "mobile": "Mobile",
        "email": "Email",
        "password": "Password",
        "repeat": "Repeat password",
    }
    for key, label in labels.items():
        page.get_by_label(label, exact=True).fill(fields.get(key, ""))
    page.get_by_role("button", name="Send").click()


def field_error(page: Any, label: str) -> Any:
    """The message shown next to a field (the one its aria-describedby names)."""
    described = page.get_by_label(label, exact=True).get_attribute("aria-describedby")
    assert described, f"no error next to {label}"
    return page.locator(f"#{described}")


def test_sign_up_errors_then_sign_up(browser: Any, area: Area) -> None:
    page = new_page(browser, area)
    page.goto("/")
    accessible(page)
    shot(page, "login-en-desktop")
    page.get_by_role("link", name="Create account").click()
    accessible(page)
    sign_up(
        page,
        number="7654321",
        keyword="x",
        name="Bob",
        mobile="+34 611 111 111",
        email="bob@example.org",
        password="short",
        repeat="shirt",
    )
    expect(field_error(page, "Installation number")).to_contain_text("no installation")
    expect(field_error(page, "Password")).to_contain_text("At least 6 characters")
    expect(field_error(page, "Repeat password")).to_contain_text("different")
    accessible(page)
    shot(page, "signup-errors-en-desktop")
    sign_up(
        page,
        number="1234567",
        keyword="wrong",
        name="Bob",
        mobile="+34 611 111 111",
        email="bob@example.org",
        password="Bobpass1",
        repeat="Bobpass1",
    )
    expect(field_error(page, "Keyword")).to_contain_text("does not match")
    sign_up(
        page,
        number="1234567",
        keyword="amapola",
        name="Bob",
        mobile="+34 611 111 111",
        email=area.login.email,
        password="Bobpass1",
        repeat="Bobpass1",
    )
    expect(field_error(page, "Email")).to_contain_text("already has an account")
    assert area.service.store.account_by_email("bob@example.org") is None  # nothing stored
    sign_up(
        page,
        number="1234567",
        keyword="amapola",
        name="Bob",
        mobile="+34 611 111 111",
        email="bob@example.org",
        password="Bobpass1",
        repeat="Bobpass1",
    )
    expect(page.get_by_role("status")).to_contain_text("Disarmed")
    expect(page.get_by_text("You act as bob")).to_be_visible()
    page.context.close()


def test_home_follows_the_keypad_and_commands_reach_the_panel(browser: Any, area: Area) -> None:
    page = new_page(browser, area)
    log_in(page, area.login.email, area.login.password)
    status = page.get_by_role("status")
    expect(status).to_contain_text("Disarmed")
    expect(status).to_contain_text("Online")
    accessible(page)
    shot(page, "home-disarmed-en-desktop")
    # A keypad arm at the panel shows on the open page without a reload.
    page.evaluate("window.__marker = 1")
    area.press("1234A")
    expect(status).to_contain_text("Arming")
    expect(status).to_contain_text("Armed total")
    assert page.evaluate("window.__marker") == 1  # same document: nothing reloaded
    shot(page, "home-armed-en-desktop")
    # Disarm from the page: the panel's event says web.
    page.get_by_role("button", name="Disarm").click()
    expect(page.get_by_role("alert")).to_contain_text("Disarmed.")
    expect(status).to_contain_text("Disarmed")
    area.wait_for(
        lambda: any(e["type"] == "disarmed" and e["method"] == "web" for e in area.cloud_events())
    )
    # Arm night from the page, disarm at the keypad.
    page.get_by_role("button", name="Arm night").click()
    expect(page.get_by_role("alert")).to_contain_text("Arming started: night")
    expect(status).to_contain_text("Armed night")
    area.press("1234D")
    expect(status).to_contain_text("Disarmed")
    # A refused arm names the open zone in words.
    area.call(area.site.set_zone("kitchen_window", True))
    expect(status).to_contain_text("Kitchen window")
    page.get_by_role("button", name="Arm total").click()
    expect(page.get_by_role("alert")).to_contain_text("Cannot arm: Kitchen window is open.")
    shot(page, "home-refused-en-desktop")
    area.call(area.site.set_zone("kitchen_window", False))
    # Silent call: the simulated room (a 1 kHz tone) plays in the page while the call goes
    # on; nothing shows at the panel.
    displays = area.call(_keypad_displays(area))
    page.get_by_role("button", name="Silent call").click()
    expect(page.get_by_role("alert")).to_contain_text("Silent call started.")
    player = page.locator("#listen-audio")
    expect(player).to_have_attribute("aria-label", "Silent call")
    page.wait_for_function(
        "() => { const a = document.getElementById('listen-audio');"
        " return a !== null && !a.paused && a.currentTime > 0.2; }",
        timeout=15_000,
    )
    area.wait_for(lambda: any(e["type"] == "listen_started" for e in area.cloud_events()))
    assert area.call(_keypad_displays(area)) == displays
    # Leaving the page ends the silent call at the panel.
    page.goto("/")
    area.wait_for(
        lambda: any(
            e["type"] == "listen_ended" and e["method"] == "web" for e in area.cloud_events()
        ),
        timeout=30,
    )
    page.set_viewport_size({"width": 360, "height": 780})
    shot(page, "home-en-phone")
    page.context.close()


def test_arm_only_holder_is_refused_on_disarm(browser: Any, area: Area) -> None:
    page = new_page(browser, area, width=360)
    page.goto("/signup")
    sign_up(
        page,
        number="1234567",
        keyword="lavanda",
        name="Carol",
        mobile="600222333",
        email="carol@example.org",
        password="Carol123",
        repeat="Carol123",
    )
    status = page.get_by_role("status")
    expect(status).to_contain_text("Disarmed")
    page.get_by_role("button", name="Arm partial").click()
    expect(status).to_contain_text("Armed partial")
    page.get_by_role("button", name="Disarm").click()
    expect(page.get_by_role("alert")).to_contain_text("not allowed")
    expect(status).to_contain_text("Armed partial")
    area.press("1234D")
    expect(status).to_contain_text("Disarmed")
    page.context.close()


def test_five_wrong_passwords_block_until_unblocked(browser: Any, area: Area) -> None:
    page = new_page(browser, area)
    for _ in range(4):
        log_in(page, "bob@example.org", "Wrong123")
        expect(page.get_by_role("alert")).to_contain_text("Wrong e-mail or password")
    log_in(page, "bob@example.org", "Wrong123")
    expect(page.get_by_role("alert")).to_contain_text("blocked")
    log_in(page, "bob@example.org", "Bobpass1")  # the right one: still blocked
    expect(page.get_by_role("alert")).to_contain_text("blocked")
    # An e-mail without an account reads exactly the same.
    for _ in range(5):
        log_in(page, "nobody@example.org", "Wrong123")
    expect(page.get_by_role("alert")).to_contain_text("blocked")
    shot(page, "login-blocked-en-desktop")
    page.get_by_role("link", name="I have trouble accessing my account").click()
    page.get_by_role("link", name="My user is blocked").click()
    accessible(page)
    page.get_by_label("Email").fill("bob@example.org")
    page.get_by_label("Keyword").fill("amapola")
    page.get_by_label("New password").fill("weak")
    page.get_by_label("Repeat password").fill("weak")
    page.get_by_role("button", name="Unblock").click()
    expect(field_error(page, "New password")).to_contain_text("At least 6")
    page.get_by_label("Keyword").fill("amapola")
    page.get_by_label("New password").fill("Bobnew22")
    page.get_by_label("Repeat password").fill("Bobnew22")
    page.get_by_role("button", name="Unblock").click()
    expect(page.get_by_role("alert")).to_contain_text("unblocked")
    shot(page, "unblocked-en-desktop")
    log_in(page, "bob@example.org", "Bobpass1")
    expect(page.get_by_role("alert")).to_contain_text("Wrong e-mail or password")
    log_in(page, "bob@example.org", "Bobnew22")
    expect(page.get_by_role("status")).to_contain_text("Disarmed")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    page.context.close()


def test_photo_request_turns_ready_with_a_notice(browser: Any, area: Area) -> None:
    page = new_page(browser, area)
    log_in(page, area.login.email, area.login.password)
    page.get_by_role("button", name="Request photo").click()
    # Two cameras: it asks which.
    page.get_by_role("button", name="Garden").click()
    expect(page.get_by_role("alert")).to_contain_text("Photo requested from Garden")
    expect(page.locator("#notice")).to_contain_text("Photo ready from Garden")
    ready = page.locator("li.photo.ready").first
    expect(ready).to_contain_text("Ready")
    expect(ready.get_by_role("img", name="Photo from Garden")).to_be_visible()
    accessible(page)
    shot(page, "photos-en-desktop")
    page.context.close()


CLOCK_JS = """(video) => {
  // The simulated camera draws its clock as 24 blocks along the bottom (drivers/sim_camera.py).
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth; canvas.height = video.videoHeight;
  const g = canvas.getContext("2d");
  g.drawImage(video, 0, 0);
  let value = 0;
  for (let i = 0; i < 24; i++) {
    const x = 8 + i * 24 + 10, y = canvas.height - 16 - 6 + 8;
    const [r, gr, b] = g.getImageData(x, y, 1, 1).data;
    if ((r + gr + b) / 3 > 128) { value += 2 ** i; }
  }
  return value / 10;
}"""


def test_a_clip_plays_under_the_image_requests(browser: Any, area: Area) -> None:
    ring = area.site.panel.camera.rings["garden"]
    area.wait_for(lambda: len(ring.frames) > 1 and ring.frames[-1][0] - ring.frames[0][0] > 11, 30)
    page = new_page(browser, area)
    log_in(page, area.login.email, area.login.password)
    page.get_by_role("button", name="Request clip").click()
    asked = time.time()
    page.get_by_role("button", name="Garden").click()
    expect(page.get_by_role("alert")).to_contain_text("Clip of the last seconds requested")
    video = page.get_by_label("Clip from Garden").first
    expect(video).to_be_visible(timeout=30_000)
    page.wait_for_function(
        "(v) => v.readyState >= 2 && isFinite(v.duration)", arg=video.element_handle()
    )
    duration = video.evaluate("(v) => v.duration")
    assert abs(duration - 10) <= 1, duration
    clock = video.evaluate(CLOCK_JS)
    wrap = (1 << 24) / 10
    assert (asked - 12) % wrap <= clock <= (asked + 1) % wrap, (asked % wrap, clock)
    accessible(page)
    shot(page, "clip-en-desktop")
    page.context.close()


def test_sos_asks_first_then_alarms(browser: Any, area: Area) -> None:
    page = new_page(browser, area)
    log_in(page, area.login.email, area.login.password)
    asked: list[str] = []

    def answer(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss() if len(asked) == 1 else dialog.accept()

    page.on("dialog", answer)
    page.get_by_role("button", name="SOS").click()  # dismissed: nothing sent
    expect(page.get_by_role("status")).to_contain_text("Disarmed")
    page.get_by_role("button", name="SOS").click()
    expect(page.get_by_role("alert")).to_contain_text("SOS sent")
    expect(page.get_by_role("status")).to_contain_text("Alarm")
    assert len(asked) == 2 and "SOS" in asked[0]
    shot(page, "home-alarm-en-desktop")
    page.get_by_role("button", name="Disarm").click()
    expect(page.get_by_role("status")).to_contain_text("Disarmed")
    page.get_by_role("link", name="Activity").click()
    row = page.get_by_role("row").filter(has_text="Panic (SOS)").first
    expect(row).to_contain_text("Web")
    expect(row).to_contain_text("Alice")
    page.context.close()


def test_activity_tells_the_four_ways_of_arming_apart(browser: Any, area: Area) -> None:
    # Tag + A at the panel, code + A at the keypad, the app, the web.
    area.tap(ALICE_TAG)
    area.press("A")
    area.wait_for(
        lambda: any(e["type"] == "arming" and e["method"] == "tag" for e in area.cloud_events())
    )
    area.tap(ALICE_TAG)  # disarms
    token = httpx.post(
        f"{area.url}/api/v1/login",
        json={"email": area.login.email, "password": area.login.password},
    ).json()
    headers = {"Authorization": f"Bearer {token['token']}"}
    r = httpx.post(
        f"{area.url}/api/v1/installations/1234567/commands",
        json={"action": "arm", "mode": "partial"},
        headers=headers,
        timeout=20,
    )
    assert r.status_code == 200 and r.json()["ok"] is True
    r = httpx.post(
        f"{area.url}/api/v1/installations/1234567/commands",
        json={"action": "disarm"},
        headers=headers,
        timeout=20,
    )
    assert r.status_code == 200
    page = new_page(browser, area)
    log_in(page, area.login.email, area.login.password)
    page.get_by_role("link", name="Activity").click()
    table = page.get_by_role("table")
    for how in ("Keypad", "Tag", "App", "Web"):
        expect(
            table.get_by_role("row")
            .filter(has_text="Arming started")
            .filter(has=page.get_by_role("cell", name=how, exact=True))
            .first
        ).to_be_visible()
    headers_row = page.get_by_role("row").first
    for col in ("When", "What", "Who", "How"):
        expect(headers_row.get_by_role("columnheader", name=col)).to_be_visible()
    accessible(page)
    shot(page, "activity-en-desktop")
    page.get_by_label("User").select_option("carol")
    page.get_by_role("button", name="Filter").click()
    rows = page.get_by_role("row")
    expect(rows.nth(1)).to_contain_text("Carol")
    assert all("Carol" in t for t in rows.all_inner_texts()[1:])
    page.get_by_label("User").select_option("")
    page.get_by_label("Tag", exact=True).select_option(ALICE_TAG)
    page.get_by_role("button", name="Filter").click()
    expect(rows.nth(1)).to_contain_text("Tag")
    page.context.close()


def test_stolen_tag_revoked_and_photographed(browser: Any, area: Area) -> None:
    page = new_page(browser, area)
    log_in(page, area.login.email, area.login.password)
    page.get_by_role("link", name="Tags").click()
    accessible(page)
    page.get_by_label(f"Name for tag {BOB_TAG}").fill("Bob's keyring")
    page.get_by_role("button", name="Save name").nth(1).click()
    expect(page.get_by_role("alert")).to_contain_text("Name saved")
    page.on("dialog", lambda d: d.accept())
    page.get_by_role("button", name=f"Report stolen {BOB_TAG}").click()
    expect(page.get_by_role("alert")).to_contain_text("revoked")
    area.wait_for(lambda: any(e["type"] == "tag_revoked" for e in area.cloud_events()))
    area.wait_for(
        lambda: (
            len(
                [
                    p
                    for p in area.service.store.photos("webdemo")
                    if (p["reason"] or "").startswith("stolen:")
                ]
            )
            == 2
        )
    )
    # The thief tries the tag: rejected, and the panel takes a photo at that moment,
    # filed under the rejected attempt.
    area.tap(BOB_TAG)
    area.wait_for(
        lambda: any(
            e["type"] == "tag_rejected" and e.get("tag") == BOB_TAG for e in area.cloud_events()
        )
    )
    attempt = next(
        e for e in area.cloud_events() if e["type"] == "tag_rejected" and e.get("tag") == BOB_TAG
    )
    area.wait_for(
        lambda: any(
            p["reason"] == f"{attempt['panel']}:{attempt['seq']}"
            and p["method"] == "tag"
            and p["ready"]
            for p in area.service.store.photos("webdemo")
        )
    )
    page.reload()
    expect(page.get_by_text("Reported stolen")).to_be_visible()
    shot(page, "tags-en-desktop")
    page.get_by_role("link", name="Activity").click()
    row = page.get_by_role("row").filter(has_text="revoked tag").first
    expect(row).to_contain_text("Tag rejected")
    expect(row.get_by_role("link", name="photo").first).to_be_visible()
    page.context.close()


def test_climate_and_notifications(browser: Any, area: Area) -> None:
    area.wait_for(lambda: len(area.service.store.telemetry("webdemo", "2000")) >= 2)
    page = new_page(browser, area)
    log_in(page, area.login.email, area.login.password)
    page.get_by_role("link", name="Climate").click()
    expect(page.get_by_text("Temperature").first).to_be_visible()
    expect(page.get_by_role("img", name=re.compile("Temperature"))).to_have_count(2)
    accessible(page)
    shot(page, "climate-en-desktop")
    page.get_by_role("link", name="Notifications").click()
    box = page.get_by_label("E-mail me when a photo is ready")
    box.check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("Saved")
    page.reload()
    expect(page.get_by_label("E-mail me when a photo is ready")).to_be_checked()
    accessible(page)
    shot(page, "notifications-en-desktop")
    page.context.close()


def test_spanish_pages(browser: Any, area: Area) -> None:
    page = new_page(browser, area, locale="es-ES", width=360)
    page.goto("/")
    expect(page.get_by_role("button", name="Iniciar sesión")).to_be_visible()
    shot(page, "login-es-phone")
    page.get_by_label("Correo electrónico").fill(area.login.email)
    page.get_by_label("Contraseña").fill(area.login.password)
    page.get_by_role("button", name="Iniciar sesión").click()
    expect(page.get_by_role("status")).to_contain_text("Desconectada")
    for name in (
        "Conectar total",
        "Conectar parcial",
        "Conectar noche",
        "Desconectar",
        "SOS",
        "Escucha silenciosa",
        "Pedir foto",
        "Cerrar sesión",
    ):
        expect(page.get_by_role("button", name=name)).to_be_visible()
    accessible(page)
    shot(page, "home-es-phone")
    page.get_by_role("button", name="Conectar total").click()
    expect(page.get_by_role("alert")).to_contain_text("Conexión iniciada: total")
    expect(page.get_by_role("status")).to_contain_text("Conectada total")
    page.get_by_role("button", name="Desconectar").click()
    expect(page.get_by_role("status")).to_contain_text("Desconectada")
    page.get_by_role("link", name="Actividad").click()
    for col in ("Cuándo", "Qué", "Quién", "Cómo"):
        expect(page.get_by_role("columnheader", name=col)).to_be_visible()
    shot(page, "activity-es-phone")
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("columnheader", name="When")).to_be_visible()
    page.context.close()


async def _keypad_displays(area: Area) -> list[str]:
    """What the simulated keypad has shown so far."""
    return list(area.site.panel.keypad.twin.displays)
