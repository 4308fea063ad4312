"""The dashboard's login on a real daemon, over real HTTP: `neuro ui` prints a one-time link that
gives a session cookie; a wrong cookie is refused; without a session every /ui route answers 401
or sends the browser to the login form; the JSON-RPC's Basic auth is not a dashboard session, and
the RPC keeps working beside the dashboard."""

from __future__ import annotations

import base64
import http.client
import json
import subprocess
import sys
import urllib.parse
from typing import Any

from tests.support.daemons import Daemon, wait_until


def get(node: Daemon, path: str, cookie: str = "", body: bytes | None = None,
        headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
    url = urllib.parse.urlsplit(node.rpc_url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    try:
        extra = {"cookie": cookie} if cookie else {}
        if body is not None:
            extra["content-type"] = "application/x-www-form-urlencoded"
        connection.request("GET" if body is None else "POST", path, body=body, headers={**extra, **(headers or {})})
        reply = connection.getresponse()
        return reply.status, reply.headers, reply.read()
    finally:
        connection.close()


def test_neuro_ui_link_logs_in_once_and_the_session_opens_the_dashboard(daemons) -> None:
    node = daemons("node", mine=True, block_interval=0.3)
    wait_until(lambda: node.height() >= 1, 30, "a block")
    shown = subprocess.run(
        [sys.executable, "-m", "cli.main", "ui", "--network", "devnet", "--datadir", str(node.datadir), "--json"],
        capture_output=True, text=True, timeout=60, check=True)
    link = urllib.parse.urlsplit(json.loads(shown.stdout)["url"])
    assert f"{link.scheme}://{link.netloc}/" == node.rpc_url and link.path == "/ui/login"
    status, headers, _ = get(node, f"{link.path}?{link.query}")
    assert status == 303 and headers["location"] == "/ui"
    session = headers["set-cookie"].split(";")[0]
    assert "HttpOnly" in headers["set-cookie"] and "SameSite=Strict" in headers["set-cookie"]
    assert get(node, f"{link.path}?{link.query}")[0] == 401  # used once already
    status, headers, page = get(node, "/ui", session)
    assert status == 200 and b'id="blocks"' in page and "script-src 'self'" in headers["content-security-policy"]
    assert get(node, "/ui/live", session)[0] == 200
    assert node.rpc("chain_head")["height"] >= 1  # the JSON-RPC beside it


def test_without_a_session_the_dashboard_is_closed(daemons) -> None:
    node = daemons("node")
    basic = {"authorization": "Basic " + base64.b64encode(node.cookie().encode()).decode()}
    assert get(node, "/ui", headers=basic)[0] == 303  # the RPC's credentials are not a session
    for path in ("/ui/live", "/ui/static/ui.js", "/ui/anything"):
        assert get(node, path)[0] == 401, path
        assert get(node, path, "neuro_ui_1=forged")[0] == 401, path
    assert get(node, "/ui/login", body=b"cookie=wrong")[0] == 401
    status, headers, _ = get(node, "/ui/login", body=urllib.parse.urlencode({"cookie": node.cookie()}).encode())
    assert status == 303 and get(node, "/ui/live", headers["set-cookie"].split(";")[0])[0] == 200
    assert node.rpc("node_bans") == []


def test_hostile_requests_to_the_dashboard_are_answered_cleanly_and_no_page_holds_a_secret(daemons) -> None:
    node = daemons("node")
    node.rpc("listing_delivery_key")  # a delivery key's private half now sits in the data dir
    status, headers, _ = get(node, "/ui/login", body=urllib.parse.urlencode({"cookie": node.cookie()}).encode())
    session = headers["set-cookie"].split(";")[0]
    print("paths and verbs the dashboard has not: 404 with a session, 401 without")
    for path in ("/ui/static/../../.cookie", "/ui/static/%2e%2e/%2e%2e/.cookie", "/ui/static/", "/ui/" + "a" * 20_000,
                 "/ui/live/x", "/ui//"):
        assert get(node, path, session)[0] == 404, path
        assert get(node, path)[0] == 401, path
    url = urllib.parse.urlsplit(node.rpc_url)
    for verb in ("PUT", "DELETE", "OPTIONS", "PATCH"):
        connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
        connection.request(verb, "/ui", headers={"cookie": session})
        assert connection.getresponse().status == 404, verb
        connection.close()
    print("junk in the query, the cookie header and the form: answered, never a 500")
    assert get(node, "/ui?x=" + "%ff" * 2_000, session)[0] == 200
    assert get(node, "/ui", "neuro_ui_1=" + "a" * 20_000)[0] == 303
    assert get(node, "/ui/login?token=%ff%fe")[0] == 401
    assert get(node, "/ui/login", body=b"cookie=%ff%00\xff\xfe")[0] in (401, 429)
    print("a 10 MB login form: 413, read to its end first (http.client writes it all before reading)")
    assert get(node, "/ui/login", body=b"cookie=" + b"a" * (10 << 20))[0] == 413

    secrets = [node.cookie().partition(":")[2]]
    secrets += [path.read_bytes().hex() for path in (node.datadir / "listings" / "keys").iterdir()]
    for path in ("/ui", "/ui/live", "/ui/static/ui.js"):
        status, _, page = get(node, path, session)
        assert status == 200 and not [s for s in secrets if s in page.decode()], path
    assert node.rpc("node_status")["network"] == "devnet"
    assert "Traceback" not in node.log_tail(10_000)
