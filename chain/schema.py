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
TX_INDEX = b"t"  # + txid -> block hash + position (4 BE) on the main chain
TIP = b"T"  # -> hash of the main chain's tip
SUPPLY = b"S"  # -> total issued at the tip
GENESIS = b"G"  # -> chain id this database belongs to
FORMAT = b"F"  # -> layout version of this database (absent: version 1)
HISTORY = b"x"  # + account id + height (8 BE) -> (position (4 BE) + txid) of each tx touching it
# b"c" is retired: parent + child -> b"", written up to now and never read (the fork choice walks
# parents and the height index). Stores that hold such rows read the same without them, so the
# layout version stays; do not reuse the byte.
JOB = b"j"  # + job id -> Job (its value hash is in the state trie under jobs.job_key)
JOB_SPEC = b"p"  # + job id -> the spec bytes of its JobPost (hash in the Job)
TOTALS = b"y"  # -> Totals (issued, burned, staked) at the tip; in the trie under jobs.TOTALS_KEY
JOB_BY_ACCOUNT = b"J"  # + account id + job id + height (8 BE) -> role (b"c" client, b"w" worker)
EVENT_BY_ACCOUNT = b"e"  # + account id + height (8 BE) + sequence (4 BE) -> Event
EVENT_BY_JOB = b"E"  # + job id + height (8 BE) + sequence (4 BE) -> Event
LISTING = b"l"  # + listing id -> ListingRecord (a `chain.records` record)
PURCHASE = b"q"  # + purchase id -> PurchaseRecord (a `chain.records` record)
VOUCHER_REDEEMED = b"v"  # + voucher id (16) -> Redemption (chain.treasury_types; a record)
BUYBACK_OFFER = b"o"  # + offer id -> Offer (a record)
BUYBACK_CLAIM = b"k"  # + claim id (the sell's txid) -> Claim (a record)
# the prefixes of `chain.records` records: the trie commits to each row under records.record_key
RECORD_PREFIXES = (LISTING, PURCHASE, VOUCHER_REDEEMED, BUYBACK_OFFER, BUYBACK_CLAIM)

# every prefix by name: a whole-store check reads each range
PREFIXES = {
    "header": HEADER, "block": BLOCK, "meta": META, "main chain": MAIN_CHAIN, "undo": UNDO,
    "account": ACCOUNT, "trie": TRIE, "tx index": TX_INDEX, "tip": TIP, "supply": SUPPLY,
    "genesis": GENESIS, "format": FORMAT, "history": HISTORY,
    "job": JOB, "job spec": JOB_SPEC, "totals": TOTALS, "jobs by account": JOB_BY_ACCOUNT,
    "events by account": EVENT_BY_ACCOUNT, "events by job": EVENT_BY_JOB,
    "listing": LISTING, "purchase": PURCHASE, "voucher redeemed": VOUCHER_REDEEMED,
    "buyback offer": BUYBACK_OFFER, "buyback claim": BUYBACK_CLAIM,
}


# 2: the state trie stores branches only, each with its leaf children's keys; one history row
#    per account and block
# 3: market state (jobs, specs, totals in the trie), events and job indexes, stake in accounts
FORMAT_VERSION = 3


POSITION_SIZE = 4


def height_bytes(height: int) -> bytes:
    return height.to_bytes(8, "big")


def height_key(height: int) -> bytes:
    return MAIN_CHAIN + height_bytes(height)
