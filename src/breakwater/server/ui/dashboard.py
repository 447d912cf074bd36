"""``/ui``: the web dashboard, served by the gateway itself (docs/dashboard.md).

Who gets in is ``AdminAuth``'s decision, as for ``/admin/*``: the login form takes the admin key
(a virtual key is refused) and starts a session (``session.py``: a signed, HttpOnly,
SameSite=Strict cookie on ``/ui``, ``Secure`` except over plain HTTP to 127.0.0.1). Without an
admin key and with access control off, the dashboard is open, like the admin API, and every page
says so. Without a session a page answers 303 to ``/ui/login``.

Every POST must come from this gateway's own pages: the browser's ``Origin`` (when sent) names
this host, and the form carries the session's CSRF token; otherwise 403. Bad input is a 4xx
page; the dashboard never answers 500 to a request it could not read.

The pages are in ``pages/``, one module per section; each maps ``(method, path)`` to an async
function ``(View) -> Reply`` (``view.py``). ``UiShared`` is what outlives a configuration
reload: the templates, the static files, the sessions, the login throttle (``throttle.py``: an
address that typed too many wrong keys is answered 429 without its key being looked at) and the
one-time slots a new key's secret waits in for its page (``reveal.py``).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import jinja2
import orjson

from breakwater.core.errors import BreakwaterError, InvalidRequest, MethodNotAllowed, NotFound, PermissionDenied
from breakwater.runtime.runtime import Runtime
from breakwater.server import errors
from breakwater.server.admin import AdminAuth
from breakwater.server.asgi import Receive, Scope, Send
from breakwater.server.ui import pages
from breakwater.server.ui.reveal import Reveals
from breakwater.server.ui.session import COOKIE, KEY_LABEL, SESSION_S, Session, Sessions
from breakwater.server.ui.static import UPLOT_VERSION, StaticFiles
from breakwater.server.ui.templates import templates
from breakwater.server.ui.throttle import LoginThrottle
from breakwater.server.ui.view import WINDOWS, Download, Page, PageHandler, Redirect, Reply, View
from breakwater.server.ui.web import Request, cookie_header, read_form, redirect, send_page

log = logging.getLogger("breakwater.ui")

HTML = b"text/html; charset=utf-8"


class UiShared:
    """The dashboard's parts that live as long as the process (they survive reloads)."""

    def __init__(self, now: Callable[[], float]) -> None:
        self.sessions = Sessions(now)
        self.throttle = LoginThrottle(now)
        self.reveals = Reveals(now)
        self.static = StaticFiles()
        self._templates: jinja2.Environment | None = None

    @property
    def templates(self) -> jinja2.Environment:
        if self._templates is None:  # built on the first page, not when the app is created
            self._templates = templates()
        return self._templates


