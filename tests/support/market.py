"""Builders for market tests: signed market transactions, bids, specs, artifacts and proofs.

Everything goes through the real code: transactions are signed and mined into real blocks with
`make_block`, render artifacts are rendered by the worker, proofs come from `worker.artifact`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chain.chainstate import ChainState
from chain.crypto import public_key_of
from chain.devnet_keys import devnet_seed
from chain.market_types import Bid, LeafClaim
from chain.types import Transaction
from tests.support.chain_builders import DEFAULT_FEE, account_of, import_block, make_block, new_chain, next_nonce

ALICE, BOB, CAROL, DAVE = (devnet_seed(n) for n in ("alice", "bob", "carol", "dave"))
NTK = 10**9


def tx(chain: ChainState, seed: bytes, payload: Any, *, nonce: int | None = None, fee: int = DEFAULT_FEE) -> Transaction:
    """``payload`` signed by ``seed``'s key at its next nonce (or ``nonce``)."""
    n = next_nonce(chain, seed) if nonce is None else nonce
    return Transaction(chain.chain_id, public_key_of(seed), n, fee, payload).signed(seed)


def bid(chain: ChainState, seed: bytes, job_id: bytes, price: int, max_shards: int = 64,
        expiry: int | None = None) -> Bid:
    exp = chain.height + 100 if expiry is None else expiry
    return Bid(chain.chain_id, job_id, public_key_of(seed), price, max_shards, exp).signed(seed)


def mine(chain: ChainState, *txs: Transaction, strict: bool = True) -> None:
    """One block with ``txs`` on the tip (all must apply when ``strict``)."""
    import_block(chain, make_block(chain, txs, strict=strict))


def mine_empty(chain: ChainState, count: int) -> None:
    for _ in range(count):
        mine(chain)


def canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def digits_job_spec(count: int = 8, seed: int = 7) -> bytes:
    return canonical({"task": "render", "seed": seed,
                      "spec": {"kind": "digits", "count": count, "renderer_version": 2}})


def held(chain: ChainState) -> int:
    """Every token the state holds: balances, stake, escrow; must equal issued - burned."""
    accounts = sum(a.balance + a.bonded + a.unbonding for _, a in chain.accounts())
    return accounts + sum(job.escrow for _, job in chain.jobs())


def assert_supply(chain: ChainState) -> None:
    totals = chain.totals()
    assert totals.issued == chain.supply
    assert held(chain) == totals.issued - totals.burned
    assert chain.state_root() == chain.state_root_from_scratch() == chain.tip_header.state_root


def market_chain() -> ChainState:
    """A devnet chain whose state can judge render fraud proofs (the node's adjudicator)."""
    from neurod.adjudicator import RenderAdjudicator

    chain = new_chain()
    chain.adjudicator = RenderAdjudicator()
    return chain


def render_shard_artifact(spec: bytes, start: int, stop: int, out: Path) -> Any:
    """The worker's artifact of items [start, stop) of a generate job's spec."""
    from worker.render.shard import render_shard

    doc = json.loads(spec)
    return render_shard(doc["spec"], doc["seed"], start, stop, out)


def claim_of(manifest: Any, position: int) -> LeafClaim:
    """The LeafClaim of the item at ``position`` of a `worker.artifact` manifest."""
    from worker.artifact import leaf_proof

    proof = leaf_proof(manifest, position)
    return LeafClaim(proof.check, proof.labels, proof.files, proof.path.siblings, proof.items_root, proof.header_hash)



