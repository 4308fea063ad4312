"""JSON-RPC against a hostile client, on a real daemon: oversized batches and bodies, deep nesting,
huge integers, a flood of junk transactions, guessed cookies, and a table of bad params for each
listing, treasury and id method. Every answer is a JSON-RPC error (or a 401/429), never a 500,
never silently truncated, never a traceback in the log, and the daemon keeps answering
`node_status` throughout."""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

from neurod.rpc import MAX_BATCH, MAX_BODY, MAX_DEPTH
from tests.support.daemons import Daemon
from tests.support.txs import transfer_hex

FLOOD_CALLS = 20  # tx_submit_many calls in the flood batch (the bench sends 100)
FLOOD_TXS = 5_000  # junk transactions in each
HUGE = "a" * (3 << 20)  # a string param under the body limit
ID = "00" * 32  # well formed, names nothing
# what every method of the newest surfaces must refuse, whatever the param: the wrong type, junk,
# a huge string, nested junk
JUNK = [None, True, -1, 2**64, 1.5, "", "zz", "0x", "g" * 64, "0" * 63, HUGE, [], {"a": {"b": [1]}}, [[ID]]]
OPTIONAL = {("listing_list", "kind"), ("listing_list", "seller"), ("buyback_claims", "offer"),
            ("buyback_claims", "seller")}  # filters whose null means "not given"
BAD_PARAMS: dict[str, dict[str, list[Any]]] = {  # method -> its params, each with its junk
    "listing_get": {"listing": JUNK}, "listing_sell": {"root": JUNK}, "purchase_get": {"purchase": JUNK},
    "listing_delivery": {"purchase": JUNK}, "listing_receive": {"purchase": JUNK},
    "listing_list": {"status": JUNK, "kind": JUNK, "seller": JUNK},
    "voucher_status": {"voucher": [*JUNK, "00" * 15, "ntkv1AAAA"]}, "buyback_offer": {"offer": JUNK},
    "buyback_offers": {"open_only": [j for j in JUNK if j is not True]},
    "buyback_claims": {"offer": JUNK, "seller": JUNK, "limit": [*JUNK, 0, 1_001]},
    "id_resolve": {"prefix": [j for j in JUNK if j != "0" * 63], "kind": JUNK},  # 63 digits: a prefix
}
DEFAULTS = {"listing_receive": {"purchase": ID}, "id_resolve": {"prefix": "00" * 8, "kind": "tx"}}
REFUSALS = (-32602, -32012)  # invalid params, bad address


def rpc_body(method: str, params: Any = None, request_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}


def answer(node: Daemon, body: bytes | Any) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, reply = node.http(raw)
    assert status == 200, (status, reply[:200])
    return json.loads(reply)


def error_code(reply: Any) -> int:
    assert isinstance(reply, dict) and "error" in reply, str(reply)[:200]
    return int(reply["error"]["code"])


def assert_no_traceback(node: Daemon) -> None:
    log = node.log_tail(10_000)
    assert "Traceback" not in log and "RecursionError" not in log and "OverflowError" not in log, log[-3000:]


def test_oversized_batches_deep_nesting_and_huge_integers_get_errors(daemons):
    node = daemons("node")
    print("a batch over the limit: one error naming the limit and the size")
    for size in (MAX_BATCH + 50, 10_000):
        reply = answer(node, [rpc_body("node_status", request_id=i) for i in range(size)])
        assert error_code(reply) == -32600 and f"{size} requests" in reply["error"]["message"]
        assert reply["error"]["data"]["limit"] == MAX_BATCH
    assert len(answer(node, [rpc_body("node_status", request_id=i) for i in range(MAX_BATCH)])) == MAX_BATCH

    print("deep nesting: -32700 with a body, whether it closes or not")
    for body in (b"[" * 1_000 + b"]" * 1_000, b"[" * 100_000, b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1)):
        reply = answer(node, body)
        assert error_code(reply) == -32700 and reply["error"]["data"]["reason"] == "too-deep"

    print("huge integers: -32602 naming the param")
    for height in (2**64, 10**4000, -1):
        reply = answer(node, rpc_body("chain_block", {"id": height}))
        assert error_code(reply) == -32602 and reply["error"]["data"] == {"param": "id"}
    assert error_code(answer(node, rpc_body("mempool_list", {"limit": 2**70}))) == -32602

    print("a body over the limit: 413 with a JSON-RPC error, read to its end (urllib writes it all first)")
    status, reply = node.http(json.dumps(rpc_body("listing_get", {"listing": "a" * (10 << 20)})).encode())
    assert status == 413 and json.loads(reply)["error"]["data"] == {"reason": "body-too-large", "limit": MAX_BODY}

    assert node.rpc("node_status")["height"] == 0  # still serving
    assert_no_traceback(node)


