"""The dashboard's HTTP side and rendering (neurod/ui/): login with the cookie or a one-time link,
the session cookie's flags, every route behind the session, throttled failures, the security
headers, and hostile peer- and client-supplied strings rendered inert.

Requests go through `RpcApp` (as hypercorn would hand them over) to the `Dashboard`; the node's
methods are a table of what a node answers, with the strings a hostile peer or client controls
(peer ids, addresses, bid notices, job messages) made hostile.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest
import trio

from neurod.rpc import AuthFailures, RpcApp, RpcError
from neurod.ui.app import CSP, PUBLIC, Dashboard
from neurod.ui.chart import price_chart
from neurod.ui.sessions import LOGIN_TOKEN_SECONDS, TokenBook
from neurod.ui.views import READS, Reader

COOKIE = "__cookie__:" + "ab" * 32
PORT = 18443
XSS = '<script>alert("x")</script>'
ATTR_XSS = '"><img src=x onerror=alert(1)>'
JOB = "cd" * 32
WORKER = "tntk1" + "q" * 38


def answers(hostile: str = XSS) -> dict[str, Any]:
    """What each read method of a node answers (the shapes of docs/rpc.md); peer- and
    client-controlled strings carry ``hostile``."""
    block = {"hash": "ee" * 32, "height": 1, "size": 149, "txs": [],
             "header": {"timestamp": 1_700_000_000, "miner": WORKER}}
    shard = {"index": 0, "status": "awarded", "worker": WORKER, "price": 60}
    job = {"job": JOB, "service": "generate", "status": "open", "bidding": True, "posted": 3, "deadline": 43,
           "max_price": 1000, "quote_unit": "megapixel", "escrow": 10**9, "client": WORKER, "shards": [shard]}
    return {
        "node_status": {"network": "devnet", "height": 1, "tip": "ee" * 32, "peers": 1, "mempool": 0,
                        "mining": True, "version": "neurod/0.1.0"},
        "chain_block": block,
        "mempool_info": {"count": 0, "max_txs": 50_000, "bytes": 0, "pending": 0, "queued": 0, "min_fee": 1000},
        "mempool_list": {"count": 0, "txs": []},
        "node_peers": [{"peer_id": hostile, "direction": "inbound", "score": 3.0, "height": 1,
                        "addrs": [f"/ip4/127.0.0.1/tcp/1{ATTR_XSS}"]}],
        "node_bans": [{"peer_id": hostile + "-banned", "until": 2e9, "seconds_left": 30.0}],
        "job_list": [{k: job[k] for k in ("job", "bidding")}],
        "job_get": job,
        "bid_list": [{"worker": WORKER, "unit_price": 60, "max_shards": 2, "expiry": 50, "peer_id": hostile}],
        "market_prices": {"services": {"generate": {"service": "generate", "jobs": 1, "shards": 1, "low": 60,
                                                    "median": 60, "high": 60, "quote_unit": "megapixel"}},
                          "jobs": [{"job": JOB, "service": "generate", "posted": 3, "median": 60, "low": 60,
                                    "high": 60, "quote_unit": "megapixel"}]},
        "worker_floor": RpcError(-32040, "this node runs no worker agent: start it with --worker"),
        "worker_earnings": {"paid": 0, "rewards": 0, "slashed": 0, "net_ntk": "0", "jobs": []},
        "client_jobs": [{"job": JOB, "service": "generate", "state": "awarded", "shards": 2, "paid": 0,
                         "message": hostile}],
        "job_status": {"views": [{"state": "paid"}, {"state": "awarded"}]},
    }


def methods_of(table: dict[str, Any], called: list[str] | None = None) -> dict[str, Any]:
    def method(name: str, value: Any) -> Any:
        async def call(**params: Any) -> Any:
            if called is not None:
                called.append(name)
            if isinstance(value, RpcError):
                raise value
            return value
        return call

    writes = {"tx_submit": None, "job_submit": None, "bid_submit": None, "job_cancel": None}
    return {name: method(name, value) for name, value in {**table, **writes}.items()}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Client:
    """One dashboard behind RpcApp, and a browser's cookie jar of one cookie."""

    def __init__(self, table: dict[str, Any] | None = None, failures: AuthFailures | None = None) -> None:
        self.clock = Clock()
        self.outcomes: list[str] = []
        self.called: list[str] = []
        methods = methods_of(answers() if table is None else table, self.called)
        if failures is None:  # each trio.run has a trio clock of its own: use one that goes on
            failures = AuthFailures(clock=self.clock)
        self.dashboard = Dashboard(methods, COOKIE, failures, self.outcomes.append,
                                   lambda: f"http://127.0.0.1:{PORT}/", clock=self.clock)
        self.app = RpcApp({**methods, **self.dashboard.rpc_methods()}, COOKIE, lambda: b"", ui=self.dashboard)
        self.session: str | None = None
        self.unread = 0

    def request(self, verb: str, path: str, body: bytes | list[bytes] = b"", *, query: bytes = b"",
                headers: list[tuple[bytes, bytes]] | None = None) -> tuple[int, dict[bytes, bytes], bytes]:
        """The answer to one request; a body given as a list arrives in those chunks, and
        ``self.unread`` counts the chunks the app left unread."""
        sent: list[dict[str, Any]] = []
        chunks = body if isinstance(body, list) else [body]
        pending = [{"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
                   for i, chunk in enumerate(chunks)]
        jar = [(b"cookie", f"neuro_ui_{PORT}={self.session}".encode())] if self.session else []
        scope = {"type": "http", "method": verb, "path": path, "query_string": query,
                 "headers": [(b"host", f"127.0.0.1:{PORT}".encode()), *jar, *(headers or [])],
                 "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", PORT)}

        async def receive() -> dict[str, Any]:
            return pending.pop(0) if pending else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        trio.run(self.app, scope, receive, send)
        self.unread = len(pending)
        start = sent[0]
        return start["status"], dict(start["headers"]), b"".join(m.get("body", b"") for m in sent[1:])

    def login(self, cookie: str = COOKIE) -> tuple[int, dict[bytes, bytes], bytes]:
        status, headers, body = self.request("POST", "/ui/login", b"cookie=" + cookie.encode().replace(b":", b"%3A"))
        if b"set-cookie" in headers:
            self.session = headers[b"set-cookie"].decode().split(";")[0].split("=", 1)[1]
        return status, headers, body

    def link_token(self) -> str:
        url = trio.run(self.dashboard.ui_login)["url"]
        assert url.startswith(f"http://127.0.0.1:{PORT}/ui/login?token=")
        return str(url.split("token=")[1])


