"""A fraud proof is judged the same by independent nodes: fresh interpreters, fresh chains.

The renderer that re-computes a challenged item is consensus code (`neurod.adjudicator`): if two
processes disagreed on one item, the chain would split. Here a chain with a committed lying shard
is serialized (`Block.encode`) with candidate challenge blocks, and two fresh Python processes (with
different hash seeds) import them into fresh chains with the node's `RenderAdjudicator`, reporting
the state root and either acceptance or the refusal's reason for each candidate. Both must agree
with each other and with this process: the valid proof is accepted with the same root, and the
false ones (an honest item, another shard's leaf, a proof after the window) are refused with the
same reason everywhere.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chain.market_types import (
    AwardEntry,
    Challenge,
    JobAward,
    JobPost,
    ResultCommit,
    Service,
    Stake,
)
from chain.types import Block
from tests.support.chain_builders import forge_block, main_chain, make_block, mine_blocks
from tests.support.market import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    NTK,
    bid,
    claim_of,
    clone_market_chain,
    digits_job_spec,
    market_chain,
    mine,
    render_shard_artifact,
    tx,
)

REPO = Path(__file__).resolve().parents[3]
SPEC = digits_job_spec(8, seed=21)
LIE = digits_job_spec(8, seed=22)

# Written to judge.py, run as `python judge.py cases.json` in fresh interpreters and imported here:
# for each case, a fresh devnet chain with the node's adjudicator imports the base blocks, then the
# case's blocks, and reports where it stands.
JUDGE = r'''
import json, sys
from chain.errors import ChainError
from chain.genesis import load_genesis
from chain.chainstate import ChainState
from chain.store import MemoryKV
from chain.types import Block
from neurod.adjudicator import RenderAdjudicator


def judge(path):
    doc = json.loads(open(path).read())
    out = {}
    for name, blocks in sorted(doc["cases"].items()):
        chain = ChainState(MemoryKV(), load_genesis("devnet"), adjudicator=RenderAdjudicator())
        result = "ok"
        for data in doc["base"] + blocks:
            block = Block.decode(bytes.fromhex(data))
            try:
                chain.process_block(block, block.header.timestamp)
            except ChainError as exc:
                result = exc.reason
                break
        job = chain.job(bytes.fromhex(doc["job"]))
        totals = chain.totals()
        out[name] = {"result": result, "tip": chain.tip_hash.hex(), "root": chain.state_root().hex(),
                     "scratch": chain.state_root_from_scratch().hex(), "job": job.encode().hex(),
                     "totals": [totals.issued, totals.burned],
                     "accounts": sorted([k.hex(), a.encode().hex()] for k, a in chain.accounts())}
    return out


if __name__ == "__main__":
    print(json.dumps(judge(sys.argv[1]), sort_keys=True))
'''


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The serialized chain and candidates; and each candidate's expected outcome."""
    out = tmp_path_factory.mktemp("fraud-processes")
    good0 = render_shard_artifact(SPEC, 0, 4, out / "good0")
    bad1 = render_shard_artifact(LIE, 4, 8, out / "bad1")
    chain = market_chain()
    mine(chain, tx(chain, BOB, Stake(100 * NTK)), tx(chain, CAROL, Stake(100 * NTK)))
    posting = tx(chain, ALICE, JobPost(Service.GENERATE, SPEC, 2, 10**6, 2, 20, 3))
    mine(chain, posting)
    job_id = posting.txid
    entries = (AwardEntry(bid(chain, BOB, job_id, 10**6), (0,)), AwardEntry(bid(chain, CAROL, job_id, 10**6), (1,)))
    mine(chain, tx(chain, ALICE, JobAward(job_id, entries)))
    mine(chain, tx(chain, BOB, ResultCommit(job_id, 0, good0.root, 4)), tx(chain, CAROL, ResultCommit(job_id, 1, bad1.root, 4)))
    tip = chain.tip_header

    def forged(challenge: Challenge) -> list[Block]:
        return [forge_block(chain, tip, [tx(chain, DAVE, challenge)])]

    proof = Challenge(job_id, 1, 5, claim_of(bad1, 1))
    fraud = make_block(chain, [tx(chain, DAVE, proof)])
    late_chain = clone_market_chain(chain)
    waited = mine_blocks(late_chain, 4)  # the window closes 3 blocks after the commit
    late = forge_block(late_chain, late_chain.tip_header, [tx(late_chain, DAVE, proof)])
    blocks = {
        "fraud": [fraud],
        "honest-item": forged(Challenge(job_id, 0, 1, claim_of(good0, 1))),
        "other-shard-index": forged(Challenge(job_id, 0, 5, claim_of(bad1, 1))),
        "other-shard-leaf": forged(Challenge(job_id, 0, 1, claim_of(bad1, 1))),
        "late": [*waited, late],
    }
    expected = {"fraud": "ok", "honest-item": "challenge-honest-item", "other-shard-index": "item-outside-shard",
                "other-shard-leaf": "bad-proof-path", "late": "challenge-window-closed"}
    path = out / "cases.json"
    path.write_text(json.dumps({
        "job": job_id.hex(),
        "base": [b.encode().hex() for b in main_chain(chain)],
        "cases": {name: [b.encode().hex() for b in bs] for name, bs in blocks.items()},
    }))
    return path, expected


def _in_process(judge: Path, path: Path) -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location("fraud_proof_judge", judge)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.judge(str(path))  # type: ignore[no-any-return]


def test_two_fresh_processes_judge_every_proof_alike(cases: tuple[Path, dict[str, str]]) -> None:
    path, expected = cases
    judge = path.with_name("judge.py")
    judge.write_text(JUDGE)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    runs = [
        subprocess.Popen([sys.executable, str(judge), str(path)], cwd=REPO, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env={**env, "PYTHONHASHSEED": str(seed)})
        for seed in (1, 2)
    ]
    outputs = []
    for run in runs:
        stdout, stderr = run.communicate(timeout=120)
        assert run.returncode == 0, stderr
        outputs.append(json.loads(stdout))
    here = _in_process(judge, path)
    assert outputs[0] == outputs[1] == here
    assert {name: case["result"] for name, case in here.items()} == expected
    for case in here.values():
        assert case["root"] == case["scratch"]
    fraud, honest = here["fraud"], here["honest-item"]
    # the proof moved the state: carol's stake is gone, half of it burned; a refusal moved nothing
    assert fraud["root"] != honest["root"] and fraud["totals"][1] > 0
    assert all(here[name]["root"] == honest["root"] for name in ("other-shard-index", "other-shard-leaf"))
    assert honest["totals"][1] == 0
