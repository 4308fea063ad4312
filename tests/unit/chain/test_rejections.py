"""Every named rejection reason, triggered through the chain state where a peer could trigger it.

Each test checks the reason and the kind (what the peer layer turns into a penalty), and that the
rejected block moved nothing: the tip and the state root are those from before.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from chain.chainstate import BlockMeta, BlockStatus, ChainState, ImportResult
from chain.devnet_keys import devnet_seed
from chain.errors import ChainError, InvalidBlock, InvalidTransaction, RejectKind
from chain.params import BLOCK_VERSION, MAX_SUPPLY_UNITS
from chain.pow import meets_target, pow_hash
from chain.state import Account, apply_block, check_tx_against_state
from chain.types import Block, Header, Transaction
from chain.validation import (
    check_block_contents,
    check_header,
    check_header_context,
    expected_bits,
    median_time_past,
)
from tests.support.chain_builders import (
    account_of,
    block_time,
    forge_block,
    funded_genesis,
    import_block,
    make_block,
    mine_blocks,
    new_chain,
    reseal,
    signed_transfer,
    transfers,
)

ALICE = devnet_seed("alice")
BOB = account_of(devnet_seed("bob"))


@pytest.fixture
def chain() -> ChainState:
    """A devnet chain three blocks high, alice having sent bob two transfers."""
    chain = new_chain()
    mine_blocks(chain, 3, transfers(chain, ALICE, BOB, [1000, 2000]))
    return chain


def rejected(chain: ChainState, block: Block, now: int | None = None) -> ChainError:
    """The error ``block``'s import raises; asserts that the tip and state did not move."""
    tip, root = chain.tip_hash, chain.state_root()
    with pytest.raises(ChainError) as info:
        chain.process_block(block, now if now is not None else block.header.timestamp)
    assert chain.tip_hash == tip
    assert chain.state_root() == root == chain.tip_header.state_root
    return info.value


def expect(error: ChainError, reason: str, kind: RejectKind = RejectKind.INVALID, **pinned: object) -> None:
    """The error's reason and kind, and any of detail, expected and got given."""
    assert (error.reason, error.kind) == (reason, kind), str(error)
    assert {name: getattr(error, name) for name in pinned} == pinned, str(error)


# ---- header alone --------------------------------------------------------------------------


def test_bad_version(chain: ChainState) -> None:
    block = reseal(make_block(chain), version=2)
    expect(rejected(chain, block), "bad-version")


@pytest.mark.parametrize(
    "bits",
    [
        0x2200FFFF,  # a target above the pow limit
        0x22000001,  # a non-canonical encoding (leading zero mantissa byte)
        0x21800000,  # the sign bit: a negative target
        0x00000000,  # zero
    ],
)
def test_bad_diffbits_alone(chain: ChainState, bits: int) -> None:
    # the target is checked before the proof of work, so the nonce does not matter here
    good = make_block(chain)
    block = Block(replace(good.header, bits=bits), good.txs)
    expect(rejected(chain, block), "bad-diffbits")


def test_high_hash_with_a_real_target() -> None:
    # 0x1f00ffff: one hash in 65,536 meets it, so an unmined nonce almost surely fails.
    genesis, _ = funded_genesis(2, genesis_bits="1f00ffff")
    chain = new_chain(genesis)
    good = make_block(chain)
    assert meets_target(good.hash, good.header.bits)
    nonce = next(
        n
        for n in range(1000)
        if not meets_target(pow_hash(good.header.with_nonce(n).encode()), good.header.bits)
    )
    bad = Block(good.header.with_nonce(nonce), good.txs)
    expect(rejected(chain, bad), "high-hash")
    assert told(check_header, bad.header, chain.params) == "high-hash: proof of work does not meet the target"
    assert import_block(chain, good).tip_changed


# ---- block alone ---------------------------------------------------------------------------


