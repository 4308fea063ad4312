"""What `p2p` needs from the chain, as narrow Protocols that `neurod` implements.

p2p moves bytes; it never decodes blocks, transactions or bids itself. It asks the backend cheap,
synchronous questions inside gossip validators (`check_block`, `check_tx_batch`, `check_bid`) and
hands full validation to the async `import_block` / `accept_tx_batch`. Every answer is a `Verdict`, whose
`RejectKind` the peer layer turns into a penalty (see `p2p.scoring`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol

from chain.errors import RejectKind


class Outcome(enum.Enum):
    """What gossip does with a message: forward it, drop it quietly, or drop it and blame."""

    ACCEPT = "accept"
    IGNORE = "ignore"  # drop, do not forward, no penalty (stale, missing parent, our limits)
    REJECT = "reject"  # drop and penalise the peer that sent it


@dataclass(frozen=True, slots=True)
class Verdict:
    """The backend's answer about one payload; `reason` is the chain's kebab-case reason."""

    outcome: Outcome
    reason: str = ""
    kind: RejectKind = RejectKind.LOCAL

    @property
    def accepted(self) -> bool:
        return self.outcome is Outcome.ACCEPT

    @classmethod
    def accept(cls) -> Verdict:
        return cls(Outcome.ACCEPT)

    @classmethod
    def ignore(cls, reason: str, kind: RejectKind = RejectKind.STALE) -> Verdict:
        return cls(Outcome.IGNORE, reason, kind)

    @classmethod
    def reject(cls, reason: str, kind: RejectKind = RejectKind.INVALID) -> Verdict:
        return cls(Outcome.REJECT, reason, kind)


@dataclass(frozen=True, slots=True)
class ChainStatus:
    """A node's view of its best chain, exchanged in the status handshake."""

    genesis: bytes  # 32-byte genesis block hash; its hex is the chain id
    height: int
    tip: bytes  # 32-byte hash of the best block
    work: int  # cumulative proof of work of the best chain (unbounded integer)


@dataclass(frozen=True, slots=True)
class HeaderPlan:
    """The backend's reading of a batch of headers served by a peer during sync.

    `verdict` rejects headers that do not connect or break header rules; `needed` lists the
    block hashes (in chain order) we must fetch; `last` is the hash of the last header, used
    as the first locator entry of the next request so a lighter-than-tip branch still advances.
    """

    verdict: Verdict
    needed: list[bytes] = field(default_factory=list)
    last: bytes | None = None


class ChainBackend(Protocol):
    """The chain as p2p sees it. Sync methods must be cheap: they run on the event loop."""

    @property
    def chain_id(self) -> str:
        """Hex of the genesis hash; embedded in topic names and protocol ids."""
        ...

    def status(self) -> ChainStatus: ...

    def locator(self) -> list[bytes]:
        """Block hashes from our tip back to genesis: dense near the tip, then sparse."""
        ...

    def headers_after(self, locator: list[bytes], limit: int) -> list[bytes]:
        """Encoded headers of our best chain after the first locator hash we know."""
        ...

    def blocks_by_hash(self, hashes: list[bytes]) -> list[bytes]:
        """Encoded blocks we have among `hashes`, in the order asked; unknown ones skipped."""
        ...

    def plan_headers(self, headers: list[bytes]) -> HeaderPlan: ...

    def check_block(self, data: bytes) -> Verdict:
        """Decode and header-alone checks; runs inside the gossip validator."""
        ...

    def check_tx_batch(self, txs: list[bytes]) -> Verdict:
        """Decode each encoded tx and check what needs no state (signatures); runs inside the
        gossip validator. p2p owns the batch envelope (`p2p.wire.decode_tx_batch`)."""
        ...

    def check_bid(self, data: bytes, author: str) -> Verdict:
        """Decode a market bid and check it against the chain (job open, worker staked,
        signature) and the node's bid limits; `author` is the peer id that published it (the
        gossip message's signed author). Runs inside the gossip validator; delivery of an
        accepted bid goes to the `on_bid` handler given to `p2p.node.P2P`."""
        ...

    async def import_block(self, data: bytes, origin: str | None) -> Verdict: ...

    async def import_blocks(self, blocks: list[bytes], origin: str | None) -> list[Verdict]:
        """Import a sync batch in order, one verdict per block tried; stops after the first
        rejection (the rest build on it), so fewer verdicts than blocks means it stopped."""
        ...

    async def accept_tx_batch(self, txs: list[bytes], origin: str | None) -> Verdict: ...
