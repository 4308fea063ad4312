"""`neurod --reindex` and `neurod --check-db`: rebuild a damaged chain store, or walk it whole.

Reindex (bitcoind's `-reindex`) trusts nothing derived: it collects every stored block that still
matches its hash and tx root, and imports them, with full validation, into a fresh store beside
the old one (`chain.reindex/`), which replaces `chain/` only when complete. A store that LevelDB
will not open (no CURRENT, a truncated table, a bad manifest) is first copied aside whole
(`chain.damaged-<time>/`, nothing stored is lost) and run through LevelDB's RepairDB, which
salvages every record whose checksum holds. A crash or kill during a reindex leaves `chain/`
untouched; the next `--reindex` starts over.

Both run with the data dir locked, before the node starts; both print one line per phase.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chain import schema
from chain.chainstate import ChainState, ImportResult, verified_block
from chain.errors import ChainError, RejectKind, StoreError
from chain.files import fsync_dir
from chain.genesis import Genesis
from chain.sigpool import SignaturePool
from chain.store import LevelKV, repair_store
from chain.storecheck import CheckReport, check_store
from neurod.adjudicator import RenderAdjudicator

CHAIN_DIR = "chain"
BATCH = 64  # blocks per `process_blocks` call: signature checks run ahead within a batch

Say = Callable[[str], None]


@dataclass
class ReindexReport:
    found: int = 0  # blocks stored under their own hash
    damaged: int = 0  # stored blocks that no longer match their hash or tx root
    imported: int = 0
    rejected: int = 0  # failed validation again (side branches once marked invalid)
    orphaned: int = 0  # their parent was lost
    height: int = 0
    tip: str = ""
    kept: Path | None = None  # where the damaged original was put aside


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def _salvage(chain_dir: Path) -> tuple[list[tuple[int, bytes]], int]:
    """(height, hash) of every stored block that still matches its hash, and the damaged count.

    Checksums are not verified while scanning: every block is checked against its hash instead,
    and a checksum error would end the scan at the first bad table block."""
    kv = LevelKV(chain_dir, verify_checksums=False, create=False)
    good: list[tuple[int, bytes]] = []
    damaged = 0
    try:
        for key, value in kv.iterate(schema.BLOCK):
            try:
                block = verified_block(value, key[1:])
            except StoreError:
                damaged += 1
                continue
            good.append((block.header.height, key[1:]))
    finally:
        kv.close()
    return sorted(good), damaged


def _salvage_or_repair(datadir: Path, say: Say, report: ReindexReport) -> list[tuple[int, bytes]]:
    chain_dir = datadir / CHAIN_DIR
    try:
        good, report.damaged = _salvage(chain_dir)
        return good
    except StoreError as exc:
        if exc.reason == "datadir-locked":
            raise
        say(f"the store cannot be read as it is ({exc})")
    report.kept = datadir / f"chain.damaged-{_stamp()}"
    say(f"copying it whole to {report.kept}, then running LevelDB's repair on {chain_dir}")
    shutil.copytree(chain_dir, report.kept)
    repair_store(chain_dir)
    good, report.damaged = _salvage(chain_dir)
    return good


def reindex(datadir: Path, genesis: Genesis, *, verify_workers: int, say: Say) -> ReindexReport:
    """Rebuild `<datadir>/chain` from the intact blocks it holds; see the module docstring."""
    chain_dir, work = datadir / CHAIN_DIR, datadir / "chain.reindex"
    if not chain_dir.exists():
        raise StoreError("store-missing", f"no chain store at {chain_dir}: nothing to reindex")
    report = ReindexReport()
    good = _salvage_or_repair(datadir, say, report)
    report.found = len(good)
    say(f"found {report.found} intact blocks" + (f", {report.damaged} damaged" if report.damaged else ""))
    shutil.rmtree(work, ignore_errors=True)
    source = LevelKV(chain_dir, verify_checksums=False, create=False)
    pool = SignaturePool(verify_workers)
    target = LevelKV(work)
    try:
        chain = ChainState(target, genesis, verify_pool=pool, adjudicator=RenderAdjudicator())
        hashes = [block_hash for _, block_hash in good]
        for start in range(0, len(hashes), BATCH):
            batch = [source.get(schema.BLOCK + h) or b"" for h in hashes[start : start + BATCH]]
            for outcome in _import_all(chain, batch):
                _count(report, outcome)
            if start and start % (BATCH * 50) == 0:
                say(f"imported {report.imported} blocks, tip {chain.height}")
        report.height, report.tip = chain.height, chain.tip_hash.hex()
    finally:
        target.close()
        source.close()
        pool.close()
    _swap_in(datadir, work, report)
    return report


def _import_all(chain: ChainState, batch: list[bytes]) -> list[ImportResult | ChainError]:
    """Every block of a batch, one outcome each: `process_blocks` stops at a rejected block,
    but here a rejected side branch must not keep the next, unrelated blocks out."""
    outcomes: list[ImportResult | ChainError] = []
    while batch:
        done = chain.process_blocks(batch, int(time.time()))
        outcomes.extend(done)
        batch = batch[len(done) :]
    return outcomes


def _count(report: ReindexReport, outcome: ImportResult | ChainError) -> None:
    if isinstance(outcome, ImportResult):
        report.imported += 1
    elif outcome.kind is RejectKind.MISSING:
        report.orphaned += 1
    elif outcome.kind is not RejectKind.STALE:  # genesis and duplicates are already there
        report.rejected += 1


def _swap_in(datadir: Path, work: Path, report: ReindexReport) -> None:
    """Put the rebuilt store in place of the old one; keep the old one only if it was damaged."""
    chain_dir = datadir / CHAIN_DIR
    old = datadir / f"chain.pre-reindex-{_stamp()}"
    os.replace(chain_dir, old)
    os.replace(work, chain_dir)
    fsync_dir(datadir)
    if report.damaged and report.kept is None:
        report.kept = old  # it held damaged blocks: keep it for a look
    else:
        shutil.rmtree(old)


def check_db(datadir: Path, genesis: Genesis, say: Say) -> CheckReport:
    """`check_store` over `<datadir>/chain`, opened without creating anything."""
    kv = LevelKV(datadir / CHAIN_DIR, create=False)
    try:
        try:
            if kv.get(schema.GENESIS) is None:  # ChainState would write a genesis: this only reads
                raise StoreError("store-damaged", "the store records no genesis")
            chain = ChainState(kv, genesis, adjudicator=RenderAdjudicator())
        except StoreError as exc:  # not even the tip reads back: that is the report
            report = CheckReport()
            report.add(exc.reason, f"opening the chain: {exc.detail}")
            return report
        return check_store(chain, progress=lambda phase: say(f"checking {phase}"))
    finally:
        kv.close()


def describe_check(report: CheckReport) -> list[str]:
    """The lines `--check-db` prints: a summary, then one line per problem."""
    verdict = "ok" if report.ok else f"{len(report.problems)} problem(s)"
    summary = (
        f"check-db: {verdict}: {report.blocks} blocks, {report.txs} txs, {report.accounts} accounts,"
        f" balances {report.supply}, state root {report.state_root[:16]}, {report.seconds:.2f} s"
    )
    return [summary] + [f"  {problem}" for problem in report.problems]
