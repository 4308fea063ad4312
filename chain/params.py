"""Consensus parameters of one network, read from its genesis file.

Every rule that differs between the main network and a devnet is a field here, and consensus
functions take a `ChainParams` argument instead of reading globals.
"""

from __future__ import annotations

from dataclasses import dataclass

UNITS_PER_NTK = 10**9
MAX_SUPPLY_UNITS = 2**63 - 1  # every balance and the supply fit a signed 64-bit integer

BLOCK_VERSION = 1
MAX_BLOCK_BYTES = 2_000_000
MAX_BLOCK_TXS = 10_000
MAX_TX_BYTES = 16_384
MAX_HEADER_BYTES = 256
MEDIAN_TIME_SPAN = 11
MAX_FUTURE_DRIFT_S = 2 * 60 * 60


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

    def block_reward(self, height: int) -> int:
        """New coins for the miner of block ``height``: halved every `halving_interval` blocks."""
        if height == 0:
            return 0
        halvings = (height - 1) // self.halving_interval
        return self.initial_reward >> halvings if halvings < 64 else 0