def test_block_too_large() -> None:
    genesis, seeds = funded_genesis(4, max_block_bytes=600)
    chain = new_chain(genesis)
    txs = [signed_transfer(chain.chain_id, seed, BOB, 5, 0) for seed in seeds[:3]]
    block = forge_block(chain, chain.tip_header, txs)
    assert len(block.encode()) > 600
    expect(rejected(chain, block), "block-too-large")
    # what a peer's message measured counts, when the caller passes it
    small = forge_block(chain, chain.tip_header)
    with pytest.raises(InvalidBlock, match="block-too-large"):
        chain.check_block_alone(small, encoded_size=601)


def test_too_many_txs() -> None:
    genesis, seeds = funded_genesis(1, max_block_txs=3)
    chain = new_chain(genesis)
    txs = [signed_transfer(chain.chain_id, seeds[0], BOB, 5, nonce) for nonce in range(4)]
    expect(rejected(chain, forge_block(chain, chain.tip_header, txs)), "too-many-txs")
    assert import_block(chain, make_block(chain, txs[:3])).tip_changed


def test_bad_txnmrklroot(chain: ChainState) -> None:
    good = make_block(chain, transfers(chain, ALICE, BOB, [5, 6]))
    swapped = reseal(good, txs=good.txs[::-1], tx_root=good.header.tx_root)
    expect(rejected(chain, swapped), "bad-txnmrklroot")


def test_bad_txns_duplicate(chain: ChainState) -> None:
    tx = transfers(chain, ALICE, BOB, [5])[0]
    block = forge_block(chain, chain.tip_header, [tx, tx])
    expect(rejected(chain, block), "bad-txns-duplicate")


def test_bad_tx_chain_id(chain: ChainState) -> None:
    other_chain = bytes(32)
    tx = signed_transfer(other_chain, ALICE, BOB, 5, 2)
    block = forge_block(chain, chain.tip_header, [tx])
    expect(rejected(chain, block), "bad-tx-chain-id")


def test_bad_tx_signature(chain: ChainState) -> None:
    tx = transfers(chain, ALICE, BOB, [5])[0]
    forged = Transaction(tx.chain_id, tx.sender, tx.nonce, tx.fee, tx.payload, bytes(64))
    block = forge_block(chain, chain.tip_header, [forged])
    error = rejected(chain, block)
    expect(error, "bad-tx-signature")
    assert "tx 0" in str(error)
    assert not chain.has_block(block.hash)  # context-free failures store nothing


# ---- header in context ---------------------------------------------------------------------


def test_prev_blk_not_found(chain: ChainState) -> None:
    block = reseal(make_block(chain), parent=bytes(32))
    expect(rejected(chain, block), "prev-blk-not-found", RejectKind.MISSING, detail=bytes(32).hex())
    assert not chain.has_block(block.hash)


def test_bad_prevblk_when_parent_hash_does_not_match(chain: ChainState) -> None:
    block = make_block(chain)
    grandparent = chain.header(chain.tip_header.parent)
    with pytest.raises(InvalidBlock) as info:
        check_header_context(block.header, grandparent, [0], chain.params, block.header.timestamp)
    expect(info.value, "bad-prevblk", RejectKind.MISSING)


def test_bad_prevblk_when_parent_is_invalid(chain: ChainState) -> None:
    bad = forge_block(chain, chain.tip_header, state_root=bytes(32))
    root = make_block(chain).header.state_root  # what the block's effects give
    expect(rejected(chain, bad), "bad-state-root", expected=root.hex(), got=bytes(32).hex())
    child = forge_block(chain, bad.header)
    expect(rejected(chain, child), "bad-prevblk", detail="parent is invalid")
    assert_kept_invalid(chain, bad)
    # the child is refused before its body is looked at: its header and meta are kept, not the body
    assert chain.meta(child.hash) == BlockMeta(child.header.height, 0, BlockStatus.INVALID)
    assert chain.header(child.hash) == child.header and chain.block_bytes(child.hash) is None


def assert_kept_invalid(chain: ChainState, *blocks: Block) -> None:
    """Refused blocks stay on record: the header and body (an operator can read what was refused,
    and a resent copy is refused at once as "duplicate-invalid") and a meta with the block's own
    height, no work (an invalid branch never weighs), status INVALID."""
    for block in blocks:
        assert chain.meta(block.hash) == BlockMeta(block.header.height, 0, BlockStatus.INVALID)
        assert chain.header(block.hash) == block.header
        assert chain.block(block.hash) == block


