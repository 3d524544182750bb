"""Security as middleware, applied to every route: headers, who is asking, whose installation,
CSRF on every form and rate limits on log-in, sign-up and unblock."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any, Final
from urllib.parse import parse_qs

from cloud.accounts import normal_email, token_hash
from cloud.config import CloudConfig
from cloud.i18n import N_, gettext_for, negotiate
from cloud.store import Store

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SESSION_COOKIE: Final = "centinela_session"
CSRF_COOKIE: Final = "centinela_csrf"
MAX_FORM: Final = 64 * 1024
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
PUBLIC: Final = re.compile(
    r"^/(|login|signup|trouble|unblock|lang/[a-z]{2}|static/.*|api/v1/(login|signup|unblock|openapi\.json))$"
)
INSTALLATION: Final = re.compile(r"^/(?:api/v1/installations|i)/([^/]+)(?:/|$)")
LIMITED: Final = frozenset(
    {"/login", "/signup", "/unblock", "/api/v1/login", "/api/v1/signup", "/api/v1/unblock"}
)


def cookies(scope: Scope) -> dict[str, str]:
    """The request's cookies."""
    jar: SimpleCookie = SimpleCookie()
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # noqa: S112 (a malformed cookie header is ignored)
                continue
    return {k: m.value for k, m in jar.items()}


def header(scope: Scope, name: bytes) -> str | None:
    """One request header."""
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def state(scope: Scope) -> dict[str, Any]:
    """``request.state`` of Starlette, as a dict."""
    return scope.setdefault("state", {})  # type: ignore[no-any-return]


def is_api(scope: Scope) -> bool:
    """Whether the request is for the app API."""
    return str(scope.get("path", "")).startswith("/api/")


async def _send_json(send: Send, status: int, error: str, detail: str) -> None:
    body = json.dumps({"error": error, "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *_common_headers()],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_redirect(send: Send, location: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [(b"location", location.encode()), *_common_headers()],
        }
    )
    await send({"type": "http.response.body", "body": b""})


async def _send_text(send: Send, status: int, text: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), *_common_headers()],
        }
    )
    await send({"type": "http.response.body", "body": text.encode()})


def _common_headers() -> list[tuple[bytes, bytes]]:
    return [
        (b"content-security-policy", CSP.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"same-origin"),
        (b"cache-control", b"no-store"),
    ]


class SecurityHeaders:
    """CSP and friends on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in _common_headers() if k not in names]
                if str(scope.get("path", "")).startswith("/static/"):
                    extra = [(k, v) for k, v in extra if k != b"cache-control"]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, wrapped)


class Authenticate:
    """Who is asking: a session cookie (pages) or a bearer token (API); and the CSRF cookie."""

    def __init__(self, app: ASGIApp, store: Store, config: CloudConfig) -> None:
        self.app = app
        self.store = store
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        st = state(scope)
        st["account"] = None
        st["memberships"] = []
        jar = cookies(scope)
        st["cookies"] = jar
        found = None
        if is_api(scope):
            auth = header(scope, b"authorization") or ""
            if auth.startswith("Bearer "):
                found = self.store.session(token_hash(auth[7:].strip()), "api")
        elif jar.get(SESSION_COOKIE):
            found = self.store.session(token_hash(jar[SESSION_COOKIE]), "web")
            st["session_token"] = jar[SESSION_COOKIE]
        if found is not None:
            account = self.store.account(found[0])
            if account is not None:
                st["account"] = account
                st["memberships"] = self.store.memberships(account.id)
                st["csrf"] = found[1]
        new_csrf = None
        if "csrf" not in st:
            st["csrf"] = jar.get(CSRF_COOKIE) or ""
            if not st["csrf"] and not is_api(scope):
                new_csrf = st["csrf"] = secrets.token_urlsafe(24)
        secure = "; Secure" if self.config.secure_cookies or scope.get("scheme") == "https" else ""

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start" and new_csrf:
                cookie = f"{CSRF_COOKIE}={new_csrf}; Path=/; HttpOnly; SameSite=Strict{secure}"
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode())]
            await send(message)

        await self.app(scope, receive, wrapped)


class Authorize:
    """Pages and API calls need an account, and an installation in the path must be its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        st = state(scope)
        if st.get("account") is None and not PUBLIC.match(path):
            if is_api(scope):
                await _send_json(send, 401, "unauthorized", "log in first")
            else:
                await _send_redirect(send, "/")
            return
        match = INSTALLATION.match(path)
        if match is not None:
            numbers = {m.number for m in st.get("memberships", [])}
            if match.group(1) not in numbers:
                # Someone else's installation looks exactly like one that does not exist.
                if is_api(scope):
                    await _send_json(send, 404, "not_found", "no such installation")
                else:
                    await _send_text(send, 404, "Not found")
                return
        await self.app(scope, receive, send)


class RateLimiter:
    """Sliding one-minute windows, per key, counted in the store (every worker sees the
    same count)."""

    def __init__(
        self, per_minute: int, store: Store, clock: Callable[[], float] = time.time
    ) -> None:
        self.per_minute = per_minute
        self.store = store
        self.clock = clock

    def allow(self, key: str) -> bool:
        """Count one attempt for ``key``; False when over the limit."""
        return self.store.rate_hit(key, int(self.clock() * 1000), self.per_minute)


FORBIDDEN: Final = N_(
    "This form has expired or comes from elsewhere: reload the page and try again."
)
TOO_MANY: Final = N_("Too many attempts: wait a minute and try again.")


def _words(scope: Scope, message: str) -> str:
    """``message`` in the reader's language (the middleware answers before any page does)."""
    lang = negotiate(cookies(scope).get("lang"), header(scope, b"accept-language"))
    return gettext_for(lang)(message)


class FormGuard:
    """Every unsafe request of a page carries the CSRF token and comes from our origin;
    log-in, sign-up and unblock are rate-limited per address and per e-mail."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = bool(message.get("more_body"))
            if len(body) > MAX_FORM:
                await _send_text(send, 413, "Too large")
                return
        path = str(scope.get("path", ""))
        st = state(scope)
        ctype = header(scope, b"content-type") or ""
        fields: dict[str, str] = {}
        if ctype.startswith("application/x-www-form-urlencoded"):
            parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
            fields = {k: v[0] for k, v in parsed.items()}
        elif ctype.startswith("application/json") and is_api(scope):
            try:
                value = json.loads(body or b"{}")
                if isinstance(value, dict):
                    fields = {k: v for k, v in value.items() if isinstance(v, str)}
            except ValueError:
                fields = {}
        if not is_api(scope):
            origin = header(scope, b"origin")
            host = header(scope, b"host")
            if origin and host and origin.split("://", 1)[-1] != host:
                await _send_text(send, 403, _words(scope, FORBIDDEN))
                return
            token = fields.get("csrf") or header(scope, b"x-csrf-token") or ""
            expected = str(st.get("csrf") or "")
            if not expected or not secrets.compare_digest(token, expected):
                await _send_text(send, 403, _words(scope, FORBIDDEN))
                return
        if path in LIMITED:
            client = scope.get("client") or ("?", 0)
            keys = [f"{path} addr {client[0]}"]
            if fields.get("email"):
                keys.append(f"{path} email {normal_email(fields['email'])}")
            if not all([self.limiter.allow(k) for k in keys]):  # noqa: C419 (count every key)
                if is_api(scope):
                    await _send_json(send, 429, "rate_limited", "too many attempts; wait a minute")
                else:
                    await _send_text(send, 429, _words(scope, TOO_MANY))
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
