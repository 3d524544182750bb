"""The web pages, grouped by page: small views that call the store and the link, never SQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from cloud.charts import line_chart
from cloud.config import Installation
from cloud.i18n import LANGUAGES, N_, gettext_for
from cloud.security import SESSION_COOKIE
from cloud.store import EventFilter, iso, now_iso
from cloud.web import ctx, gettext, installation_of, lang_of, render
from cloud.words import (
    ALARM_TYPES,
    EVENT_WORDS,
    HOW_WORDS,
    ROLE_WORDS,
    STATE_WORDS,
    answer,
    place,
    state_word,
    what,
    who,
)

PAGE_SIZE = 50
KEEPALIVE_S = 15.0
LISTEN_SECONDS = 60
"""How long a silent call from the page lasts at most; leaving the page ends it sooner."""
CLIP_SECONDS = 10
"""How long a clip asked for from the page is: the camera's last 10 seconds."""
LISTEN_WAIT_S = 10.0
"""How long the player waits for the sound of a silent call to start arriving."""
ARM_ACTIONS = {"arm_total": "total", "arm_partial": "partial", "arm_night": "night"}


def routes() -> list[Route]:
    """Every page."""
    return [
        Route("/", home_or_login, methods=["GET"]),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/signup", signup, methods=["GET", "POST"]),
        Route("/trouble", trouble, methods=["GET"]),
        Route("/unblock", unblock, methods=["GET", "POST"]),
        Route("/lang/{code}", switch_language, methods=["GET"]),
        Route("/settings", settings, methods=["GET", "POST"]),
        Route("/i/{number}", home, methods=["GET"]),
        Route("/i/{number}/command", command, methods=["POST"]),
        Route("/i/{number}/live", live, methods=["GET"]),
        Route("/i/{number}/listen", listen_audio, methods=["GET"]),
        Route("/i/{number}/activity", activity, methods=["GET"]),
        Route("/i/{number}/photos", photos, methods=["GET"]),
        Route("/i/{number}/photos/{photo_id}.jpg", photo_file, methods=["GET"]),
        Route("/i/{number}/photos/{photo_id}.webm", clip_file, methods=["GET"]),
        Route("/i/{number}/climate", climate, methods=["GET"]),
        Route("/i/{number}/tags", tags, methods=["GET"]),
        Route("/i/{number}/tags/{uid}", tag_action, methods=["POST"]),
    ]


# -- visitors ----------------------------------------------------------------------------


async def home_or_login(request: Request) -> Response:
    """``/``: the log-in form for a visitor, the first installation's home once logged in."""
    if request.state.account is None:
        return render(request, "login.html", values={}, errors={})
    memberships = request.state.memberships
    if not memberships:
        return render(
            request, "message.html", title=gettext(request)(N_("No installation")), inst=None
        )
    return await _home(request, memberships[0].number)


async def login(request: Request) -> Response:
    """Log in with e-mail and password."""
    if request.method == "GET":
        return RedirectResponse("/", 303)
    form = await request.form()
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    outcome = await ctx(request).accounts.log_in(email, password)
    if outcome.account is None:
        return render(
            request, "login.html", 401, values={"email": email}, errors=outcome.errors, inst=None
        )
    token, _csrf = ctx(request).accounts.new_session(outcome.account, "web")
    response = RedirectResponse("/", 303)
    _set_session(request, response, token)
    return response


def _set_session(request: Request, response: Response, token: str) -> None:
    secure = ctx(request).config.secure_cookies or request.url.scheme == "https"
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="lax", secure=secure, path="/"
    )


