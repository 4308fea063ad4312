"""Block validation, staged cheapest first, each rejection with a named reason.

1. `check_header`          header alone: version, compact target, proof of work
2. `check_block`           block alone: size, tx count, tx root, duplicates, chain id, signatures
                           (`check_block_contents` + `start_signature_checks`: block import lets
                           the signatures run on a pool during stages 3-4 and joins them before it
                           commits or reports anything, so a bad signature is still the reason)
3. `check_header_context`  header against its parent: height, ASERT target, timestamps
4. `chain.state.apply_block` then the state root must match (done by the chain state)

Stages 1-2 need nothing but the bytes, so the gossip layer runs them before relaying a block.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from concurrent.futures import Executor
from statistics import median_low

from chain.crypto import PendingVerification, Verifier, start_verify_many, verify
from chain.errors import InvalidBlock, InvalidTransaction, RejectKind
from chain.market_types import JobAward
from chain.merkle import merkle_root
from chain.params import BLOCK_VERSION, ChainParams
from chain.pow import asert_bits, bits_to_target, is_canonical_bits, meets_target
from chain.types import Block, Header, Transaction


def check_header(header: Header, params: ChainParams) -> None:
    if header.version != BLOCK_VERSION:
        raise InvalidBlock("bad-version", expected=BLOCK_VERSION, got=header.version)
    if not is_canonical_bits(header.bits) or bits_to_target(header.bits) > bits_to_target(
        params.pow_limit_bits
    ):
        raise InvalidBlock("bad-diffbits", "target not canonical or above the limit", got=hex(header.bits))
    if header.height > 0 and not meets_target(header.hash, header.bits):
        raise InvalidBlock("high-hash", "proof of work does not meet the target")


def tx_root(txs: Sequence[Transaction]) -> bytes:
    return merkle_root([tx.txid for tx in txs])


def check_transaction(tx: Transaction, chain_id: bytes) -> None:
    """Context-free checks of one transaction (what a mempool and a block both need)."""
    if tx.chain_id != chain_id:
        raise InvalidTransaction("bad-tx-chain-id", expected=chain_id.hex(), got=tx.chain_id.hex())
    if not verify(tx.sender, tx.signing_message(), tx.signature):
        raise InvalidTransaction("bad-tx-signature")
    for index, (key, message, signature) in enumerate(bid_signature_items(tx)):
        if not verify(key, message, signature):
            raise InvalidTransaction("bad-bid-signature", f"bid {index} of the award")


def bid_signature_items(tx: Transaction) -> list[tuple[bytes, bytes, bytes]]:
    """The (key, message, signature) of each bid an award carries; none for other kinds."""
    payload = tx.payload
    if type(payload) is not JobAward:
        return []
    return [(e.bid.worker, e.bid.signing_message(), e.bid.signature) for e in payload.entries]


def check_block_contents(
    block: Block, params: ChainParams, chain_id: bytes, *, encoded_size: int | None = None
) -> None:
    """Stage 2 without signatures: size, tx count, tx root, duplicates, chain ids."""
    size = encoded_size if encoded_size is not None else len(block.encode())
    if size > params.max_block_bytes:
        raise InvalidBlock("block-too-large", expected=f"<= {params.max_block_bytes}", got=size)
    if len(block.txs) > params.max_block_txs:
        raise InvalidBlock("too-many-txs", expected=f"<= {params.max_block_txs}", got=len(block.txs))
    txids = [tx.txid for tx in block.txs]
    if merkle_root(txids) != block.header.tx_root:
        raise InvalidBlock("bad-txnmrklroot", "transaction root does not match")
    if len(set(txids)) != len(txids):
        raise InvalidBlock("bad-txns-duplicate", "a transaction appears twice")
    for index, tx in enumerate(block.txs):
        if tx.chain_id != chain_id:
            raise InvalidBlock("bad-tx-chain-id", f"tx {index}", expected=chain_id.hex(), got=tx.chain_id.hex())


class SignatureChecks:
    """A block's signature checks, possibly still running on a pool; `require` joins them."""

    def __init__(self, indices: list[int], pending: PendingVerification, bids: int = 0) -> None:
        self._indices = indices  # per check: the tx it belongs to
        self._pending = pending
        self._bids = bids  # the last `bids` checks are bids' (their reason is bad-bid-signature)

    def settle(self) -> None:
        """Wait for the checks without judging them."""
        self._pending.result()

    def require(self) -> None:
        """Wait for the checks; raise ``bad-tx-signature`` naming the first failing tx."""
        checks = self._pending.result()
        if not all(checks):
            first = checks.index(False)
            reason = "bad-bid-signature" if first >= len(checks) - self._bids else "bad-tx-signature"
            raise InvalidBlock(reason, f"tx {self._indices[first]}")


