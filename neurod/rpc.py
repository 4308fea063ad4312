"""JSON-RPC 2.0 over HTTP, served by hypercorn on trio, authenticated by a cookie file.

As bitcoind: at start the daemon writes a fresh random secret to `<datadir>/.cookie` (mode 0600)
and accepts HTTP Basic auth `__cookie__:<secret>`; anyone who can read the data dir can call it,
nobody else can. `/metrics` (Prometheus text format) needs no auth and exposes nothing secret.
Malformed requests get JSON-RPC errors; no input crashes the server or logs a traceback.

Limits (docs/rpc.md lists them with their codes), each answered, never applied silently:
- a body over `MAX_BODY`: HTTP 413 (the rest of the body, up to `MAX_DISCARD`, read and dropped first);
- JSON nested deeper than `MAX_DEPTH`: -32700, as for any JSON we cannot parse. Python's parser
  recurses, so a 1,000-deep array used to raise RecursionError and hypercorn answered 500;
- a batch of more than `MAX_BATCH` requests: one -32600 error naming the limit and the size.

One event loop serves every client, so nothing may hold it for long. A batch is parsed one item at
a time, its items run one after another with a checkpoint between them, and each reply is encoded
as soon as it exists and sent as its own part of the response: a 4 MB batch holds the loop for one
item at a time, never for the whole. Worker threads would not help here: the JSON parser and
encoder are C calls that keep the GIL throughout. Methods with heavy loops (tx_submit_many) cut
them into slices with `in_slices`; `bench/rpc_flood.py` measures what other clients see.

Failed authentication is rate-limited per client host (`AuthFailures`): within a small budget a
wrong cookie gets 401 at once; past it, 429 after a delay (bitcoind delays every failed attempt).
The cookie is checked first, so a correct one is never throttled by anyone else's failures: every
local client shares the host 127.0.0.1.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import math
import os
import re
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import orjson
import trio

from chain.errors import StoreError

log = logging.getLogger("neuro.rpc")

COOKIE_FILE = ".cookie"
COOKIE_USER = "__cookie__"
STORE_DAMAGED = -32020  # a stored value the node read back damaged (see README: repair)
MAX_BODY = 4 << 20
MAX_DISCARD = 64 << 20  # bytes of an oversized body read and dropped so that its sender gets the 413
MAX_BATCH = 100  # requests in one batch
MAX_DEPTH = 32  # nesting of arrays and objects; our deepest request (a batch of tx_submit_many) is 4
SLICE = 64  # loop iterations of a heavy method between two checkpoints (~0.3 ms of decoding)

AUTH_FAILURE_BURST = 5  # failed attempts a client host may make before it is throttled
AUTH_FAILURE_REFILL = 2.0  # seconds that give a throttled host one more attempt
AUTH_THROTTLE_DELAY = 0.25  # what a failure past the budget waits for its 429 (bitcoind: 250 ms)
AUTH_TRACKED_HOSTS = 1024  # hosts remembered; the longest idle one is forgotten first

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = (
    -32700, -32600, -32601, -32602, -32603,
)

T = TypeVar("T")


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


def id_param(value: Any, name: str, size: int = 32) -> bytes:
    """A ``size``-byte id from its hex (either case, "0x" allowed), else -32602 naming the param;
    the value itself is not echoed (it may be 4 MB)."""
    try:
        raw = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != size:
        raise RpcError(INVALID_PARAMS, f"{name} must be {size * 2} hex characters", {"param": name, "reason": "bad-id"})
    return raw


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


async def in_slices(items: Iterable[T], size: int = SLICE) -> AsyncIterator[T]:
    """``items`` one by one, with a checkpoint after every ``size`` of them: a method looping over
    thousands of transactions lets other requests (node_status) run between its slices."""
    for count, item in enumerate(items, 1):
        yield item
        if count % size == 0:
            await trio.lowlevel.checkpoint()


class AuthFailures:
    """Failed authentication attempts per client host: a token bucket each, memory bounded.

    A host may fail `burst` times at once, and once more every `refill` seconds after that; `fail`
    says how long a host past its budget should wait. Only failures are counted, so a client with
    the right cookie never meets this.
    """

    def __init__(
        self,
        burst: int = AUTH_FAILURE_BURST,
        refill: float = AUTH_FAILURE_REFILL,
        delay: float = AUTH_THROTTLE_DELAY,
        max_hosts: int = AUTH_TRACKED_HOSTS,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.burst, self.refill, self.delay, self.max_hosts = burst, refill, delay, max_hosts
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # host -> (tokens, at)

    def __len__(self) -> int:
        return len(self._buckets)

    def fail(self, host: str) -> float:
        """Count a failure of ``host``: 0.0 within its budget, else the seconds until the next
        failure would be within it again (the 429's retry-after)."""
        now = self._clock()
        tokens, at = self._buckets.pop(host, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) / self.refill)
        wait = 0.0 if tokens >= 1 else (1 - tokens) * self.refill
        self._buckets[host] = (tokens - 1 if tokens >= 1 else tokens, now)
        while len(self._buckets) > self.max_hosts:
            self._buckets.popitem(last=False)
        return wait