def test_bad_params_of_listing_treasury_and_id_methods_are_named_errors(daemons):
    """Each junk value in each param: a short -32602 (or bad-address) error naming the param,
    never a result filtered by junk, never the junk echoed back, never an internal error."""
    node = daemons("node")
    refused = 0
    for method, params in BAD_PARAMS.items():
        for name, junk in params.items():
            for value in junk:
                if value is None and (method, name) in OPTIONAL:
                    continue
                reply = answer(node, rpc_body(method, {**DEFAULTS.get(method, {}), name: value}))
                what = f"{method}({name}={str(value)[:40]!r})"
                assert error_code(reply) in REFUSALS, (what, reply)
                assert len(reply["error"]["message"]) < 300, (what, reply["error"]["message"][:300])
                assert (reply["error"].get("data") or {}).get("param") == name, (what, reply["error"])
                refused += 1
    print(f"{refused} bad params refused, each named")
    for method in BAD_PARAMS:
        reply = answer(node, rpc_body(method, {**DEFAULTS.get(method, {}), "unknown": 1}))
        assert error_code(reply) == -32602 and "unknown" in reply["error"]["message"], (method, reply)
    assert node.rpc("node_status")["height"] == 0
    assert_no_traceback(node)


def test_a_flood_of_junk_transactions_is_answered_in_full_while_status_keeps_answering(daemons):
    node = daemons("node")
    junk = [f"{i % 256:02x}{i // 256 % 256:02x}" for i in range(FLOOD_TXS)]
    flood = [rpc_body("tx_submit_many", {"txs": junk}, i) for i in range(FLOOD_CALLS)]
    good, _ = transfer_hex("alice", "bob", 1, nonce=0)
    forged = bytearray.fromhex(good)
    forged[-1] ^= 1  # the last byte is the signature's: well formed, badly signed
    flood.append(rpc_body("tx_submit_many", {"txs": [forged.hex()] * 10 + [good]}, FLOOD_CALLS))
    replies: list[Any] = []
    sender = threading.Thread(target=lambda: replies.append(answer(node, flood)))
    sender.start()
    answered = 0
    while sender.is_alive():
        assert node.rpc("node_status")["network"] == "devnet"
        answered += 1
    sender.join()
    print(f"node_status answered {answered} times while the flood ran")
    (batch,) = replies
    assert [r["id"] for r in batch] == list(range(FLOOD_CALLS + 1))
    for reply in batch[:FLOOD_CALLS]:
        assert len(reply["result"]) == FLOOD_TXS and all("error" in r for r in reply["result"])
    assert [r.get("reason", "ok") for r in batch[-1]["result"]] == ["bad-tx-signature"] * 10 + ["ok"]
    assert node.rpc("mempool_list")["count"] == 1
    assert_no_traceback(node)


def test_guessed_cookies_are_throttled_but_the_right_one_is_not(daemons):
    node = daemons("node")
    ok = json.dumps(rpc_body("node_status")).encode()
    statuses = [node.http(ok, auth="__cookie__:guess")[0] for _ in range(8)]
    print(f"eight guesses: {statuses}")
    # a budget of 5 refilled every 2 s: a slow machine may see a sixth 401, never a first 429
    assert statuses[:5] == [401] * 5 and statuses[-1] == 429
    assert node.http(ok)[0] == 200  # the cookie's owner shares 127.0.0.1 with the guesser
    with urllib.request.urlopen(node.rpc_url + "metrics", timeout=30) as response:
        metrics = response.read().decode()
    for outcome, status in (("refused", 401), ("throttled", 429)):
        assert f'neuro_rpc_auth_failures_total{{outcome="{outcome}"}} {statuses.count(status)}.0' in metrics
    assert_no_traceback(node)
