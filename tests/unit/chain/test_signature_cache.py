"""check_block skips the signature check only for transaction ids its caller already verified."""

from __future__ import annotations

import dataclasses

import pytest

from chain.errors import InvalidBlock
from chain.validation import check_block
from tests.support.chain_builders import (
    account_of,
    funded_genesis,
    make_block,
    new_chain,
    signed_transfer,
)


def test_unverified_bad_signature_rejected_and_cached_ids_skipped():
    genesis, seeds = funded_genesis(2)
    chain = new_chain(genesis)
    good = signed_transfer(chain.chain_id, seeds[0], account_of(seeds[1]), 5, 0)
    forged = dataclasses.replace(
        signed_transfer(chain.chain_id, seeds[1], account_of(seeds[0]), 5, 0), signature=bytes(64)
    )
    block = make_block(chain, [good, forged])
    with pytest.raises(InvalidBlock) as info:
        check_block(block, chain.params, chain.chain_id, verified={good.txid})
    assert info.value.reason == "bad-tx-signature" and "tx 1" in info.value.detail
    # ids the caller vouches for are not checked again (a mempool only holds verified ones)
    check_block(block, chain.params, chain.chain_id, verified={forged.txid})


def test_check_block_alone_uses_the_chain_id_and_the_nodes_verified_ids():
    """`ChainState.check_block_alone` (a block announced before its parent arrived) checks with
    the chain's own id and trusts the ids its node verified (`verified_txids`, the mempool)."""
    genesis, seeds = funded_genesis(2)
    chain = new_chain(genesis)
    good = signed_transfer(chain.chain_id, seeds[0], account_of(seeds[1]), 5, 0)
    chain.check_block_alone(make_block(chain, [good]))
    forged = dataclasses.replace(
        signed_transfer(chain.chain_id, seeds[1], account_of(seeds[0]), 5, 0), signature=bytes(64)
    )
    block = make_block(chain, [good, forged])
    with pytest.raises(InvalidBlock) as info:
        chain.check_block_alone(block)
    assert info.value.reason == "bad-tx-signature" and "tx 1" in info.value.detail
    chain.verified_txids = {forged.txid}
    chain.check_block_alone(block)
    foreign = signed_transfer(bytes(32), seeds[0], account_of(seeds[1]), 5, 0)
    with pytest.raises(InvalidBlock) as info:
        chain.check_block_alone(make_block(chain, [foreign]))
    assert info.value.reason == "bad-tx-chain-id"
