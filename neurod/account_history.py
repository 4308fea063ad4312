"""An account's history beyond its transactions: the blocks it mined and its market events.

A miner's balance grows by block rewards that no transaction carries, and the market moves
tokens by its rules (escrow, payments, slashes); a history of transactions alone explains
neither. The store has no index of blocks by miner, so the main chain's headers are read from
the tip down, only as deep as the returned page reaches (the oldest transaction row when the
page is full), at most `MAX_SCAN_BLOCKS` per call, yielding to the event loop as it goes. Every
row has a direction for the account, market events too (`EVENT_DIRECTIONS`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from neurod.market_json import amount, event_json

if TYPE_CHECKING:
    from chain.chainstate import ChainState
    from chain.jobs import Event

MAX_SCAN_BLOCKS = 100_000
YIELD_EVERY = 500  # headers read between checkpoints, so RPC stays responsive

# A market event's direction for the account it names, over what the account holds (balance and
# stake together): "in" when tokens come to it, "out" when they leave it (for a job's escrow or
# bond, a slash, a sale to the treasury), "-" when they move inside it (stake bonded, unbonded,
# released, locked for a shard) or a notice of tokens already out (a forfeited bond).
EVENT_DIRECTIONS = {
    "lock": "out", "pay": "in", "refund": "in", "reward": "in", "slash": "out", "forfeit": "-",
    "bond": "-", "unbond": "-", "release": "-", "voucher": "out", "redeem": "in", "sell": "out",
}
NOTED_DIRECTIONS = {("lock", "stake"): "-", ("pay", "purchase"): "out"}  # (kind, note) over the kind


async def mined_rows(chain: ChainState, account_id: bytes, down_to: int, hrp: str) -> list[dict[str, Any]]:
    """Rows for the main-chain blocks from the tip down to ``down_to`` that paid ``account_id``."""
    from chain.crypto import encode_address

    rows = []
    top = chain.height
    for height in range(top, max(down_to, 1, top - MAX_SCAN_BLOCKS) - 1, -1):
        if (top - height) % YIELD_EVERY == YIELD_EVERY - 1:
            await trio.lowlevel.checkpoint()
        block_hash = chain.hash_at(height)
        if block_hash is None or chain.header(block_hash).miner != account_id:
            continue
        block = chain.block(block_hash)
        paid = chain.params.block_reward(height) + sum(tx.fee for tx in block.txs)
        rows.append({
            "kind": "reward", "direction": "in", "height": height, "txid": None, "block_hash": block_hash.hex(),
            "from": None, "to": encode_address(account_id, hrp), **amount("amount", paid),
        })
    return rows


async def full_history(chain: ChainState, account_id: bytes, tx_rows: list[dict[str, Any]], limit: int,
                       hrp: str) -> list[dict[str, Any]]:
    """``tx_rows`` (newest first, at most ``limit``) with mining rewards and market events merged
    in, newest first, cut to ``limit``."""
    floor = tx_rows[-1]["height"] if len(tx_rows) >= limit else 0
    events = [{**event_json(height, event, hrp), "kind": "market", "event": event.kind,
               "direction": event_direction(event), "txid": None}
              for height, event in chain.events(account=account_id, limit=limit)]
    merged = tx_rows + await mined_rows(chain, account_id, floor, hrp) + events
    merged.sort(key=lambda row: row["height"], reverse=True)  # stable: a block's own order is kept
    return merged[:limit]


def event_direction(event: Event) -> str:
    """Which way ``event`` moves the tokens of the account it names: in, out or - (`EVENT_DIRECTIONS`)."""
    return NOTED_DIRECTIONS.get((event.kind, event.note)) or EVENT_DIRECTIONS.get(event.kind, "-")