def test_a_heavier_branch_with_an_invalid_ancestor_is_marked_invalid_from_it(chain: ChainState) -> None:
    fork = chain.header(chain.tip_header.parent)
    bad = forge_block(chain, fork, miner=BOB, state_root=bytes(32))
    assert not import_block(chain, bad).tip_changed  # as light as the tip: stored, not connected
    assert chain.meta(bad.hash).status is BlockStatus.STORED
    heavier = forge_block(chain, bad.header, miner=BOB)
    error = rejected(chain, heavier)
    expect(error, "bad-prevblk")
    assert error.detail == f"ancestor {bad.hash.hex()[:16]} failed: bad-state-root"
    assert_kept_invalid(chain, bad, heavier)


def test_bad_height(chain: ChainState) -> None:
    block = forge_block(chain, chain.tip_header, height=chain.height + 2)
    expect(rejected(chain, block), "bad-height")


def test_bad_diffbits_against_asert(chain: ChainState) -> None:
    # canonical and under the limit, so the header alone passes; ASERT wants the limit here
    block = forge_block(chain, chain.tip_header, bits=0x2000FFFF)
    check_header(block.header, chain.params)
    expect(rejected(chain, block), "bad-diffbits")


def test_time_too_old(chain: ChainState) -> None:
    stamps = chain.recent_timestamps(chain.tip_header, chain.params.median_time_span)
    median = sorted(stamps)[(len(stamps) - 1) // 2]
    block = forge_block(chain, chain.tip_header, timestamp=median)
    expect(rejected(chain, block), "time-too-old")
    on_time = make_block(chain, offset=-1000)  # the earliest timestamp allowed
    assert on_time.header.timestamp == median + 1
    assert import_block(chain, on_time).tip_changed


def test_time_too_new(chain: ChainState) -> None:
    block = make_block(chain)
    now = block.header.timestamp - chain.params.max_future_drift - 1
    expect(rejected(chain, block, now=now), "time-too-new", RejectKind.MISSING)
    assert chain.process_block(block, now + 1).tip_changed  # a little later it is fine


# ---- state transition ----------------------------------------------------------------------


def test_nonce_too_low(chain: ChainState) -> None:
    tx = signed_transfer(chain.chain_id, ALICE, BOB, 5, 0)
    expect(rejected(chain, forge_block(chain, chain.tip_header, [tx])), "nonce-too-low")


def test_nonce_gap(chain: ChainState) -> None:
    tx = signed_transfer(chain.chain_id, ALICE, BOB, 5, 3)
    expect(rejected(chain, forge_block(chain, chain.tip_header, [tx])), "nonce-gap")


def test_insufficient_balance(chain: ChainState) -> None:
    balance = chain.account(account_of(ALICE))
    assert balance is not None
    tx = transfers(chain, ALICE, BOB, [balance.balance])[0]  # the fee no longer fits
    expect(rejected(chain, forge_block(chain, chain.tip_header, [tx])), "insufficient-balance")


def test_mempool_kinds_of_nonce_errors() -> None:
    account = Account(balance=100, nonce=4)
    cases = [(3, "nonce-too-low", RejectKind.STALE), (5, "nonce-gap", RejectKind.MISSING)]
    for nonce, reason, kind in cases:
        tx = signed_transfer(bytes(32), ALICE, BOB, 1, nonce, fee=1)
        with pytest.raises(InvalidTransaction) as info:
            check_tx_against_state(tx, account)
        expect(info.value, reason, kind)
        assert (info.value.expected, info.value.got) == (4, nonce)  # the nonce due, the one sent


class _Accounts:
    """A state reader over a dict: apply_block is pure, so any reader will do."""

    def __init__(self, accounts: dict[bytes, Account]) -> None:
        self.accounts = accounts

    def account(self, account_id: bytes) -> Account | None:
        return self.accounts.get(account_id)


def test_balance_overflow(chain: ChainState) -> None:
    # Unreachable from a consistent state (balances sum to the supply, which is capped), so
    # apply_block gets a reader in which bob already holds the maximum.
    reader = _Accounts({account_of(ALICE): Account(10**12, 2), BOB: Account(MAX_SUPPLY_UNITS, 0)})
    tx = signed_transfer(chain.chain_id, ALICE, BOB, 1, 2)
    block = forge_block(chain, chain.tip_header, [tx])
    with pytest.raises(InvalidBlock) as info:
        apply_block(chain.params, reader, block, chain.supply)
    expect(info.value, "balance-overflow")


def test_supply_overflow() -> None:
    genesis, _ = funded_genesis(1, str(MAX_SUPPLY_UNITS // 10**9))
    chain = new_chain(genesis)
    expect(rejected(chain, forge_block(chain, chain.tip_header)), "supply-overflow")


def test_bad_state_root(chain: ChainState) -> None:
    good = make_block(chain, transfers(chain, ALICE, BOB, [5]))
    bad = reseal(good, state_root=bytes(32))
    expect(rejected(chain, bad), "bad-state-root")
    assert_kept_invalid(chain, bad)
    assert import_block(chain, good).tip_changed


# ---- already known -------------------------------------------------------------------------


def test_duplicate(chain: ChainState) -> None:
    tip_block = chain.block(chain.tip_hash)
    expect(rejected(chain, tip_block), "duplicate", RejectKind.STALE, detail="block already known")


def test_duplicate_of_a_side_block(chain: ChainState) -> None:
    side = forge_block(chain, chain.header(chain.tip_header.parent), miner=BOB)
    assert import_block(chain, side) == ImportResult(side.hash, side.header.height, tip_changed=False)
    expect(rejected(chain, side), "duplicate", RejectKind.STALE, detail="block already known")


def test_duplicate_invalid(chain: ChainState) -> None:
    bad = forge_block(chain, chain.tip_header, state_root=bytes(32))
    expect(rejected(chain, bad), "bad-state-root")
    expect(rejected(chain, bad), "duplicate-invalid", detail="block was rejected before")


# ---- exact edges ---------------------------------------------------------------------------


def test_a_block_of_exactly_max_block_bytes_passes() -> None:
    genesis, _ = funded_genesis(1, max_block_bytes=600)
    chain = new_chain(genesis)
    block = forge_block(chain, chain.tip_header)
    chain.check_block_alone(block, encoded_size=600)
    with pytest.raises(InvalidBlock, match="block-too-large"):
        chain.check_block_alone(block, encoded_size=601)


def test_the_genesis_header_carries_no_proof_of_work() -> None:
    # a real target that genesis's hash does not meet: stage 1 exempts height 0, whose hash is
    # fixed by the network's genesis file, not mined
    genesis, _ = funded_genesis(1, genesis_bits="1f00ffff")
    header = genesis.block.header
    assert header.height == 0 and not meets_target(header.hash, header.bits)
    check_header(header, genesis.params)
    with pytest.raises(InvalidBlock, match="high-hash"):
        check_header(replace(header, height=1), genesis.params)


def test_a_bad_signature_under_an_invalid_parent_is_refused_for_its_signature(chain: ChainState) -> None:
    # stage 2 runs before the parent is looked at: the block is judged by its own bytes first,
    # and like any block failing stage 2 it is not stored, not even as invalid
    bad = forge_block(chain, chain.tip_header, state_root=bytes(32))
    expect(rejected(chain, bad), "bad-state-root")
    tx = transfers(chain, ALICE, BOB, [5])[0]
    forged = Transaction(tx.chain_id, tx.sender, tx.nonce, tx.fee, tx.payload, bytes(64))
    child = forge_block(chain, bad.header, [forged])
    expect(rejected(chain, child), "bad-tx-signature")
    assert not chain.has_block(child.hash)


def test_median_time_past_spans_exactly_the_last_eleven_blocks() -> None:
    # Block 3 is stamped far ahead and its successors on schedule, so they are stamped before
    # their parents. Once block 3 is the oldest of the last eleven, it is their largest timestamp:
    # a window one block longer or shorter would have a lower median.
    chain = new_chain()
    mine_blocks(chain, 2)
    mine_blocks(chain, 1, offset=100)
    mine_blocks(chain, 10)
    assert chain.height == 13
    span = chain.params.median_time_span
    stamps = chain.recent_timestamps(chain.tip_header, span)
    assert len(stamps) == span == 11 and stamps[0] == max(stamps)
    mtp = sorted(stamps)[5]
    assert sorted(chain.recent_timestamps(chain.tip_header, span + 1))[5] < mtp
    assert sorted(stamps[1:])[4] < mtp

    expect(rejected(chain, forge_block(chain, chain.tip_header, timestamp=mtp)), "time-too-old")
    expect(rejected(chain, forge_block(chain, chain.tip_header, timestamp=mtp - 1)), "time-too-old")
    parent_time = chain.tip_header.timestamp
    earliest = make_block(chain, offset=mtp + 1 - block_time(chain, chain.tip_header))
    assert earliest.header.timestamp == mtp + 1 < parent_time  # before its parent, after the median
    assert import_block(chain, earliest).tip_changed


# ---- what each rejection tells the peer: the reason, then what was expected and what came -----


def told(check: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(InvalidBlock) as info:
        check(*args, **kwargs)
    return str(info.value)


def test_header_rejections_say_what_was_expected(chain: ChainState) -> None:
    params, tip = chain.params, chain.tip_header
    header = make_block(chain).header
    assert told(check_header, replace(header, version=2), params) == f"bad-version (expected {BLOCK_VERSION}, got 2)"
    assert told(check_header, replace(header, bits=0x2200FFFF), params) \
        == "bad-diffbits: target not canonical or above the limit (got '0x2200ffff')"

    stamps = chain.recent_timestamps(tip, params.median_time_span)
    mtp = median_time_past(stamps)

    def in_context(now: int | None = None, parent: Header = tip, **fields: Any) -> str:
        child = forge_block(chain, tip, **fields).header
        return told(check_header_context, child, parent, stamps, params, child.timestamp if now is None else now)

    assert in_context(parent=chain.header(tip.parent)) == "bad-prevblk: parent hash does not match"
    assert in_context(height=tip.height + 2) == f"bad-height (expected {tip.height + 1}, got {tip.height + 2})"
    assert in_context(bits=0x2000FFFF) == (f"bad-diffbits: target does not follow ASERT "
                                           f"(expected '{hex(expected_bits(params, tip))}', got '0x2000ffff')")
    assert in_context(timestamp=mtp) == (f"time-too-old: not after the median of the last blocks "
                                         f"(expected '> {mtp}', got {mtp})")
    late = header.timestamp
    assert in_context(now=late - params.max_future_drift - 1, timestamp=late) == (
        f"time-too-new: too far in the future (expected '<= {late - 1}', got {late})")


def test_block_rejections_say_what_was_expected(chain: ChainState) -> None:
    params, tip = chain.params, chain.tip_header
    tx1, tx2 = transfers(chain, ALICE, BOB, [5, 6])
    block = forge_block(chain, tip, [tx1, tx2])
    limit = params.max_block_bytes
    check_block_contents(block, params, chain.chain_id, encoded_size=limit)  # the limit itself is fine
    assert told(check_block_contents, block, params, chain.chain_id, encoded_size=limit + 1) \
        == f"block-too-large (expected '<= {limit}', got {limit + 1})"
    check_block_contents(block, replace(params, max_block_txs=2), chain.chain_id)
    assert told(check_block_contents, block, replace(params, max_block_txs=1), chain.chain_id) \
        == "too-many-txs (expected '<= 1', got 2)"
    swapped = Block(block.header, block.txs[::-1])
    assert told(check_block_contents, swapped, params, chain.chain_id) \
        == "bad-txnmrklroot: transaction root does not match"
    assert told(check_block_contents, forge_block(chain, tip, [tx1, tx1]), params, chain.chain_id) \
        == "bad-txns-duplicate: a transaction appears twice"
    stray = signed_transfer(bytes(32), ALICE, BOB, 5, 4)
    assert told(check_block_contents, forge_block(chain, tip, [tx1, stray]), params, chain.chain_id) \
        == f"bad-tx-chain-id: tx 1 (expected '{chain.chain_id.hex()}', got '{bytes(32).hex()}')"
