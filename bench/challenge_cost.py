"""What judging one render fraud proof costs a validator, next to rendering the item itself.

A validator that meets a `Challenge` with a claim (in a block, or in its mempool first) checks the
claimed leaf's Merkle path against the committed root, re-renders that one item through the
node's adjudicator (the worker's deterministic CPU renderer) and compares it with the leaf. For a
digits job and a shelf job this times the whole judgement as the mempool runs it
(`chain.assembly.check_against_tip`: the rules on a throwaway ledger over the tip, so it can be
repeated) against `worker.render.dataset.render_item` of the same item alone. The ratio shows
what the chain adds to the render; the render is what `max_challenges_per_block` bounds.

    .venv/bin/python bench/challenge_cost.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chain.assembly import check_against_tip
from chain.errors import InvalidTransaction
from chain.market_types import Challenge
from tests.support.market import (
    ALICE,
    BOB,
    CAROL,
    award,
    canonical,
    claim_of,
    commit,
    post,
    render_shard_artifact,
    staked,
    step,
    tx,
)
from worker.render.dataset import load_render_spec, render_item

ITEMS = 4
JOBS = {
    "digits": {"kind": "digits", "count": ITEMS, "renderer_version": 2},
    "shelf": {"kind": "shelf", "count": ITEMS},
}


def judged_ms(kind: str, spec: dict[str, object], rounds: int, out: Path) -> tuple[float, float]:
    """(median ms to judge a true fraud proof of one item, median ms to render that item)."""
    honest = canonical({"task": "render", "seed": 7, "spec": spec})
    lie = canonical({"task": "render", "seed": 8, "spec": spec})  # what the lying worker delivered
    chain = staked()
    job_id = post(chain, spec=honest, shards=1)
    award(chain, job_id, {BOB: (0,)})
    manifest = render_shard_artifact(lie, 0, ITEMS, out / kind)
    step(chain, commit(chain, job_id, BOB, 0, manifest))
    position = ITEMS - 1
    proof = tx(chain, CAROL, Challenge(job_id, 0, position, claim_of(manifest, position)))
    render_spec = load_render_spec(spec)
    judge, render = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        check_against_tip(chain, proof)  # passes: the proof convicts (a refusal would raise)
        judge.append(time.perf_counter() - start)
        start = time.perf_counter()
        render_item(render_spec, 7, position)
        render.append(time.perf_counter() - start)
    honest_proof = tx(chain, ALICE, Challenge(job_id, 0, 0, claim_of(render_shard_artifact(
        honest, 0, ITEMS, out / f"{kind}-honest"), 0)))
    try:  # a proof against an honest item must be refused: the bench measures a real judgement
        check_against_tip(chain, honest_proof)
    except InvalidTransaction as exc:
        assert exc.reason in ("bad-proof-path", "challenge-honest-item"), exc
    return statistics.median(judge) * 1e3, statistics.median(render) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for kind, spec in JOBS.items():
            judge, render = judged_ms(kind, spec, args.rounds, Path(tmp))
            print(f"{kind}: judging one fraud proof {judge:.2f} ms, rendering the item {render:.2f} ms,"
                  f" ratio {judge / render:.2f} (spec {json.dumps(spec, sort_keys=True)})")


if __name__ == "__main__":
    main()
