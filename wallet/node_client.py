"""A small JSON-RPC 2.0 client for neurod (docs/rpc.md), on the standard library.

It sits below both `cli` (the `neuro` commands) and `neurod` (the devnet tool drives its nodes with
it), so neither imports the other's internals. urllib and nothing of ours keep `neuro`'s start-up
light. Transport failures become `NodeClientError`s that say which URL failed and what to do; a
JSON-RPC error becomes an `RpcError` whose ``reason`` is the daemon's `error.data.reason` (the
chain's rejection reason) or a name for the error code.
"""

from __future__ import annotations

import base64
import itertools
import json
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_TIMEOUT_S = 30.0
REASON_BY_CODE = {
    -32700: "rpc-parse-error",
    -32600: "rpc-invalid-request",
    -32601: "method-not-found",
    -32602: "invalid-params",
    -32603: "internal-error",
    -32010: "tx-rejected",
    -32011: "not-found",
    -32012: "bad-address",
}


class NodeClientError(Exception):
    """The daemon could not be asked (not running, refused the cookie, timed out, answered
    nonsense); ``reason`` is kebab-case, as in every package."""

    def __init__(self, message: str, reason: str) -> None:
        self.reason = reason
        super().__init__(message)


class RpcError(NodeClientError):
    """An error answered by the daemon; ``code`` is the JSON-RPC error code."""

    def __init__(self, message: str, reason: str, code: int) -> None:
        self.code = code
        super().__init__(message, reason)


@dataclass(frozen=True, slots=True)
class RpcTarget:
    """Where a daemon answers: its URL, its cookie file, and the network it should run."""

    url: str
    cookie: Path
    network: str
    start_hint: str = ""  # the command that starts this daemon (default: plain neurod)


class RpcClient:
    def __init__(self, target: RpcTarget, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.target = target
        self.timeout = timeout
        self._ids = itertools.count(1)

    def _auth(self) -> str | None:
        try:
            cookie = self.target.cookie.read_text().strip()
        except OSError:
            return None
        return "Basic " + base64.b64encode(cookie.encode()).decode()

    def call(self, method: str, **params: Any) -> Any:
        body = json.dumps(
            {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        )
        request = urllib.request.Request(
            self.target.url,
            data=body.encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        auth = self._auth()
        if auth is not None:
            request.add_header("Authorization", auth)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc) from None
        except (urllib.error.URLError, OSError) as exc:
            raise self._transport_error(exc) from None
        return self._result(method, payload)

    def _http_error(self, exc: urllib.error.HTTPError) -> NodeClientError:
        url = self.target.url
        if exc.code == 401:
            return NodeClientError(
                f"neurod at {url} refused the RPC cookie (HTTP 401): {self.target.cookie} is missing "
                "or stale; point NEURO_RPC_COOKIE or --datadir at the running daemon's data dir",
                "bad-cookie",
            )
        try:  # JSON-RPC servers may answer errors with a 4xx/5xx status and a JSON body
            return self._error_of(json.loads(exc.read()))
        except (ValueError, TypeError, KeyError, OSError):
            return NodeClientError(
                f"neurod at {url} answered HTTP {exc.code} {exc.reason}", "rpc-http-error"
            )

    def _transport_error(self, exc: BaseException) -> NodeClientError:
        url = self.target.url
        cause = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(cause, ConnectionRefusedError):
            return NodeClientError(
                f"cannot connect to neurod at {url} (connection refused): is it running? "
                f"start it with `{self.target.start_hint or 'neurod --network ' + self.target.network}`",
                "daemon-not-running",
            )
        if isinstance(cause, (socket.timeout, TimeoutError)):
            return NodeClientError(
                f"neurod at {url} did not answer within {self.timeout:g} s", "rpc-timeout"
            )
        return NodeClientError(f"cannot reach neurod at {url}: {cause}", "daemon-unreachable")

    def _result(self, method: str, payload: bytes) -> Any:
        try:
            doc = json.loads(payload)
        except ValueError:
            raise NodeClientError(f"neurod answered {method} with non-JSON", "rpc-bad-response") from None
        if not isinstance(doc, dict):
            raise NodeClientError(f"neurod answered {method} with a non-object", "rpc-bad-response")
        if doc.get("error") is not None:
            raise self._error_of(doc)
        if "result" not in doc:
            raise NodeClientError(
                f"neurod answered {method} with neither result nor error", "rpc-bad-response"
            )
        return doc["result"]

    @staticmethod
    def _error_of(doc: dict[str, Any]) -> RpcError:
        error = doc["error"]
        code = int(error.get("code", -32603))
        data = error.get("data")
        reason = data.get("reason") if isinstance(data, dict) else None
        message = str(error.get("message", "error"))
        return RpcError(message, reason or REASON_BY_CODE.get(code, "rpc-error"), code)