class RpcApp:
    """The ASGI application: `POST /` for JSON-RPC, `GET /metrics` for Prometheus, and `/ui/...`
    handed to ``ui`` (the dashboard, `neurod.ui`, which runs its own session login).

    ``on_auth_failure`` is told the outcome of each failed authentication ("refused": 401,
    "throttled": 429), for the node's metrics.
    """

    def __init__(
        self,
        methods: dict[str, Method],
        cookie: str,
        metrics: Callable[[], bytes],
        *,
        auth_failures: AuthFailures | None = None,
        on_auth_failure: Callable[[str], None] = lambda outcome: None,
        ui: Callable[[dict[str, Any], Any, Any], Awaitable[None]] | None = None,
    ) -> None:
        self.methods = methods
        self.ui = ui
        self._expected = b"Basic " + base64.b64encode(cookie.encode())
        self.metrics = metrics
        self.auth_failures = auth_failures if auth_failures is not None else AuthFailures()
        self._on_auth_failure = on_auth_failure

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
        if self.ui is not None and (path == "/ui" or path.startswith("/ui/")):
            await self.ui(scope, receive, send)
            return
        if not self._authorized(scope):
            await drain_body(receive)
            await self._refuse(scope, send)
            return
        if path != "/" or verb != "POST":
            await drain_body(receive)
            await _respond(send, 404, b"not found\n", b"text/plain")
            return
        body = await read_body(receive)
        if body is None:
            too_large = RpcError(INVALID_REQUEST, f"request body over the limit of {MAX_BODY} bytes",
                                 {"reason": "body-too-large", "limit": MAX_BODY})
            await _respond(send, 413, _dump(_error_reply(None, too_large)), b"application/json")
            return
        await _respond(send, 200, await self.reply_parts(body), b"application/json")

    def _authorized(self, scope: dict[str, Any]) -> bool:
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                return hmac.compare_digest(value, self._expected)
        return False

    async def _refuse(self, scope: dict[str, Any], send: Any) -> None:
        """401 within the client host's failure budget; past it, 429 after a delay."""
        client = scope.get("client") or ("unknown", 0)
        retry_after = self.auth_failures.fail(str(client[0]))
        if not retry_after:
            self._on_auth_failure("refused")
            await _respond(send, 401, b"unauthorized\n", b"text/plain", [(b"www-authenticate", b'Basic realm="neurod"')])
            return
        self._on_auth_failure("throttled")
        await trio.sleep(self.auth_failures.delay)
        await _respond(
            send, 429, b"too many failed authentication attempts\n", b"text/plain",
            [(b"retry-after", str(math.ceil(retry_after)).encode())],
        )

    async def handle(self, body: bytes) -> bytes:
        """The JSON reply to the request in ``body``."""
        return b"".join(await self.reply_parts(body))

    async def reply_parts(self, body: bytes) -> list[bytes]:
        """The reply to ``body`` in parts that, concatenated, are its JSON: the HTTP response
        sends them one by one. A batch of 100 tx_submit_many calls answers 34 MB; joined, it took
        a 200 ms copy on the event loop and hypercorn copied it once more before sending."""
        try:
            request = await parse_body(body)
        except RpcError as exc:
            return [_dump(_error_reply(None, exc))]
        if isinstance(request, list):
            return await self._batch(request)
        reply = await self._one(request)
        return [_dump(reply if reply is not None else {})]

    async def _batch(self, requests: list[Any]) -> list[bytes]:
        """The replies to a batch, in order; each item waits for a checkpoint, so other clients'
        requests run between the items of a long batch."""
        if not requests:
            return [_dump(_error_reply(None, RpcError(INVALID_REQUEST, "empty batch")))]
        if len(requests) > MAX_BATCH:
            return [_dump(_error_reply(None, RpcError(
                INVALID_REQUEST, f"batch of {len(requests)} requests is over the limit of {MAX_BATCH}",
                {"reason": "batch-too-large", "limit": MAX_BATCH, "got": len(requests)},
            )))]
        parts = [b"["]
        for item in requests:
            await trio.lowlevel.checkpoint()
            reply = await self._one(item)
            if reply is not None:
                parts.append(_dump(reply) if len(parts) == 1 else b"," + _dump(reply))
        parts.append(b"]")
        return parts

    async def _one(self, request: Any) -> dict[str, Any] | None:
        if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or not isinstance(request.get("method"), str):
            return _error_reply(None, RpcError(INVALID_REQUEST, "invalid request: need jsonrpc 2.0, method"))
        request_id = request.get("id")
        if not _valid_id(request_id):
            return _error_reply(None, RpcError(INVALID_REQUEST, "invalid request: id must be a string, number or null"))
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
        except StoreError as exc:  # the node's disk, not the caller: logged and counted where read
            message = f"chain store damaged ({exc}): the operator must repair it with `neurod --reindex`"
            return _error_reply(request_id, RpcError(STORE_DAMAGED, message, {"reason": exc.reason}))
        except Exception:
            log.exception("rpc method %s failed", request["method"])
            return _error_reply(request_id, RpcError(INTERNAL_ERROR, "internal error"))
        if "id" not in request:
            return None  # a notification
        return {"jsonrpc": "2.0", "id": request_id, "result": result}


