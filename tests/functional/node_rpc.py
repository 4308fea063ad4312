"""JSON-RPC: cookie auth, malformed requests answered with JSON-RPC errors, mempool policy
(limits, fee-bump replacement) as seen by a client, and the node staying up throughout."""

from __future__ import annotations

import json

import pytest

from chain.devnet_keys import devnet_address
from tests.support.daemons import RpcCallError
from tests.support.txs import transfer_hex


def call_error(node, method, **params):
    with pytest.raises(RpcCallError) as info:
        node.rpc(method, **params)
    return info.value


def test_rpc_auth_and_malformed_requests(daemons):
    node = daemons("node")
    ok = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "node_status"}).encode()
    assert node.http(ok, auth=None)[0] == 401
    assert node.http(ok, auth="__cookie__:wrong")[0] == 401
    assert node.http(ok)[0] == 200

    def error_code(body: bytes) -> int:
        status, reply = node.http(body)
        assert status == 200
        return int(json.loads(reply)["error"]["code"])

    assert error_code(b"{not json") == -32700
    assert error_code(b"[]") == -32600
    assert error_code(b'{"jsonrpc": "1.0", "method": "node_status"}') == -32600
    assert error_code(b'{"jsonrpc": "2.0", "id": 1, "method": "no_such"}') == -32601
    assert error_code(b'{"jsonrpc": "2.0", "id": 1, "method": "chain_block", "params": {"nope": 1}}') == -32602
    assert error_code(b'{"jsonrpc": "2.0", "id": 1, "method": "chain_block", "params": 5}') == -32602
    assert call_error(node, "chain_block", id="zz").code == -32602
    assert call_error(node, "chain_block", id=10**6).reason == "unknown-block"
    assert call_error(node, "chain_tx", txid="00" * 32).reason == "unknown-tx"
    assert call_error(node, "account_get", address="tntk1notanaddress").reason == "bad-address"
    assert call_error(node, "tx_submit", tx="c1").reason == "bad-encoding"
    batch = json.dumps([json.loads(ok), {"jsonrpc": "2.0", "id": 2, "method": "chain_supply"}]).encode()
    replies = json.loads(node.http(batch)[1])
    assert [r["id"] for r in replies] == [1, 2]
    assert node.rpc("chain_supply")["supply"] > 0  # still serving


def test_mempool_policy_through_rpc(daemons):
    node = daemons("node")  # not mining: everything stays pending
    original, original_id = transfer_hex("alice", "bob", 1_000, nonce=0, fee=10_000)
    node.rpc("tx_submit", tx=original)
    cheap_bump, _ = transfer_hex("alice", "bob", 1_001, nonce=0, fee=10_500)
    assert call_error(node, "tx_submit", tx=cheap_bump).reason == "replacement-underpriced"
    assert call_error(node, "tx_submit", tx=original).reason == "already-known"
    bumped, bumped_id = transfer_hex("alice", "bob", 1_001, nonce=0, fee=11_000)
    node.rpc("tx_submit", tx=bumped)
    pending = node.rpc("mempool_list")
    assert pending["txs"] == [bumped_id] and original_id not in pending["txs"]
    assert node.rpc("chain_tx", txid=bumped_id)["status"] == "pending"
    assert node.rpc("account_get", address=devnet_address("alice"))["pending_nonce"] == 1
    low_fee, _ = transfer_hex("bob", "alice", 1, nonce=0, fee=1)
    assert call_error(node, "tx_submit", tx=low_fee).reason == "fee-too-low"
    broke, _ = transfer_hex("carol", "alice", 10**20 // 10**3, nonce=0)
    assert call_error(node, "tx_submit", tx=broke).reason == "insufficient-balance"


def test_mempool_global_limit_from_config(daemons, tmp_path):
    (tmp_path / "small").mkdir()
    (tmp_path / "small" / "config.toml").write_text("mempool_max_txs = 3\n")
    node = daemons("small")
    for nonce in range(3):
        node.rpc("tx_submit", tx=transfer_hex("dave", "bob", 1, nonce=nonce)[0])
    assert call_error(node, "tx_submit", tx=transfer_hex("carol", "bob", 1, nonce=0)[0]).reason == "mempool-full"
    richer, richer_id = transfer_hex("carol", "bob", 1, nonce=0, fee=50_000)
    node.rpc("tx_submit", tx=richer)
    assert richer_id in node.rpc("mempool_list")["txs"]
    assert node.rpc("mempool_list")["count"] == 3
