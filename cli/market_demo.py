"""`neuro devnet demo` (`make demo`): the market at work on a local devnet, in one command.

Five daemons on 127.0.0.1: node0 mines and runs alice's client agent; node1-3 are worker daemons
(bob, carol, dave) with different price floors and slots; node4 is a plain daemon, the new client's
of act 3. Workers stake at start, then:
1. a Generate Data job for retail shelves, sharded across the workers, verified and paid;
2. two rounds of the digits synthetic-to-real loop bought on the market (`neuro job loop`): each
   round a generate job, then two train jobs on the digits it bought (named by their artifact
   roots), one per architecture; each model is scored on real MNIST digits here, on the client,
   and the better kept;
3. a model changes hands (cli/market_demo_sale.py): a new client redeems a treasury voucher, buys
   the last kept model, listed by the worker that trained it with its claimed accuracy, receives
   it sealed to its own daemon, and re-evaluates it on the real digits held out;
4. a summary: bids and clearing prices, who earned what, accuracy per round, where the outputs
   are (datasets, models, a plot and the bought model, copied into ``--out``).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from chain.amounts import format_ntk
from chain.devnet_keys import devnet_address
from cli.market_demo_sale import Party, Sale, run_sale
from cli.market_loop import architecture_scores, run_loop, wait_job
from cli.output import CliError, note, table

CLIENT = "alice"
WORKERS = (("bob", 200_000, 2), ("carol", 300_000, 1), ("dave", 450_000, 1))  # name, floor, slots
BLOCK_INTERVAL = 0.5
SHELF_SPEC = {"task": "render", "seed": 11, "spec": {"kind": "shelf", "count": 12}}
# each round trains both on the digits it bought (two jobs, trained at once) and keeps the better
ARCHITECTURES = ({"name": "cnn", "width": 16, "depth": 3, "image_size": 28},
                 {"name": "cnn", "width": 8, "depth": 2, "image_size": 28})
MAX_PRICE = 2_000_000  # base units per quote unit: above every floor
STAKE_NTK = 100


def worker_flags(name: str, floor: int, slots: int) -> list[str]:
    return ["--agent-key", f"devnet:{name}", "--worker", "--worker-services", "generate,train",
            "--worker-stake", str(STAKE_NTK), "--worker-floor-min", str(floor), "--worker-floor-max", str(floor * 4),
            "--worker-slots", str(slots)]


def _rpc(entry: Any) -> Any:
    from neurod.devnet import client_of

    client = client_of(entry, timeout=30)
    if client is None:
        raise CliError(f"{entry.name} is not answering", "devnet-down")
    return client


def _wait(check: Any, seconds: float, what: str) -> None:
    ends = time.monotonic() + seconds
    while not check():
        if time.monotonic() > ends:
            raise CliError(f"timed out after {seconds:g} s waiting for {what}", "demo-timeout")
        time.sleep(0.5)


def run_demo(root: Path, out: Path, *, rounds: int = 2, keep: bool = False) -> None:
    from neurod import devnet
    from worker.realdata import load_split

    started = time.monotonic()
    note(f"market demo: 5 daemons in {root}; node0 mines and buys for {CLIENT}, node1-3 sell "
         + ", ".join(f"{n} (floor {f}, {s} slot{'s' if s > 1 else ''})" for n, f, s in WORKERS)
         + "; node4 is a new client's")
    extra = [["--agent-key", f"devnet:{CLIENT}"], *[worker_flags(*w) for w in WORKERS]]
    entries = devnet.up(root, 2 + len(WORKERS), 1, BLOCK_INTERVAL, fresh=True, extra=extra)
    try:
        rpc = _rpc(entries[0])
        names = [CLIENT, *[w[0] for w in WORKERS]]
        _wait(lambda: all(float(rpc.call("stake_get", address=devnet_address(n))["bonded_ntk"]) >= STAKE_NTK
                          for n in names[1:]), 120, "the workers' stakes")
        table("funding and stakes (devnet genesis funds; workers bond at start)", ("account", "role", "balance NTK",
                                                                                    "bonded NTK"),
              [(n, "client" if n == CLIENT else "worker", *_holdings(rpc, n)) for n in names])
        out.mkdir(parents=True, exist_ok=True)

        note("1. Generate Data: 12 retail shelf images in 3 shards, bought on the market")
        shelf = rpc.call("job_submit", service="generate", spec=SHELF_SPEC, shards=3, max_price=MAX_PRICE,
                         challenge_blocks=30)
        shelf_status = wait_job(rpc, shelf["job"], 300, note)
        shelf_out = out / "shelves"
        shutil.rmtree(shelf_out, ignore_errors=True)
        for k, view in enumerate(shelf_status["views"]):
            shutil.copytree(view["output"], shelf_out / f"shard-{k}")

        note(f"2. the digits synthetic-to-real loop: {rounds} rounds bought on the market, scored on real MNIST here")
        split = load_split()
        loop = run_loop(rpc, {"kind": "digits"}, split, rounds=rounds, items=2000, steps=100, shards=2,
                        max_price=MAX_PRICE, out=out / "loop", timeout=300, say=note, models=list(ARCHITECTURES))
        for r in loop:
            shutil.copytree(r.model, out / "loop" / f"model-round-{r.round}", dirs_exist_ok=True)
        plot = _plot(loop, out / "loop" / "accuracy.png")

        note("3. a model changes hands: a new client redeems a voucher, buys the last kept model from the worker "
             "that trained it, and re-evaluates it on the real digits held out")
        sale = _sell_kept_model(rpc, entries, loop[-1].train_job, split, out)

        jobs = [("shelves", shelf["job"])] + [
            (f"round {r.round} {kind}", job) for r in loop
            for kind, job in (("digits", r.generate_job), *((f"train {a['model']}", a["job"]) for a in r.architectures))]
        rows = []
        for label, job in jobs:
            status = rpc.call("job_status", job=job)
            prices = sorted({v["price"] for v in status["views"] if v["price"]})
            rows.append((label, job[:12], len(status["bids"]), ", ".join(map(str, prices)), format_ntk(status["paid"])))
        table("bids and clearing prices (base units per quote unit)", ("job", "id", "bids", "awarded at", "paid NTK"),
              rows)
        table("who earned what (paid by the jobs, from the chain's events)", ("worker", "earned NTK", "slashed NTK"),
              [(name, *_earned(rpc, name, [j for _, j in jobs])) for name, _, _ in WORKERS])
        table("accuracy per round (real MNIST digits, scored on the client)",
              ("round", "architectures: tuning (100 real)", "kept: held out (4,900 real)", "cost NTK"),
              [(r.round, architecture_scores(r), f"{r.heldout_accuracy:.3f}", format_ntk(r.cost)) for r in loop])
        (out / "summary.json").write_text(json.dumps({"jobs": {label: job for label, job in jobs},
                                                      "loop": [vars(r) for r in loop], "sale": vars(sale)},
                                                     indent=1))
        note(f"outputs in {out}: shelves/ (the verified dataset), loop/ (models, loop.json, {plot.name}),"
             f" bought-model/, summary.json; every job settled and paid in {time.monotonic() - started:.0f} s")
    finally:
        if not keep:
            devnet.down(root)
            note("devnet stopped")


def _sell_kept_model(rpc: Any, entries: list[Any], train_job: str, split: Any, out: Path) -> Sale:
    """Act 3 (`run_sale`): the worker whose daemon trained ``train_job`` sells its model to a new
    client on the last daemon."""
    from chain.devnet_keys import devnet_seed
    from cli.config import Where
    from wallet.keys import Key

    (view,) = rpc.call("job_status", job=train_job)["views"]
    names = [n for n, _, _ in WORKERS]
    seller = next(k for k, name in enumerate(names) if devnet_address(name) == view["worker"])
    seller_entry, buyer_entry = entries[1 + seller], entries[-1]
    return run_sale(Party("a new client", _rpc(buyer_entry), Where("devnet", Path(buyer_entry.datadir)),
                          Key.generate()),
                    Party(names[seller], _rpc(seller_entry), Where("devnet", Path(seller_entry.datadir)),
                          Key(devnet_seed(names[seller]))),
                    seller_entry.info()["p2p_addrs"][0], view["root"], split, out)


def _holdings(rpc: Any, name: str) -> tuple[str, str]:
    found = rpc.call("stake_get", address=devnet_address(name))
    return found["balance_ntk"], found["bonded_ntk"]


def _earned(rpc: Any, name: str, jobs: list[str]) -> tuple[str, str]:
    address = devnet_address(name)
    earned = slashed = 0
    for job in jobs:
        for event in rpc.call("market_events", job=job, limit=1000):
            if event["account"] == address and event["kind"] == "pay" and event["note"] == "":
                earned += int(event["amount"])
            if event["account"] == address and event["kind"] == "slash":
                slashed += int(event["amount"])
    return format_ntk(earned), format_ntk(slashed)


def _plot(loop: list[Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot([r.round for r in loop], [r.tuning_accuracy for r in loop], marker="o", label="real tuning")
    ax.plot([r.round for r in loop], [r.heldout_accuracy for r in loop], marker="s", label="real held out")
    ax.set_xlabel("round")
    ax.set_ylabel("accuracy")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
