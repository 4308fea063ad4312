"""Builders for chains in tests: funded genesis, signed transfers, mined blocks, forks.

Blocks are built the way a miner builds them (`assemble_block`, then a nonce search), on
deterministic timestamps: block ``h`` of a branch is stamped ``genesis_time + spacing * h`` plus an
optional per-branch offset, so ASERT keeps the target where it is and two runs build the same bytes.
A fork is built on clones of the chain (what two separate miners would do), so the chain under test
sees the branches' blocks only when a test hands them over.

`forge_block` builds a block without applying it, for the tests that need a structurally valid but
semantically wrong block (bad state root, bad nonce, wrong height, ...).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chain.assembly import assemble_block
from chain.chainstate import ChainState, ImportResult
from chain.crypto import address_hash, encode_address, public_key_of
from chain.devnet_keys import devnet_seed
from chain.genesis import Genesis, load_genesis, parse_genesis
from chain.hashing import hash256
from chain.params import BLOCK_VERSION
from chain.pow import mine
from chain.store import KV, MemoryKV
from chain.types import Block, Header, Transaction, Transfer
from chain.validation import expected_bits, tx_root

if TYPE_CHECKING:
    from p2p.backend import ChainStatus

TEST_HRP = "tntk"
DEFAULT_FEE = 10
NONCE_SEARCH = 1 << 24  # far more than any test target needs; `seal` fails loudly past it

MINER_SEED = devnet_seed("miner")
MINER = address_hash(public_key_of(MINER_SEED))


class BuildError(AssertionError):
    """A builder could not produce what the test asked for (a bug in the test, not the chain)."""


def account_of(seed: bytes) -> bytes:
    """The 20-byte account id of the key with ``seed``."""
    return address_hash(public_key_of(seed))


def numbered_seed(index: int) -> bytes:
    """The seed of numbered test key ``index`` (public by construction, like the devnet keys)."""
    return hash256(b"neuro test key: " + str(index).encode())


def genesis_doc(
    seeds: Sequence[bytes], amount: str = "1000", *, network: str = "testnet", **overrides: Any
) -> dict[str, Any]:
    """A devnet-like genesis document funding each of ``seeds`` with ``amount`` NTK."""
    doc: dict[str, Any] = {
        "network": network,
        "hrp": TEST_HRP,
        "genesis_time": 1767225600,
        "target_block_time": 2,
        "asert_half_life": 120,
        "genesis_bits": "2100ffff",
        "pow_limit_bits": "2100ffff",
        "initial_reward": "50",
        "halving_interval": 100000,
        "allocations": [
            {"address": encode_address(account_of(seed), TEST_HRP), "amount": amount}
            for seed in seeds
        ],
    }
    doc.update(overrides)
    return doc


def funded_genesis(
    count: int = 8, amount: str = "1000", **overrides: Any
) -> tuple[Genesis, list[bytes]]:
    """A test network whose ``count`` numbered keys each hold ``amount`` NTK; returns the seeds."""
    seeds = [numbered_seed(i) for i in range(count)]
    return parse_genesis(genesis_doc(seeds, amount, **overrides)), seeds


def devnet() -> Genesis:
    return load_genesis("devnet")


def new_chain(
    genesis: Genesis | None = None,
    kv: KV | None = None,
    pool: Executor | None = None,
) -> ChainState:
    """A chain state at genesis (devnet unless given) over ``kv`` (a fresh MemoryKV if not)."""
    return ChainState(kv if kv is not None else MemoryKV(), genesis or devnet(), verify_pool=pool)


def signed_transfer(
    chain_id: bytes, seed: bytes, to: bytes, amount: int, nonce: int, fee: int = DEFAULT_FEE
) -> Transaction:
    """A transfer of ``amount`` base units from the key of ``seed`` to account ``to``."""
    unsigned = Transaction(chain_id, public_key_of(seed), nonce, fee, Transfer(to, amount))
    return unsigned.signed(seed)


def next_nonce(chain: ChainState, seed: bytes) -> int:
    """The nonce the next transaction of ``seed``'s account must carry at the chain's tip."""
    account = chain.account(account_of(seed))
    return account.nonce if account is not None else 0


def transfers(
    chain: ChainState,
    seed: bytes,
    to: bytes,
    amounts: Iterable[int],
    fee: int = DEFAULT_FEE,
) -> list[Transaction]:
    """Consecutive transfers from ``seed``'s account, starting at its next nonce at the tip."""
    start = next_nonce(chain, seed)
    return [
        signed_transfer(chain.chain_id, seed, to, amount, start + i, fee)
        for i, amount in enumerate(amounts)
    ]


def block_time(chain: ChainState, parent: Header, offset: int = 0) -> int:
    """The on-schedule timestamp of ``parent``'s child (plus ``offset`` seconds)."""
    params = chain.params
    return params.genesis_time + params.target_block_time * (parent.height + 1) + offset


def seal(block: Block) -> Block:
    """``block`` with the first nonce that meets its header's target."""
    header = block.header
    nonce = mine(header.encode(), header.bits, 0, NONCE_SEARCH)
    if nonce is None:
        raise BuildError(f"no nonce below {NONCE_SEARCH} meets bits {header.bits:#x}")
    return Block(header.with_nonce(nonce), block.txs)


