"""The RPC application against hostile input: batch limit, nesting depth, huge integers, floods
that must not starve other requests, and failed authentication attempts."""

from __future__ import annotations

import base64
import json
import logging
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import pytest
import trio
import trio.testing

from chain import schema
from chain.crypto import verify_many
from chain.devnet_keys import devnet_address
from chain.types import Transaction
from neurod.mempool import Mempool
from neurod.rpc import MAX_BATCH, MAX_BODY, MAX_DEPTH, MAX_DISCARD, SLICE, AuthFailures, RpcApp
from neurod.rpc_methods import MAX_HEIGHT, RpcMethods
from tests.support.chain_builders import mine_blocks, new_chain
from tests.support.txs import transfer_hex

COOKIE = "__cookie__:secret"
SENDERS = ("alice", "bob", "carol")


class StubP2P:
    """The p2p surface RpcMethods touches; gossip is recorded, not sent."""

    peer_id = "stub-peer"

    def __init__(self) -> None:
        self.published: list[list[bytes]] = []

    def peers(self) -> list[Any]:
        return []

    def listen_addrs(self) -> list[str]:
        return []

    async def publish_txs(self, txs: list[bytes]) -> None:
        self.published.append(list(txs))
        await trio.lowlevel.checkpoint()


class StubNode:
    """What RpcMethods needs of a Node: a devnet chain in memory, a real mempool, signatures
    checked inline, and a count of admission attempts (with the first one signalled)."""

    def __init__(self) -> None:
        self.chain = new_chain()
        self.mempool = Mempool(self.chain, self.chain.chain_id)
        self.p2p = StubP2P()
        self.miner = None
        self.store_read_errors = 0
        self.attempts = 0
        self.local_flags: set[bool] = set()
        self.admitting: trio.Event | None = None

    def signatures_valid(self, txs: list[Transaction]) -> list[bool]:
        return verify_many([(tx.sender, tx.signing_message(), tx.signature) for tx in txs])

    def journal_batch(self) -> AbstractContextManager[None]:
        return nullcontext()

    def add_transaction(
        self, tx: Transaction, *, encoded: bytes | None = None, checked: bool = False, local: bool = False
    ) -> bytes:
        self.attempts += 1
        self.local_flags.add(local)
        if self.admitting is not None:
            self.admitting.set()
        return self.mempool.add(tx, 0.0, encoded=encoded, checked=checked)


def app_over(node: StubNode) -> RpcApp:
    return RpcApp(RpcMethods(node).table(), COOKIE, lambda: b"")  # type: ignore[arg-type]


def request(method: str, params: Any = None, request_id: Any = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {} if params is None else params}


def answer(app: RpcApp, body: bytes | Any) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return json.loads(trio.run(app.handle, raw))


def error_of(reply: Any) -> dict[str, Any]:
    assert isinstance(reply, dict) and "error" in reply, reply
    return dict(reply["error"])


