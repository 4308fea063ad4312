"""Fork choice and reorgs, on the in-memory store and on LevelDB.

After every switch the chain's state must equal a from-genesis replay of the winning branch
(accounts, state root, supply, tx index), and a losing branch's transactions must be gone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from chain import schema
from chain.chainstate import BlockStatus, ChainState, ImportResult
from chain.devnet_keys import devnet_seed
from chain.errors import InvalidBlock, StoreError
from chain.pow import work_of
from chain.store import KV, LevelKV, MemoryKV
from tests.support.chain_builders import (
    account_of,
    chain_split,
    clone_chain,
    forge_block,
    funded_genesis,
    import_all,
    main_chain,
    mine_blocks,
    new_chain,
    transfers,
)

ALICE = devnet_seed("alice")
BOB = account_of(devnet_seed("bob"))
CAROL = account_of(devnet_seed("carol"))

KVFactory = Callable[[], KV]


@pytest.fixture(params=["memory", "leveldb"])
def make_kv(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KVFactory]:
    opened: list[KV] = []

    def factory() -> KV:
        kv: KV = MemoryKV() if request.param == "memory" else LevelKV(tmp_path / f"db{len(opened)}")
        opened.append(kv)
        return kv

    yield factory
    for kv in opened:
        kv.close()


def assert_equals_replay(chain: ChainState) -> None:
    """The chain's state is what replaying its main chain from genesis gives."""
    replay = clone_chain(chain)
    assert replay.tip_hash == chain.tip_hash
    assert dict(chain.accounts()) == dict(replay.accounts())
    assert chain.state_root() == replay.state_root() == chain.tip_header.state_root
    assert chain.state_root() == chain.state_root_from_scratch()
    assert chain.supply == replay.supply
    indexed = {key[1:] for key, _ in chain.kv.iterate(schema.TX_INDEX)}
    assert indexed == {tx.txid for block in main_chain(chain) for tx in block.txs}


def balance(chain: ChainState, account: bytes) -> int:
    found = chain.account(account)
    return found.balance if found is not None else 0


def test_heavier_branch_wins_and_a_double_spend_is_undone(make_kv: KVFactory) -> None:
    chain = new_chain(kv=make_kv())
    mine_blocks(chain, 2)
    alice_balance = balance(chain, account_of(ALICE))
    # The same nonce of alice's, spent to bob on branch a and to carol on branch b.
    to_bob = transfers(chain, ALICE, BOB, [700_000])
    to_carol = transfers(chain, ALICE, CAROL, [900_000])
    split = chain_split(chain, 2, 3, a_txs=to_bob, b_txs=to_carol)

    results = import_all(chain, split.a)
    assert all(r.tip_changed for r in results)
    assert chain.tx_location(to_bob[0].txid) == (split.a[0].hash, 0)
    bob_before = balance(chain, BOB)

    results = import_all(chain, split.b)
    assert [r.tip_changed for r in results] == [False, False, True]
    switch = results[-1]
    assert [b.hash for b in switch.disconnected] == [b.hash for b in split.a[::-1]]
    assert [b.hash for b in switch.connected] == [b.hash for b in split.b]
    assert chain.tip_hash == split.b[-1].hash
    assert chain.tx_location(to_bob[0].txid) is None
    assert chain.tx_location(to_carol[0].txid) == (split.b[0].hash, 0)
    assert balance(chain, BOB) == bob_before - 700_000
    assert balance(chain, account_of(ALICE)) == alice_balance - 900_000 - to_carol[0].fee
    assert all(chain.meta(b.hash).status is BlockStatus.CONNECTED for b in split.a + split.b)
    assert chain.hash_at(chain.height + 1) is None
    assert_equals_replay(chain)


def test_equal_work_keeps_the_first_seen_tip(make_kv: KVFactory) -> None:
    chain = new_chain(kv=make_kv())
    split = chain_split(chain, 2, 2)
    import_all(chain, split.a)
    results = import_all(chain, split.b)
    assert not any(r.tip_changed for r in results)
    assert chain.tip_hash == split.a[-1].hash
    assert chain.meta(split.b[-1].hash).status is BlockStatus.STORED
    assert_equals_replay(chain)


