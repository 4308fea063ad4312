"""Every key of the chain database, in one place (as go-ethereum's core/rawdb/schema.go).

One-byte prefixes; heights are 8-byte big-endian so that key order is height order.
"""

from __future__ import annotations

HEADER = b"h"  # + block hash -> header bytes
BLOCK = b"b"  # + block hash -> block bytes
META = b"m"  # + block hash -> BlockMeta (height, cumulative work, status)
MAIN_CHAIN = b"n"  # + height (8 BE) -> block hash on the main chain
UNDO = b"u"  # + block hash -> undo data of a connected block
ACCOUNT = b"a"  # + 20-byte account id -> Account
TRIE = b"s"  # + nibble path -> trie node
TX_INDEX = b"t"  # + txid -> (block hash, position) on the main chain
TIP = b"T"  # -> hash of the main chain's tip
SUPPLY = b"S"  # -> total issued at the tip
GENESIS = b"G"  # -> chain id this database belongs to
HISTORY = b"x"  # + account id + height (8 BE) + position (4 BE) -> txid touching the account
CHILDREN = b"c"  # + parent hash + child hash -> b"" (side branches, for reorgs)


def height_key(height: int) -> bytes:
    return MAIN_CHAIN + height.to_bytes(8, "big")


def history_key(account_id: bytes, height: int, position: int) -> bytes:
    return HISTORY + account_id + height.to_bytes(8, "big") + position.to_bytes(4, "big")
