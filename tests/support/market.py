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
from chain.jobs import Job, ShardStatus
from chain.market_types import (
    AwardEntry,
    Bid,
    JobAward,
    JobPost,
    LeafClaim,
    ResultCommit,
    Service,
    Stake,
)
from chain.state import EMPTY_ACCOUNT, Account
from chain.types import Transaction
from tests.support.chain_builders import (
    DEFAULT_FEE,
    account_of,
    import_block,
    make_block,
    new_chain,
    next_nonce,
)

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





# ---- genesis variants, clones and refusals -----------------------------------------------------


def market_genesis(**market: Any) -> Any:
    """The devnet genesis (same funded keys) with some market rules changed (a new chain id)."""
    from importlib import resources

    from chain.genesis import parse_genesis

    doc = json.loads(resources.files("chain.networks").joinpath("devnet.json").read_text())
    doc["market"] = {**doc["market"], **market}
    return parse_genesis(doc)


def market_chain_on(genesis: Any) -> ChainState:
    """`market_chain` on another genesis."""
    from neurod.adjudicator import RenderAdjudicator

    chain = new_chain(genesis)
    chain.adjudicator = RenderAdjudicator()
    return chain


def clone_market_chain(chain: ChainState) -> ChainState:
    """Another node with an adjudicator that imported ``chain``'s main chain."""
    from tests.support.chain_builders import main_chain

    copy = market_chain_on(chain.genesis)
    for block in main_chain(chain):
        import_block(copy, block)
    return copy


def refusal(chain: ChainState, *txs: Transaction) -> Any:
    """The error a block carrying ``txs`` on the tip is refused with (the last one's reason, the
    others applying first); the tip and the state must not move. A single market transaction is
    also run through the mempool's check, which must refuse it with the same reason."""
    from chain.assembly import check_against_tip
    from chain.errors import ChainError
    from tests.support.chain_builders import forge_block

    tip, root = chain.tip_hash, chain.state_root()
    block = forge_block(chain, chain.tip_header, txs)
    try:
        import_block(chain, block)
    except ChainError as exc:
        error = exc
    else:
        raise AssertionError(f"a block with {len(txs)} transactions was accepted")
    assert chain.tip_hash == tip
    assert chain.state_root() == root == chain.tip_header.state_root
    if len(txs) == 1 and error.reason != "bad-bid-signature":
        try:
            check_against_tip(chain, txs[0])
        except ChainError as exc:
            assert exc.reason == error.reason, (exc, error)
        else:
            raise AssertionError(f"the mempool check passed what a block refuses ({error})")
    return error


def refused(chain: ChainState, *txs: Transaction) -> str:
    """`refusal`'s reason."""
    return str(refusal(chain, *txs).reason)


def snapshot(chain: ChainState, *job_ids: bytes) -> dict[str, Any]:
    """Everything the market keeps: accounts, jobs, totals, and the events of each named job and
    of every account."""
    accounts = dict(chain.accounts())
    return {
        "accounts": accounts,
        "jobs": dict(chain.jobs()),
        "totals": chain.totals(),
        "supply": chain.supply,
        "job_events": {j: chain.events(job_id=j, limit=10**6) for j in job_ids},
        "account_events": {a: chain.events(account=a, limit=10**6) for a in accounts},
        "jobs_of": {a: chain.jobs_of(a) for a in accounts},
        "specs": {j: chain.job_spec(j) for j in job_ids},
    }


SPEC = digits_job_spec(8)  # 8 digits items, seed 7: 401,408 pixel units, 200,704 per shard
BAD_SPEC = digits_job_spec(8, seed=8)  # what a lying worker renders instead
MAX_PRICE = 10**6  # base units per megapixel: a shard pays at most 200,704
PRICE = 5 * 10**5  # bob's and carol's bids: a shard pays 100,352 and locks 150,528 of stake
TRAIN_SPEC = canonical(json.loads((Path(__file__).parents[2] / "worker/examples/cnn_train.json").read_text()))



# ---- job builders: a devnet chain, real blocks, the supply checked after each ------------------


def acct(chain: ChainState, seed_or_id: bytes) -> Account:
    account_id = seed_or_id if len(seed_or_id) == 20 else account_of(seed_or_id)
    return chain.account(account_id) or EMPTY_ACCOUNT


def step(chain: ChainState, *txs: Transaction) -> None:
    """One block with ``txs`` (all must apply), then the supply invariants."""
    mine(chain, *txs)
    assert_supply(chain)


def mine_until(chain: ChainState, height: int) -> None:
    """Empty blocks until the tip is at ``height`` (the next block is ``height + 1``)."""
    while chain.height < height:
        step(chain)


def staked(chain: ChainState | None = None) -> ChainState:
    chain = chain or market_chain()
    step(chain, tx(chain, BOB, Stake(1000 * NTK)), tx(chain, CAROL, Stake(1000 * NTK)))
    return chain


def post(chain: ChainState, *, spec: bytes = SPEC, shards: int = 2, max_price: int = MAX_PRICE,
         bid_blocks: int = 3, deadline_blocks: int = 20, challenge_blocks: int = 3,
         service: int = Service.GENERATE, client: bytes = ALICE) -> bytes:
    posting = tx(chain, client, JobPost(service, spec, shards, max_price, bid_blocks, deadline_blocks,
                                        challenge_blocks))
    step(chain, posting)
    return posting.txid


def award(chain: ChainState, job_id: bytes, shares: dict[bytes, tuple[int, ...]], price: int = PRICE) -> None:
    entries = tuple(AwardEntry(bid(chain, seed, job_id, price), shards) for seed, shards in shares.items())
    step(chain, tx(chain, ALICE, JobAward(job_id, entries)))


def commit(chain: ChainState, job_id: bytes, seed: bytes, shard: int, manifest: Any) -> Transaction:
    return tx(chain, seed, ResultCommit(job_id, shard, manifest.root, len(manifest.items)))


def awarded_job(chain: ChainState | None = None, **post_kw: Any) -> tuple[ChainState, bytes]:
    """A staked chain with SPEC posted, shard 0 awarded to bob and shard 1 to carol."""
    chain = staked(chain)
    job_id = post(chain, **post_kw)
    award(chain, job_id, {BOB: (0,), CAROL: (1,)})
    return chain, job_id


def committed_job(art: dict[str, Any], second: str = "good1",
                  chain: ChainState | None = None, **post_kw: Any) -> tuple[ChainState, bytes]:
    """`awarded_job` with bob's honest shard 0 and carol's shard 1 (``second``) committed."""
    chain, job_id = awarded_job(chain, **post_kw)
    step(chain, commit(chain, job_id, BOB, 0, art["good0"]), commit(chain, job_id, CAROL, 1, art[second]))
    return chain, job_id


def statuses(chain: ChainState, job_id: bytes) -> list[ShardStatus]:
    job = chain.job(job_id)
    assert job is not None
    return [s.status for s in job.shards]


def events(chain: ChainState, job_id: bytes) -> list[tuple[str, int, int, str]]:
    """(kind, shard, amount, note) of a job's events, oldest first."""
    return [(e.kind, e.shard, e.amount, e.note) for _, e in chain.events(job_id=job_id, limit=10**6)][::-1]


def job_of(chain: ChainState, job_id: bytes) -> Job:
    job = chain.job(job_id)
    assert job is not None
    return job


