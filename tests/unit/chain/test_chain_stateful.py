"""A stateful property test: two miners, transfers, forks, reorgs and invalid blocks.

Each miner is a chain state of its own that mines on its tip; the node under test receives every
block either miner makes, so it sees both branches and reorgs whenever the other one pulls ahead.
A miner syncing from the other one makes the branches merge again. After every step the node must
satisfy the ledger's invariants.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from chain import schema
from chain.chainstate import BlockMeta, BlockStatus
from chain.devnet_keys import devnet_seed
from chain.errors import InvalidBlock
from chain.types import Transaction
from tests.support.chain_builders import (
    account_of,
    import_block,
    main_chain,
    make_block,
    new_chain,
    reseal,
    signed_transfer,
)

SENDERS = [devnet_seed(name) for name in ("alice", "bob", "carol")]
ACCOUNTS = [account_of(seed) for seed in SENDERS] + [account_of(devnet_seed("dave")), bytes(20)]
MINERS = [account_of(devnet_seed("miner")), account_of(devnet_seed("second miner"))]
MINER_INDEX = st.integers(0, 1)
# devnet funds each sender with 10^15 units: up to twice that, some transfers cannot be paid
AMOUNTS = st.integers(1, 2 * 10**15)


class TwoMinerChain(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.node = new_chain()
        self.miners = [new_chain(self.node.genesis), new_chain(self.node.genesis)]
        self.pending: list[list[Transaction]] = [[], []]

    @rule(
        miner=MINER_INDEX,
        sender=st.sampled_from(SENDERS),
        to=st.sampled_from(ACCOUNTS),
        amount=AMOUNTS,
    )
    def transfer(self, miner: int, sender: bytes, to: bytes, amount: int) -> None:
        chain = self.miners[miner]
        account = chain.account(account_of(sender))
        queued = sum(1 for tx in self.pending[miner] if tx.sender_account == account_of(sender))
        nonce = (account.nonce if account else 0) + queued
        self.pending[miner].append(signed_transfer(chain.chain_id, sender, to, amount, nonce))

    @rule(miner=MINER_INDEX, count=st.integers(1, 3))
    def mine(self, miner: int, count: int) -> None:
        chain = self.miners[miner]
        for _ in range(count):
            block = make_block(chain, self.pending[miner], miner=MINERS[miner], strict=False)
            self.pending[miner] = []
            assert import_block(chain, block).tip_changed
            import_block(self.node, block)

    @rule(source=MINER_INDEX)
    def sync(self, source: int) -> None:
        """The other miner imports the source's main chain (adopting it when it is heavier)."""
        target = self.miners[1 - source]
        for block in main_chain(self.miners[source]):
            if not target.has_block(block.hash):
                import_block(target, block)

    @rule(miner=MINER_INDEX)
    def invalid_block(self, miner: int) -> None:
        """A block with a lying state root: stored when not heavier, else refused; never the tip."""
        good = make_block(self.miners[miner], (), miner=MINERS[miner])
        bad = reseal(good, state_root=bytes(32))
        tip = self.node.tip_hash
        if self.node.has_block(bad.hash):
            return
        try:
            import_block(self.node, bad)
        except InvalidBlock as exc:
            assert exc.reason in ("bad-state-root", "bad-prevblk")
        assert self.node.tip_hash == tip

    @invariant()
    def balances_sum_to_issued_supply(self) -> None:
        node = self.node
        issued = node.genesis.supply + sum(
            node.params.block_reward(h) for h in range(1, node.height + 1)
        )
        assert node.supply == issued
        assert sum(account.balance for _, account in node.accounts()) == issued

    @invariant()
    def state_root_matches_a_recomputation(self) -> None:
        node = self.node
        assert node.state_root() == node.state_root_from_scratch() == node.tip_header.state_root

    @invariant()
    def tip_is_the_heaviest_valid_block(self) -> None:
        metas = [BlockMeta.decode(value) for _, value in self.node.kv.iterate(schema.META)]
        heaviest = max(meta.work for meta in metas if meta.status is not BlockStatus.INVALID)
        assert self.node.tip_meta.work == heaviest
        assert self.node.tip_meta.status is BlockStatus.CONNECTED

    @invariant()
    def node_agrees_with_a_miner_on_the_same_tip(self) -> None:
        for miner in self.miners:
            if miner.tip_hash == self.node.tip_hash:
                assert dict(miner.accounts()) == dict(self.node.accounts())


TwoMinerChain.TestCase.settings = settings(max_examples=80, stateful_step_count=40, deadline=None)
test_two_miner_chain = TwoMinerChain.TestCase