def test_a_wrong_cookie_is_refused_and_the_right_one_gives_a_session() -> None:
    client = Client()
    for wrong in ("", "__cookie__:" + "00" * 32, COOKIE + "x", "__cookie__"):
        status, headers, body = client.login(wrong)
        assert status == 401 and b"set-cookie" not in headers and b"wrong cookie" in body
    assert client.outcomes == ["refused"] * 4
    assert client.request("GET", "/ui/live")[0] == 401
    status, headers, _ = client.login()
    assert status == 303 and headers[b"location"] == b"/ui"
    assert client.request("GET", "/ui/live")[0] == 200
    other = Client()
    assert other.login(COOKIE.split(":")[1])[0] == 303  # the secret alone, as in the file after the colon


def test_the_session_cookie_is_httponly_samesite_strict_and_scoped_to_ui() -> None:
    _, headers, _ = Client().login()
    name_value, *flags = [part.strip() for part in headers[b"set-cookie"].decode().split(";")]
    name, token = name_value.split("=", 1)
    assert name == f"neuro_ui_{PORT}"  # per port: two nodes on 127.0.0.1 keep their own sessions
    assert len(token) >= 40 and token not in COOKIE
    assert set(flags) == {"Path=/ui", "HttpOnly", "SameSite=Strict", "Max-Age=43200"}


def test_every_ui_route_but_the_login_form_needs_a_session() -> None:
    client = Client()
    guarded = [route for route in client.dashboard.routes if route not in PUBLIC] + [("GET", "/ui/nope")]
    assert ("GET", "/ui/live") in guarded and ("GET", "/ui/static/ui.js") in guarded
    for session in (None, "forged-session-token"):
        client.session = session
        for verb, path in guarded:
            status, headers, body = client.request(verb, path)
            if (verb, path) in (("GET", "/ui"), ("GET", "/ui/")):
                assert (status, headers[b"location"]) == (303, b"/ui/login"), path
            else:
                assert status == 401 and b"job" not in body, (verb, path)
    for verb, path in PUBLIC - {("POST", "/ui/login")}:
        assert client.request(verb, path)[0] == 200
    client.login()
    assert {client.request(verb, path)[0] for verb, path in guarded if verb == "GET"} == {200, 404}


def test_a_login_link_works_once_and_expires() -> None:
    client = Client()
    token = client.link_token()
    status, headers, _ = client.request("GET", "/ui/login", query=f"token={token}".encode())
    assert status == 303 and b"HttpOnly" in headers[b"set-cookie"]
    status, headers, body = client.request("GET", "/ui/login", query=f"token={token}".encode())
    assert status == 401 and b"set-cookie" not in headers and b"neuro ui" in body
    late = client.link_token()
    client.clock.now += LOGIN_TOKEN_SECONDS + 1
    assert client.request("GET", "/ui/login", query=f"token={late}".encode())[0] == 401


def test_logging_out_ends_the_session() -> None:
    client = Client()
    client.login()
    session = client.session
    status, headers, _ = client.request("POST", "/ui/logout")
    assert status == 303 and b"Max-Age=0" in headers[b"set-cookie"]
    client.session = session  # a copy of the old cookie is worth nothing now
    assert client.request("GET", "/ui/live")[0] == 401


