"""JSON-RPC 2.0 over HTTP, served by hypercorn on trio, authenticated by a cookie file.

As bitcoind: at start the daemon writes a fresh random secret to `<datadir>/.cookie` (mode 0600)
and accepts HTTP Basic auth `__cookie__:<secret>`; anyone who can read the data dir can call it,
nobody else can. `/metrics` (Prometheus text format) needs no auth and exposes nothing secret.
Malformed requests get JSON-RPC errors; no input crashes the server.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

log = logging.getLogger("neuro.rpc")

COOKIE_FILE = ".cookie"
COOKIE_USER = "__cookie__"
MAX_BODY = 4 << 20

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = (
    -32700, -32600, -32601, -32602, -32603,
)


class RpcError(Exception):
    """An error answered to the caller: JSON-RPC code, message and optional data."""

    def __init__(self, code: int, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


Method = Callable[..., Awaitable[Any]]


def write_cookie(datadir: Path) -> str:
    """A fresh secret, written atomically with mode 0600; returns the `user:secret` line."""
    line = f"{COOKIE_USER}:{secrets.token_hex(32)}"
    path = datadir / COOKIE_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return line


class RpcApp:
    """The ASGI application: `POST /` for JSON-RPC, `GET /metrics` for Prometheus."""

    def __init__(self, methods: dict[str, Method], cookie: str, metrics: Callable[[], bytes]):
        self.methods = methods
        self._expected = b"Basic " + base64.b64encode(cookie.encode())
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, verb = scope.get("path", "/"), scope.get("method", "GET")
        if path == "/metrics" and verb == "GET":
            await _respond(send, 200, self.metrics(), b"text/plain; version=0.0.4")
            return
        if not self._authorized(scope):
            await _respond(send, 401, b"unauthorized\n", b"text/plain", [(b"www-authenticate", b'Basic realm="neurod"')])
            return
        if path != "/" or verb != "POST":
            await _respond(send, 404, b"not found\n", b"text/plain")
            return
        body = await _read_body(receive)
        if body is None:
            await _respond(send, 413, b"request too large\n", b"text/plain")
            return
        reply = await self.handle(body)
        await _respond(send, 200, reply, b"application/json")

    def _authorized(self, scope: dict[str, Any]) -> bool:
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                return hmac.compare_digest(value, self._expected)
        return False

    async def handle(self, body: bytes) -> bytes:
        try:
            request = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _dump(_error_reply(None, RpcError(PARSE_ERROR, "parse error: body is not JSON")))
        if isinstance(request, list):
            if not request:
                return _dump(_error_reply(None, RpcError(INVALID_REQUEST, "empty batch")))
            replies = [await self._one(item) for item in request[:100]]
            return _dump([r for r in replies if r is not None])
        reply = await self._one(request)
        return _dump(reply if reply is not None else {})

    async def _one(self, request: Any) -> dict[str, Any] | None:
        if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or not isinstance(request.get("method"), str):
            return _error_reply(None, RpcError(INVALID_REQUEST, "invalid request: need jsonrpc 2.0, method"))
        request_id = request.get("id")
        method = self.methods.get(request["method"])
        if method is None:
            return _error_reply(request_id, RpcError(METHOD_NOT_FOUND, f"method not found: {request['method']}"))
        params = request.get("params", {})
        try:
            if isinstance(params, dict):
                result = await method(**params)
            elif isinstance(params, list):
                result = await method(*params)
            else:
                raise RpcError(INVALID_PARAMS, "params must be an object or an array")
        except RpcError as exc:
            return _error_reply(request_id, exc)
        except TypeError as exc:
            return _error_reply(request_id, RpcError(INVALID_PARAMS, f"invalid params: {exc}"))
        except Exception:
            log.exception("rpc method %s failed", request["method"])
            return _error_reply(request_id, RpcError(INTERNAL_ERROR, "internal error"))
        if "id" not in request:
            return None  # a notification
        return {"jsonrpc": "2.0", "id": request_id, "result": result}


def _error_reply(request_id: Any, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_json()}


def _dump(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


async def _read_body(receive: Any) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(
    send: Any, status: int, body: bytes, content_type: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def serve_rpc(app: RpcApp, host: str, port: int, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Serve until cancelled; `task_status.started(url)` once the socket is bound."""
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("neuro.rpc.http")
    config.graceful_timeout = 1.0
    config.keep_alive_timeout = 30.0

    async def run(task_status: Any) -> None:
        await serve(app, config, shutdown_trigger=trio.sleep_forever, task_status=task_status)

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(run)
        url = binds[0].rstrip("/") + "/" if binds else f"http://{host}:{port}/"
        task_status.started(url)
