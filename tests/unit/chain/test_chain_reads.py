"""The chain state's read side: locators, headers after a locator, tx locations and history."""

from __future__ import annotations

import pytest

from chain import schema
from chain.chainstate import ChainState
from chain.devnet_keys import devnet_seed
from chain.errors import ChainError, RejectKind
from tests.support.chain_builders import (
    account_of,
    chain_split,
    import_all,
    make_block,
    mine_blocks,
    new_chain,
    transfers,
)

ALICE = devnet_seed("alice")
BOB = account_of(devnet_seed("bob"))
CAROL = account_of(devnet_seed("carol"))


@pytest.fixture(scope="module")
def tall_chain() -> ChainState:
    chain = new_chain()
    mine_blocks(chain, 40)
    return chain


def test_locator_is_dense_then_sparse_and_ends_at_genesis(tall_chain: ChainState) -> None:
    heights = [tall_chain.meta(h).height for h in tall_chain.locator()]
    assert heights[:10] == list(range(40, 30, -1))
    assert heights[9:] == [31, 29, 25, 17, 1, 0]  # then steps of 2, 4, 8, 16, and genesis
    assert len(heights) < 20


def test_locator_of_a_fresh_chain_is_genesis() -> None:
    chain = new_chain()
    assert chain.locator() == [chain.genesis.chain_id]


def test_headers_after_a_locator(tall_chain: ChainState) -> None:
    at_25 = tall_chain.hash_at(25)
    assert at_25 is not None
    headers = tall_chain.headers_after([bytes(32), at_25], limit=5)
    assert [h.height for h in headers] == [26, 27, 28, 29, 30]
    assert headers[0].parent == at_25
    assert tall_chain.headers_after([tall_chain.tip_hash], limit=5) == []
    everything = tall_chain.headers_after([], limit=1000)
    assert [h.height for h in everything] == list(range(41))


def test_headers_after_stops_where_the_height_index_ends() -> None:
    # another thread's reorg can take heights off the index while a peer is served: the answer
    # is the headers before the gap, never a header of another branch or an error
    chain = new_chain()
    mine_blocks(chain, 6)
    chain.kv.commit({schema.height_key(4): None}, sync=False)
    assert [h.height for h in chain.headers_after([chain.genesis.chain_id], limit=10)] == [1, 2, 3]


def test_headers_after_a_locator_on_a_losing_branch() -> None:
    chain = new_chain()
    mine_blocks(chain, 3)
    split = chain_split(chain, 2, 3)
    import_all(chain, split.a + split.b)
    # a peer on branch a sends its locator: we answer from the fork point on our main chain
    locator = [split.a[-1].hash, split.a[0].hash, split.fork.hash]
    headers = chain.headers_after(locator, limit=10)
    assert [h.hash for h in headers] == [b.hash for b in split.b]


def test_unknown_block_reads_say_so() -> None:
    chain = new_chain()
    for read in (chain.header, chain.meta, chain.block):
        with pytest.raises(ChainError) as info:
            read(bytes(32))
        assert (info.value.reason, info.value.kind) == ("unknown-block", RejectKind.MISSING)
    assert chain.block_bytes(bytes(32)) is None
    assert chain.hash_at(-1) is None
    assert chain.hash_at(1) is None


def test_tx_location_and_history_follow_the_main_chain() -> None:
    chain = new_chain()
    mine_blocks(chain, 1)
    to_bob = transfers(chain, ALICE, BOB, [11, 12])
    to_carol = transfers(chain, ALICE, CAROL, [13])
    split = chain_split(chain, 1, 2, a_txs=to_bob, b_txs=to_carol)
    import_all(chain, split.a)
    bob_history = chain.history(BOB)
    assert [(height, position) for height, position, _ in bob_history] == [(2, 1), (2, 0)]
    assert [txid for _, _, txid in bob_history] == [to_bob[1].txid, to_bob[0].txid]
    assert len(chain.history(account_of(ALICE))) == 2
    assert chain.history(BOB, limit=1) == bob_history[:1]
    import_all(chain, split.b)  # the reorg takes bob's transfers off the main chain
    assert chain.history(BOB) == []
    assert chain.tx_location(to_bob[0].txid) is None
    assert chain.history(CAROL) == [(2, 0, to_carol[0].txid)]
    assert chain.tx_location(to_carol[0].txid) == (split.b[0].hash, 0)
    assert [txid for _, _, txid in chain.history(account_of(ALICE))] == [to_carol[0].txid]


def test_history_is_the_newest_hundred_unless_asked_for_more() -> None:
    chain = new_chain()
    mine_blocks(chain, 1)
    sent = transfers(chain, ALICE, BOB, [1] * 101)
    import_all(chain, [make_block(chain, sent)])
    newest_first = [(2, position, tx.txid) for position, tx in reversed(list(enumerate(sent)))]
    assert chain.history(BOB) == newest_first[:100]
    assert chain.history(BOB, limit=101) == newest_first