class Dashboard:
    """The ``/ui`` handler over one runtime.

    Args:
        shared: the process's templates, static files and sessions.
        auth: the admin key check (the same as ``/admin/*``).
        runtime: the configuration the pages show.
    """

    def __init__(self, shared: UiShared, auth: AdminAuth, runtime: Runtime) -> None:
        self._shared = shared
        self._auth = auth
        self._runtime = runtime
        self._key = auth.derive(KEY_LABEL)
        self._routes: Mapping[tuple[str, str], PageHandler] = pages.routes()

    @staticmethod
    def handles(path: str) -> bool:
        return path == "/ui" or path.startswith("/ui/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request.of(scope)
        path, method = request.path, request.method
        try:
            if "__invalid__" in request.query:
                raise InvalidRequest("The query string is not valid UTF-8")
            if path == "/ui":
                await redirect(send, "/ui/")
            elif path.startswith("/ui/static/"):
                if method not in ("GET", "HEAD"):
                    raise MethodNotAllowed(f"Method {method} is not allowed on {path}", ["GET"])
                if not await self._shared.static.send(path.removeprefix("/ui/static/"), send):
                    raise NotFound(f"No static file {path}")
            elif path == "/ui/login":
                await self._login(request, scope, receive, send)
            elif path == "/ui/logout":
                await self._logout(request, scope, receive, send)
            else:
                await self._page(request, scope, receive, send)
        except BreakwaterError as exc:
            await self._error(send, exc, None)

    # --- signing in and out -------------------------------------------------------------------

    def _session(self, request: Request) -> Session | None:
        return self._shared.sessions.read(self._key, request.cookies.get(COOKIE))

    async def _login(self, request: Request, scope: Scope, receive: Receive, send: Send) -> None:
        if self._auth.open:
            await redirect(send, "/ui/")
            return
        if request.method == "GET":
            if self._session(request) is not None:
                await redirect(send, "/ui/")
                return
            await self._login_page(send, request, request.query.get("next", ""), None, 200)
            return
        if request.method != "POST":
            raise MethodNotAllowed(f"Method {request.method} is not allowed on /ui/login", ["GET", "POST"])
        if not request.same_origin():
            raise PermissionDenied("This form was not sent from this gateway's dashboard", code="cross_origin")
        throttle, client = self._shared.throttle, request.client
        if await self._locked_out(send, request):  # the form is not even read
            return
        form = await read_form(scope, receive)
        # again once the form is in: logins sent at once were all read before any was judged
        if await self._locked_out(send, request):
            return
        typed = form.get("admin_key", "").strip()
        refusal = self._auth.judge(typed.encode()) if typed else None
        if not typed:
            refusal = InvalidRequest("Type the admin key (server.admin_key)", param="admin_key")
        if refusal is not None:
            log.info("dashboard login refused from %s: %s", client, type(refusal).__name__)
            if typed and self._auth.configured:  # a key was tried (an empty form, or no key to try, is no guess)
                locked = throttle.failed(client)
                if locked is not None:
                    log.warning(
                        "dashboard login: %s locked out for %d s after %d failed logins",
                        client,
                        locked,
                        throttle.failures,
                    )
            await self._login_page(send, request, form.get("next", ""), refusal.message, errors.classify(refusal)[0])
            return
        throttle.succeeded(client)
        _, cookie = self._shared.sessions.issue(self._key)
        await redirect(send, _local(form.get("next", "")), [self._cookie(request, cookie, int(SESSION_S))])

    async def _locked_out(self, send: Send, request: Request) -> bool:
        """True when the client is locked out of logging in (``throttle.py``); the 429 page is then sent."""
        wait = self._shared.throttle.retry_after(request.client)
        if wait is None:
            return False
        log.info("dashboard login refused from %s: locked out for %d s more", request.client, wait)
        message = f"Too many failed logins from this address: try again in {_duration(wait)}."
        await self._login_page(send, request, "", message, 429, [(b"retry-after", str(wait).encode())])
        return True

    async def _login_page(
        self,
        send: Send,
        request: Request,
        after: str,
        error: str | None,
        status: int,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        context = {
            "error": error,
            "disabled": not self._auth.configured,
            "insecure": request.scope.get("scheme") == "http" and not request.plain_http_loopback(),
            "next": _local(after),
            "uplot_version": UPLOT_VERSION,
        }
        body = self._shared.templates.get_template("login.html").render(context)
        await send_page(send, status, body.encode(), HTML, extra or [])

    async def _logout(self, request: Request, scope: Scope, receive: Receive, send: Send) -> None:
        if request.method != "POST":
            raise MethodNotAllowed("Log out with the button (POST /ui/logout)", ["POST"])
        session = self._session(request)
        if session is None:
            await redirect(send, "/ui/login")
            return
        await self._check_post(request, session, await read_form(scope, receive))
        self._shared.sessions.revoke(session)
        await redirect(send, "/ui/login", [self._cookie(request, "", 0)])

    def _cookie(self, request: Request, value: str, max_age: int) -> tuple[bytes, bytes]:
        return cookie_header(COOKIE, value, secure=not request.plain_http_loopback(), max_age=max_age)

    async def _check_post(self, request: Request, session: Session, form: dict[str, str]) -> None:
        if not request.same_origin():
            raise PermissionDenied("This form was not sent from this gateway's dashboard", code="cross_origin")
        if not hmac.compare_digest(form.get("csrf", "").encode(), session.csrf.encode()):
            raise PermissionDenied("The form's CSRF token is missing or wrong: reload the page", code="csrf")

    # --- pages --------------------------------------------------------------------------------

    async def _page(self, request: Request, scope: Scope, receive: Receive, send: Send) -> None:
        session = self._session(request)
        new_cookie: list[tuple[bytes, bytes]] = []
        if session is None:
            if not self._auth.open:
                target = "/ui/login" if request.method != "GET" else f"/ui/login?next={quote(request.path)}"
                await redirect(send, target)
                return
            # open mode: a session of its own, for its CSRF token
            session, cookie = self._shared.sessions.issue(self._key)
            new_cookie.append(self._cookie(request, cookie, int(SESSION_S)))
        method = "GET" if request.method == "HEAD" else request.method
        handler = self._routes.get((method, request.path))
        if handler is None:
            allowed = sorted(m for m, p in self._routes if p == request.path)
            if allowed:
                raise MethodNotAllowed(f"Method {request.method} is not allowed on {request.path}", allowed)
            raise NotFound(f"No dashboard page {request.path}")
        now = self._runtime.process.clock.time()
        view = View(self._runtime, request, session, now, self._auth.open, self._shared.reveals)
        try:
            if method == "POST":
                view.form = await read_form(scope, receive)
                await self._check_post(request, session, view.form)
            reply = await handler(view)
        except BreakwaterError as exc:
            await self._error(send, exc, view, new_cookie)
            return
        await self._send(send, reply, view, new_cookie)

    async def _send(self, send: Send, reply: Reply, view: View, cookies: list[tuple[bytes, bytes]]) -> None:
        if isinstance(reply, Redirect):
            await redirect(send, reply.location, cookies)
        elif isinstance(reply, Download):
            extra = list(cookies)
            if reply.filename is not None:
                extra.append((b"content-disposition", f'attachment; filename="{reply.filename}"'.encode()))
            await send_page(send, 200, reply.body, reply.content_type, extra)
        else:
            await send_page(send, reply.status, self._render(reply, view), HTML, cookies)

    def _render(self, page: Page, view: View | None) -> bytes:
        context: dict[str, Any] = {
            "path": "" if view is None else view.request.path,
            "csrf": None if view is None else view.session.csrf,
            "open_mode": self._auth.open,
            "nav": pages.NAV,
            "windows": list(WINDOWS),
            "uplot_version": UPLOT_VERSION,
            "query": {} if view is None else view.query,
            **page.context,
        }
        return self._shared.templates.get_template(page.template).render(context).encode()

    async def _error(
        self, send: Send, exc: BreakwaterError, view: View | None, cookies: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        status = errors.classify(exc)[0]
        extra = list(cookies or [])
        if isinstance(exc, MethodNotAllowed):
            extra.append((b"allow", ", ".join(exc.allow).encode()))
        if view is not None and view.request.path.startswith("/ui/api/"):
            body = orjson.dumps({"error": {"message": exc.message, "param": getattr(exc, "param", None)}})
            await send_page(send, status, body, b"application/json", extra)
            return
        page = Page("error.html", {"status": status, "message": exc.message}, status)
        await send_page(send, status, self._render(page, view), HTML, extra)


def _duration(seconds: int) -> str:
    """``seconds`` as a person reads a wait: whole minutes, rounded up, from a minute on."""
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = -(-seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _local(path: str) -> str:
    """``path`` when it is a dashboard page, else the overview: a login never leads off the dashboard."""
    if path.startswith("/ui/") and "//" not in path and "\\" not in path and all(c.isprintable() for c in path):
        return path
    return "/ui/"
