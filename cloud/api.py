"""The app API (CONTRACT §7): JSON under /api/v1, a bearer token, the same accounts and rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cloud.accounts import token_hash
from cloud.config import Installation
from cloud.store import EventFilter, Membership
from cloud.web import ctx, installation_of
from cloud.words import state_word

# §5 error -> HTTP status.
STATUS = {
    "bad_request": 400,
    "unknown_user": 403,
    "forbidden": 403,
    "invalid_state": 409,
    "panel_offline": 503,
    "timeout": 504,
}
ACTIONS = (
    "arm",
    "disarm",
    "status",
    "photo",
    "sos",
    "unlock",
    "revoke_tag",
    "listen",
    "listen_stop",
    "clip",
)


def routes() -> list[Route]:
    """Every API route."""
    base = "/api/v1/installations/{number}"
    return [
        Route("/api/v1/openapi.json", openapi, methods=["GET"]),
        Route("/api/v1/login", login, methods=["POST"]),
        Route("/api/v1/logout", logout, methods=["POST"]),
        Route("/api/v1/signup", signup, methods=["POST"]),
        Route("/api/v1/unblock", unblock, methods=["POST"]),
        Route("/api/v1/installations", installations, methods=["GET"]),
        Route(base + "/state", state, methods=["GET"]),
        Route(base + "/commands", commands, methods=["POST"]),
        Route(base + "/events", events, methods=["GET"]),
        Route(base + "/photos", photos, methods=["GET"]),
        Route(base + "/photos/{photo_id}", photo, methods=["GET"]),
        Route(base + "/climate", climate, methods=["GET"]),
    ]


def error(status: int, code: str, detail: str) -> JSONResponse:
    """The API's error body."""
    return JSONResponse({"error": code, "detail": detail}, status)


def refused(detail: str) -> JSONResponse:
    """A command refused before it was sent: a §5 result (which is also an error body)."""
    return JSONResponse({"ok": False, "error": "bad_request", "detail": detail}, 400)


async def _body(request: Request) -> dict[str, Any] | None:
    try:
        value = json.loads(await request.body() or b"null")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


async def openapi(request: Request) -> Response:
    """The OpenAPI description of this API."""
    text = (resources.files("cloud") / "openapi.json").read_text(encoding="utf-8")
    return Response(text, media_type="application/json")


async def login(request: Request) -> Response:
    """E-mail and password -> a token."""
    body = await _body(request)
    if (
        body is None
        or not isinstance(body.get("email"), str)
        or not isinstance(body.get("password"), str)
    ):
        return error(400, "bad_request", 'send {"email": …, "password": …}')
    outcome = await ctx(request).accounts.log_in(body["email"], body["password"])
    if outcome.blocked:
        return error(
            423, "blocked", "5 wrong passwords: unblock with e-mail, keyword and a new password"
        )
    if outcome.account is None:
        return error(401, "unauthorized", "wrong e-mail or password")
    token, _csrf = ctx(request).accounts.new_session(outcome.account, "api")
    return JSONResponse({"token": token})


def _fields(body: dict[str, Any] | None, names: tuple[str, ...]) -> dict[str, str] | None:
    if body is None or not all(isinstance(body.get(n), str) for n in names):
        return None
    return {n: str(body[n]) for n in names}


def _field_errors(errors: dict[str, str]) -> JSONResponse:
    fields = {k or "form": v for k, v in errors.items()}
    first = next(iter(fields.items()))
    return JSONResponse(
        {"error": "bad_request", "detail": f"{first[0]}: {first[1]}", "fields": fields}, 400
    )


SIGNUP = ("number", "keyword", "name", "mobile", "email", "password")


async def signup(request: Request) -> Response:
    """An account with the installation number and keyword, as on the sign-up page."""
    f = _fields(await _body(request), SIGNUP)
    if f is None:
        return error(400, "bad_request", f"send {', '.join(SIGNUP)} as strings")
    outcome = await ctx(request).accounts.sign_up(
        f["number"], f["keyword"], f["name"], f["mobile"], f["email"], f["password"], f["password"]
    )
    if outcome.account is None:
        return _field_errors(outcome.errors)
    token, _csrf = ctx(request).accounts.new_session(outcome.account, "api")
    return JSONResponse({"token": token}, 201)


async def unblock(request: Request) -> Response:
    """E-mail + keyword + a new password, as on the unblock page."""
    f = _fields(await _body(request), ("email", "keyword", "password"))
    if f is None:
        return error(400, "bad_request", "send email, keyword and password as strings")
    outcome = await ctx(request).accounts.unblock(
        f["email"], f["keyword"], f["password"], f["password"]
    )
    if outcome.account is None:
        return _field_errors(outcome.errors)
    return JSONResponse({"ok": True})


async def logout(request: Request) -> Response:
    """Forget this token."""
    auth = request.headers.get("authorization", "")
    ctx(request).store.drop_session(token_hash(auth[7:].strip()))
    return JSONResponse({"ok": True})


def _installation_json(request: Request, inst: Installation, member: Membership) -> dict[str, Any]:
    holder = inst.holder(member.panel_user)
    return {
        "number": inst.number,
        "site": inst.site,
        "user": member.panel_user,
        "role": holder.role if holder else "user",
        "cameras": list(inst.cameras),
        "time_zone": inst.time_zone,
    }