def transfers(count: int) -> list[str]:
    """``count`` signed devnet transfers, spread over a few senders (each under its pending cap)."""
    return [transfer_hex(SENDERS[i % len(SENDERS)], "dave", 1, nonce=i // len(SENDERS))[0] for i in range(count)]


# ---- finding 5: batch limit -------------------------------------------------------------------


@pytest.mark.parametrize("size", [MAX_BATCH + 50, 10_000])
def test_a_batch_over_the_limit_gets_one_error_naming_the_limit_and_the_size(size: int) -> None:
    reply = answer(app_over(StubNode()), [request("node_status", request_id=i) for i in range(size)])
    error = error_of(reply)
    assert error["code"] == -32600
    assert str(MAX_BATCH) in error["message"] and str(size) in error["message"]
    assert error["data"] == {"reason": "batch-too-large", "limit": MAX_BATCH, "got": size}


def test_a_batch_at_the_limit_is_answered_in_full_and_in_order() -> None:
    replies = answer(app_over(StubNode()), [request("chain_supply", request_id=i) for i in range(MAX_BATCH)])
    assert [r["id"] for r in replies] == list(range(MAX_BATCH))


# ---- finding 6: nesting and huge integers -----------------------------------------------------


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def params_nested(depth: int) -> bytes:
    """A request whose params nest to ``depth`` levels in all (the request object is level 1)."""
    return b'{"jsonrpc": "2.0", "id": 1, "method": "node_status", "params": ' + nested(depth - 1) + b"}"


@pytest.mark.parametrize(
    "body",
    [nested(1_000), nested(100_000), b"[" * 100_000, params_nested(MAX_DEPTH + 1),
     b"[" + params_nested(MAX_DEPTH) + b"]"],
    ids=["1000-deep", "100000-deep", "100000-unclosed", "request-too-deep", "batch-item-too-deep"],
)
def test_json_nested_deeper_than_the_limit_is_a_parse_error_with_a_body(body: bytes, caplog: Any) -> None:
    with caplog.at_level(logging.WARNING):
        error = error_of(answer(app_over(StubNode()), body))
    assert error["code"] == -32700
    assert caplog.records == []


def test_json_nested_to_the_limit_is_parsed() -> None:
    error = error_of(answer(app_over(StubNode()), params_nested(MAX_DEPTH)))
    assert error["code"] == -32602  # parsed: node_status takes no positional params


@pytest.mark.parametrize("body", [b"{not json", b"", b"\xff\xfe", b"[1, 2", b'{"a": NaN}', b"[1] [2]", b"[1,]"])
def test_what_is_not_json_is_a_parse_error(body: bytes) -> None:
    assert error_of(answer(app_over(StubNode()), body))["code"] == -32700


@pytest.mark.parametrize(
    ("method", "params", "param"),
    [
        ("chain_block", {"id": 2**64}, "id"),
        ("chain_block", {"id": 10**4000}, "id"),
        ("chain_block", {"id": -1}, "id"),
        ("account_history", {"address": devnet_address("alice"), "limit": 10**4000}, "limit"),
        ("mempool_list", {"limit": 2**64}, "limit"),
        ("mempool_list", {"limit": 0}, "limit"),
    ],
)
def test_out_of_range_integers_are_invalid_params_naming_the_param(
    method: str, params: dict[str, Any], param: str, caplog: Any
) -> None:
    with caplog.at_level(logging.WARNING):
        error = error_of(answer(app_over(StubNode()), request(method, params)))
    assert caplog.records == []
    assert error["code"] == -32602
    assert error["message"].startswith(f"{param} must be an integer in") and error["data"] == {"param": param}


def test_heights_up_to_the_store_limit_are_looked_up() -> None:
    error = error_of(answer(app_over(StubNode()), request("chain_block", {"id": MAX_HEIGHT})))
    assert error["code"] == -32011 and error["data"]["reason"] == "unknown-block"


def test_an_integer_too_long_to_parse_is_a_parse_error() -> None:
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "chain_block", "params": {"id": 1' + b"0" * 5_000 + b"}}"
    assert error_of(answer(app_over(StubNode()), body))["code"] == -32700


def test_an_id_that_is_not_a_string_number_or_null_is_an_invalid_request() -> None:
    for bad_id in ([[1]], {"a": 1}, True):
        assert error_of(answer(app_over(StubNode()), request("node_status", request_id=bad_id)))["code"] == -32600


# ---- finding 7: floods yield to other requests ------------------------------------------------


async def answered_during(app: RpcApp, flood: bytes, started: trio.Event, probe: Any) -> Any:
    """Send ``flood``; once ``started`` is set, ask ``node_status`` and return ``probe()`` as
    it stood when that answer came back, which shows how far the flood had got by then."""
    seen: list[Any] = []

    async def ask_status() -> None:
        await started.wait()
        reply = json.loads(await app.handle(json.dumps(request("node_status")).encode()))
        assert "result" in reply, reply
        seen.append(probe())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(app.handle, flood)
        nursery.start_soon(ask_status)
    return seen[0]


def test_tx_submit_many_lets_node_status_answer_between_its_slices() -> None:
    node, txs = StubNode(), transfers(2 * SLICE + 50)

    async def run() -> int:
        node.admitting = trio.Event()
        body = json.dumps(request("tx_submit_many", {"txs": txs})).encode()
        done: int = await answered_during(app_over(node), body, node.admitting, lambda: node.attempts)
        return done

    attempts_when_answered = trio.run(run)
    assert 0 < attempts_when_answered < len(txs)  # the status came back mid-admission
    assert node.attempts == len(txs) and len(node.mempool) == len(txs)


def test_batch_items_let_other_requests_run_between_them() -> None:
    calls: list[int] = []

    async def run() -> int:
        started = trio.Event()

        async def work() -> int:
            calls.append(1)
            started.set()
            return len(calls)

        async def node_status() -> str:
            return "ok"

        app = RpcApp({"work": work, "node_status": node_status}, COOKIE, lambda: b"")
        body = json.dumps([request("work", request_id=i) for i in range(MAX_BATCH)]).encode()
        done: int = await answered_during(app, body, started, lambda: len(calls))
        return done

    calls_when_answered = trio.run(run)
    assert 0 < calls_when_answered < MAX_BATCH
    assert len(calls) == MAX_BATCH


def test_tx_submit_many_answers_each_tx_in_order_and_gossips_the_admitted_once() -> None:
    node = StubNode()
    good = transfers(3)
    forged = Transaction.decode(bytes.fromhex(transfer_hex("alice", "bob", 5, nonce=7)[0]))
    bad_signature = Transaction(forged.chain_id, forged.sender, 8, forged.fee, forged.payload, forged.signature)
    txs = [good[0], "c1", "zz", bad_signature.encode().hex(), good[1], good[2], good[0]]
    results = answer(app_over(node), request("tx_submit_many", {"txs": txs}))["result"]
    reasons = [r.get("reason", "ok") for r in results]
    assert reasons == ["ok", "bad-encoding", "invalid-params", "bad-tx-signature", "ok", "ok", "already-known"]
    assert node.p2p.published == [[bytes.fromhex(good[i]) for i in range(3)]]
    assert node.local_flags == {True}  # RPC submissions are local: the mempool journals them


def test_a_gap_flood_over_rpc_is_queued_capped_and_reported_by_mempool_info() -> None:
    """Issue 17: gapped transactions go to the queue, 16 a sender at most, and `mempool_info`
    tells pending from queued."""
    node = StubNode()
    gapped = [transfer_hex("alice", "dave", 1, nonce)[0] for nonce in range(1, 21)]
    honest = transfer_hex("bob", "dave", 1, 0, fee=node.mempool.limits.min_fee)[0]
    results = answer(app_over(node), request("tx_submit_many", {"txs": [*gapped, honest]}))["result"]
    reasons = [r.get("reason", "ok") for r in results]
    assert reasons == ["ok"] * 16 + ["sender-queue-full"] * 4 + ["ok"]
    info = answer(app_over(node), request("mempool_info"))["result"]
    sizes = {"pending_bytes": len(honest) // 2, "queued_bytes": sum(len(tx) // 2 for tx in gapped[:16])}
    assert info == {
        "count": 17, "bytes": sum(sizes.values()), "pending": 1, "queued": 16, **sizes,
        "max_txs": 50_000, "max_bytes": 64 << 20, "max_per_sender": 256, "max_queued": 1_000,
        "max_queued_per_sender": 16, "min_fee": 1_000,
    }


# ---- failed authentication ------------------------------------------------------------------


async def post(app: RpcApp, credentials: str | None, host: str = "127.0.0.1") -> tuple[int, dict[bytes, bytes]]:
    """One ASGI request to ``app``: the status and headers of its answer."""
    headers = [] if credentials is None else [(b"authorization", b"Basic " + base64.b64encode(credentials.encode()))]
    scope = {"type": "http", "path": "/", "method": "POST", "headers": headers, "client": (host, 40_000)}
    incoming = [{"type": "http.request", "body": json.dumps(request("node_status")).encode(), "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], dict(sent[0]["headers"])


def test_failed_auth_is_throttled_per_host_but_the_right_cookie_never_is() -> None:
    outcomes: list[str] = []

    async def node_status() -> str:
        return "ok"

    app = RpcApp({"node_status": node_status}, COOKIE, lambda: b"", auth_failures=AuthFailures(burst=3),
                 on_auth_failure=outcomes.append)

    async def run() -> list[int]:
        statuses = [(await post(app, "__cookie__:guess"))[0] for _ in range(5)]
        statuses.append((await post(app, None))[0])
        statuses.append((await post(app, COOKIE))[0])  # same host, over its budget: still served
        statuses.append((await post(app, "__cookie__:guess", host="10.0.0.2"))[0])  # its own budget
        status, headers = await post(app, "__cookie__:guess")
        assert status == 429 and int(headers[b"retry-after"]) >= 1
        return statuses

    statuses = trio.run(run, clock=trio.testing.MockClock(autojump_threshold=0))
    assert statuses == [401, 401, 401, 429, 429, 429, 200, 401]
    assert outcomes.count("refused") == 4 and outcomes.count("throttled") == 4


def test_auth_failure_budgets_refill_and_their_memory_is_bounded() -> None:
    now = [0.0]
    failures = AuthFailures(burst=2, refill=10.0, max_hosts=3, clock=lambda: now[0])
    assert [failures.fail("a") for _ in range(3)] == [0.0, 0.0, 10.0]
    now[0] = 10.0  # one more attempt earned
    assert failures.fail("a") == 0.0 and failures.fail("a") > 0
    for host in ("b", "c", "d", "e"):
        failures.fail(host)
    assert len(failures) == 3
    assert failures.fail("a") == 0.0  # forgotten as the longest idle: a fresh budget


# ---- store faults -----------------------------------------------------------------------------


def test_a_damaged_stored_block_is_a_store_error_not_an_internal_error_nor_a_wrong_block() -> None:
    node = StubNode()
    mine_blocks(node.chain, 3)
    target = node.chain.hash_at(2) or b""
    other = node.chain.kv.get(schema.BLOCK + (node.chain.hash_at(3) or b""))
    node.chain.kv.commit({schema.BLOCK + target: other}, sync=False)
    for params in ({"id": 2}, {"id": target.hex()}):
        error = error_of(answer(app_over(node), request("chain_block", params)))
        assert error["code"] == -32020 and error["data"] == {"reason": "store-block-mismatch"}
        assert "neurod --reindex" in error["message"]
    assert answer(app_over(node), request("chain_block", {"id": 3}))["result"]["height"] == 3


# ---- an oversized body ----------------------------------------------------------------------


@pytest.mark.parametrize("chunks, drained", [(8, 8), (MAX_DISCARD // (1 << 20) + 50, MAX_DISCARD // (1 << 20) + 5)])
def test_an_oversized_body_is_read_to_its_end_then_answered_413_with_a_json_error(chunks: int, drained: int) -> None:
    """A client that writes its whole body before reading (urllib) saw a reset, not the 413:
    the rest of the body is read and dropped first, up to `MAX_DISCARD` bytes, never further."""
    app = app_over(StubNode())
    chunk = b"x" * (1 << 20)
    received = [0]

    async def receive() -> dict[str, Any]:
        received[0] += 1
        return {"type": "http.request", "body": chunk, "more_body": received[0] < chunks}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    auth = [(b"authorization", b"Basic " + base64.b64encode(COOKIE.encode()))]
    scope = {"type": "http", "path": "/", "method": "POST", "headers": auth, "client": ("127.0.0.1", 40_000)}
    trio.run(app, scope, receive, send)
    assert sent[0]["status"] == 413 and received[0] == drained
    error = error_of(json.loads(sent[1]["body"]))
    assert error["code"] == -32600 and error["data"] == {"reason": "body-too-large", "limit": MAX_BODY}


@pytest.mark.parametrize(("path", "authorized", "status"), [("/", False, 401), ("/elsewhere", True, 404)])
def test_a_body_is_read_to_its_end_before_a_refusal(path: str, authorized: bool, status: int) -> None:
    """A refusal that never looks at the body still reads it first (up to `MAX_DISCARD`), as the
    413 does: a client writing its body before reading would otherwise see a reset."""
    app = app_over(StubNode())
    received = [0]

    async def receive() -> dict[str, Any]:
        received[0] += 1
        return {"type": "http.request", "body": b"x" * (1 << 20), "more_body": received[0] < 8}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    auth = [(b"authorization", b"Basic " + base64.b64encode(COOKIE.encode()))] if authorized else []
    scope = {"type": "http", "path": path, "method": "POST", "headers": auth, "client": ("127.0.0.1", 40_001)}
    trio.run(app, scope, receive, send)
    assert sent[0]["status"] == status and received[0] == 8