async def logout(request: Request) -> Response:
    """Close the session."""
    token = getattr(request.state, "session_token", None)
    if token:
        from cloud.accounts import token_hash

        ctx(request).store.drop_session(token_hash(token))
    response = RedirectResponse("/", 303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


SIGNUP_FIELDS = ("number", "keyword", "name", "mobile", "email")


async def signup(request: Request) -> Response:
    """Create an account with the installation number and keyword."""
    if request.method == "GET":
        return render(request, "signup.html", values={}, errors={}, inst=None)
    form = await request.form()
    f = {k: str(form.get(k, "")) for k in (*SIGNUP_FIELDS, "password", "repeat")}
    outcome = await ctx(request).accounts.sign_up(
        f["number"],
        f["keyword"],
        f["name"],
        f["mobile"],
        f["email"],
        f["password"],
        f["repeat"],
        lang_of(request),
    )
    if outcome.account is None:
        values = {k: f[k] for k in SIGNUP_FIELDS if k != "keyword"}
        return render(request, "signup.html", 400, values=values, errors=outcome.errors, inst=None)
    token, _csrf = ctx(request).accounts.new_session(outcome.account, "web")
    response = RedirectResponse("/", 303)
    _set_session(request, response, token)
    return response


async def trouble(request: Request) -> Response:
    """I have trouble accessing my account."""
    return render(request, "trouble.html", inst=None)


async def unblock(request: Request) -> Response:
    """My user is blocked: e-mail + keyword + a new password."""
    if request.method == "GET":
        return render(request, "unblock.html", values={}, errors={}, done=False, inst=None)
    form = await request.form()
    f = {k: str(form.get(k, "")) for k in ("email", "keyword", "password", "repeat")}
    outcome = await ctx(request).accounts.unblock(
        f["email"], f["keyword"], f["password"], f["repeat"]
    )
    if outcome.account is None:
        return render(
            request,
            "unblock.html",
            400,
            values={"email": f["email"]},
            errors=outcome.errors,
            done=False,
            inst=None,
        )
    return render(request, "unblock.html", values={}, errors={}, done=True, inst=None)


async def switch_language(request: Request) -> Response:
    """The language switch: remembered in a cookie."""
    code = request.path_params["code"]
    target = request.query_params.get("next", "/")
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    response = RedirectResponse(target, 303)
    if code in LANGUAGES:
        response.set_cookie("lang", code, max_age=365 * 86400, samesite="lax", httponly=True)
    return response


# -- home ---------------------------------------------------------------------------------


async def home(request: Request) -> Response:
    """An installation's home."""
    return await _home(request, request.path_params["number"])


def panel_view(request: Request, inst: Installation) -> dict[str, Any]:
    """State word, open zones and availability of the installation's panel."""
    _ = gettext(request)
    link = ctx(request).link
    panel = link.panel_of(inst.site)
    rows = ctx(request).store.panel_states(inst.site)
    row = next((r for r in rows if r["panel"] == panel), rows[0] if rows else None)
    state = row["state"] if row else None
    availability = row["availability"] if row else None
    key = state_word(state, availability)
    open_zones = [place(z) for z in (state or {}).get("open_zones") or []]
    since = (state or {}).get("since") if key != "offline" else row and row["updated"]
    since_text = ""
    if since:
        from cloud.i18n import when

        since_text = _("since %(time)s") % {
            "time": when(str(since), lang_of(request), inst.time_zone, "short")
        }
    return {
        "key": key,
        "word": _(STATE_WORDS[key]),
        "since": since_text,
        "open_zones": ", ".join(open_zones),
        "open_text": _("Open: %(zones)s") % {"zones": ", ".join(open_zones)} if open_zones else "",
        "online": availability == "online",
        "availability": _("Online") if availability == "online" else _("Offline"),
    }


async def _home(request: Request, number: str, answer_text: str = "", ok: bool = True) -> Response:
    inst, member = installation_of(request, number)
    holder = inst.holder(member.panel_user)
    return render(
        request,
        "home.html",
        inst=inst,
        member=member,
        role=gettext(request)(ROLE_WORDS[holder.role if holder else "user"]),
        panel=panel_view(request, inst),
        answer=answer_text,
        ok=ok,
    )


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


async def command(request: Request) -> Response:
    """A button of the home page: arm, disarm, SOS, photo, silent call."""
    number = request.path_params["number"]
    inst, member = installation_of(request, number)
    _ = gettext(request)
    form = await request.form()
    action = str(form.get("action", ""))
    camera = str(form.get("camera", "")) or None
    confirmed = form.get("confirmed") == "1"
    if action == "sos" and not confirmed:
        return render(
            request,
            "confirm.html",
            inst=inst,
            question=_("Send SOS? The siren sounds and the alarm centre is told."),
            action=f"/i/{number}/command",
            fields={"action": "sos", "confirmed": "1"},
        )
    if action in ("photo", "clip") and camera is None and len(inst.cameras) > 1:
        return render(request, "camera.html", inst=inst, cameras=inst.cameras, action=action)
    if action in ("photo", "clip") and camera is None and inst.cameras:
        camera = inst.cameras[0]
    asked = now_iso()
    play = None
    if action == "listen":
        began = time.monotonic()
        result = await ctx(request).link.command(
            inst.site, "listen", member.panel_user, "web", seconds=LISTEN_SECONDS
        )
        ok = bool(result.get("ok"))
        text = answer(result, "listen", _)
        if ok:
            play = f"/i/{number}/listen?after={began:.6f}"
    elif action == "clip":
        result = await ctx(request).link.command(
            inst.site, "clip", member.panel_user, "web", camera=camera, seconds=CLIP_SECONDS
        )
        ok = bool(result.get("ok"))
        text = answer(result, "clip", _, camera=camera or "")
    elif action in ARM_ACTIONS or action in ("disarm", "sos", "photo"):
        link = ctx(request).link
        base = "arm" if action in ARM_ACTIONS else action
        extra = {"mode": ARM_ACTIONS.get(action), "camera": camera if base == "photo" else None}
        result = await link.command(inst.site, base, member.panel_user, "web", **extra)
        ok = bool(result.get("ok"))
        text = answer(result, base, _, mode=ARM_ACTIONS.get(action, ""), camera=camera or "")
    else:
        text, ok = _("Unknown action."), False
    if _wants_json(request):
        reply: dict[str, Any] = {"ok": ok, "message": text}
        if play is not None:
            reply["play"] = play  # where the page plays the silent call
        return JSONResponse(reply)
    if action in ("photo", "clip"):
        return await _photos(request, number, text, ok, since=asked)
    return await _home(request, number, text, ok)


async def listen_audio(request: Request) -> Response:
    """The silent call asked for at ``after``, as WebM/Opus while it goes on.

    When the page stops listening (it closes, or its audio element is removed) the
    response ends, and the silent call is stopped at the panel.
    """
    inst, member = installation_of(request, request.path_params["number"])
    context = ctx(request)
    try:
        after = float(request.query_params.get("after", ""))
    except ValueError:
        return Response("after: a time is required", status_code=400)
    stream = await context.link.audio.next_after(inst.site, after, LISTEN_WAIT_S)
    if stream is None:
        return Response("no silent call is under way", status_code=404)

    async def body() -> AsyncIterator[bytes]:
        finished = False
        try:
            async for chunk in context.link.audio.follow(stream):
                yield chunk
            finished = True
        finally:
            if not finished:
                context.spawn(
                    context.link.command(inst.site, "listen_stop", member.panel_user, "web")
                )

    headers = {"Cache-Control": "no-store"}
    return StreamingResponse(body(), media_type="audio/webm", headers=headers)


async def live(request: Request) -> Response:
    """Server-Sent Events: state, availability, events and photos of one installation."""
    inst, _member = installation_of(request, request.path_params["number"])
    context = ctx(request)
    _ = gettext(request)
    lang = lang_of(request)

    async def stream() -> AsyncIterator[str]:
        async with context.live.follow(inst.site) as queue:
            yield _sse("state", panel_view(request, inst))
            # Photos that became ready while the page was on its way to the browser.
            since = request.query_params.get("since", "")
            if since:
                for p in context.store.photos(inst.site, 10):
                    if p["ready"] and p["ready"] > since:
                        yield _sse("photo", _photo_notice(p["camera"], p["photo_id"], _))
            stop = asyncio.ensure_future(context.stopping.wait())
            getter: asyncio.Future[Any] = asyncio.ensure_future(asyncio.sleep(0))
            try:
                while not context.stopping.is_set():
                    getter = asyncio.ensure_future(queue.get())
                    done, _p = await asyncio.wait(
                        {getter, stop}, timeout=KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED
                    )
                    if getter not in done:
                        getter.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await getter
                        if not done:
                            yield ": keep-alive\n\n"
                        continue
                    kind, value = getter.result()
                    if kind in ("state", "availability"):
                        yield _sse("state", panel_view(request, inst))
                    elif kind == "event" and isinstance(value, dict):
                        yield _sse("event", _event_row(value, _, lang, inst))
                        if value.get("type") == "photo_ready":
                            notice = _photo_notice(value.get("zone"), value.get("photo"), _)
                            yield _sse("photo", notice)
            finally:
                for pending in (stop, getter):
                    pending.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await pending

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


def _photo_notice(camera: Any, photo: Any, _: Callable[[str], str]) -> dict[str, Any]:
    notice = _("Photo ready from %(camera)s.") % {"camera": place(camera)}
    return {"notice": notice, "photo": photo}


def _sse(kind: str, data: Any) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


# -- activity -----------------------------------------------------------------------------


def _event_row(event: dict[str, Any], _: Any, lang: str, inst: Installation) -> dict[str, Any]:
    from cloud.i18n import when

    method = str(event.get("method") or "system")
    return {
        "seq": event.get("seq"),
        "panel": event.get("panel"),
        "time": event.get("time"),
        "when": when(event.get("time"), lang, inst.time_zone),
        "what": what(event, _),
        "who": who(event, _),
        "how": _(HOW_WORDS.get(method, method)),
        "method": method,
        "type": event.get("type"),
        "alarm": event.get("type") in ALARM_TYPES,
        "photo": event.get("photo"),
        "photo_gone": False,
        "tag": event.get("tag"),
    }


def _older_than(time: Any, days: int) -> bool:
    """Whether an event time is more than ``days`` days ago."""
    return isinstance(time, str) and time < iso(datetime.now(UTC) - timedelta(days=days))


def _filter(request: Request, inst: Installation) -> tuple[EventFilter, dict[str, str]]:
    q = request.query_params
    chosen = {k: q.get(k, "") for k in ("user", "tag", "type", "date")}
    since = until = None
    if chosen["date"]:
        try:
            from zoneinfo import ZoneInfo

            day = datetime.fromisoformat(chosen["date"]).replace(tzinfo=ZoneInfo(inst.time_zone))
            since = day.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            until = (day + timedelta(days=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        except ValueError:
            chosen["date"] = ""
    before = None
    raw = q.get("before", "")
    if "|" in raw:
        t, _sep, s = raw.rpartition("|")
        if s.isdigit():
            before = (t, int(s))
    flt = EventFilter(
        user=chosen["user"] or None,
        tag=chosen["tag"].upper() or None,
        type=chosen["type"] or None,
        since=since,
        until=until,
        before=before,
    )
    return flt, chosen


async def activity(request: Request) -> Response:
    """Every event: When, What, Who, How; filters; newest first; paged."""
    inst, _member = installation_of(request, request.path_params["number"])
    store = ctx(request).store
    _ = gettext(request)
    flt, chosen = _filter(request, inst)
    events = store.events(inst.site, flt, PAGE_SIZE + 1)
    more = len(events) > PAGE_SIZE
    events = events[:PAGE_SIZE]
    lang = lang_of(request)
    rows = [_event_row(e, _, lang, inst) for e in events]
    linked = store.photos_by_reason(inst.site, [f"{r['panel']}:{r['seq']}" for r in rows])
    kept = store.photos_kept(inst.site, [str(r["photo"]) for r in rows if r["photo"]])
    media_days = ctx(request).config.retention.media_days
    for row in rows:
        row["linked"] = linked.get(f"{row['panel']}:{row['seq']}", [])
        if row["photo"] and row["photo"] not in kept:
            # The retention rule deleted it (or it never arrived): no link to nothing.
            row["photo"] = None
            row["photo_gone"] = _older_than(row["time"], media_days)
    older = None
    if more and events:
        last = events[-1]
        params = {k: v for k, v in chosen.items() if v}
        params["before"] = f"{last['time']}|{last['seq']}"
        older = f"?{urlencode(params)}"
    tag_uids = sorted({uid for uid, _u in inst.tags} | set(store.event_tags(inst.site)))
    users = sorted({h.user for h in inst.holders} | set(store.event_users(inst.site)))
    kinds = sorted((k, _(v)) for k, v in EVENT_WORDS.items())
    return render(
        request,
        "activity.html",
        inst=inst,
        rows=rows,
        chosen=chosen,
        older=older,
        users=users,
        tags=tag_uids,
        kinds=kinds,
        paged="before" in request.query_params,
        media_days=media_days,
    )


# -- photos -------------------------------------------------------------------------------


async def photos(request: Request) -> Response:
    """The image requests, pending or ready."""
    return await _photos(request, request.path_params["number"])


async def _photos(
    request: Request, number: str, answer_text: str = "", ok: bool = True, since: str = ""
) -> Response:
    inst, _member = installation_of(request, number)
    _ = gettext(request)
    rows = []
    for p in ctx(request).store.photos(inst.site):
        reason = p.get("reason") or ""
        rows.append({**p, "camera_name": place(p.get("camera")), "why": _reason(reason, _)})
    return render(
        request,
        "photos.html",
        inst=inst,
        photos=rows,
        answer=answer_text,
        ok=ok,
        rendered=since,
        media_days=ctx(request).config.retention.media_days,
    )


def _reason(reason: str, _: Callable[[str], str]) -> str:
    if reason.startswith("stolen:"):
        return _("Tag %(tag)s reported stolen") % {"tag": reason[7:]}
    if reason:
        return _("Stolen tag presented at the panel")
    return ""


async def photo_file(request: Request) -> Response:
    """One JPEG."""
    inst, _member = installation_of(request, request.path_params["number"])
    jpeg = ctx(request).store.photo_jpeg(inst.site, request.path_params["photo_id"])
    if jpeg is None:
        return Response("Not found", 404, media_type="text/plain")
    return Response(
        jpeg, media_type="image/jpeg", headers={"cache-control": "private, max-age=3600"}
    )


async def clip_file(request: Request) -> Response:
    """One clip (WebM/VP8)."""
    inst, _member = installation_of(request, request.path_params["number"])
    store = ctx(request).store
    clip_id = request.path_params["photo_id"]
    kinds = {p["photo_id"]: p.get("kind") for p in store.photos(inst.site, 200)}
    webm = store.photo_jpeg(inst.site, clip_id) if kinds.get(clip_id) == "clip" else None
    if webm is None:
        return Response("Not found", 404, media_type="text/plain")
    return Response(
        webm, media_type="video/webm", headers={"cache-control": "private, max-age=3600"}
    )


# -- climate ------------------------------------------------------------------------------


async def climate(request: Request) -> Response:
    """Current temperature and humidity, and charts of 24 hours and 7 days."""
    inst, _member = installation_of(request, request.path_params["number"])
    _ = gettext(request)
    now = datetime.now(UTC)
    week = ctx(request).store.telemetry(
        inst.site, (now - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    )
    day_start = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    day = [r for r in week if r["time"] >= day_start]
    current = week[-1] if week else None
    charts = []
    spans = (
        (_("Last 24 hours"), day, 1, _("24 hours ago")),
        (_("Last 7 days"), week, 7, _("7 days ago")),
    )
    for title, rows, span, start in spans:
        ends = (start, _("now"))
        charts.append(
            {
                "title": title,
                "temperature": line_chart(
                    rows, "temperature", now, span, _("Temperature (°C)"), ends
                ),
                "humidity": line_chart(rows, "humidity", now, span, _("Humidity (%)"), ends),
            }
        )
    return render(request, "climate.html", inst=inst, current=current, charts=charts)


# -- tags ---------------------------------------------------------------------------------


def tag_list(request: Request, inst: Installation) -> list[dict[str, Any]]:
    """Every tag of the installation: user, name, last use, stolen or not."""
    store = ctx(request).store
    names = store.tag_names(inst.number)
    stolen = store.stolen_tags(inst.number)
    owners = dict(inst.tags)
    uids = sorted(set(owners) | set(store.event_tags(inst.site)) | set(stolen))
    out = []
    for uid in uids:
        last = store.last_tag_use(inst.site, uid)
        out.append(
            {
                "uid": uid,
                "user": place(owners.get(uid) or (last or {}).get("user")),
                "name": names.get(uid, ""),
                "last": (last or {}).get("time"),
                "stolen": uid in stolen,
            }
        )
    return out


async def tags(request: Request, answer_text: str = "", ok: bool = True) -> Response:
    """The tags page."""
    inst, member = installation_of(request, request.path_params["number"])
    holder = inst.holder(member.panel_user)
    return render(
        request,
        "tags.html",
        inst=inst,
        tags=tag_list(request, inst),
        master=(holder.role if holder else "user") == "master",
        answer=answer_text,
        ok=ok,
    )


async def tag_action(request: Request) -> Response:
    """Name a tag, or report it stolen."""
    inst, member = installation_of(request, request.path_params["number"])
    uid = request.path_params["uid"].upper()
    _ = gettext(request)
    form = await request.form()
    known = {t["uid"] for t in tag_list(request, inst)}
    if uid not in known:
        return Response("Not found", 404, media_type="text/plain")
    if form.get("op") == "name":
        name = str(form.get("name", "")).strip()[:40]
        ctx(request).store.set_tag_name(inst.number, uid, name)
        return await tags(request, _("Name saved."), True)
    if form.get("op") == "stolen":
        if form.get("confirmed") != "1":
            return render(
                request,
                "confirm.html",
                inst=inst,
                question=_("Report tag %(tag)s stolen? It stops working at once.") % {"tag": uid},
                action=f"/i/{inst.number}/tags/{uid}",
                fields={"op": "stolen", "confirmed": "1"},
            )
        from cloud.reactions import report_stolen

        account = request.state.account
        text, ok = await report_stolen(ctx(request), inst, member, account.id, uid, _)
        if _wants_json(request):
            return JSONResponse({"ok": ok, "message": text})
        return await tags(request, text, ok)
    return Response("Bad request", 400, media_type="text/plain")


# -- notifications ------------------------------------------------------------------------

NOTIFY = (
    ("on_alarm", N_("E-mail me when there is an alarm")),
    ("on_photo", N_("E-mail me when a photo is ready")),
    ("on_arm", N_("E-mail me when the alarm is armed or disarmed")),
)


async def settings(request: Request) -> Response:
    """Notification settings of the account."""
    store = ctx(request).store
    account = request.state.account
    saved = False
    if request.method == "POST":
        form = await request.form()
        store.set_notify(account.id, {k: form.get(k) == "1" for k, _label in NOTIFY})
        saved = True
    return render(
        request,
        "settings.html",
        inst=None,
        current=store.notify_settings(account.id),
        options=NOTIFY,
        saved=saved,
        mail=ctx(request).config.mail is not None,
    )


__all__ = ["gettext_for", "routes"]