async def installations(request: Request) -> Response:
    """The account's installations."""
    config = ctx(request).config
    out = []
    for m in request.state.memberships:
        inst = config.installation(m.number)
        if inst is not None:
            out.append(_installation_json(request, inst, m))
    return JSONResponse({"installations": out})


async def state(request: Request) -> Response:
    """The panel's state, availability and the §7 word."""
    inst, _member = installation_of(request, request.path_params["number"])
    link = ctx(request).link
    panel = link.panel_of(inst.site)
    rows = ctx(request).store.panel_states(inst.site)
    row = next((r for r in rows if r["panel"] == panel), rows[0] if rows else None)
    st = row["state"] if row else None
    availability = row["availability"] if row else None
    return JSONResponse(
        {
            "panel": row["panel"] if row else panel,
            "state": (st or {}).get("state"),
            "word": state_word(st, availability),
            "since": (st or {}).get("since"),
            "open_zones": list((st or {}).get("open_zones") or []),
            "availability": availability or "unknown",
        }
    )


async def commands(request: Request) -> Response:
    """A §5 command as the account's panel user, ``via: app``; the §5 result back."""
    inst, member = installation_of(request, request.path_params["number"])
    body = await _body(request)
    if body is None:
        return refused("the body must be a JSON object")
    action = body.get("action")
    if action not in ACTIONS:
        return refused(f"action: must be one of {', '.join(ACTIONS)}")
    unknown = set(body) - {"action", "mode", "camera", "tag", "seconds"}
    if unknown:
        return refused(f"{sorted(unknown)[0]}: unknown field")
    extra: dict[str, str | int] = {k: body[k] for k in ("mode", "camera", "tag") if k in body}
    if not all(isinstance(v, str) for v in extra.values()):
        return refused("mode, camera and tag are strings")
    if "seconds" in body:
        if type(body["seconds"]) is not int:
            return refused("seconds: a whole number")
        extra["seconds"] = body["seconds"]
    if action == "revoke_tag" and isinstance(extra.get("tag"), str):
        extra["tag"] = str(extra["tag"]).upper()
    result = await ctx(request).link.command(inst.site, action, member.panel_user, "app", **extra)
    if result.get("ok") and action == "revoke_tag":
        ctx(request).store.mark_stolen(
            inst.number, str(extra.get("tag", "")), request.state.account.id
        )
    result.pop("id", None)
    status = 200 if result.get("ok") else STATUS.get(str(result.get("error")), 502)
    return JSONResponse(result, status)


async def events(request: Request) -> Response:
    """Events, newest first: ``limit`` (1-500) and ``before`` (a seq cursor: TIME|SEQ)."""
    inst, _member = installation_of(request, request.path_params["number"])
    q = request.query_params
    try:
        limit = int(q.get("limit", "50"))
    except ValueError:
        return error(400, "bad_request", "limit: must be an integer")
    if not 1 <= limit <= 500:
        return error(400, "bad_request", "limit: must be between 1 and 500")
    before = None
    if q.get("before"):
        t, _sep, s = q["before"].rpartition("|")
        if not t or not s.isdigit():
            return error(400, "bad_request", "before: must be the 'next' value of a previous page")
        before = (t, int(s))
    rows = ctx(request).store.events(
        inst.site,
        EventFilter(user=q.get("user"), type=q.get("type"), before=before),
        limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = f"{rows[-1]['time']}|{rows[-1]['seq']}" if more and rows else None
    return JSONResponse({"events": rows, "next": nxt})


async def photos(request: Request) -> Response:
    """The image requests: pending or ready."""
    inst, _member = installation_of(request, request.path_params["number"])
    out = []
    for p in ctx(request).store.photos(inst.site):
        out.append(
            {
                "id": p["photo_id"],
                "panel": p["panel"],
                "camera": p["camera"],
                "user": p["user"],
                "requested": p["requested"],
                "ready": p["ready"],
                "status": "ready" if p["ready"] and p["has_jpeg"] else "pending",
                "kind": p.get("kind") or "photo",  # a clip's WebM is …/photos/<id> too
            }
        )
    return JSONResponse({"photos": out})


async def photo(request: Request) -> Response:
    """One JPEG, or a clip's WebM."""
    inst, _member = installation_of(request, request.path_params["number"])
    store = ctx(request).store
    photo_id = request.path_params["photo_id"]
    jpeg = store.photo_jpeg(inst.site, photo_id)
    if jpeg is None:
        return error(404, "not_found", "no such photo (or not ready yet)")
    clip = any(
        p["photo_id"] == photo_id and p.get("kind") == "clip" for p in store.photos(inst.site)
    )
    return Response(jpeg, media_type="video/webm" if clip else "image/jpeg")


async def climate(request: Request) -> Response:
    """The newest reading and the last 7 days."""
    inst, _member = installation_of(request, request.path_params["number"])
    since = (datetime.now(UTC) - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    rows = ctx(request).store.telemetry(inst.site, since)
    return JSONResponse({"current": rows[-1] if rows else None, "history": rows})
