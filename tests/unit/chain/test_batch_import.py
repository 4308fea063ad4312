"""Batch import (`process_blocks`): the next blocks' signature checks are queued on the pool while
each block connects, yet every outcome is the one of importing the blocks one by one."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from chain.chainstate import ChainState, ImportResult
from chain.errors import ChainError, InvalidBlock, RejectKind
from chain.sigpool import SignaturePool
from chain.types import Block, Transaction
from tests.support.chain_builders import (
    account_of,
    forge_block,
    funded_genesis,
    import_block,
    make_block,
    new_chain,
    signed_transfer,
)

SENDERS = 70  # over the 64 signatures below which checks run inline
BLOCKS = 5


@pytest.fixture(scope="module")
def pool() -> Iterator[SignaturePool]:
    workers = SignaturePool(2)
    yield workers
    workers.close()


@pytest.fixture(scope="module")
def built() -> tuple[ChainState, list[Block], list[bytes]]:
    """A chain of `BLOCKS` blocks of `SENDERS` transfers each, built and checked inline."""
    genesis, seeds = funded_genesis(SENDERS)
    builder = new_chain(genesis)
    blocks = []
    for nonce in range(BLOCKS):
        block = make_block(builder, _transfers(builder, seeds, nonce))
        import_block(builder, block)
        blocks.append(block)
    return builder, blocks, seeds


def _transfers(chain: ChainState, seeds: list[bytes], nonce: int) -> list[Transaction]:
    return [
        signed_transfer(chain.chain_id, seed, account_of(seeds[(i + 1) % len(seeds)]), 5 + nonce, nonce)
        for i, seed in enumerate(seeds)
    ]


def _results(outcomes: list[ImportResult | ChainError]) -> list[ImportResult]:
    assert all(isinstance(outcome, ImportResult) for outcome in outcomes), outcomes
    return outcomes  # type: ignore[return-value]


def test_a_batch_imports_to_the_same_state_as_one_by_one(built, pool) -> None:
    builder, blocks, _ = built
    chain = new_chain(builder.genesis, pool=pool)
    results = _results(chain.process_blocks(blocks, blocks[-1].header.timestamp, lookahead=2))
    assert [result.block_hash for result in results] == [block.hash for block in blocks]
    assert all(result.tip_changed for result in results)
    assert chain.tip_hash == builder.tip_hash and chain.state_root() == builder.state_root()
    assert pool._outstanding == 0 and pool._owner is None  # every queued check was collected


def test_a_bad_signature_stops_the_batch_at_its_own_block(built, pool) -> None:
    builder, blocks, seeds = built
    chain = new_chain(builder.genesis, pool=pool)
    chain.process_blocks(blocks[:2], blocks[1].header.timestamp)
    txs = _transfers(chain, seeds, 2)
    txs[40] = dataclasses.replace(txs[40], signature=bytes(64))
    forged = forge_block(chain, blocks[1].header, txs, state_root=blocks[2].header.state_root)
    batch = [forged, *blocks[2:]]  # the valid blocks after it would be checked already
    outcomes = chain.process_blocks(batch, blocks[-1].header.timestamp)
    assert len(outcomes) == 1
    error = outcomes[0]
    assert isinstance(error, InvalidBlock) and error.reason == "bad-tx-signature" and "tx 40" in error.detail
    assert chain.tip_hash == blocks[1].hash and not chain.has_block(forged.hash)
    assert not any(chain.has_block(block.hash) for block in blocks[2:])
    assert pool._outstanding == 0
    _results(chain.process_blocks(blocks[2:], blocks[-1].header.timestamp))  # the pool still works
    assert chain.tip_hash == builder.tip_hash


def test_a_stage_two_failure_found_while_queueing_keeps_its_place(built, pool) -> None:
    builder, blocks, _ = built
    chain = new_chain(builder.genesis, pool=pool)
    broken = forge_block(chain, blocks[0].header, blocks[1].txs, tx_root=bytes(32))
    outcomes = chain.process_blocks([blocks[0], broken, *blocks[1:]], blocks[-1].header.timestamp)
    assert len(outcomes) == 2 and isinstance(outcomes[0], ImportResult)
    assert isinstance(outcomes[1], InvalidBlock) and outcomes[1].reason == "bad-txnmrklroot"
    assert chain.tip_hash == blocks[0].hash and pool._outstanding == 0


def test_known_and_repeated_blocks_are_stale_not_fatal(built, pool) -> None:
    builder, blocks, _ = built
    chain = new_chain(builder.genesis, pool=pool)
    import_block(chain, blocks[0])
    outcomes = chain.process_blocks([blocks[0], blocks[1], blocks[1], blocks[2]], blocks[2].header.timestamp)
    kinds = [outcome.kind if isinstance(outcome, ChainError) else "ok" for outcome in outcomes]
    assert kinds == [RejectKind.STALE, "ok", RejectKind.STALE, "ok"]
    assert chain.tip_hash == blocks[2].hash and chain.state_root() == blocks[2].header.state_root


def test_encoded_blocks_are_decoded_in_the_pipeline_and_junk_ends_the_batch(built, pool) -> None:
    builder, blocks, _ = built
    chain = new_chain(builder.genesis, pool=pool)
    batch = [blocks[0].encode(), b"\xc1 not a block", blocks[1].encode()]
    outcomes = chain.process_blocks(batch, blocks[-1].header.timestamp)
    assert len(outcomes) == 2 and isinstance(outcomes[0], ImportResult)
    assert isinstance(outcomes[1], ChainError) and outcomes[1].kind is RejectKind.MALFORMED
    assert chain.tip_hash == blocks[0].hash and pool._outstanding == 0
