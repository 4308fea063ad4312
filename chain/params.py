"""Consensus parameters of one network, read from its genesis file.

Every rule that differs between the main network and a devnet is a field here, and consensus
functions take a `ChainParams` argument instead of reading globals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

UNITS_PER_NTK = 10**9
MAX_SUPPLY_UNITS = 2**63 - 1  # every balance and the supply fit a signed 64-bit integer

BLOCK_VERSION = 1
MAX_BLOCK_BYTES = 2_000_000
MAX_BLOCK_TXS = 10_000
MAX_TX_BYTES = 16_384
MAX_HEADER_BYTES = 256
MEDIAN_TIME_SPAN = 11
MAX_FUTURE_DRIFT_S = 2 * 60 * 60


BASIS_POINTS = 10_000


@dataclass(frozen=True, slots=True)
class MarketParams:
    """The market's consensus rules (DESIGN.md, Market), set per network in genesis.

    Windows are in blocks. Fractions are basis points (1/10,000) so that every split of an amount
    is integer arithmetic: ``amount * bp // 10_000``, the rest of the split taking the remainder.
    Amounts are base units."""

    min_stake: int = 100 * 10**9  # bonded stake an account needs before its bids count
    stake_per_payment_bp: int = 15_000  # stake locked per unit of payment: fraud never pays
    unbonding_blocks: int = 10_080  # unstaked stake stays slashable this long (a week of minutes)
    min_bid_blocks: int = 2  # shortest bid window a job may ask for
    max_job_blocks: int = 100_000  # longest a job may run, post to deadline
    min_challenge_blocks: int = 10  # shortest challenge window after a result commit
    response_blocks: int = 10  # a queried worker must answer on chain this soon
    challenge_bond: int = 10 * 10**9  # locked by a challenger; lost to the worker on a false query
    slash_reward_bp: int = 5_000  # of a fraud slash to the challenger; the rest is burned
    no_show_slash_bp: int = 2_000  # of its shard stake a worker that missed the deadline loses
    protocol_fee_bp: int = 0  # of each payment, burned
    max_spec_bytes: int = 4_096  # canonical JSON of a job spec
    max_shards: int = 64  # shards per job
    max_bids_per_award: int = 64
    max_challenges_per_block: int = 8  # bounds the re-render work a block can ask of validators
    # Training disputes go to a committee (worker/README.md, Training disputes): stakers drawn by
    # the beacon in proportion to their stake vote within the window; a quorum decides by majority.
    committee_size: int = 7  # expected members drawn per dispute
    vote_blocks: int = 20  # votes are taken this many blocks from the beacon block on
    quorum: int = 3  # votes a dispute needs to be decided; fewer and it lapses


@dataclass(frozen=True, slots=True)
class ChainParams:
    """The rules of one network. Frozen: a node never changes them at run time."""

    network: str  # "main", "devnet", ...: names the data dir
    hrp: str  # address prefix: "ntk" main, "tntk" devnet/test
    genesis_time: int  # unix seconds of block 0
    target_block_time: int  # seconds; ASERT's ideal spacing
    asert_half_life: int  # seconds; ASERT halves/doubles difficulty per this much drift
    genesis_bits: int  # compact target of block 0, ASERT's anchor
    pow_limit_bits: int  # easiest allowed target (compact)
    initial_reward: int  # base units per block
    halving_interval: int  # blocks between reward halvings
    max_block_bytes: int = MAX_BLOCK_BYTES
    max_block_txs: int = MAX_BLOCK_TXS
    max_future_drift: int = MAX_FUTURE_DRIFT_S
    median_time_span: int = MEDIAN_TIME_SPAN
    market: MarketParams = field(default_factory=MarketParams)

    def block_reward(self, height: int) -> int:
        """New coins for the miner of block ``height``: halved every `halving_interval` blocks,
        none for the genesis block. A Python shift of any width is defined (it reaches 0 once
        the reward's bits are shifted out), so no 64-halving guard as in C++ clients."""
        if height == 0:
            return 0
        return self.initial_reward >> ((height - 1) // self.halving_interval)
