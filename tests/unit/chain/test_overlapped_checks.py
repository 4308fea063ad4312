"""Block import with its signature checks in worker processes, overlapping the state transition.

Whatever the overlap, the outcome must be the one of the stages run in order: a bad signature is
the reason even when the block is also wrong in a later stage, and nothing is stored for it.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import pytest

from chain.chainstate import ChainState
from chain.errors import InvalidBlock
from chain.sigpool import SignaturePool
from chain.types import Transaction
from tests.support.chain_builders import (
    account_of,
    forge_block,
    funded_genesis,
    import_block,
    make_block,
    new_chain,
    signed_transfer,
)

SENDERS = 80  # over the 64 signatures below which checks run inline


@pytest.fixture(scope="module", params=["signature-pool", "process-executor"])
def pool(request: pytest.FixtureRequest) -> Iterator[SignaturePool | ProcessPoolExecutor]:
    """The daemon's own pool, and a plain executor (the interface `ChainState` also takes)."""
    if request.param == "signature-pool":
        workers = SignaturePool(2)
        yield workers
        workers.close()
    else:
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as executor:
            yield executor


@pytest.fixture
def network() -> tuple[ChainState, ChainState, list[bytes]]:
    """The same fresh chain twice: on the process pool, and checking inline."""
    genesis, seeds = funded_genesis(SENDERS)
    return new_chain(genesis), new_chain(genesis), seeds


def _transfers(chain: ChainState, seeds: list[bytes], amount: int = 5) -> list[Transaction]:
    return [
        signed_transfer(chain.chain_id, seed, account_of(seeds[(i + 1) % len(seeds)]), amount, 0)
        for i, seed in enumerate(seeds)
    ]


def _forged(tx: Transaction) -> Transaction:
    return dataclasses.replace(tx, signature=bytes(64))


def test_valid_block_imports_with_checks_on_processes(network, pool) -> None:
    reference, _, seeds = network
    chain = new_chain(reference.genesis, pool=pool)
    block = make_block(chain, _transfers(chain, seeds))
    assert import_block(chain, block).tip_changed
    assert import_block(reference, block).tip_changed
    assert chain.state_root() == reference.state_root() == block.header.state_root


def test_bad_signature_wins_over_a_later_stage_failure(network, pool) -> None:
    reference, _, seeds = network
    chain = new_chain(reference.genesis, pool=pool)
    txs = _transfers(chain, seeds)
    txs[70] = _forged(txs[70])
    # wrong state root as well: stage 4 would fail too, after the signatures' stage 2
    block = forge_block(chain, chain.tip_header, txs, state_root=bytes(32))
    for target in (chain, reference):
        with pytest.raises(InvalidBlock) as info:
            import_block(target, block)
        assert info.value.reason == "bad-tx-signature" and "tx 70" in info.value.detail
        assert not target.has_block(block.hash)
        assert target.height == 0


def test_bad_signature_on_an_orphan_is_reported_before_the_missing_parent(network, pool) -> None:
    reference, _, seeds = network
    chain = new_chain(reference.genesis, pool=pool)
    txs = _transfers(chain, seeds)
    txs[3] = _forged(txs[3])
    header = dataclasses.replace(chain.tip_header, parent=bytes(32))
    block = forge_block(chain, header, txs)
    with pytest.raises(InvalidBlock) as info:
        import_block(chain, block)
    assert info.value.reason == "bad-tx-signature"


def test_state_failure_with_good_signatures_keeps_its_reason(network, pool) -> None:
    reference, _, seeds = network
    chain = new_chain(reference.genesis, pool=pool)
    txs = _transfers(chain, seeds, amount=10**30 // 10**12)  # more than each account holds
    block = forge_block(chain, chain.tip_header, txs)
    with pytest.raises(InvalidBlock) as info:
        import_block(chain, block)
    assert info.value.reason == "insufficient-balance"
    assert chain.height == 0


def test_side_branch_block_with_bad_signature_is_not_stored(network, pool) -> None:
    reference, _, seeds = network
    chain = new_chain(reference.genesis, pool=pool)
    first = make_block(chain, _transfers(chain, seeds)[:1])
    import_block(chain, first)
    genesis_header = chain.header(first.header.parent)
    txs = _transfers(chain, seeds)
    txs[0] = _forged(txs[0])
    rival = forge_block(chain, genesis_header, txs, timestamp=first.header.timestamp + 1)
    with pytest.raises(InvalidBlock) as info:
        import_block(chain, rival)
    assert info.value.reason == "bad-tx-signature"
    assert not chain.has_block(rival.hash) and chain.tip_hash == first.hash
