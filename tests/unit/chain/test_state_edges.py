"""The state transition at its exact edges: a whole balance spent, the reward across halvings,
fees as large as the reward, and a block that pays its miner nothing.

Each is a case where a comparison one step off (``<`` for ``<=``, ``height + 1`` for ``height``)
still mines and imports every ordinary test chain, so the amounts are checked to the unit.
"""

from __future__ import annotations

from itertools import pairwise

from chain.chainstate import ChainState
from chain.devnet_keys import devnet_seed
from tests.support.chain_builders import (
    DEFAULT_FEE,
    MINER,
    account_of,
    funded_genesis,
    import_block,
    make_block,
    mine_blocks,
    new_chain,
    transfers,
)

BOB = account_of(devnet_seed("bob"))
NTK = 10**9


def balance(chain: ChainState, account: bytes) -> int:
    found = chain.account(account)
    return found.balance if found is not None else 0


def test_a_transfer_of_the_whole_balance_less_the_fee_is_accepted() -> None:
    genesis, seeds = funded_genesis(1, "3")
    chain = new_chain(genesis)
    sender = account_of(seeds[0])
    whole = balance(chain, sender)
    assert whole == 3 * NTK
    spend = transfers(chain, seeds[0], BOB, [whole - DEFAULT_FEE])  # fee + amount == balance
    assert import_block(chain, make_block(chain, spend)).tip_changed
    assert balance(chain, sender) == 0
    assert balance(chain, BOB) == whole - DEFAULT_FEE
    emptied = chain.account(sender)
    assert emptied is not None and emptied.nonce == 1  # spent to zero, its nonce still counts


def test_the_reward_halves_exactly_at_each_interval() -> None:
    genesis, _ = funded_genesis(1, halving_interval=2, initial_reward="50")
    chain = new_chain(genesis)
    supplies = [chain.supply]
    for _ in range(5):
        mine_blocks(chain, 1)
        supplies.append(chain.supply)
    rewards = [after - before for before, after in pairwise(supplies)]
    # blocks 1-2 pay the initial reward, 3-4 half of it, 5 a quarter
    assert rewards == [50 * NTK, 50 * NTK, 25 * NTK, 25 * NTK, 12_500_000_000]
    assert balance(chain, MINER) == sum(rewards)


def test_fees_equal_to_the_reward_are_paid_with_it() -> None:
    # a reward of 10 base units, and one transfer paying a fee of 10
    genesis, seeds = funded_genesis(1, initial_reward="0.00000001")
    chain = new_chain(genesis)
    assert chain.params.block_reward(1) == DEFAULT_FEE
    mine_blocks(chain, 1, transfers(chain, seeds[0], BOB, [5]))
    assert balance(chain, MINER) == 2 * DEFAULT_FEE


def test_a_block_paying_nothing_creates_no_miner_account() -> None:
    # a 10-unit reward halved every block is gone from block 5 on (10 >> 4 == 0)
    genesis, _ = funded_genesis(1, initial_reward="0.00000001", halving_interval=1)
    chain = new_chain(genesis)
    nobody = account_of(devnet_seed("a miner paid nothing"))
    mine_blocks(chain, 4)
    assert chain.params.block_reward(5) == 0
    mine_blocks(chain, 2, miner=nobody)
    assert chain.account(nobody) is None
    assert chain.state_root() == chain.state_root_from_scratch()
