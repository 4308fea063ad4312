"""The dashboard's HTTP side: routes under `/ui` of the RPC server, login, sessions, headers.

`RpcApp` hands every `/ui` request here before its own Basic-auth check. The rules:
- Only `PUBLIC` routes (the login form, its stylesheet) answer without a session. Without one,
  `GET /ui` redirects to the login form and every other route answers 401, unknown paths
  included, so an unauthenticated client learns nothing of what exists.
- Logging in takes the RPC cookie (pasted into the form) or a one-time token from `ui_login`
  (`neuro ui` prints the link). Either gives a session: a random token in an HttpOnly,
  SameSite=Strict cookie, path /ui. It is not `Secure` because the node serves plain HTTP on
  loopback. Its name carries the port: browsers share cookies across the ports of one host,
  and two devnet nodes on 127.0.0.1 would otherwise log each other out.
- A wrong cookie or token counts against the same per-host failure budget as the JSON-RPC
  (`neurod.rpc.AuthFailures`): 401 within it, 429 after a delay past it.
- Every response carries a strict Content-Security-Policy (scripts and styles from the node
  only, nothing inline, no frames), nosniff, no-store, and referrer policy same-origin: with
  no-referrer, Chromium sends `Origin: null` on the login form's own POST.
- A POST whose Origin is another site's is refused (403), on top of SameSite=Strict.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import trio

from neurod.rpc import AuthFailures, Method, drain_body, read_body
from neurod.ui.pages import dashboard_page, login_page
from neurod.ui.sessions import (
    LOGIN_TOKEN_SECONDS,
    MAX_LOGIN_TOKENS,
    MAX_SESSIONS,
    SESSION_SECONDS,
    TokenBook,
)
from neurod.ui.views import render_sections

SESSION_COOKIE = "neuro_ui"  # then "_<port>"
POLL_MS = 2000
MAX_FORM = 4096  # bytes of a login form; a cookie line is 75
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"), (b"x-frame-options", b"DENY"),
]
HTML, TEXT = b"text/html; charset=utf-8", b"text/plain; charset=utf-8"
STATIC_DIR = Path(__file__).parent / "static"
STATIC_TYPES = {"ui.js": b"text/javascript; charset=utf-8", "ui.css": b"text/css; charset=utf-8"}
PUBLIC = frozenset({("GET", "/ui/login"), ("POST", "/ui/login"), ("GET", "/ui/static/ui.css")})
BODY_ROUTES = frozenset({("POST", "/ui/login")})
EXPIRED_LINK = "this login link has expired or was used already: run `neuro ui` again"


@dataclass(frozen=True)
class Request:
    verb: str
    path: str
    query: dict[str, list[str]]
    headers: dict[bytes, bytes]  # the last of a repeated header; we read none that repeats
    host: str  # the client's
    port: int  # the server's
    receive: Any

    @classmethod
    def of(cls, scope: dict[str, Any], receive: Any) -> Request:
        server = scope.get("server") or ("", 0)
        client = scope.get("client") or ("unknown", 0)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        return cls(scope.get("method", "GET"), scope.get("path", "/"), query, dict(scope.get("headers", [])),
                   str(client[0]), int(server[1] or 0), receive)

    @property
    def cookie_name(self) -> str:
        return f"{SESSION_COOKIE}_{self.port}"

    def cookie(self, name: str) -> str | None:
        for part in self.headers.get(b"cookie", b"").decode("latin-1").split(";"):
            key, _, value = part.strip().partition("=")
            if key == name:
                return value
        return None

    def cross_site(self) -> bool:
        """True when the browser says the request comes from a page of another origin."""
        origin = self.headers.get(b"origin")
        return origin is not None and origin != b"http://" + self.headers.get(b"host", b"")


async def respond(send: Any, status: int, body: bytes, content_type: bytes,
                  extra: list[tuple[bytes, bytes]] | None = None, cache: bytes = b"no-store") -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
               (b"cache-control", cache), *SECURITY_HEADERS, *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def redirect(send: Any, location: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    await respond(send, 303, b"", TEXT, [(b"location", location.encode()), *(extra or [])])


async def read_form(receive: Any) -> dict[str, list[str]] | None:
    """The urlencoded form in the body; None when it is over `MAX_FORM` bytes."""
    body = await read_body(receive, MAX_FORM)
    return None if body is None else parse_qs(body.decode("utf-8", "replace"))


class Dashboard:
    """The `/ui` ASGI handler of one node; ``methods`` is its JSON-RPC table (read through
    `neurod.ui.views.READS` only), ``cookie`` its `user:secret` line, ``base_url`` the RPC URL."""

    def __init__(
        self,
        methods: dict[str, Method],
        cookie: str,
        auth_failures: AuthFailures,
        on_auth_failure: Callable[[str], None],
        base_url: Callable[[], str],
        *,
        clock: Callable[[], float] = time.monotonic,
        poll_ms: int = POLL_MS,
    ) -> None:
        self.methods = methods
        self._cookie_line = cookie.encode()
        self._cookie_secret = cookie.partition(":")[2].encode()
        self.auth_failures = auth_failures
        self._on_auth_failure = on_auth_failure
        self._base_url = base_url
        self.poll_ms = poll_ms
        self.sessions = TokenBook(SESSION_SECONDS, MAX_SESSIONS, clock)
        self.login_tokens = TokenBook(LOGIN_TOKEN_SECONDS, MAX_LOGIN_TOKENS, clock)
        self.static = {name: (STATIC_DIR / name).read_bytes() for name in STATIC_TYPES}
        self.routes: dict[tuple[str, str], Callable[[Request, Any], Awaitable[None]]] = {
            ("GET", "/ui"): self._page, ("GET", "/ui/"): self._page, ("GET", "/ui/live"): self._live,
            ("GET", "/ui/login"): self._login_get, ("POST", "/ui/login"): self._login_post,
            ("POST", "/ui/logout"): self._logout,
            **{("GET", f"/ui/static/{name}"): self._static for name in STATIC_TYPES},
        }

    def rpc_methods(self) -> dict[str, Method]:
        """The JSON-RPC method the dashboard adds: `ui_login`, a one-time login link."""
        return {"ui_login": self.ui_login}

    async def ui_login(self) -> dict[str, Any]:
        """A link that logs a browser in once, within `LOGIN_TOKEN_SECONDS`; only a caller who
        could read the RPC cookie gets one."""
        token = self.login_tokens.issue()
        return {"url": f"{self._base_url().rstrip('/')}/ui/login?token={token}", "expires_in": LOGIN_TOKEN_SECONDS}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        request = Request.of(scope, receive)
        key = (request.verb, request.path)
        if key not in BODY_ROUTES:  # only the login form reads its body: drop any other
            await drain_body(receive)
        if key not in PUBLIC and not self.sessions.valid(request.cookie(request.cookie_name) or ""):
            if request.verb == "GET" and request.path in ("/ui", "/ui/"):
                await redirect(send, "/ui/login")
            else:
                await respond(send, 401, b"log in first: /ui/login\n", TEXT)
            return
        route = self.routes.get(key)
        if route is None:
            await respond(send, 404, b"not found\n", TEXT)
        elif request.verb == "POST" and request.cross_site():
            await respond(send, 403, b"cross-site request refused\n", TEXT)
        else:
            await route(request, send)

    # ---- routes ---------------------------------------------------------------------------

    async def _page(self, request: Request, send: Any) -> None:
        await respond(send, 200, dashboard_page(await render_sections(self.methods), self.poll_ms), HTML)

    async def _live(self, request: Request, send: Any) -> None:
        await respond(send, 200, (await render_sections(self.methods)).encode(), HTML)

    async def _static(self, request: Request, send: Any) -> None:
        name = request.path.rsplit("/", 1)[1]
        await respond(send, 200, self.static[name], STATIC_TYPES[name], cache=b"private, max-age=3600")

    async def _login_get(self, request: Request, send: Any) -> None:
        token = (request.query.get("token") or [""])[0]
        if not token:
            await respond(send, 200, login_page(), HTML)
        elif self.login_tokens.take(token):
            await self._start_session(request, send)
        else:
            await self._refuse(request, send, EXPIRED_LINK)

    async def _login_post(self, request: Request, send: Any) -> None:
        form = await read_form(request.receive)
        if form is None:
            await respond(send, 413, b"login form too large\n", TEXT)
            return
        given = (form.get("cookie") or [""])[0].strip().encode()
        # both compared in full, whatever the first gives: no timing tells which form was close
        matches = [hmac.compare_digest(given, self._cookie_line), hmac.compare_digest(given, self._cookie_secret)]
        if any(matches):
            await self._start_session(request, send)
        else:
            await self._refuse(request, send, "wrong cookie: paste the content of <datadir>/.cookie")

    async def _logout(self, request: Request, send: Any) -> None:
        self.sessions.drop(request.cookie(request.cookie_name) or "")
        expired = f"{request.cookie_name}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0"
        await redirect(send, "/ui/login", [(b"set-cookie", expired.encode())])

    async def _start_session(self, request: Request, send: Any) -> None:
        token = self.sessions.issue()
        cookie = f"{request.cookie_name}={token}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={int(SESSION_SECONDS)}"
        await redirect(send, "/ui", [(b"set-cookie", cookie.encode())])

    async def _refuse(self, request: Request, send: Any, message: str) -> None:
        """401 with the form again, within the host's failure budget; past it, 429 after a delay."""
        retry_after = self.auth_failures.fail(request.host)
        if not retry_after:
            self._on_auth_failure("refused")
            await respond(send, 401, login_page(message), HTML)
            return
        self._on_auth_failure("throttled")
        await trio.sleep(self.auth_failures.delay)
        await respond(send, 429, login_page("too many failed attempts: wait a few seconds"), HTML,
                      [(b"retry-after", str(int(retry_after) + 1).encode())])