def test_switching_back_when_the_other_branch_grows(make_kv: KVFactory) -> None:
    chain = new_chain(kv=make_kv())
    mine_blocks(chain, 1)
    split = chain_split(
        chain, 1, 2,
        a_txs=transfers(chain, ALICE, BOB, [1, 2, 3]),
        b_txs=transfers(chain, ALICE, CAROL, [4]),
    )
    import_all(chain, split.a + split.b)
    assert chain.tip_hash == split.b[-1].hash
    assert chain.tx_location(split.a[0].txs[0].txid) is None
    # branch a's miner, a node that never saw b, keeps going: two more blocks outweigh b
    miner_a = new_chain(chain.genesis)
    import_all(miner_a, main_chain(chain)[:1] + split.a)
    extension = mine_blocks(miner_a, 2)
    results = import_all(chain, extension)
    assert [r.tip_changed for r in results] == [False, True]
    assert [b.hash for b in results[-1].disconnected] == [b.hash for b in split.b[::-1]]
    assert [b.hash for b in results[-1].connected] == [b.hash for b in split.a + extension]
    assert chain.tip_hash == miner_a.tip_hash == extension[-1].hash
    assert dict(chain.accounts()) == dict(miner_a.accounts())
    assert all(chain.tx_location(tx.txid) is not None for tx in split.a[0].txs)
    assert chain.tx_location(split.b[0].txs[0].txid) is None
    assert_equals_replay(chain)


def test_branch_with_a_bad_state_root_is_marked_invalid_and_the_old_tip_stays(
    make_kv: KVFactory,
) -> None:
    chain = new_chain(kv=make_kv())
    mine_blocks(chain, 1)
    split = chain_split(chain, 2, 1, a_txs=transfers(chain, ALICE, BOB, [10]))
    import_all(chain, split.a)
    tip, root, accounts = chain.tip_hash, chain.state_root(), dict(chain.accounts())
    # branch b: a good block, then one whose state root lies, then a child of the liar
    good = split.b[0]
    liar = forge_block(chain, good.header, state_root=bytes(32))
    child = forge_block(chain, liar.header)
    assert not import_all(chain, [good, liar])[-1].tip_changed  # equal work: stored only
    with pytest.raises(InvalidBlock) as info:
        chain.process_block(child, child.header.timestamp)
    assert info.value.reason == "bad-prevblk"
    assert "bad-state-root" in str(info.value)
    assert chain.tip_hash == tip
    assert chain.state_root() == root
    assert dict(chain.accounts()) == accounts
    assert chain.meta(liar.hash).status is BlockStatus.INVALID
    assert chain.meta(child.hash).status is BlockStatus.INVALID
    assert chain.meta(good.hash).status is BlockStatus.STORED
    with pytest.raises(InvalidBlock, match="duplicate-invalid"):
        chain.process_block(child, child.header.timestamp)
    grandchild = forge_block(chain, child.header)
    with pytest.raises(InvalidBlock, match="bad-prevblk"):
        chain.process_block(grandchild, grandchild.header.timestamp)
    assert_equals_replay(chain)


def test_state_survives_reopening_after_a_reorg(tmp_path: Path) -> None:
    kv = LevelKV(tmp_path / "db")
    chain = new_chain(kv=kv)
    split = chain_split(chain, 1, 2, a_txs=transfers(chain, ALICE, BOB, [5]))
    import_all(chain, split.a + split.b)
    tip, root = chain.tip_hash, chain.state_root()
    kv.close()
    reopened = new_chain(kv=LevelKV(tmp_path / "db"))
    try:
        assert reopened.tip_hash == tip
        assert reopened.state_root() == root
        assert_equals_replay(reopened)
    finally:
        reopened.kv.close()


def test_a_database_of_another_network_is_refused() -> None:
    kv = MemoryKV()
    ours = new_chain(kv=kv).chain_id
    other = funded_genesis(1)[0]
    with pytest.raises(StoreError) as refused:
        new_chain(other, kv=kv)
    assert (refused.value.reason, refused.value.detail) == (
        "wrong-network", f"database holds chain {ours.hex()[:16]}, expected {other.chain_id.hex()[:16]}")


def test_a_database_of_an_older_layout_is_refused_with_advice() -> None:
    kv = MemoryKV()
    new_chain(kv=kv)
    assert kv.get(schema.FORMAT) == bytes([schema.FORMAT_VERSION])  # one byte
    for stored, version in ((None, 1), (bytes([schema.FORMAT_VERSION + 1]), schema.FORMAT_VERSION + 1)):
        kv.commit({schema.FORMAT: stored}, sync=True)  # None: as written before layout versions existed
        with pytest.raises(StoreError) as refused:
            new_chain(kv=kv)
        assert (refused.value.reason, refused.value.detail) == (
            "store-format",
            (f"database layout version {version}, this neurod reads version {schema.FORMAT_VERSION}:"
             " move the chain directory aside and let the node sync again"),
        )


