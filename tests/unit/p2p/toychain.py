"""An in-memory ChainBackend for p2p tests: a test double of neurod over a toy chain.

Blocks are hash-linked msgpack blobs with a declared amount of work; the best tip is the one with
the most cumulative work, so forks and reorgs behave like the real chain's fork choice.
header = ["hdr", parent, height, work, blake2b(body)]; block = ["blk", header, body].
A body starting with b"invalid" breaks a rule the cheap check sees; one starting with b"deep"
breaks a rule only full import sees; a tx or bid starting with b"bad" has a bad "signature".
"""

from __future__ import annotations

from hashlib import blake2b
from typing import Any

import msgpack
import trio

from chain.errors import RejectKind
from p2p.backend import ChainStatus, HeaderPlan, Outcome, Verdict


def h(data: bytes) -> bytes:
    return blake2b(data, digest_size=32).digest()


def make_header(parent: bytes, height: int, work: int, body: bytes) -> bytes:
    packed: bytes = msgpack.packb(["hdr", parent, height, work, h(body)])
    return packed


def make_block(parent: bytes, height: int, work: int, body: bytes) -> bytes:
    packed: bytes = msgpack.packb(["blk", make_header(parent, height, work, body), body])
    return packed


def decode_header(data: bytes) -> tuple[bytes, int, int, bytes]:
    obj = msgpack.unpackb(data)
    if not (isinstance(obj, list) and len(obj) == 5 and obj[0] == "hdr"):
        raise ValueError("not a header")
    _, parent, height, work, body_hash = obj
    return parent, height, work, body_hash


def decode_block(data: bytes) -> tuple[bytes, bytes]:
    """(header bytes, body); raises ValueError or TypeError on anything malformed."""
    try:
        obj = msgpack.unpackb(data)
    except Exception as exc:
        raise ValueError(str(exc)) from exc
    if not (isinstance(obj, list) and len(obj) == 3 and obj[0] == "blk"):
        raise ValueError("not a block")
    if not isinstance(obj[1], bytes) or not isinstance(obj[2], bytes):
        raise TypeError("bad block fields")
    decode_header(obj[1])
    return obj[1], obj[2]


