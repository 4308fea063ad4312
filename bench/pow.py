"""Hash rate of `chain.pow.mine` against a bare blake2b loop over the same header, in one run.

`mine` scans a nonce range under an impossible target (so it hashes every nonce); the reference
hashes the full header bytes with `hashlib.blake2b(header, digest_size=32).digest()` in a plain
loop, the least a Python miner could do per nonce. Goal: ratio >= 0.8.

    .venv/bin/python bench/pow.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time
from hashlib import blake2b

from chain.pow import mine
from chain.types import Header

IMPOSSIBLE_BITS = 0x03000001  # target 1: no hash meets it


def sample_header() -> bytes:
    header = Header(
        1, 123_456, bytes(range(32)), 1_800_000_000, 0x1D11E54C, bytes(32), bytes(32), bytes(20)
    )
    return header.encode()


def mine_rate(header: bytes, count: int) -> float:
    start = time.perf_counter()
    found = mine(header, IMPOSSIBLE_BITS, 0, count)
    elapsed = time.perf_counter() - start
    assert found is None
    return count / elapsed


def reference_rate(header: bytes, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        blake2b(header, digest_size=32).digest()
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    args = parser.parse_args()
    count, rounds = (200_000, 3) if args.quick else (1_000_000, 5)
    header = sample_header()
    mined, plain = [], []
    for _ in range(rounds):  # interleaved, so drift on a shared machine hits both alike
        mined.append(mine_rate(header, count))
        plain.append(reference_rate(header, count))
    mine_hs, plain_hs = statistics.median(mined), statistics.median(plain)
    print(f"header: {len(header)} bytes, {rounds} rounds of {count:,} nonces, medians")
    print(f"chain.pow.mine:        {mine_hs / 1e6:6.2f} M hashes/s")
    print(f"bare blake2b loop:     {plain_hs / 1e6:6.2f} M hashes/s")
    print(f"ratio mine/reference:  {mine_hs / plain_hs:6.2f}  (goal >= 0.8)")


if __name__ == "__main__":
    main()
