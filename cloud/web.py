"""The app factory: routes, middleware and the templates' environment (Datasette's shape)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from cloud.accounts import Accounts
from cloud.config import CloudConfig, Installation
from cloud.i18n import LANGUAGES, N_, gettext_for, negotiate, when
from cloud.link import CloudLink
from cloud.live import Live
from cloud.mail import Mailer
from cloud.security import Authenticate, Authorize, FormGuard, RateLimiter, SecurityHeaders
from cloud.store import Membership, Store, now_iso


@dataclass
class Context:
    """What every view may use."""

    config: CloudConfig
    store: Store
    link: CloudLink
    live: Live
    accounts: Accounts
    mailer: Mailer
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, coro: Any) -> None:
        """Run a background job owned by the service (awaited when it stops)."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


@functools.cache
def environment(lang: str) -> jinja2.Environment:
    """The templates, with the gettext of ``lang`` installed."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("cloud", "templates"),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
    )
    translations = __import__("cloud.i18n", fromlist=["translations"]).translations(lang)
    env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    return env


def lang_of(request: Request) -> str:
    """The reader's language: the switch's cookie, else the browser's."""
    return negotiate(request.cookies.get("lang"), request.headers.get("accept-language"))


def gettext(request: Request) -> Callable[[str], str]:
    """``_`` for this request."""
    return gettext_for(lang_of(request))


def ctx(request: Request) -> Context:
    """The service's context."""
    return request.app.state.ctx  # type: ignore[no-any-return]


def installation_of(request: Request, number: str) -> tuple[Installation, Membership]:
    """The installation in the path (Authorize already checked it is the account's own)."""
    config = ctx(request).config
    inst = config.installation(number)
    member = next(m for m in request.state.memberships if m.number == number)
    assert inst is not None
    return inst, member


def render(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """A page in the reader's language."""
    lang = lang_of(request)
    memberships = request.state.memberships
    inst = values.setdefault("inst", None)
    text = (
        environment(lang)
        .get_template(template)
        .render(
            lang=lang,
            languages=LANGUAGES,
            path=request.url.path,
            csrf=request.state.csrf,
            account=request.state.account,
            # Live updates replay what happened since then (a photo ready in between).
            rendered=values.pop("rendered", None) or now_iso(),
            memberships=memberships,
            when=lambda t, fmt="medium": when(t, lang, inst.time_zone if inst else "UTC", fmt),
            **values,
        )
    )
    return HTMLResponse(text, status_code=status)


def create_app(context: Context) -> Starlette:
    """The customer area and the app API as one ASGI app."""
    from cloud import api, pages

    static = resources.files("cloud") / "static"
    routes = [
        *pages.routes(),
        *api.routes(),
        Mount("/static", app=StaticFiles(directory=str(static)), name="static"),
    ]
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(Authenticate, store=context.store, config=context.config),
        Middleware(Authorize),
        Middleware(FormGuard, limiter=RateLimiter(context.config.rate_limit, context.store)),
    ]
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={404: _not_found})
    app.state.ctx = context
    return app


async def _not_found(request: Request, exc: Exception) -> Response:
    if request.url.path.startswith("/api/"):
        from starlette.responses import JSONResponse

        return JSONResponse({"error": "not_found", "detail": "no such resource"}, 404)
    if not hasattr(request.state, "memberships"):
        return HTMLResponse("Not found", 404)
    return render(request, "message.html", 404, title=gettext(request)(N_("Not found")), inst=None)


__all__ = ["Context", "Route", "create_app", "ctx", "gettext", "installation_of", "render"]