def reseal(block: Block, *, txs: Sequence[Transaction] | None = None, **header_fields: Any) -> Block:
    """``block`` with changed header fields (or transactions, tx root recomputed), mined again."""
    new_txs = tuple(txs) if txs is not None else block.txs
    if txs is not None and "tx_root" not in header_fields:
        header_fields["tx_root"] = tx_root(new_txs)
    return seal(Block(replace(block.header, **header_fields), new_txs))


def make_block(
    chain: ChainState,
    txs: Iterable[Transaction] = (),
    *,
    miner: bytes = MINER,
    offset: int = 0,
    strict: bool = True,
) -> Block:
    """A mined block on ``chain``'s tip with ``txs`` (all must apply if ``strict``); not imported."""
    parent = chain.tip_header
    template = assemble_block(chain, txs, miner, block_time(chain, parent, offset))
    if strict and template.skipped:
        _, error = template.skipped[0]
        raise BuildError(f"{len(template.skipped)} transactions do not apply, first: {error}")
    return seal(template.block)


def forge_block(
    chain: ChainState,
    parent: Header,
    txs: Sequence[Transaction] = (),
    *,
    miner: bytes = MINER,
    state_root: bytes | None = None,
    **header_fields: Any,
) -> Block:
    """A mined child of ``parent`` that nothing has applied: its state root is ``state_root``
    (the parent's when not given), every other field right unless overridden."""
    fields: dict[str, Any] = {
        "version": BLOCK_VERSION,
        "height": parent.height + 1,
        "parent": parent.hash,
        "timestamp": block_time(chain, parent),
        "bits": expected_bits(chain.params, parent),
        "tx_root": tx_root(txs),
        "state_root": state_root if state_root is not None else parent.state_root,
        "miner": miner,
    }
    fields.update(header_fields)
    return seal(Block(Header(**fields), tuple(txs)))


def import_block(chain: ChainState, block: Block) -> ImportResult:
    """Import ``block`` with the local clock at its own timestamp (never too new)."""
    return chain.process_block(block, block.header.timestamp)


def mine_blocks(
    chain: ChainState,
    count: int,
    txs: Iterable[Transaction] = (),
    *,
    miner: bytes = MINER,
    offset: int = 0,
) -> list[Block]:
    """Mine and import ``count`` blocks on the tip, ``txs`` in the first; returns them in order."""
    blocks = []
    pending: Iterable[Transaction] = txs
    for _ in range(count):
        block = make_block(chain, pending, miner=miner, offset=offset)
        result = import_block(chain, block)
        if not result.tip_changed:
            raise BuildError(f"block at height {block.header.height} did not become the tip")
        blocks.append(block)
        pending = ()
    return blocks


def main_chain(chain: ChainState) -> list[Block]:
    """The blocks of the main chain from height 1 to the tip."""
    hashes = [chain.hash_at(height) for height in range(1, chain.height + 1)]
    return [chain.block(h) for h in hashes if h is not None]


def clone_chain(chain: ChainState, kv: KV | None = None) -> ChainState:
    """A second chain state (another node) that has imported ``chain``'s main chain."""
    copy = new_chain(chain.genesis, kv)
    for block in main_chain(chain):
        import_block(copy, block)
    return copy


@dataclass(frozen=True)
class Split:
    """Two branches built on the same fork block, neither imported into the original chain."""

    fork: Header
    a: list[Block]
    b: list[Block]


BRANCH_B_MINER = account_of(devnet_seed("branch b miner"))


def chain_split(
    chain: ChainState,
    a_length: int,
    b_length: int,
    *,
    a_txs: Iterable[Transaction] = (),
    b_txs: Iterable[Transaction] = (),
) -> Split:
    """Branches of ``a_length`` and ``b_length`` blocks from ``chain``'s tip, by different miners
    (so that even empty blocks differ), ``a_txs``/``b_txs`` in each branch's first block."""
    branch_a = mine_blocks(clone_chain(chain), a_length, a_txs)
    branch_b = mine_blocks(clone_chain(chain), b_length, b_txs, miner=BRANCH_B_MINER)
    return Split(fork=chain.tip_header, a=branch_a, b=branch_b)


def import_all(chain: ChainState, blocks: Iterable[Block]) -> list[ImportResult]:
    """Import each of ``blocks`` in order; returns the import results."""
    return [import_block(chain, block) for block in blocks]


def prebuilt_chain(genesis: Genesis, datadir: Path, blocks: int, txs: Sequence[Transaction] = (),
                   txs_per_block: int = 0) -> tuple[list[bytes], ChainStatus]:
    """Mine ``blocks`` blocks (``txs_per_block`` of ``txs`` each, in order) straight into a
    daemon's LevelDB under ``datadir`` before it starts; the encoded blocks in chain order, and the
    status the daemon will answer the sync handshake with."""
    from chain.store import LevelKV
    from p2p.backend import ChainStatus

    chain = ChainState(LevelKV(datadir / "chain"), genesis)
    hashes = []
    for height in range(blocks):
        block = make_block(chain, txs[height * txs_per_block : (height + 1) * txs_per_block])
        chain.process_block(block, block.header.timestamp)
        hashes.append(block.hash)
    encoded = [chain.block_bytes(h) or b"" for h in hashes]
    status = ChainStatus(chain.chain_id, chain.height, chain.tip_hash, chain.tip_meta.work)
    chain.kv.close()
    return encoded, status
