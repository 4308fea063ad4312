"""`neuro task`: run a built-in task locally, estimate its compute units, verify an output.

Only typer and rich are imported at module level: `neuro --help` must stay fast, and the worker
modules (numpy, pydantic, torch in the task child) load inside the commands that need them.
Every failure is one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from cli.config import DatadirOpt, JsonOpt, NetworkOpt
from cli.output import print_json

task_app = typer.Typer(
    help="Run built-in tasks (render, train, evaluate, label) locally and verify their output.",
    no_args_is_help=True,
)

KINDS = ("render", "train", "evaluate", "label")
SpecArg = Annotated[Path, typer.Argument(metavar="SPEC.json", help="the task spec (JSON)")]
console = Console()
errors = Console(stderr=True)


def _fail(message: str, reason: str = "error") -> NoReturn:
    errors.print(f"[red]error[/red] ({escape(reason)}): {escape(message)}", highlight=False,
                 soft_wrap=True)
    raise typer.Exit(code=1)


def _load(spec_path: Path) -> dict[str, Any]:
    from worker.errors import WorkerError
    from worker.runner import load_spec_file

    try:
        doc = load_spec_file(spec_path)
    except WorkerError as exc:
        _fail(str(exc), exc.reason)
    if isinstance(doc, dict) and "architectures" in doc:  # `cli.architectures`: one job per architecture
        _fail(f"{spec_path} lists architectures: a set is bought on the market, one train job per architecture "
              f"(`neuro job submit train {spec_path} --real DIR` keeps the best); to train one here, put it in "
              "train.model", "architecture-set")
    return doc


@task_app.command("run")
def run(
    kind: Annotated[str, typer.Argument(help="render | train | evaluate | label")],
    spec_path: SpecArg,
    out: Annotated[Path, typer.Option("--out", help="directory to create with the output")],
    timeout: Annotated[float, typer.Option("--timeout", help="wall-time limit, seconds")] = 3600.0,
    memory_mb: Annotated[
        int, typer.Option("--memory-mb", help="address-space cap of the task, MB")
    ] = 4096,
    device: Annotated[str, typer.Option("--device", help="cpu | cuda")] = "cpu",
    store: Annotated[
        bool, typer.Option("--store", help="also import the output into the data dir's artifact store")
    ] = False,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
) -> None:
    """Run one task in a capped child process; its output appears at --out only on success."""
    from worker.errors import WorkerError
    from worker.runner import run_task
    from worker.tasks import check_kind

    if kind not in KINDS:
        _fail(f"unknown task kind {kind!r}; choose one of {', '.join(KINDS)}", "bad-kind")
    if device not in ("cpu", "cuda"):
        _fail(f"unknown device {device!r}; choose cpu or cuda", "bad-device")
    spec = _load(spec_path)
    try:
        task = check_kind(kind, spec)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        ) as bar:
            stages: dict[str, Any] = {}

            def on_event(event: dict[str, Any]) -> None:
                stage = str(event.get("stage", task))
                if stage not in stages:
                    stages[stage] = bar.add_task(stage, total=event.get("total"))
                bar.update(stages[stage], completed=event.get("done", 0), total=event.get("total"),
                           description=stage_line(stage, event))

            result = run_task(
                task, spec, out, timeout_s=timeout, memory_mb=memory_mb, device=device,
                on_event=on_event,
            )
    except WorkerError as exc:
        _fail(str(exc), exc.reason)
    except OSError as exc:  # the output's parent is not writable, the disk is full...
        _fail(f"{exc.strerror or exc}: {exc.filename or out}", "os-error")
    console.print(_summary_table(result.out, result.summary))
    if store:
        _store_output(result.out, network, datadir)


def stage_line(stage: str, event: dict[str, Any]) -> str:
    """A stage's progress line: its name, and while training the epoch and the mean loss."""
    shown = [stage]
    if "epoch" in event:
        shown.append(f"epoch {event['epoch']:.2f}")
    if "loss" in event:
        shown.append(f"loss {event['loss']:.4g}")
    return "  ".join(shown)


def _store_output(out: Path, network: str, datadir: Path | None) -> None:
    """Import a finished output into the artifact store (verified whole on the way in)."""
    from cli.artifact import as_cli_errors, open_store
    from cli.output import CliError

    try:
        stored = as_cli_errors(lambda: open_store(network, datadir).put(out))
    except CliError as exc:
        _fail(str(exc), exc.reason)
    console.print(f"stored as artifact {stored.root.hex()} ({stored.items} items, {stored.size:,} bytes)")


