"""Label Data on the market between real daemons: the client publishes unlabelled images and a
trained model as artifacts in its own store, posts a label job naming them by root, and worker
daemons selling "label" bid, fetch both from the client, label their shards, deliver and are
paid once the client's re-labelled sample agrees (`neurod.market.label_check`); a labeler that
delivers random labels (`--worker-fault random-labels`) is disputed, voted fraud by the staked
worker the beacon draws (the training-dispute rule), slashed, and its shard redone and paid to
an honest labeler.

Blocks every 2 s: a member's fetch and check of 32 images by a tiny CNN (its child warmed when
the labels are committed) fits the devnet's 4-block vote window with room on a loaded machine.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from chain.devnet_keys import devnet_address
from neurod.artifact_store import store_of
from tests.functional.node_committee import events
from tests.functional.node_market import finished, market, paid_to, worker_flags
from tests.support.daemons import Daemon
from tests.support.labelling import LabelInputs, classifier_inputs
from worker.label_job import delivered_records, parse_label_job, predict_records

log = logging.getLogger("tests.node_label")
BLOCK = 2.0
FLOOR = 10**9  # base units per GFLOP: a shard of the tiny CNN pays ~0.003 NTK, far above any fee


def labeler(name: str, floor: int, *extra: str) -> list[str]:
    return worker_flags(name, floor, "--worker-services", "label", *extra)


def publish(client: Daemon, tmp_path: Path) -> LabelInputs:
    """The client's images and model, built and put in its daemon's artifact store (as `neuro job
    submit label --images DIR --model WEIGHTS` does), pinned."""
    inputs = classifier_inputs(tmp_path / "inputs", images=40)
    store = store_of(client.datadir)
    store.put(inputs.images, pin=True)
    store.put(inputs.weights, pin=True)
    return inputs


def post(client: Daemon, inputs: LabelInputs, shards: int) -> str:
    return str(client.rpc("job_submit", service="label", spec=inputs.job, shards=shards, max_price=4 * FLOOR,
                          bid_blocks=4, deadline_blocks=60, challenge_blocks=12)["job"])


def assert_labels_are_the_models(status: dict[str, Any], inputs: LabelInputs) -> None:
    """Every delivered shard checks against its root and holds the model's own labels."""
    job = parse_label_job(inputs.job)
    images = sorted((inputs.images / "images").iterdir())
    _, truth, _ = predict_records(inputs.weights / "model.safetensors", images, list(range(len(images))), 30)
    for view in status["views"]:
        assert view["state"] == "paid", status
        manifest, records = delivered_records(Path(view["output"]), bytes.fromhex(view["root"]))
        assert manifest.meta["weights_root"] == job.weights_root
        assert all(records[i]["label"] == truth[i]["label"] for i in records)


def test_a_label_job_is_bid_on_labelled_checked_and_paid(daemons, tmp_path):
    client, _ = market(daemons, {"bob": labeler("bob", FLOOR), "carol": labeler("carol", 2 * FLOOR)}, block=BLOCK)
    inputs = publish(client, tmp_path)
    job = post(client, inputs, shards=2)
    status = finished(client, job, timeout=300)
    assert status["state"] == "done", status["events"]
    assert set(paid_to(client, job)) == {devnet_address("bob"), devnet_address("carol")}
    assert sum("verified (agreement 1.000" in e for e in status["events"]) == 2, status["events"]
    assert_labels_are_the_models(status, inputs)


def test_a_random_labeler_is_voted_fraud_and_slashed_and_an_honest_one_is_paid(daemons, tmp_path):
    client, workers = market(daemons, {"bob": labeler("bob", FLOOR, "--worker-fault", "random-labels"),
                                       "carol": labeler("carol", 2 * FLOOR)}, block=BLOCK)
    inputs = publish(client, tmp_path)
    job = post(client, inputs, shards=1)  # bob is cheaper: he wins it, then labels at random
    status = finished(client, job, timeout=400)
    log.info("events: %s", json.dumps(status["events"], indent=1))
    assert status["state"] == "done", status["events"]
    assert any("disputed (low-agreement" in e for e in status["events"]), status["events"]
    slashes = [(e["account"], e["note"]) for e in events(client, job) if e["kind"] == "slash"]
    assert slashes == [(devnet_address("bob"), "fraud")]
    assert set(paid_to(client, job)) == {devnet_address("carol")}  # bob is never paid
    votes = [v for v in workers["carol"].rpc("worker_status")["votes"] if v["job"] == job]
    assert votes and all(v["fraud"] for v in votes if v["state"] == "voted"), votes
    assert status["convicted"] == [devnet_address("bob")]
    assert_labels_are_the_models(status, inputs)
