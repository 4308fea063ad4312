"""The chain state: block import, fork choice by cumulative work, reorgs, and reads.

`ChainState.process_block` runs the validation stages cheapest first and then either stores the
block on a side branch or makes its branch the main chain. Switching branches (a reorg) undoes the
main chain back to the fork point with each block's undo data and connects the new branch, all in
one overlay committed as one atomic, synced LevelDB batch: a crash leaves either the old tip or the
new one, each with its matching state. If a block of the new branch fails to connect, it and its
descendants are marked invalid and the old tip stays.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Container, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from chain import encoding as enc
from chain import failpoints, schema
from chain.crypto import Verifier
from chain.errors import ChainError, DecodeError, InvalidBlock, RejectKind, StoreError
from chain.genesis import Genesis
from chain.hashing import HASH_SIZE, hash256
from chain.jobs import JOB_VALUE_PERSON, TOTALS_KEY, Event, Job, Totals, job_key
from chain.market_rules import Adjudicator
from chain.merkle import merkle_root
from chain.params import ChainParams
from chain.pow import work_of
from chain.records import record_key, record_value_hash
from chain.state import Account, BlockEffects, account_value_hash, apply_block
from chain.store import KV, FaultListener, Overlay, StateCache
from chain.trie import compute_root, root_of, update_trie
from chain.types import Block, Header, Transaction, Transfer, block_parts, txid_of
from chain.validation import (
    SignatureChecks,
    check_block,
    check_block_contents,
    check_header,
    check_header_context,
    start_signature_checks,
)

WORK_BYTES = 48
# accounts and trie nodes kept in memory, ~200 bytes each: a few hundred thousand accounts' state
DEFAULT_STATE_CACHE_ENTRIES = 400_000
DEFAULT_JOB_CACHE_ENTRIES = 20_000  # decoded jobs (a few hundred bytes to a few KB each)
R = TypeVar("R")
# blocks of a batch whose signature checks are queued ahead of the one being connected
DEFAULT_LOOKAHEAD = 3


class BlockStatus(enum.IntEnum):
    STORED = 1  # passed context-free and header-context checks; not (yet) on the main chain
    CONNECTED = 2  # has been connected to the main chain at least once (state transition valid)
    INVALID = 3  # failed a check; never connected, nor are its descendants


@dataclass(frozen=True, slots=True)
class BlockMeta:
    height: int
    work: int  # cumulative work from genesis to this block, inclusive
    status: BlockStatus

    def encode(self) -> bytes:
        return enc.pack([self.height, self.work.to_bytes(WORK_BYTES, "big"), int(self.status)])

    @classmethod
    def decode(cls, data: bytes) -> BlockMeta:
        height, work, status = enc.fields(enc.unpack(data, what="meta", max_size=128), "meta", 3)
        return cls(height, int.from_bytes(work, "big"), BlockStatus(status))


@dataclass(frozen=True, slots=True)
class ImportResult:
    block_hash: bytes
    height: int
    tip_changed: bool
    connected: tuple[Block, ...] = ()  # blocks newly on the main chain, oldest first
    disconnected: tuple[Block, ...] = ()  # blocks taken off it by a reorg, newest first


@dataclass
class _Undo:
    """A connected block's undo data: the supply and each touched account before it, and for
    market blocks each touched job before it, the totals before it and the index rows (events,
    jobs by account) the block wrote."""

    supply: int
    accounts: list[tuple[bytes, Account | None]] = field(default_factory=list)
    jobs: list[tuple[bytes, bytes | None]] = field(default_factory=list)  # stored bytes before
    totals: bytes = b""
    rows: list[bytes] = field(default_factory=list)
    records: list[tuple[bytes, bytes | None]] = field(default_factory=list)  # `chain.records`, by store key

    @staticmethod
    def encode_stored(supply: int, accounts: list[tuple[bytes, bytes | None]], jobs: list[tuple[bytes, bytes | None]],
                      totals: bytes, rows: list[bytes], records: list[tuple[bytes, bytes | None]]) -> bytes:
        """From each record's stored bytes (None: absent), which need no re-encoding. A block
        that touched no `chain.records` record keeps the five-field layout of earlier stores."""
        fields = [supply, [[k, v or b""] for k, v in accounts], [[k, v or b""] for k, v in jobs], totals, list(rows)]
        if records:
            fields.append([[k, v or b""] for k, v in records])
        return enc.pack(fields)

    @classmethod
    def decode(cls, data: bytes) -> _Undo:
        value = enc.unpack(data, what="undo", max_size=64 << 20)
        records = enc.as_list(value.pop(), "undo.records", max_len=1 << 20) if type(value) is list and len(value) == 6 else []
        supply, accounts, jobs, totals, rows = enc.fields(value, "undo", 5)
        Totals.decode(totals)  # a damaged record fails here, named, not in the middle of an undo
        return cls(supply, [(k, Account.decode(v) if v else None) for k, v in accounts],
                   [(k, v or None) for k, v in jobs], totals, rows, [(k, v or None) for k, v in records])


class DecodeMemo(Generic[R]):
    """Decoded records by their stored encoding: a pure memo (an encoding always decodes to the
    same immutable record), primed with the records a block writes, so the next block that
    reads them skips the strict decode. Emptied when it outgrows ``limit``."""

    def __init__(self, decoder: Callable[[bytes], R], limit: int = DEFAULT_STATE_CACHE_ENTRIES) -> None:
        self._decoder = decoder
        self._decoded: dict[bytes, R] = {}
        self._limit = limit

    def decode(self, data: bytes) -> R:
        record = self._decoded.get(data)
        if record is None:
            record = self._decoder(data)
            self.remember(data, record)
        return record

    def remember(self, data: bytes, record: R) -> None:
        if len(self._decoded) >= self._limit:
            self._decoded.clear()
        self._decoded[data] = record


class AccountMemo(DecodeMemo[Account]):
    def __init__(self, limit: int = DEFAULT_STATE_CACHE_ENTRIES) -> None:
        super().__init__(Account.decode, limit)


class JobMemo(DecodeMemo[Job]):
    def __init__(self, limit: int = DEFAULT_JOB_CACHE_ENTRIES) -> None:
        super().__init__(Job.decode, limit)


class _StateView:
    """Accounts and trie nodes as seen through an overlay (a `StateReader` for apply_block)."""

    def __init__(self, db: Overlay | KV, memo: AccountMemo | None = None, jobs: JobMemo | None = None) -> None:
        self.db = db
        self.memo = memo if memo is not None else AccountMemo()
        self.job_memo = jobs if jobs is not None else JobMemo()
        self.read: dict[bytes, bytes | None] = {}  # stored bytes of each account read: undo data
        self.jobs_read: dict[bytes, bytes | None] = {}  # and of each job
        self.totals_read = b""

    def account(self, account_id: bytes) -> Account | None:
        data = self.db.get(schema.ACCOUNT + account_id)
        self.read[account_id] = data
        return self.memo.decode(data) if data is not None else None

    def node(self, path: bytes) -> bytes | None:
        return self.db.get(schema.TRIE + path)

    def job(self, job_id: bytes) -> Job | None:
        data = self.db.get(schema.JOB + job_id)
        self.jobs_read[job_id] = data
        return self.job_memo.decode(data) if data is not None else None

    def spec(self, job_id: bytes) -> bytes | None:
        return self.db.get(schema.JOB_SPEC + job_id)

    def block_hash(self, height: int) -> bytes | None:
        return self.db.get(schema.height_key(height))

    def record(self, store_key: bytes) -> bytes | None:
        return self.db.get(store_key)

    def totals(self) -> Totals:
        data = self.db.get(schema.TOTALS)
        if data is None:
            raise StoreError("store-corrupt", "no totals recorded")
        self.totals_read = data
        return Totals.decode(data)


JOB_ROLES = {b"c": "client", b"w": "worker"}  # the values of the jobs-by-account index


def market_rows(block: Block, effects: BlockEffects) -> list[tuple[bytes, bytes]]:
    """The index rows of a block's market effects: events by account and by job, and jobs by
    the accounts that took part (client on post, worker on award)."""
    height = schema.height_bytes(effects_height(block))
    rows: list[tuple[bytes, bytes]] = []
    for seq, event in enumerate(effects.events):
        data = event.encode()
        tail = height + seq.to_bytes(4, "big")
        if event.account:
            rows.append((schema.EVENT_BY_ACCOUNT + event.account + tail, data))
        if event.job_id:
            rows.append((schema.EVENT_BY_JOB + event.job_id + tail, data))
    for job_id, (before, after) in effects.jobs.items():
        if before is None:
            rows.append((schema.JOB_BY_ACCOUNT + after.client + job_id + height, b"c"))
        workers = {s.worker for s in after.shards if s.worker} - ({s.worker for s in before.shards} if before else set())
        for worker in sorted(workers):
            rows.append((schema.JOB_BY_ACCOUNT + worker + job_id + height, b"w"))
    return rows


def effects_height(block: Block) -> int:
    return block.header.height


def _parties(tx: Transaction) -> tuple[bytes, ...]:
    """The accounts a transaction touches, each once."""
    sender = tx.sender_account
    payload = tx.payload
    if type(payload) is Transfer and payload.to != sender:
        return sender, payload.to
    return (sender,)


def index_rows(block: Block, block_hash: bytes) -> Iterator[tuple[bytes, bytes]]:
    """The tx index and account history rows of a main-chain block.

    One history row per account and block (an account paid and paying in one block, or an
    exchange's, costs one row, not one per transaction), holding (position, txid) entries.
    """
    height = schema.height_bytes(block.header.height)
    history: dict[bytes, list[bytes]] = {}
    for index, tx in enumerate(block.txs):
        txid = tx.txid
        position = index.to_bytes(schema.POSITION_SIZE, "big")
        yield schema.TX_INDEX + txid, block_hash + position
        entry = position + txid
        for account_id in _parties(tx):
            if account_id in history:
                history[account_id].append(entry)
            else:
                history[account_id] = [entry]
    for account_id, entries in history.items():
        yield schema.HISTORY + account_id + height, b"".join(entries)


def verified_block(data: bytes, block_hash: bytes) -> Block:
    """A block read back from the store, checked against the hash it is stored under.

    LevelDB's checksums catch a flipped bit on disk, but not a value written wrong or a table
    rebuilt by a repair; the block hash and the tx root catch both, so a block is never served
    to a peer or an RPC client, nor undone or reconnected in a reorg, unless it is the block the
    hash names.
    """
    verified_block_bytes(data, block_hash)
    return Block.decode(data, max_size=1 << 30)


def verified_block_bytes(data: bytes, block_hash: bytes) -> bytes:
    """`verified_block` for bytes that are only passed on (sync serving): the same checks
    without building the transactions, a third of a full decode's cost."""
    try:
        header, _, encodings = block_parts(data, max_size=1 << 30)
    except DecodeError as exc:
        raise StoreError("store-block-undecodable", f"block {block_hash.hex()}: {exc.reason}") from None
    if header.hash != block_hash:
        raise StoreError("store-block-mismatch", f"block stored as {block_hash.hex()} hashes to {header.hash.hex()}")
    if merkle_root([txid_of(encoded) for encoded in encodings]) != header.tx_root:
        raise StoreError("store-block-mismatch", f"block {block_hash.hex()}: transactions do not match its tx root")
    return data


class ChainState:
    """The node's view of the chain, backed by a KV store. Not thread-safe: one owner task."""

    def __init__(
        self,
        kv: KV,
        genesis: Genesis,
        *,
        verify_pool: Executor | Verifier | None = None,
        state_cache_entries: int = DEFAULT_STATE_CACHE_ENTRIES,
        on_fault: FaultListener | None = None,
        adjudicator: Adjudicator | None = None,
    ):
        # re-renders an item to judge a fraud proof (neurod passes the worker's renderer)
        self.adjudicator = adjudicator
        # told of every stored value found damaged (the daemon counts and logs them)
        self.on_fault = on_fault
        self.kv = StateCache(kv, (schema.ACCOUNT, schema.TRIE, schema.JOB), max_entries=state_cache_entries)
        self.decoded_accounts = AccountMemo(state_cache_entries)
        self.decoded_jobs = JobMemo()
        self.genesis = genesis
        self.params: ChainParams = genesis.params
        self.treasury = genesis.names.get("treasury", b"")  # a listing sale's protocol fee goes there
        self.chain_id = genesis.chain_id
        self.pool = verify_pool
        # ids of transactions whose signatures the owner already checked (its mempool)
        self.verified_txids: Container[bytes] = ()
        stored = self.kv.get(schema.GENESIS)
        if stored is None:
            self._write_genesis()
        elif stored != self.chain_id:
            raise StoreError("wrong-network", f"database holds chain {stored.hex()[:16]}, expected {self.chain_id.hex()[:16]}")
        else:
            version = int.from_bytes(self.kv.get(schema.FORMAT) or b"\x01", "big")
            if version != schema.FORMAT_VERSION:
                raise StoreError(
                    "store-format",
                    f"database layout version {version}, this neurod reads version {schema.FORMAT_VERSION}:"
                    " move the chain directory aside and let the node sync again",
                )
        self._load_tip()

    # ---- reads ---------------------------------------------------------------------------

    def _load_tip(self) -> None:
        tip = self.kv.get(schema.TIP)
        if tip is None:
            raise StoreError("store-corrupt", "no tip recorded")
        self.tip_hash = tip
        self.tip_header = self.header(tip)
        self.tip_meta = self.meta(tip)
        self.supply = int.from_bytes(self.kv.get(schema.SUPPLY) or b"", "big")

    @property
    def height(self) -> int:
        return self.tip_header.height

    def header(self, block_hash: bytes) -> Header:
        data = self.kv.get(schema.HEADER + block_hash)
        if data is None:
            raise ChainError("unknown-block", block_hash.hex(), kind=RejectKind.MISSING)
        try:
            header = Header.decode(data)
        except DecodeError as exc:
            raise self._damaged(StoreError("store-header-undecodable", f"header {block_hash.hex()}: {exc.reason}")) from None
        if header.hash != block_hash:
            raise self._damaged(StoreError("store-header-mismatch", f"header stored as {block_hash.hex()} hashes to {header.hash.hex()}"))
        return header

    def _damaged(self, error: StoreError) -> StoreError:
        if self.on_fault is not None:
            self.on_fault(error)
        return error

    def read_stored_block(self, db: KV | Overlay, block_hash: bytes, data: bytes | None = None) -> Block:
        """A stored block, verified (`verified_block`); a known block that is absent is damage."""
        data = data if data is not None else db.get(schema.BLOCK + block_hash)
        if data is None:
            raise self._damaged(StoreError("store-block-missing", f"block {block_hash.hex()} is not stored"))
        try:
            return verified_block(data, block_hash)
        except StoreError as exc:
            raise self._damaged(exc) from None

    def has_block(self, block_hash: bytes) -> bool:
        return self.kv.get(schema.META + block_hash) is not None

    def meta(self, block_hash: bytes) -> BlockMeta:
        data = self.kv.get(schema.META + block_hash)
        if data is None:
            raise ChainError("unknown-block", block_hash.hex(), kind=RejectKind.MISSING)
        return BlockMeta.decode(data)

    def block_bytes(self, block_hash: bytes) -> bytes | None:
        """A stored block's bytes, verified against its hash before anyone is given them."""
        data = self.kv.get(schema.BLOCK + block_hash)
        if data is None:
            return None
        try:
            return verified_block_bytes(data, block_hash)
        except StoreError as exc:
            raise self._damaged(exc) from None

    def block(self, block_hash: bytes) -> Block:
        data = self.kv.get(schema.BLOCK + block_hash)
        if data is None:
            raise ChainError("unknown-block", block_hash.hex(), kind=RejectKind.MISSING)
        return self.read_stored_block(self.kv, block_hash, data)

    def hash_at(self, height: int) -> bytes | None:
        return self.kv.get(schema.height_key(height)) if height >= 0 else None

    def account(self, account_id: bytes) -> Account | None:
        return _StateView(self.kv, self.decoded_accounts).account(account_id)

    def accounts(self) -> Iterator[tuple[bytes, Account]]:
        for key, value in self.kv.iterate(schema.ACCOUNT):
            yield key[1:], Account.decode(value)

    def state_root_from_scratch(self) -> bytes:
        """The state root recomputed from every stored record (accounts, jobs, totals), not from
        the stored trie: what the incremental root must equal."""
        values = {key: account.value_hash for key, account in self.accounts()}
        values.update({job_key(job_id): job.value_hash for job_id, job in self.jobs()})
        values.update(self.record_hashes())
        values[TOTALS_KEY] = self.totals().value_hash
        return compute_root(values)

    def state_root(self, db: KV | Overlay | None = None) -> bytes:
        """The root of the stored trie (as seen through ``db``, an overlay over the store)."""
        return root_of(_StateView(db or self.kv).node)

    # ---- market reads --------------------------------------------------------------------

    def job(self, job_id: bytes) -> Job | None:
        return _StateView(self.kv).job(job_id)

    def record(self, store_key: bytes) -> bytes | None:
        """A `chain.records` record's bytes at the tip (a listing, a purchase)."""
        return self.kv.get(store_key)

    def records(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """(id, bytes) of every record under one of `schema.RECORD_PREFIXES`, in id order."""
        for key, value in self.kv.iterate(prefix):
            yield key[len(prefix):], value

    def record_hashes(self) -> dict[bytes, bytes]:
        """Trie key -> value hash of every `chain.records` record (a root from scratch)."""
        return {record_key(prefix + record_id): record_value_hash(value)
                for prefix in schema.RECORD_PREFIXES for record_id, value in self.records(prefix)}

    def job_spec(self, job_id: bytes) -> bytes | None:
        return self.kv.get(schema.JOB_SPEC + job_id)

    def totals(self) -> Totals:
        return _StateView(self.kv).totals()

    def jobs(self) -> Iterator[tuple[bytes, Job]]:
        """Every job ever posted on the main chain, in id order."""
        for key, value in self.kv.iterate(schema.JOB):
            yield key[1:], Job.decode(value)

    def jobs_of(self, account_id: bytes) -> dict[bytes, set[str]]:
        """Job ids the account took part in, with its roles ("client", "worker")."""
        roles: dict[bytes, set[str]] = {}
        prefix = schema.JOB_BY_ACCOUNT + account_id
        for key, value in self.kv.iterate(prefix):
            job_id = key[len(prefix):len(prefix) + HASH_SIZE]
            role = JOB_ROLES.get(value)
            if role is None:
                raise self._damaged(StoreError("store-corrupt", f"job {job_id.hex()} of {account_id.hex()}: role {value!r}"))
            roles.setdefault(job_id, set()).add(role)
        return roles

    def events(self, *, account: bytes | None = None, job_id: bytes | None = None,
               limit: int = 100) -> list[tuple[int, Event]]:
        """(height, event) of the market's token movements for an account or a job, newest first."""
        if (account is None) == (job_id is None):
            raise ValueError("events: give exactly one of account and job_id")
        prefix = schema.EVENT_BY_ACCOUNT + account if account is not None else schema.EVENT_BY_JOB + job_id  # type: ignore[operator]
        rows = [(int.from_bytes(key[-12:-4], "big"), Event.decode(value)) for key, value in self.kv.iterate(prefix)]
        return rows[::-1][:limit]

    def tx_location(self, txid: bytes) -> tuple[bytes, int] | None:
        """(block hash, position) of a main-chain transaction."""
        data = self.kv.get(schema.TX_INDEX + txid)
        if data is None:
            return None
        return data[:HASH_SIZE], int.from_bytes(data[HASH_SIZE:], "big")

    def history(self, account_id: bytes, limit: int = 100) -> list[tuple[int, int, bytes]]:
        """(height, position, txid) of main-chain transactions touching an account, newest first."""
        rows = []
        entry = schema.POSITION_SIZE + HASH_SIZE
        for key, value in self.kv.iterate(schema.HISTORY + account_id):
            height = int.from_bytes(key[-8:], "big")
            for at in range(0, len(value), entry):
                position = int.from_bytes(value[at : at + schema.POSITION_SIZE], "big")
                rows.append((height, position, value[at + schema.POSITION_SIZE : at + entry]))
        return rows[::-1][:limit]

    def locator(self) -> list[bytes]:
        """Main-chain hashes: the last 10, then exponentially sparser, always ending at genesis."""
        heights, step, height = [], 1, self.height
        while height > 0:
            heights.append(height)
            if len(heights) >= 10:
                step *= 2
            height -= step
        heights.append(0)
        return [h for h in (self.hash_at(x) for x in heights) if h is not None]

    def headers_after(self, locator: list[bytes], limit: int) -> list[Header]:
        """Main-chain headers after the first locator hash we have on our main chain, up to the
        first one the store holds damaged (reported to ``on_fault``; a peer gets what is intact)."""
        start = 0
        for block_hash in locator:
            data = self.kv.get(schema.META + block_hash)
            if data is None:
                continue
            height = BlockMeta.decode(data).height
            if self.hash_at(height) == block_hash:
                start = height + 1
                break
        result = []
        for height in range(start, min(self.height, start + limit - 1) + 1):
            main_hash = self.hash_at(height)
            if main_hash is None:  # the tip moved under us (another thread's reorg): stop here
                break
            try:
                result.append(self.header(main_hash))
            except StoreError:
                break
        return result

    def recent_timestamps(self, header: Header, count: int, db: KV | Overlay | None = None) -> list[int]:
        """Timestamps of ``header`` and up to ``count - 1`` ancestors, oldest first."""
        db = db or self.kv
        stamps = [header.timestamp]
        current = header
        while len(stamps) < count and current.height > 0:
            data = db.get(schema.HEADER + current.parent)
            if data is None:
                break
            current = Header.decode(data)
            stamps.append(current.timestamp)
        return stamps[::-1]

    # ---- import --------------------------------------------------------------------------

    def check_block_alone(self, block: Block, encoded_size: int | None = None) -> None:
        """Stages 1-2 at once, signatures joined: everything that needs no other block."""
        check_header(block.header, self.params)
        check_block(
            block, self.params, self.chain_id, encoded_size=encoded_size, pool=self.pool,
            verified=self.verified_txids,
        )

    def process_block(self, block: Block, now: int, *, encoded_size: int | None = None) -> ImportResult:
        """Validate and store ``block``; move the tip if its branch is now the heaviest.

        The signature checks (stage 2) run on the verify pool while this thread does stages 3-4
        (Bitcoin Core's script check queue): nothing is committed before they pass, and if they
        fail their reason is the one raised, as if the stages had run one after another.
        """
        return self._finish(block, now, self._start_checks(block, encoded_size))

    def process_blocks(
        self, blocks: Sequence[Block | bytes], now: int, *, lookahead: int = DEFAULT_LOOKAHEAD
    ) -> list[ImportResult | ChainError]:
        """`process_block` each of ``blocks`` in order (a batch from sync), one outcome each.

        While one block's state transition runs, the signature checks of the next ``lookahead``
        blocks are already queued on the verify pool (go-ethereum's sender cacher does the same
        for a batch), so the pool never idles between blocks, not even while a block commits.
        Blocks given encoded are decoded as they are queued, so the pool starts after one decode
        rather than a whole batch's. Stops after the first block rejected as malformed or
        invalid: the rest of a batch builds on it, and its sender is at fault. Outcomes keep
        each block's own rejection reason.
        """
        queued: deque[tuple[Block | None, SignatureChecks | ChainError]] = deque()
        outcomes: list[ImportResult | ChainError] = []
        started = iter(blocks)

        def queue_next() -> None:
            item = next(started, None)
            if item is None:
                return
            block = None
            try:
                block = item if isinstance(item, Block) else Block.decode(item)
                size = None if isinstance(item, Block) else len(item)
                queued.append((block, self._start_checks(block, size)))
            except ChainError as exc:
                queued.append((block, exc))

        try:
            for _ in range(max(1, lookahead + 1)):  # the first block's, and its lookahead's
                queue_next()
            while queued:
                block, checks = queued.popleft()
                queue_next()
                try:
                    if isinstance(checks, ChainError):
                        raise checks
                    assert block is not None
                    outcomes.append(self._finish(block, now, checks))
                except ChainError as exc:
                    outcomes.append(exc)
                    if exc.kind in (RejectKind.MALFORMED, RejectKind.INVALID):
                        break
        finally:
            for _, checks in queued:
                if isinstance(checks, SignatureChecks):
                    checks.settle()
        return outcomes

    def _start_checks(self, block: Block, encoded_size: int | None) -> SignatureChecks:
        """Stages 1-2 of a new block, its signature checks started on the pool, not joined."""
        self._refuse_known(block)
        check_header(block.header, self.params)
        check_block_contents(block, self.params, self.chain_id, encoded_size=encoded_size)
        return start_signature_checks(block, pool=self.pool, verified=self.verified_txids)

    def _finish(self, block: Block, now: int, signatures: SignatureChecks) -> ImportResult:
        """Stages 3-4 and the commit, joining ``signatures`` before anything is stored."""
        try:
            self._refuse_known(block)  # again: a batch may hold a block twice
            return self._store(block, now, signatures)
        except ChainError:
            signatures.require()
            raise
        finally:
            signatures.settle()  # whatever happened, a pool gets its workers back

    def _refuse_known(self, block: Block) -> None:
        known = self.kv.get(schema.META + block.hash)
        if known is not None:
            if BlockMeta.decode(known).status == BlockStatus.INVALID:
                raise InvalidBlock("duplicate-invalid", "block was rejected before")
            raise ChainError("duplicate", "block already known", kind=RejectKind.STALE)

    def _store(self, block: Block, now: int, signatures: SignatureChecks) -> ImportResult:
        block_hash = block.hash
        parent_meta_bytes = self.kv.get(schema.META + block.header.parent)
        if parent_meta_bytes is None:
            raise InvalidBlock("prev-blk-not-found", block.header.parent.hex(), kind=RejectKind.MISSING)
        parent_meta = BlockMeta.decode(parent_meta_bytes)
        if parent_meta.status == BlockStatus.INVALID:
            signatures.require()
            self._mark_invalid([block])
            raise InvalidBlock("bad-prevblk", "parent is invalid")
        parent = self.header(block.header.parent)
        stamps = self.recent_timestamps(parent, self.params.median_time_span)
        check_header_context(block.header, parent, stamps, self.params, now)
        meta = BlockMeta(block.header.height, parent_meta.work + work_of(block.header.bits), BlockStatus.STORED)
        overlay = Overlay(self.kv)
        overlay.put(schema.HEADER + block_hash, block.header.encode())
        overlay.put(schema.BLOCK + block_hash, block.encode())
        overlay.put(schema.META + block_hash, meta.encode())
        if meta.work <= self.tip_meta.work:
            signatures.require()
            overlay.commit(sync=False)
            return ImportResult(block_hash, meta.height, tip_changed=False)
        return self._activate(overlay, block, meta, signatures)

    def _activate(
        self, overlay: Overlay, block: Block, meta: BlockMeta, signatures: SignatureChecks
    ) -> ImportResult:
        branch = self._branch_to_main(overlay, block)
        fork_height = branch[0].header.height - 1
        disconnected = []
        while self._tip_height(overlay) > fork_height:
            disconnected.append(self.disconnect_tip(overlay))
        if disconnected:
            failpoints.hit("reorg-after-undo")
        supply = int.from_bytes(overlay.get(schema.SUPPLY) or b"", "big")
        connected = []
        for index, candidate in enumerate(branch):
            try:
                supply = self._connect(overlay, candidate, supply)
            except StoreError:
                raise  # our disk failed us, not the block: nothing is marked invalid
            except ChainError as exc:
                signatures.require()
                self._mark_invalid(branch[index:], keep=overlay)
                if candidate is block:
                    raise
                raise InvalidBlock("bad-prevblk", f"ancestor {candidate.hash.hex()[:16]} failed: {exc.reason}") from None
            connected.append(candidate)
        signatures.require()
        failpoints.hit("reorg-before-commit" if disconnected else "block-before-commit")
        overlay.commit(sync=True)
        failpoints.hit("block-after-commit")
        self._load_tip()
        return ImportResult(block.hash, meta.height, True, tuple(connected), tuple(disconnected))

    def _tip_height(self, db: Overlay) -> int:
        tip = db.get(schema.TIP)
        assert tip is not None
        return BlockMeta.decode(db.get(schema.META + tip) or b"").height

    def _branch_to_main(self, db: Overlay, block: Block) -> list[Block]:
        """Blocks from the first one off the main chain up to ``block``, oldest first."""
        branch = [block]
        parent = block.header.parent
        while self.hash_at(BlockMeta.decode(db.get(schema.META + parent) or b"").height) != parent:
            ancestor = self.read_stored_block(db, parent)
            branch.append(ancestor)
            parent = ancestor.header.parent
        return branch[::-1]

    def _connect(self, db: Overlay, block: Block, supply: int) -> int:
        view = _StateView(db, self.decoded_accounts, self.decoded_jobs)
        effects: BlockEffects = apply_block(self.params, view, block, supply, chain_id=self.chain_id,
                                            adjudicator=self.adjudicator, treasury=self.treasury)
        changes = effects.changes
        encoded = {account_id: after.encode() for account_id, (_, after) in changes.items()}
        updates = {k: account_value_hash(v) for k, v in encoded.items()}
        jobs = {job_id: after.encode() for job_id, (_, after) in effects.jobs.items()}
        for job_id, data in jobs.items():
            updates[job_key(job_id)] = hash256(data, person=JOB_VALUE_PERSON)
        assert effects.totals is not None
        totals = effects.totals[1].encode()
        updates[TOTALS_KEY] = effects.totals[1].value_hash
        for store_key, (_, value) in effects.records.items():
            updates[record_key(store_key)] = record_value_hash(value)
        root, nodes = update_trie(view.node, updates)
        if root != block.header.state_root:
            raise InvalidBlock("bad-state-root", expected=root.hex(), got=block.header.state_root.hex())
        block_hash = block.hash
        put, remember = db.put, self.decoded_accounts.remember
        rows = market_rows(block, effects)
        # undo data: each touched record's stored bytes before the block, as read (b"": absent)
        put(schema.UNDO + block_hash, _Undo.encode_stored(
            supply, [(k, view.read[k]) for k in changes], [(k, view.jobs_read.get(k)) for k in jobs],
            view.totals_read, [key for key, _ in rows], [(k, before) for k, (before, _) in effects.records.items()],
        ))
        for store_key, (_, value) in effects.records.items():
            put(store_key, value)
        for job_id, data in jobs.items():
            put(schema.JOB + job_id, data)
            self.decoded_jobs.remember(data, effects.jobs[job_id][1])
        for job_id, spec in effects.specs.items():
            put(schema.JOB_SPEC + job_id, spec)
        for key, value in rows:
            put(key, value)
        put(schema.TOTALS, totals)
        for account_id, (_, after) in changes.items():
            data = encoded[account_id]
            put(schema.ACCOUNT + account_id, data)
            remember(data, after)
        for path, node in nodes.items():
            if node is None:
                db.delete(schema.TRIE + path)
            else:
                put(schema.TRIE + path, node)
        height = block.header.height
        for key, value in index_rows(block, block_hash):
            put(key, value)
        put(schema.height_key(height), block_hash)
        meta = BlockMeta.decode(db.get(schema.META + block_hash) or b"")
        put(schema.META + block_hash, BlockMeta(meta.height, meta.work, BlockStatus.CONNECTED).encode())
        put(schema.TIP, block_hash)
        put(schema.SUPPLY, effects.supply.to_bytes(16, "big"))
        return effects.supply

    def disconnect_tip(self, db: Overlay) -> Block:
        """Undo the tip block of ``db`` into ``db`` with its undo data (nothing is committed)."""
        tip = db.get(schema.TIP)
        assert tip is not None
        block = self.read_stored_block(db, tip)
        undo_bytes = db.get(schema.UNDO + tip)
        try:
            undo = _Undo.decode(undo_bytes or b"")
        except ChainError as exc:
            raise self._damaged(StoreError("store-undo-damaged", f"undo data of {tip.hex()}: {exc.describe()}")) from None
        view = _StateView(db)
        updates: dict[bytes, bytes | None] = {}
        for account_id, before in undo.accounts:
            if before is None:
                db.delete(schema.ACCOUNT + account_id)
            else:
                db.put(schema.ACCOUNT + account_id, before.encode())
            updates[account_id] = before.value_hash if before is not None else None
        for job_id, job_bytes in undo.jobs:
            if job_bytes is None:  # posted in this block
                db.delete(schema.JOB + job_id)
                db.delete(schema.JOB_SPEC + job_id)
                updates[job_key(job_id)] = None
            else:
                db.put(schema.JOB + job_id, job_bytes)
                updates[job_key(job_id)] = hash256(job_bytes, person=JOB_VALUE_PERSON)
        for key in undo.rows:
            db.delete(key)
        for store_key, value in undo.records:
            if value is None:
                db.delete(store_key)
            else:
                db.put(store_key, value)
            updates[record_key(store_key)] = record_value_hash(value) if value is not None else None
        db.put(schema.TOTALS, undo.totals)
        updates[TOTALS_KEY] = Totals.decode(undo.totals).value_hash
        _, nodes = update_trie(view.node, updates)
        for path, node in nodes.items():
            if node is None:
                db.delete(schema.TRIE + path)
            else:
                db.put(schema.TRIE + path, node)
        for key, _ in index_rows(block, tip):
            db.delete(key)
        db.delete(schema.UNDO + tip)
        db.delete(schema.height_key(block.header.height))
        db.put(schema.TIP, block.header.parent)
        db.put(schema.SUPPLY, undo.supply.to_bytes(16, "big"))
        return block

    def _mark_invalid(self, blocks: list[Block], keep: Overlay | None = None) -> None:
        """Persist INVALID for ``blocks``; of ``keep`` only the new block's storage survives."""
        writes = Overlay(self.kv)
        if keep is not None:
            for key, value in keep.writes.items():
                if key[:1] in (schema.HEADER, schema.BLOCK) and value is not None:
                    writes.put(key, value)
        for block in blocks:  # an invalid block's work never counts: record none
            writes.put(schema.HEADER + block.hash, block.header.encode())
            writes.put(schema.META + block.hash, BlockMeta(block.header.height, 0, BlockStatus.INVALID).encode())
        writes.commit(sync=False)

    def _write_genesis(self) -> None:
        block = self.genesis.block
        block_hash = block.hash
        overlay = Overlay(self.kv)
        view = _StateView(overlay)
        accounts = self.genesis.accounts
        updates = {k: v.value_hash for k, v in accounts.items()}
        updates[TOTALS_KEY] = self.genesis.totals.value_hash
        root, nodes = update_trie(view.node, updates)
        if root != block.header.state_root:
            raise StoreError("bad-genesis", "genesis state root mismatch")
        for account_id, account in accounts.items():
            overlay.put(schema.ACCOUNT + account_id, account.encode())
        for path, node in nodes.items():
            if node is not None:
                overlay.put(schema.TRIE + path, node)
        meta = BlockMeta(0, work_of(block.header.bits), BlockStatus.CONNECTED)
        overlay.put(schema.HEADER + block_hash, block.header.encode())
        overlay.put(schema.BLOCK + block_hash, block.encode())
        overlay.put(schema.META + block_hash, meta.encode())
        overlay.put(schema.height_key(0), block_hash)
        overlay.put(schema.TIP, block_hash)
        overlay.put(schema.SUPPLY, self.genesis.supply.to_bytes(16, "big"))
        overlay.put(schema.TOTALS, self.genesis.totals.encode())
        overlay.put(schema.GENESIS, self.chain_id)
        overlay.put(schema.FORMAT, schema.FORMAT_VERSION.to_bytes(1, "big"))
        overlay.commit(sync=True)