class ToyChain:
    """ChainBackend over dicts. `name` picks the genesis, hence the chain id."""

    def __init__(self, name: str = "devnet") -> None:
        genesis_header = make_header(b"\0" * 32, 0, 1, name.encode())
        self.genesis = h(genesis_header)
        self.headers: dict[bytes, bytes] = {self.genesis: genesis_header}
        self.blocks: dict[bytes, bytes] = {
            self.genesis: msgpack.packb(["blk", genesis_header, name.encode()])
        }
        self.total: dict[bytes, int] = {self.genesis: 1}
        self.height_of: dict[bytes, int] = {self.genesis: 0}
        self.tip = self.genesis
        self.main: list[bytes] = [self.genesis]
        self.txs: list[bytes] = []
        self.bids: list[bytes] = []
        self.imported: list[tuple[bytes, str | None]] = []
        self.attempts = 0  # import_block calls, whatever their verdict
        self.changed = trio.Event()  # set (and replaced) on every import attempt or tx batch

    # -- builders ------------------------------------------------------------------------------

    def mine(
        self, count: int, tag: str = "a", work: int = 10, parent: bytes | None = None
    ) -> list[bytes]:
        """Append `count` blocks on `parent` (default: tip), stored here; returns their bytes."""
        parent = self.tip if parent is None else parent
        out = []
        for _ in range(count):
            height = self.height_of[parent] + 1
            data = make_block(parent, height, work, f"{tag}-{height}".encode())
            self._store(data)
            parent = h(decode_block(data)[0])
            out.append(data)
        return out

    def _store(self, data: bytes) -> bytes:
        header, _ = decode_block(data)
        parent, height, work, _ = decode_header(header)
        key = h(header)
        self.headers[key], self.blocks[key] = header, data
        self.total[key] = self.total[parent] + work
        self.height_of[key] = height
        if self.total[key] > self.total[self.tip]:
            if parent == self.tip:
                self.main.append(key)
            else:  # reorg: walk back from the new tip
                chain = [key]
                while chain[-1] != self.genesis:
                    chain.append(decode_header(self.headers[chain[-1]])[0])
                self.main = chain[::-1]
            self.tip = key
        self._wake()
        return key

    def _wake(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    # -- ChainBackend --------------------------------------------------------------------------

    @property
    def chain_id(self) -> str:
        return self.genesis.hex()

    def status(self) -> ChainStatus:
        return ChainStatus(self.genesis, self.height_of[self.tip], self.tip, self.total[self.tip])

    def locator(self) -> list[bytes]:
        out, step, index = [], 1, len(self.main) - 1
        while index > 0:
            out.append(self.main[index])
            if len(out) >= 10:
                step *= 2
            index -= step
        return out + [self.genesis]

    def headers_after(self, locator: list[bytes], limit: int) -> list[bytes]:
        position = {key: i for i, key in enumerate(self.main)}
        start = next((position[k] for k in locator if k in position), 0)
        return [self.headers[k] for k in self.main[start + 1 : start + 1 + limit]]

    def blocks_by_hash(self, hashes: list[bytes]) -> list[bytes]:
        return [self.blocks[k] for k in hashes if k in self.blocks]

    def plan_headers(self, headers: list[bytes]) -> HeaderPlan:
        try:
            decoded = [decode_header(x) for x in headers]
        except (ValueError, TypeError, msgpack.UnpackException):
            return HeaderPlan(Verdict.reject("bad-header", RejectKind.MALFORMED))
        expected = decoded[0][0]
        if expected not in self.headers:
            return HeaderPlan(Verdict.reject("headers-do-not-connect", RejectKind.INVALID))
        needed = []
        for raw, (parent, _, _, _) in zip(headers, decoded):
            if parent != expected:
                return HeaderPlan(Verdict.reject("headers-not-linked", RejectKind.INVALID))
            expected = h(raw)
            if expected not in self.blocks:
                needed.append(expected)
        return HeaderPlan(Verdict.accept(), needed, expected)

    def check_block(self, data: bytes) -> Verdict:
        try:
            header, body = decode_block(data)
        except (ValueError, TypeError):
            return Verdict.reject("bad-encoding", RejectKind.MALFORMED)
        if decode_header(header)[3] != h(body) or body.startswith(b"invalid"):
            return Verdict.reject("bad-block", RejectKind.INVALID)
        if h(header) in self.blocks:
            return Verdict.ignore("known-block", RejectKind.STALE)
        return Verdict.accept()

    async def import_block(self, data: bytes, origin: str | None) -> Verdict:
        verdict = self._import(data, origin)
        self.attempts += 1
        self._wake()  # waiters watch every import attempt, whatever its verdict
        return verdict

    async def import_blocks(self, blocks: list[bytes], origin: str | None) -> list[Verdict]:
        verdicts = []
        for data in blocks:
            verdicts.append(await self.import_block(data, origin))
            if verdicts[-1].outcome is Outcome.REJECT:
                break
        return verdicts

    def _import(self, data: bytes, origin: str | None) -> Verdict:
        verdict = self.check_block(data)
        if not verdict.accepted:
            return verdict
        header, body = decode_block(data)
        if decode_header(header)[0] not in self.blocks:
            return Verdict.ignore("unknown-parent", RejectKind.MISSING)
        if body.startswith(b"deep"):
            return Verdict.reject("bad-state-root", RejectKind.INVALID)
        self._store(data)
        self.imported.append((h(header), origin))
        return Verdict.accept()

    def check_tx_batch(self, txs: list[bytes]) -> Verdict:
        if any(tx.startswith(b"bad") for tx in txs):
            return Verdict.reject("bad-signature", RejectKind.INVALID)
        return Verdict.accept()

    async def accept_tx_batch(self, txs: list[bytes], origin: str | None) -> Verdict:
        self.txs.extend(txs)
        self._wake()
        return Verdict.accept()

    def check_bid(self, data: bytes, author: str) -> Verdict:
        if data.startswith(b"bad"):
            return Verdict.reject("bad-bid-signature", RejectKind.INVALID)
        return Verdict.accept()

    async def on_bid(self, data: bytes, origin: str | None) -> None:
        self.bids.append(data)
        self._wake()

    async def wait_until(self, condition: Any) -> None:
        """Wait (event-driven) until `condition()` is true."""
        while not condition():
            await self.changed.wait()