def _summary_table(out: Path, summary: dict[str, Any]) -> Table:
    table = Table(title=f"{summary.get('task', 'task')} finished", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("output", str(out))
    for key in sorted(summary):
        value = summary[key]
        if key == "plots":  # file names inside the output: shown as paths to open
            value = ", ".join(f"{k}={out / v}" for k, v in sorted(value.items()))
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(value.items()))
        table.add_row(key, _fmt(value))
    return table


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:,}"
    return str(value)


@task_app.command("units")
def units(spec_path: SpecArg, json_out: JsonOpt = False) -> None:
    """Print the deterministic compute-unit estimate of a spec (what a job is priced on)."""
    from chain.errors import ChainError
    from worker.errors import WorkerError
    from worker.tasks import estimate_units

    spec = _load(spec_path)
    try:
        estimate = estimate_units(spec)
    except WorkerError as exc:
        _fail(str(exc), exc.reason)
    except ChainError as exc:
        _fail(str(exc), exc.reason)
    if json_out:
        print_json({"task": estimate.task, "units": estimate.units, "unit": estimate.unit, "detail": estimate.detail})
        return
    console.print(f"{estimate.units} {estimate.unit} ({estimate.task}: {estimate.detail})")


@task_app.command("verify")
def verify(
    out: Annotated[Path, typer.Argument(help="a render or train task's output directory")],
    samples: Annotated[
        int, typer.Option("--samples", help="items to re-render / segments to replay")
    ] = 16,
    beacon: Annotated[
        str, typer.Option("--beacon", help="hex bytes picking the sample (a later block hash)")
    ] = "",
    proof: Annotated[
        Path | None, typer.Option("--proof", help="write a render fraud proof here")
    ] = None,
    root: Annotated[
        str, typer.Option("--root", help="the artifact id you expect (paid for): another is refused")
    ] = "",
    job: Annotated[
        Path | None, typer.Option("--spec", help="the job's train spec (for a model without task.json)")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Check every delivered file of an artifact against its manifest, then re-render sampled
    items (a render) or replay sampled PoL segments and recompute its metrics (a model)."""
    import secrets

    from worker.errors import WorkerError
    from worker.verify import verify_output

    try:
        seed_bytes = bytes.fromhex(beacon) if beacon else secrets.token_bytes(32)
    except ValueError:
        _fail(f"--beacon must be hex, got {beacon!r}", "bad-beacon")
    if samples < 1:
        _fail(f"--samples must be at least 1, got {samples}", "bad-samples")
    try:
        expected = bytes.fromhex(root) if root else None
    except ValueError:
        _fail(f"--root must be hex, got {root!r}", "bad-root")
    job_spec = _load(job) if job is not None else None
    try:
        verdict = verify_output(out, seed_bytes, samples, expected_root=expected, job=job_spec)
    except WorkerError as exc:
        _fail(str(exc), exc.reason)
    fraud = getattr(verdict, "fraud", None)
    if proof is not None and fraud is not None:
        proof.write_text(json.dumps(fraud.to_json(), indent=2) + "\n")
    if json_out:
        print_json(_verdict_json(verdict))
    elif verdict.ok:
        console.print(f"[green]ok[/green]: {verdict.describe()}")
    else:
        errors.print(f"[red]rejected[/red]: {escape(verdict.describe())}", highlight=False)
    if not verdict.ok:
        raise typer.Exit(code=2)


def _verdict_json(verdict: Any) -> dict[str, Any]:
    """A render or train verdict for scripts: ok, what was checked, and why it was refused."""
    found: dict[str, Any] = {"ok": verdict.ok, "summary": verdict.describe()}
    if hasattr(verdict, "root"):  # a render
        fraud = verdict.fraud
        found.update(kind="render", root=verdict.root.hex(), checked=list(verdict.checked), files=verdict.files,
                     bytes=verdict.size, fraud=None if fraud is None else fraud.to_json())
    else:
        found.update(kind="train", segments=[list(s) for s in verdict.checked], distances=list(verdict.distances),
                     reason=verdict.reason or None, detail=verdict.detail or None, claims=verdict.claims)
    return found