def test_a_database_with_no_tip_is_refused() -> None:
    kv = MemoryKV()
    new_chain(kv=kv)
    kv.commit({schema.TIP: None}, sync=True)
    with pytest.raises(StoreError) as refused:
        new_chain(kv=kv)
    assert (refused.value.reason, refused.value.detail) == ("store-corrupt", "no tip recorded")


def test_the_supply_row_is_16_bytes_big_endian_through_blocks_and_reorgs() -> None:
    """The store's layout, pinned: what a node of this format version wrote is what another
    reads (a row of another width would read back the same here, and not in a tool or a port)."""
    chain = new_chain()
    assert chain.kv.get(schema.SUPPLY) == chain.genesis.supply.to_bytes(16, "big")
    split = chain_split(chain, 1, 2)
    for block in split.a + split.b:  # the second block of b reorgs: a's block is undone
        import_all(chain, [block])
        assert chain.kv.get(schema.SUPPLY) == chain.supply.to_bytes(16, "big")
    assert chain.supply == chain.genesis.supply + sum(chain.params.block_reward(h) for h in (1, 2))


class SyncRecordingKV(MemoryKV):
    """A MemoryKV that records whether each commit asked to be synced to disk."""

    def __init__(self) -> None:
        super().__init__()
        self.syncs: list[bool] = []

    def commit(self, writes: Mapping[bytes, bytes | None], *, sync: bool) -> None:
        self.syncs.append(sync)
        super().commit(writes, sync=sync)


def test_what_moves_the_tip_is_synced_and_a_side_block_is_not() -> None:
    """A commit that moves the tip (genesis, a block, a reorg) is synced: after a power cut the
    node must not restart behind what it told its peers. A side block that moves nothing is
    not (it can be fetched again), which keeps a flood of side blocks cheap."""
    kv = SyncRecordingKV()
    chain = new_chain(kv=kv)
    assert kv.syncs == [True]
    split = chain_split(chain, 1, 2)
    results = [import_all(chain, [block])[0] for block in split.a + split.b]
    assert kv.syncs == [True, True, False, True]
    a, (b1, b2) = split.a[0], split.b
    assert results == [
        ImportResult(a.hash, 1, True, (a,), ()),
        ImportResult(b1.hash, 1, False),
        ImportResult(b2.hash, 2, True, (b1, b2), (a,)),
    ]


def test_a_shorter_heavier_branch_wins_and_leaves_no_height_entries_above_its_tip(
    make_kv: KVFactory,
) -> None:
    # Genesis bits 256 times harder than the limit: an on-schedule block weighs 256 hashes. A
    # branch stamped ten half-lives late drops to the limit after its first block (weight 1
    # each), so three slow blocks (258) lose to two on-schedule ones (512), and three of those
    # (768) win again. After each switch the height index ends at the tip: the fork choice walks
    # it to find where a branch leaves the main chain, so a stale entry above the tip would make
    # a side block look connected.
    genesis, _ = funded_genesis(1, genesis_bits="2000ffff")
    chain = new_chain(genesis, kv=make_kv())
    mine_blocks(chain, 2)
    fork = chain.height
    late = 10 * chain.params.asert_half_life
    slow = mine_blocks(clone_chain(chain), 3, offset=late)
    heavy = mine_blocks(clone_chain(chain), 2, miner=BOB)
    heavier = mine_blocks(clone_chain(chain), 3, miner=CAROL)
    assert [work_of(b.header.bits) for b in slow] == [256, 1, 1]
    assert {work_of(b.header.bits) for b in heavy + heavier} == {256}

    import_all(chain, slow)
    assert chain.height == fork + 3
    results = import_all(chain, heavy)
    assert [r.tip_changed for r in results] == [False, True]
    assert [b.hash for b in results[-1].disconnected] == [b.hash for b in slow[::-1]]
    assert chain.tip_hash == heavy[-1].hash and chain.height == fork + 2
    assert [chain.hash_at(fork + i) for i in (1, 2, 3, 4)] == [b.hash for b in heavy] + [None, None]
    assert_equals_replay(chain)

    results = import_all(chain, heavier)
    assert [r.tip_changed for r in results] == [False, False, True]  # equal work keeps the first
    assert [b.hash for b in results[-1].disconnected] == [b.hash for b in heavy[::-1]]
    assert [chain.hash_at(fork + i) for i in (1, 2, 3, 4)] == [b.hash for b in heavier] + [None]
    assert chain.meta(slow[-1].hash).status is BlockStatus.CONNECTED  # once connected, now a side block
    assert_equals_replay(chain)