def test_failed_logins_are_throttled_with_the_rpc_budget() -> None:
    client = Client(failures=AuthFailures(burst=2, refill=60.0, delay=0.0, clock=Clock()))
    assert [client.login("wrong")[0] for _ in range(3)] == [401, 401, 429]
    assert client.outcomes == ["refused", "refused", "throttled"]
    assert client.login()[0] == 303  # the right cookie is never throttled


def test_a_cross_site_post_is_refused() -> None:
    client = Client()
    status, headers, _ = client.request("POST", "/ui/login", b"cookie=" + COOKIE.encode(),
                                        headers=[(b"origin", b"http://evil.example")])
    assert status == 403 and b"set-cookie" not in headers


def test_every_answer_carries_the_security_headers() -> None:
    client = Client()
    client.login()
    for verb, path in [("GET", "/ui"), ("GET", "/ui/live"), ("GET", "/ui/static/ui.js"), ("GET", "/ui/login"),
                       ("GET", "/ui/nope")]:
        _, headers, _ = client.request(verb, path)
        assert headers[b"content-security-policy"] == CSP.encode(), path
        assert headers[b"x-content-type-options"] == b"nosniff" and headers[b"x-frame-options"] == b"DENY"
    assert "'unsafe-inline'" not in CSP and "script-src 'self'" in CSP and "default-src 'none'" in CSP


class Elements(HTMLParser):
    """Every start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


@pytest.mark.parametrize("path", ["/ui", "/ui/live"])
def test_hostile_strings_from_peers_and_clients_are_rendered_inert(path: str) -> None:
    client = Client()
    client.login()
    status, _, body = client.request("GET", path)
    page = body.decode()
    assert status == 200
    assert XSS not in page and ATTR_XSS not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page  # shown, as text
    parser = Elements()
    parser.feed(page)
    scripts = [dict(attrs).get("src") for tag, attrs in parser.found if tag == "script"]
    assert scripts == (["/ui/static/ui.js"] if path == "/ui" else [])
    assert not any(tag == "img" for tag, _ in parser.found)
    assert not [(tag, name) for tag, attrs in parser.found for name, _ in attrs if name.startswith("on")]


def test_the_dashboard_reads_only_read_methods() -> None:
    client = Client()
    client.login()
    assert client.request("GET", "/ui/live")[0] == 200
    assert set(client.called) <= READS
    assert {"chain_block", "node_peers", "node_bans", "job_get", "bid_list", "market_prices",
            "worker_earnings", "client_jobs", "job_status"} <= set(client.called)
    assert not READS & {"tx_submit", "job_submit", "bid_submit", "job_cancel", "node_connect", "ui_login"}
    with pytest.raises(ValueError, match="not a read"):
        trio.run(Reader(client.dashboard.methods), "tx_submit")


def test_a_refusing_method_becomes_a_note_in_its_section() -> None:
    client = Client()
    client.login()
    page = client.request("GET", "/ui/live")[2].decode()
    assert "this node runs no worker agent" in page and 'id="section-own"' in page


def test_the_price_chart_has_a_point_per_cleared_job() -> None:
    rows = [{"job": f"{i:064x}", "service": service, "posted": 10 + i, "median": 50 + i, "low": 40, "high": 70,
             "quote_unit": "megapixel"} for i, service in enumerate(["generate", "generate", "train"])]
    svg = price_chart(rows + [{"job": "00", "service": "train", "posted": 5, "median": None, "low": None,
                               "high": None}])
    assert svg.count('class="price-point"') == 3 and svg.count("<polyline") == 1  # train has one point
    assert svg.startswith("<svg") and 'data-service="train"' in svg
    assert 'id="prices-empty"' in price_chart([])


def test_token_books_are_bounded_and_drop_expired_tokens() -> None:
    clock = Clock()
    book = TokenBook(10.0, 3, clock)
    tokens = [book.issue() for _ in range(5)]
    assert len(book) == 3 and not book.valid(tokens[0]) and book.valid(tokens[4])
    clock.now += 11
    assert not book.valid(tokens[4]) and len(book) == 2


def test_a_body_is_read_to_its_end_before_any_answer_that_does_not_use_it() -> None:
    """A client that writes its whole body before reading (urllib, curl --data) would see its
    connection reset, not the answer, if the node answered and closed with the body unread: a
    401 without a session or a cookie, a 404, a route that takes no body."""
    ui = Client()
    body = [b"x" * 65_536] * 16  # 1 MiB, over the login form's limit too
    for verb, path in (("POST", "/ui/live"), ("POST", "/"), ("GET", "/ui/nothing-here")):
        assert ui.request(verb, path, body)[0] == 401 and ui.unread == 0, (verb, path)
    ui.login()
    for verb, path, status in (("GET", "/ui/nothing-here", 404), ("GET", "/ui/live", 200),
                               ("POST", "/ui/logout", 303)):
        assert ui.request(verb, path, body)[0] == status and ui.unread == 0, (verb, path)
