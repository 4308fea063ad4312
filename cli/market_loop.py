"""`neuro job loop`: the synthetic-to-real loop bought on the market.

Each round buys a Generate job (digits from the round's spec) and a Train job (the zoo's CNN on
the digits just bought, named by the roots of the generate job's shards) through the local daemon's client agent, which verifies both deliveries
(sampled re-renders; proof-of-learning replays) before paying. The delivered model is then scored
on the client's own real digits, here, on this machine: the real set never leaves it. The score
steers the generator spec with the loop's tuner (`worker.active`: TPE over the digits spec's
knobs), as `neuro task loop` does locally.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from chain.amounts import format_ntk
from cli.architectures import describe
from cli.config import DatadirOpt, JsonOpt, NetworkOpt, RpcOpt, Where
from cli.market import FINAL_STATES, WAIT_POLL_S, job_app
from cli.output import CliError, guarded, note, print_json, table
from cli.tx import client

MODEL_FILE = "model.safetensors"


@dataclass
class LoopRound:
    round: int
    spec: dict[str, Any]
    generate_job: str
    train_job: str
    cost: int  # base units paid for the round's jobs
    tuning_accuracy: float  # of the best architecture's model, which the round keeps
    heldout_accuracy: float | None
    model: str  # the kept model's folder
    architectures: list[dict[str, Any]]  # per architecture: model, job, tuning_accuracy


def wait_job(rpc: Any, job: str, timeout: float, say: Any) -> dict[str, Any]:
    """Follow a job to its end; its last status. Raises when it ends without being done."""
    ends = time.monotonic() + timeout
    seen = 0
    while True:
        status: dict[str, Any] = rpc.call("job_status", job=job)
        for line in status["events"][seen:]:
            say(f"  {status['service']} {job[:10]} {line}")
        seen = len(status["events"])
        if status["state"] in FINAL_STATES:
            if status["state"] != "done":
                raise CliError(f"job {job}: {status['state']}: {status['message']}", f"job-{status['state']}")
            return status
        if time.monotonic() > ends:
            raise CliError(f"job {job} is still {status['state']} after {timeout:g} s", "wait-timeout")
        time.sleep(WAIT_POLL_S)


def real_split(real: str) -> Any:
    """The client's real digits: "mnist" for the 5,000 real MNIST digits bundled with the worker
    (a tuning split steers, a held-out split is only reported), or a folder of class subfolders
    (all of it steers)."""
    from worker.realdata import DigitSet, load_split

    if real == "mnist":
        return load_split()
    from worker.train.data import ClassificationData

    data, _ = ClassificationData.from_folder(Path(real), channels=1, size=28)
    images = (data.images[:, 0] * 255).round().clip(0, 255).astype("uint8") if data.images.dtype != "uint8" \
        else data.images[:, 0]
    digits = DigitSet(images, data.labels)

    class _Split:
        tuning, heldout = digits, None

    return _Split()


DEFAULT_MODEL = {"name": "cnn", "width": 16, "depth": 3, "image_size": 28}


def train_spec(roots: list[str], steps: int, seed: int, model: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train a zoo CNN on the digits bought by the round's generate job, named by the roots of
    its shards: the trainer fetches those very files (from the client or the workers that
    rendered them) and trains on nothing else."""
    return {
        "task": "train",
        "train": {"model": model or DEFAULT_MODEL, "steps": steps,
                  "batch_size": 64, "lr": 0.01, "schedule": "cosine", "augment": {"shift": 2}, "seed": seed,
                  "pol_interval": max(10, steps // 4)},
        "data": {"source": "artifacts", "roots": roots},
    }


@job_app.command("loop")
@guarded
def loop(
    spec: Annotated[Path, typer.Argument(help="the starting digits spec (JSON)", metavar="SPEC.json")],
    real: Annotated[str, typer.Option("--real", help="real digits: 'mnist' (bundled) or a folder of class folders")
                    ] = "mnist",
    rounds: Annotated[int, typer.Option("--rounds", min=1, max=50)] = 2,
    items: Annotated[int, typer.Option("--items", min=64, help="digits bought per round")] = 2000,
    steps: Annotated[int, typer.Option("--steps", min=8, help="training steps per round")] = 100,
    shards: Annotated[int, typer.Option("--shards", min=1, help="shards of each generate job")] = 2,
    max_price: Annotated[int, typer.Option("--max-price", help="most paid per quote unit (both jobs)")] = 1000,
    out: Annotated[Path, typer.Option("--out", help="where the report and the models go")] = Path("neuro-loop"),
    timeout: Annotated[float, typer.Option("--timeout", help="seconds each job may take")] = 600.0,
    architectures: Annotated[Path | None, typer.Option(
        "--architectures", help="a JSON list of zoo CNN specs: each round trains each (one job apiece) and "
                                "keeps the best on the real set")] = None,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Buy the synthetic-to-real loop on the market: per round a Generate and a Train job,
    scored on your real digits here, the generator re-tuned from the score."""
    try:
        base = json.loads(spec.read_text())
    except (OSError, ValueError) as exc:
        raise CliError(f"{spec}: {exc}", "bad-spec-file") from None
    models = [DEFAULT_MODEL]
    if architectures is not None:
        from cli.architectures import architecture_jobs

        try:
            listed = json.loads(architectures.read_text())
        except (OSError, ValueError) as exc:
            raise CliError(f"{architectures}: {exc}", "bad-spec-file") from None
        models = [d["train"]["model"] for d in architecture_jobs({"train": {}, "architectures": listed})]
    rpc_client = client(Where(network, datadir, None, rpc))
    say = (lambda _line: None) if json_out else note
    done = run_loop(rpc_client, base.get("spec", base), real_split(real), rounds=rounds, items=items, steps=steps,
                    shards=shards, max_price=max_price, out=out, timeout=timeout, say=say, models=models)
    if json_out:
        print_json([vars(r) for r in done])
        return
    table(f"synthetic-to-real loop on the market: {rounds} rounds (report: {out / 'loop.json'})",
          ("round", "architectures (real tuning accuracy)", "kept: tuning", "held out", "cost NTK", "model"),
          [(r.round, architecture_scores(r), f"{r.tuning_accuracy:.3f}",
            "-" if r.heldout_accuracy is None else f"{r.heldout_accuracy:.3f}", format_ntk(r.cost), r.model)
           for r in done])


def architecture_scores(r: LoopRound) -> str:
    return ", ".join(f"{a['model']} {a['tuning_accuracy']:.3f}" for a in r.architectures)


def run_loop(rpc_client: Any, base: dict[str, Any], split: Any, *, rounds: int, items: int, steps: int, shards: int,
             max_price: int, out: Path, timeout: float, say: Any,
             models: list[dict[str, Any]] | None = None) -> list[LoopRound]:
    """The rounds, bought through ``rpc_client`` (a client daemon); see the module."""
    import optuna

    from worker.active.loop import accuracy
    from worker.active.space import params_of, suggest
    from worker.render.digits import DigitsSpec
    from worker.spec import load_spec
    from worker.train.weights import load_weights

    base = load_spec({**base, "kind": "digits"}, DigitsSpec).model_dump(mode="json")  # every knob the tuner turns
    out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    study.enqueue_trial(params_of(base))
    done: list[LoopRound] = []
    for index in range(rounds):
        trial = study.ask()
        proposed = suggest(trial, base)
        fields = {k: v for k, v in (base if index == 0 else {**base, **proposed}).items() if k not in ("count", "kind")}
        seed = 100 + index
        say(f"round {index}: buying {items} digits ({shards} shards), then a model trained on them")
        windows = {"deadline_blocks": 200, "challenge_blocks": 60}  # a fetch of thousands of files, then replays
        generate = rpc_client.call("job_submit", service="generate", shards=shards, max_price=max_price, **windows, spec={
            "task": "render", "seed": seed, "spec": {**fields, "kind": "digits", "count": items}})
        generated = wait_job(rpc_client, generate["job"], timeout, say)
        roots = [v["root"] for v in generated["views"]]
        posted = [rpc_client.call("job_submit", service="train", shards=1, max_price=max_price, **windows,
                                  spec=train_spec(roots, steps, seed, model)) for model in models or [DEFAULT_MODEL]]
        tried = []
        for model_spec, train in zip(models or [DEFAULT_MODEL], posted):  # all posted at once: trained in parallel
            trained = wait_job(rpc_client, train["job"], timeout, say)
            model_dir = Path(trained["views"][0]["output"])
            model, _ = load_weights(model_dir / MODEL_FILE)
            tried.append({"model": describe(model_spec), "job": train["job"], "paid": trained["paid"],
                          "tuning_accuracy": accuracy(model, split.tuning), "output": str(model_dir), "weights": model})
        kept = max(tried, key=lambda t: t["tuning_accuracy"])  # the first listed on a tie
        heldout = getattr(split, "heldout", None)
        result = LoopRound(index, fields, generate["job"], kept["job"],
                           generated["paid"] + sum(t["paid"] for t in tried), kept["tuning_accuracy"],
                           accuracy(kept["weights"], heldout) if heldout is not None else None, kept["output"],
                           [{k: t[k] for k in ("model", "job", "tuning_accuracy")} for t in tried])
        study.tell(trial, result.tuning_accuracy)
        done.append(result)
        if len(tried) > 1:
            say(f"round {index}: architectures on the real tuning digits: {architecture_scores(result)};"
                f" kept {kept['model']}")
        say(f"round {index}: real-digit accuracy {result.tuning_accuracy:.3f}"
            f" (held out {'-' if result.heldout_accuracy is None else f'{result.heldout_accuracy:.3f}'}),"
            f" cost {format_ntk(result.cost)} NTK")
    (out / "loop.json").write_text(json.dumps([vars(r) for r in done], indent=1))
    return done
