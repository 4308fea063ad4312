"""Checks of a stored chain: the quick one at every start and the whole walk of `--check-db`.

The start-up check is Bitcoin Core's `-checkblocks=6 -checklevel=3`: the tip's state root is in
the trie, and the last N main-chain blocks read back whole (each against its hash and tx root)
with their undo data and index rows; then they are disconnected one by one in a scratch overlay
that is never written, and after each the state root must be the one its parent's header names.
That reads exactly what a reorg of N blocks would need, so a damaged store is found before the
node builds on it or serves from it, in milliseconds.

The whole walk (`check_store`) reads every main-chain block against its hash and its link to its
parent, recomputes the state root from every account, adds up the balances against the recorded
supply, and compares the tx index and history rows with the ones the blocks imply. It reports
every problem it finds rather than stopping at the first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from chain import schema
from chain.chainstate import BlockStatus, ChainState, index_rows
from chain.errors import ChainError, StoreError
from chain.jobs import TOTALS_KEY, Job, job_key
from chain.state import Account
from chain.store import Overlay
from chain.trie import compute_root
from chain.types import Block

DEFAULT_CHECK_BLOCKS = 6
MAX_LISTED = 20  # rows of one kind listed by name; the rest are counted


@dataclass(frozen=True, slots=True)
class Problem:
    reason: str  # kebab-case, as every rejection in chain/
    detail: str

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


@dataclass
class CheckReport:
    blocks: int = 0
    txs: int = 0
    accounts: int = 0
    supply: int = 0
    state_root: str = ""
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, reason: str, detail: str) -> None:
        self.problems.append(Problem(reason, detail))


def check_recent(chain: ChainState, depth: int = DEFAULT_CHECK_BLOCKS) -> CheckReport:
    """The start-up check; raises `StoreError` naming the first problem (the node must not run)."""
    started = time.perf_counter()
    report = CheckReport(supply=chain.supply)
    tip = chain.tip_header
    root = chain.state_root()
    report.state_root = root.hex()
    if root != tip.state_root:
        raise StoreError("store-state-root-mismatch", f"stored state root {root.hex()[:16]} is not tip {tip.height}'s {tip.state_root.hex()[:16]}")
    scratch = Overlay(chain.kv)
    for height in range(tip.height, max(0, tip.height - depth), -1):
        block_hash = chain.hash_at(height)
        if block_hash is None:
            raise StoreError("store-index-missing", f"no main-chain entry at height {height}")
        block = chain.read_stored_block(chain.kv, block_hash)  # against its hash and tx root
        _check_index_rows(chain, block, block_hash, report)
        if report.problems:
            raise StoreError(report.problems[0].reason, report.problems[0].detail)
        chain.disconnect_tip(scratch)  # reads the undo data; nothing is ever committed
        parent = chain.header(block.header.parent)
        undone = chain.state_root(scratch)
        if undone != parent.state_root:
            raise StoreError("store-undo-mismatch", f"undoing block {height} gives state root {undone.hex()[:16]}, its parent's header says {parent.state_root.hex()[:16]}")
        report.blocks += 1
        report.txs += len(block.txs)
    report.seconds = time.perf_counter() - started
    return report


def _check_index_rows(chain: ChainState, block: Block, block_hash: bytes, report: CheckReport) -> None:
    """Every tx index and history row a main-chain block implies is stored as it should be."""
    for key, value in index_rows(block, block_hash):
        stored = chain.kv.get(key)
        if stored != value:
            what = "missing" if stored is None else "wrong"
            report.add("store-index-" + what, f"{_row_name(key)} of block {block.header.height}")


def _row_name(key: bytes) -> str:
    kind = {schema.TX_INDEX: "tx index row", schema.HISTORY: "history row"}.get(key[:1], "row")
    return f"{kind} {key[1:9].hex()}"


def check_store(chain: ChainState, progress: Callable[[str], None] | None = None) -> CheckReport:
    """Walk the whole store; every problem found is in the report (none raised)."""
    started = time.perf_counter()
    report = CheckReport()
    say = progress or (lambda _: None)
    say("every row's checksums")
    _read_every_row(chain, report)
    say(f"blocks 0..{chain.height}")
    tx_rows, history_rows = _check_blocks(chain, report)
    say(f"index rows: {len(tx_rows)} tx, {len(history_rows)} history")
    _compare_rows(chain, schema.TX_INDEX, tx_rows, "tx index", report)
    _compare_rows(chain, schema.HISTORY, history_rows, "history", report)
    say("state")
    _check_state(chain, report)
    report.seconds = time.perf_counter() - started
    return report


def _read_every_row(chain: ChainState, report: CheckReport) -> None:
    """Read each key range whole, so LevelDB verifies the checksum of every block of every
    table, rows no other check reads (side branches, headers) included. A damaged
    range is reported once, at the first key it fails on."""
    for name, prefix in schema.PREFIXES.items():
        try:
            for _ in chain.kv.iterate(prefix):
                pass
        except StoreError as exc:
            report.add(exc.reason, f"{name} rows: {exc.detail}")


def _check_blocks(chain: ChainState, report: CheckReport) -> tuple[dict[bytes, bytes], dict[bytes, bytes]]:
    """Each main-chain block against its hash, its height entry, its meta, its parent and its
    undo data; returns the index rows the blocks imply."""
    tx_rows: dict[bytes, bytes] = {}
    history_rows: dict[bytes, bytes] = {}
    parent = None
    for height in range(chain.height + 1):
        try:
            block_hash = chain.hash_at(height)  # the height row itself may sit in a damaged table block
            if block_hash is None:
                report.add("store-index-missing", f"no main-chain entry at height {height}")
                parent = None
                continue
            block = chain.read_stored_block(chain.kv, block_hash)
            if chain.header(block_hash) != block.header:  # the header row, checked by its hash
                report.add("store-header-mismatch", f"block {height}: header row differs from the block's")
            meta = chain.meta(block_hash)
            if meta.height != height or meta.status != BlockStatus.CONNECTED:
                report.add("store-meta-wrong", f"block {height}: meta says height {meta.height}, {meta.status.name}")
            if parent is not None and block.header.parent != parent:
                report.add("store-chain-broken", f"block {height} does not link to block {height - 1}")
            if height > 0 and chain.kv.get(schema.UNDO + block_hash) is None:
                report.add("store-undo-missing", f"block {height} has no undo data")
        except ChainError as exc:
            report.add(exc.reason, f"block {height}: {exc}")
            parent = None
            continue
        parent = block_hash
        report.blocks += 1
        report.txs += len(block.txs)
        for key, value in index_rows(block, block_hash):
            (tx_rows if key[:1] == schema.TX_INDEX else history_rows)[key] = value
    return tx_rows, history_rows


def _compare_rows(chain: ChainState, prefix: bytes, expected: dict[bytes, bytes], what: str, report: CheckReport) -> None:
    """The stored rows under ``prefix`` are exactly ``expected``: none missing, wrong or extra."""
    name = what.replace(" ", "-")
    present: set[bytes] = set()
    try:
        for key, value in chain.kv.iterate(prefix):
            present.add(key)
            want = expected.get(key)
            if want is None:
                report.add(f"store-{name}-extra", f"{what} row {key[1:9].hex()} belongs to no main-chain block")
            elif want != value:
                report.add(f"store-{name}-wrong", f"{what} row {key[1:9].hex()}")
    except StoreError as exc:
        report.add(exc.reason, f"reading {what} rows: {exc.detail}")
        return
    missing = [key for key in expected if key not in present]
    for key in missing[:MAX_LISTED]:
        report.add(f"store-{name}-missing", f"{what} row {key[1:9].hex()}")
    if len(missing) > MAX_LISTED:
        report.add(f"store-{name}-missing", f"and {len(missing) - MAX_LISTED} more {what} rows")


def _check_state(chain: ChainState, report: CheckReport) -> None:
    """State root from scratch over every account, job and the totals, the stored trie's root,
    and the supply: balances + stake + escrow = issued - burned."""
    hashes: dict[bytes, bytes] = {}
    total = 0
    try:
        for key, value in chain.kv.iterate(schema.ACCOUNT):
            try:
                account = Account.decode(value)
            except ChainError as exc:
                report.add("store-account-undecodable", f"account {key[1:].hex()}: {exc.reason}")
                continue
            hashes[key[1:]] = account.value_hash
            total += account.balance + account.bonded + account.unbonding
        for key, value in chain.kv.iterate(schema.JOB):
            try:
                job = Job.decode(value)
            except ChainError as exc:
                report.add("store-job-undecodable", f"job {key[1:].hex()}: {exc.reason}")
                continue
            hashes[job_key(key[1:])] = job.value_hash
            total += job.escrow
        hashes.update(chain.record_hashes())
        totals = chain.totals()
        hashes[TOTALS_KEY] = totals.value_hash
    except ChainError as exc:
        report.add(exc.reason, f"reading state: {exc.detail}")
        return
    report.accounts, report.supply = len(hashes), total
    if totals.issued != chain.supply:
        report.add("store-supply-mismatch", f"totals record {totals.issued} issued, the recorded supply is {chain.supply}")
    total += totals.burned
    computed = compute_root(hashes)
    report.state_root = computed.hex()
    expected = chain.tip_header.state_root
    if computed != expected:
        report.add("store-state-mismatch", f"accounts hash to {computed.hex()[:16]}, tip {chain.height}'s header says {expected.hex()[:16]}")
    stored = chain.state_root()
    if stored != expected:
        report.add("store-trie-mismatch", f"stored trie's root {stored.hex()[:16]} is not the tip's {expected.hex()[:16]}")
    if total != chain.supply:
        report.add("store-supply-mismatch", f"balances, stake, escrow and burned add up to {total}, the recorded supply is {chain.supply}")