def start_signature_checks(
    block: Block, *, pool: Executor | Verifier | None = None, verified: Container[bytes] = ()
) -> SignatureChecks:
    """Start checking the signatures of ``block``'s transactions on ``pool``.

    ``verified`` holds ids of transactions whose signatures were already checked (a node's
    mempool): a txid commits to the signature bytes, so those need no second check (the
    signature cache of Bitcoin Core).
    """
    txs = block.txs
    unchecked = [i for i, tx in enumerate(txs) if tx.txid not in verified]
    items = [(txs[i].sender, txs[i].signing_message(), txs[i].signature) for i in unchecked]
    owners = list(unchecked)
    bids = 0
    for i in unchecked:  # an award's bids are signatures like any other: same pool, same join
        for item in bid_signature_items(txs[i]):
            items.append(item)
            owners.append(i)
            bids += 1
    return SignatureChecks(owners, start_verify_many(items, pool), bids)


def check_block(
    block: Block,
    params: ChainParams,
    chain_id: bytes,
    *,
    encoded_size: int | None = None,
    pool: Executor | Verifier | None = None,
    verified: Container[bytes] = (),
) -> None:
    """All of stage 2: `check_block_contents`, then every signature not in ``verified``."""
    check_block_contents(block, params, chain_id, encoded_size=encoded_size)
    start_signature_checks(block, pool=pool, verified=verified).require()


def expected_bits(params: ChainParams, parent: Header) -> int:
    """ASERT target for the child of ``parent``, anchored at genesis."""
    return asert_bits(
        params.genesis_bits,
        parent.timestamp - params.genesis_time,
        parent.height,
        spacing=params.target_block_time,
        half_life=params.asert_half_life,
        pow_limit_bits=params.pow_limit_bits,
    )


def median_time_past(timestamps: Sequence[int]) -> int:
    """Median of the last (up to 11) ancestors' timestamps, as Bitcoin's GetMedianTimePast."""
    return median_low(sorted(timestamps))


def check_header_context(
    header: Header,
    parent: Header,
    recent_timestamps: Sequence[int],
    params: ChainParams,
    now: int,
) -> None:
    """Checks of ``header`` against its parent; ``recent_timestamps`` are the parent and its
    ancestors' (up to `median_time_span` of them), ``now`` the local clock in unix seconds."""
    if header.parent != parent.hash:
        raise InvalidBlock("bad-prevblk", "parent hash does not match", kind=RejectKind.MISSING)
    if header.height != parent.height + 1:
        raise InvalidBlock("bad-height", expected=parent.height + 1, got=header.height)
    want = expected_bits(params, parent)
    if header.bits != want:
        raise InvalidBlock("bad-diffbits", "target does not follow ASERT", expected=hex(want), got=hex(header.bits))
    mtp = median_time_past(recent_timestamps[-params.median_time_span :])
    if header.timestamp <= mtp:
        raise InvalidBlock("time-too-old", "not after the median of the last blocks", expected=f"> {mtp}", got=header.timestamp)
    if header.timestamp > now + params.max_future_drift:
        raise InvalidBlock(
            "time-too-new", "too far in the future", kind=RejectKind.MISSING,
            expected=f"<= {now + params.max_future_drift}", got=header.timestamp,
        )
