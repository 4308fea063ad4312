"""Import a file of blocks into a LevelDB chain store; the crash test SIGKILLs this at random.

Usage: python crash_importer.py DATADIR BLOCKS_FILE [GENESIS]

BLOCKS_FILE is a msgpack list of encoded blocks in import order. Blocks the store already has are
skipped, so a run after a kill continues where the killed one stopped. Prints "ready" once the
store is open (the test times its kills from there) and "done" at the end.
"""

from __future__ import annotations

import sys
from pathlib import Path

import msgpack

from chain.chainstate import ChainState
from chain.genesis import load_genesis
from chain.store import LevelKV
from chain.types import Block


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    datadir, blocks_file = Path(argv[0]), Path(argv[1])
    genesis = load_genesis(argv[2] if len(argv) == 3 else "devnet")
    blocks = [Block.decode(data) for data in msgpack.unpackb(blocks_file.read_bytes())]
    kv = LevelKV(datadir)
    chain = ChainState(kv, genesis)
    print("ready", flush=True)
    for block in blocks:
        if not chain.has_block(block.hash):
            chain.process_block(block, block.header.timestamp)
    kv.close()
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
