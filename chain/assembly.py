"""Block templates: the miner's side of the state transition.

`assemble_block` takes candidate transactions in priority order, keeps those that apply on top of
the tip (skipping, not failing on, the ones that do not), and fills in the tx root, the state root
and the ASERT target, so that the only thing left to find is the nonce.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from chain.chainstate import ChainState, _StateView
from chain.errors import ChainError, InvalidTransaction, RejectKind
from chain.market_rules import MarketContext
from chain.params import BLOCK_VERSION
from chain.state import Ledger, apply_transaction, effects_of, trie_updates
from chain.store import Overlay
from chain.trie import update_trie
from chain.types import Block, Header, Transaction, Transfer
from chain.validation import expected_bits, median_time_past, tx_root


@dataclass(frozen=True, slots=True)
class Template:
    block: Block
    skipped: tuple[tuple[Transaction, ChainError], ...]  # candidates that did not apply, and why


def assemble_block(
    chain: ChainState,
    candidates: Iterable[Transaction],
    miner: bytes,
    now: int,
    *,
    max_txs: int | None = None,
) -> Template:
    parent = chain.tip_header
    params = chain.params
    limit = min(max_txs or params.max_block_txs, params.max_block_txs)
    view = _StateView(Overlay(chain.kv), chain.decoded_accounts, chain.decoded_jobs)
    ledger = Ledger(view)
    height = parent.height + 1
    market = MarketContext(params.market, chain.chain_id, height, chain.adjudicator, chain.treasury)
    chosen: list[Transaction] = []
    skipped: list[tuple[Transaction, ChainError]] = []
    fees = 0
    size = 256
    for tx in candidates:
        if len(chosen) >= limit:
            break
        tx_size = len(tx.encode())
        if size + tx_size > params.max_block_bytes:
            continue
        snapshot = ledger.snapshot()
        try:
            fees += apply_transaction(ledger, tx, market)
        except ChainError as exc:
            ledger.restore(snapshot)
            skipped.append((tx, exc))
            continue
        chosen.append(tx)
        size += tx_size
    reward = params.block_reward(height)
    if reward + fees:
        ledger.credit(miner, reward + fees, "balance-overflow")
    effects = effects_of(ledger, view, reward, fees, chain.supply + reward)
    root, _ = update_trie(view.node, trie_updates(effects))
    stamps = chain.recent_timestamps(parent, params.median_time_span)
    timestamp = max(now, median_time_past(stamps) + 1)
    header = Header(
        version=BLOCK_VERSION, height=height, parent=parent.hash, timestamp=timestamp,
        bits=expected_bits(params, parent), tx_root=tx_root(chosen), state_root=root, miner=miner,
    )
    return Template(Block(header, tuple(chosen)), tuple(skipped))


def check_against_tip(chain: ChainState, tx: Transaction) -> None:
    """Run a market transaction's rules on top of the tip, as if it were next in the next block
    (its nonce taken as the sender's next, so a queue of pending transactions checks each one).

    The mempool's check before admitting or relaying one: a fraud proof that is false, an award
    whose bids do not back it, a post the client cannot pay are refused here with the rule's
    reason, so a peer relaying them can be judged, and the miner's template skips nothing that
    this check passed unless the state moved meanwhile. Read-only: the ledger is discarded."""
    if type(tx.payload) is Transfer:
        return
    view = _StateView(Overlay(chain.kv), chain.decoded_accounts, chain.decoded_jobs)
    ledger = Ledger(view)
    sender = ledger.get(tx.sender_account)
    ledger.set(tx.sender_account, sender._replace(nonce=tx.nonce))
    market = MarketContext(chain.params.market, chain.chain_id, chain.height + 1, chain.adjudicator,
                           chain.treasury)
    try:
        apply_transaction(ledger, tx, market)
    except InvalidTransaction as exc:
        if exc.reason in PROVABLY_FALSE or exc.kind is not RejectKind.INVALID:
            raise
        # the state may move (a stake or a post still in flight): refused here, nobody blamed
        raise InvalidTransaction(exc.reason, exc.detail, kind=RejectKind.LOCAL, expected=exc.expected,
                                 got=exc.got) from None


# refusals that no later state can turn valid: the peer that relayed one is penalised
PROVABLY_FALSE = frozenset({"bad-proof-path", "challenge-honest-item", "bad-job-spec", "spec-too-large",
                            "bid-wrong-chain", "bid-wrong-job", "bid-above-max-price",
                            "voucher-forged", "voucher-wrong-chain", "voucher-beneficiary-mismatch", "voucher-claim-invalid",
                            "fee-above-voucher"})