# ---- parsing ----------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Python's json accepts NaN and Infinity; JSON has neither


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_WHITESPACE = re.compile(r"[ \t\n\r]*")


async def parse_body(body: bytes) -> Any:
    """The request in ``body``; RpcError(-32700) when it is not JSON (UTF-8) or nests deeper than
    `MAX_DEPTH`. A top-level array (a batch) is parsed item by item, with checkpoints between."""
    try:
        text = body.decode("utf-8")
        start = _skip_whitespace(text, 0)
        if text.startswith("[", start):
            return await _parse_array(text, start + 1)
        value, end = _DECODER.raw_decode(text, start)
        _expect_end(text, end)
        _check_depth(value, 0)
        return value
    except RecursionError:  # the parser recursed past the interpreter's limit: deeper than ours
        raise _too_deep() from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise RpcError(PARSE_ERROR, f"parse error: body is not JSON ({exc})", {"reason": "not-json"}) from None


async def _parse_array(text: str, pos: int) -> list[Any]:
    """The items of the array whose `[` ends before ``pos``, to the end of ``text``."""
    items: list[Any] = []
    pos = _skip_whitespace(text, pos)
    if text.startswith("]", pos):
        _expect_end(text, pos + 1)
        return items
    while True:
        item, pos = _DECODER.raw_decode(text, pos)
        _check_depth(item, 1)
        items.append(item)
        pos = _skip_whitespace(text, pos)
        if text.startswith("]", pos):
            _expect_end(text, pos + 1)
            return items
        if not text.startswith(",", pos):
            raise ValueError(f"expected ',' or ']' at char {pos}")
        pos = _skip_whitespace(text, pos + 1)
        await trio.lowlevel.checkpoint()


def _skip_whitespace(text: str, pos: int) -> int:
    match = _WHITESPACE.match(text, pos)
    return match.end() if match else pos


def _expect_end(text: str, pos: int) -> None:
    if _skip_whitespace(text, pos) != len(text):
        raise ValueError(f"extra data at char {pos}")


def _check_depth(value: Any, outer: int) -> None:
    """Raise unless ``value``, inside ``outer`` levels, nests at most `MAX_DEPTH` deep. Walks one
    level at a time (no recursion) and stops at the limit."""
    level = [value] if isinstance(value, (list, dict)) else []
    for _ in range(MAX_DEPTH - outer):
        if not level:
            return
        level = [
            child
            for node in level
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, (list, dict))
        ]
    if level:
        raise _too_deep()


def _too_deep() -> RpcError:
    return RpcError(
        PARSE_ERROR, f"parse error: JSON nested deeper than {MAX_DEPTH} levels",
        {"reason": "too-deep", "limit": MAX_DEPTH},
    )


def _valid_id(request_id: Any) -> bool:
    """JSON-RPC 2.0: a string, a number or null (echoed back, so nothing nested)."""
    if isinstance(request_id, bool):
        return False
    return request_id is None or isinstance(request_id, (str, int, float))


def _error_reply(request_id: Any, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_json()}


def _dump(value: Any) -> bytes:
    """Compact JSON. orjson takes a tenth of json's time on a 5,000-result reply, which the event
    loop spends in one piece; json still encodes what orjson refuses (an id beyond 64 bits)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":")).encode()


async def read_body(receive: Any, limit: int = MAX_BODY) -> bytes | None:
    """The request's body, or None once it passes ``limit`` bytes. The rest of an oversized body
    is read and dropped, up to `MAX_DISCARD` bytes: a client that writes its whole body before
    reading (urllib, requests) would otherwise see its connection reset, not the 413."""
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            while message.get("more_body") and size <= limit + MAX_DISCARD:
                message = await receive()
                size += len(message.get("body", b""))
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def drain_body(receive: Any) -> None:
    """Read and drop a request's body (up to `MAX_DISCARD` bytes) before an answer that does not
    use it (401, 404, 429, a page): a client still writing its body would see a reset instead."""
    await read_body(receive, limit=0)


async def _respond(
    send: Any, status: int, body: bytes | list[bytes], content_type: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """One response; a body given in parts is sent part by part, never joined."""
    parts = [body] if isinstance(body, bytes) else body
    length = sum(len(part) for part in parts)
    headers = [(b"content-type", content_type), (b"content-length", str(length).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    for index, part in enumerate(parts, 1):
        await send({"type": "http.response.body", "body": part, "more_body": index < len(parts)})


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
