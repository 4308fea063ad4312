"""Synthetic-to-real: real-MNIST accuracy of a CNN trained only on generated digits, at the
example budget over 5 seeds, before and after the active-learning loop, beside the same CNN
trained on real digits.

First, the example (`worker/examples/cnn_train.json`, synthetic digits only) is trained with 5
seeds (data seed and training seed both moved by k = 0..4) and scored on all 5,000 real digits,
on the 4,900 held-out and on the 100 tuning digits: mean, min and max per set (goal: mean >= 0.92
and min >= 0.90 on all 5,000). The same at a larger budget (`--larger ITEMS,EPOCHS`, 32,000 x 4
by default, 2 seeds). `--example-only` stops there.

The loop (worker.active) tunes the DigitsSpec ranges with optuna TPE against 100 real *tuning*
digits; 4,900 real *held-out* digits only report. Figures printed:
- held-out accuracy per round;
- finals at a larger budget, each the mean of 2 seeds: the starting spec ("before"), the chosen
  spec ("after", goal >= 0.90 with no real training image), and the chosen spec with the 100
  tuning digits mixed in ("mixed");
- the reference: the same CNN and optimizer trained on 4,000 real digits (400 per class, taken
  from the held-out pool) and tested, like every model above, on the 900 held-out digits it did
  not train on ("ref-test"); the ratio synthetic / real is the figure to watch.

    .venv/bin/python bench/synth2real.py [--quick] [--start naive] [--out bench-out/synth2real]

    .venv/bin/python bench/synth2real.py --example-only [--seeds 5] [--larger 32000,4]

Full: ~5-8 minutes on 2 cores plus the sweeps. --quick: ~1-2 minutes, smaller and noisier.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from worker.active.loop import (
    LoopConfig,
    RoundResult,
    accuracy,
    run_loop,
    score_sets,
    train_classifier,
)
from worker.active.report import write_report
from worker.realdata import DigitSet, RealSplit, load_mnist_5k, load_split, stratified_split

FULL = LoopConfig(threads=1, seed=0)  # 20 rounds of 4,000 digits x 3 epochs; finals 16,000
QUICK = replace(FULL, rounds=6, items=2_000, final_items=4_000, confirm=2, final_seeds=1)
# a deliberately poor starting spec (upright, uniform, clean digits) for `--start naive`: shows
# what the loop recovers when the generator's author did not tune the ranges by hand
NAIVE = {"box_px": (20, 20), "thickness_dpx": (30, 30), "rotation_deg": (0, 0),
         "shear_pct": (0, 0), "aspect_pct": (80, 80), "warp": (0, 0), "point_jitter": (0, 0),
         "translate_px": (0, 0), "clutter_strokes": (0, 0), "blur_pct": 0, "noise_pct": 0}
REFERENCE_TRAIN = 4_000
GOAL = 0.90
EXAMPLE = Path(__file__).resolve().parent.parent / "worker/examples/cnn_train.json"
EXAMPLE_SEEDS = 5
EXAMPLE_GOAL_MEAN, EXAMPLE_GOAL_MIN = 0.92, 0.90
LARGER = (32_000, 4)
LARGER_SEEDS = 2


def train_example(example: dict, k: int, items: int | None = None, epochs: int | None = None):
    """The example's model trained on its synthetic digits, data and training seeds moved by k."""
    from worker.device import select_device
    from worker.tasks.data import render_digit_source
    from worker.tasks.envelope import DigitsSource
    from worker.train.data import ClassificationData
    from worker.train.loop import train
    from worker.train.spec import load_train_spec

    data = example["data"]
    spec = {**data["spec"], **({"count": items} if items else {})}
    source = DigitsSource(source="digits", spec=spec, seed=data.get("seed", 0) + k)
    images, labels = render_digit_source(source)
    train_fields = {**example["train"], "seed": example["train"].get("seed", 0) + k,
                    "threads": 1, "log_every": 10_000, **({"epochs": epochs} if epochs else {})}
    device = select_device(threads=1, prefer_cuda=False)
    result = train(load_train_spec(train_fields), ClassificationData.from_arrays(images, labels),
                   device=device)
    return result.model


def seed_sweep(example: dict, sets: dict[str, DigitSet], seeds: int, items: int | None = None,
               epochs: int | None = None, tag: str = "example") -> dict[str, dict[str, float]]:
    """Accuracy per set over ``seeds`` runs: mean, min, max and the runs themselves."""
    runs: dict[str, list[float]] = {name: [] for name in sets}
    for k in range(seeds):
        began = time.perf_counter()
        model = train_example(example, k, items, epochs)
        for name, digits in sets.items():
            runs[name].append(accuracy(model, digits))
        print(f"{tag} seed +{k}: " + "  ".join(f"{n} {runs[n][-1]:.4f}" for n in sets)
              + f"  ({time.perf_counter() - began:.0f} s)", flush=True)
    return {name: {"mean": sum(v) / len(v), "min": min(v), "max": max(v), "runs": v}
            for name, v in runs.items()}


def report_sweep(title: str, figures: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}")
    print(f"{'real digits':<22} {'mean':>7} {'min':>7} {'max':>7}")
    for name, f in figures.items():
        print(f"{name:<22} {f['mean']:>7.4f} {f['min']:>7.4f} {f['max']:>7.4f}")


def example_figures(args: argparse.Namespace, split: RealSplit) -> dict:
    """The example at its own budget over 5 seeds, and at a larger budget."""
    example = json.loads(EXAMPLE.read_text())
    everything = load_mnist_5k()
    sets = {"all 5,000": everything, "held-out 4,900": split.heldout, "tuning 100": split.tuning}
    spec = example["data"]["spec"]
    budget = f"{spec.get('count')} digits x {example['train']['epochs']} epochs"
    figures = seed_sweep(example, sets, args.seeds)
    report_sweep(f"example budget ({budget}), {args.seeds} seeds, synthetic digits only:", figures)
    main_set = figures["all 5,000"]
    verdict = ("meets" if main_set["mean"] >= EXAMPLE_GOAL_MEAN
               and main_set["min"] >= EXAMPLE_GOAL_MIN else "misses")
    print(f"all 5,000: mean {main_set['mean']:.4f}, min {main_set['min']:.4f}: {verdict} the goal "
          f"(mean >= {EXAMPLE_GOAL_MEAN:.2f}, every seed >= {EXAMPLE_GOAL_MIN:.2f})")
    result = {"example": {"budget": budget, "figures": figures}}
    if args.larger_seeds:
        items, epochs = args.larger
        larger = seed_sweep(example, sets, args.larger_seeds, items, epochs, tag="larger")
        report_sweep(f"larger budget ({items} digits x {epochs} epochs), {args.larger_seeds} "
                     "seeds:", larger)
        result["larger"] = {"budget": f"{items} digits x {epochs} epochs", "figures": larger}
    return result


def reference_split(split: RealSplit) -> tuple[DigitSet, DigitSet]:
    """4,000 real training digits (stratified) and the 900 other held-out digits as ref-test."""
    train_index, test_index = stratified_split(split.heldout.labels, REFERENCE_TRAIN, seed=1)
    held = split.heldout
    return (DigitSet(held.images[train_index], held.labels[train_index]),
            DigitSet(held.images[test_index], held.labels[test_index]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 1-2 minute version")
    parser.add_argument("--out", type=Path, default=Path("bench-out/synth2real"))
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--start", choices=("default", "naive"), default="default",
                        help="start from the generator's default spec or a naive one")
    parser.add_argument("--stages", type=int, default=None,
                        help="search stages, each re-centred on the last choice (naive: 3)")
    parser.add_argument("--seeds", type=int, default=EXAMPLE_SEEDS,
                        help="seeds of the example-budget sweep")
    parser.add_argument("--larger", type=lambda v: tuple(int(x) for x in v.split(",")),
                        default=LARGER, help="ITEMS,EPOCHS of the larger budget")
    parser.add_argument("--larger-seeds", type=int, default=LARGER_SEEDS,
                        help="seeds at the larger budget (0: skip it)")
    parser.add_argument("--example-only", action="store_true",
                        help="only the example-budget and larger-budget sweeps, not the loop")
    args = parser.parse_args()
    config = QUICK if args.quick else FULL
    if args.start == "naive":
        config = replace(config, base=dict(NAIVE), stages=args.stages or 3)
    elif args.stages:
        config = replace(config, stages=args.stages)
    if args.rounds is not None:
        config = replace(config, rounds=args.rounds)
    began = time.perf_counter()
    split = load_split(seed=config.seed)
    sweeps = example_figures(args, split)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "example_seeds.json").write_text(json.dumps(sweeps, indent=2) + "\n")
    if args.example_only:
        print(f"\nreport {args.out / 'example_seeds.json'}; {time.perf_counter() - began:.0f} s")
        return
    ref_train, ref_test = reference_split(split)

    def show(result: RoundResult) -> None:
        tag = ("confirm" if result.repeat else "round  ") + f" s{result.stage}"
        print(f"{tag} {result.round:2d}: objective {result.objective:.3f}  tuning "
              f"{result.tuning_accuracy:.3f}  held-out "
              f"{result.heldout_accuracy:.3f}  loss {result.train_loss:.3f}  ({result.seconds:.0f} s)",
              flush=True)

    report = run_loop(config, split, on_round=show, extra={"ref-test": ref_test})
    # the reference sees as many images as the synthetic finals: same steps, real pixels
    epochs = max(1, config.final_items * config.final_epochs // REFERENCE_TRAIN)
    real_model, _ = train_classifier(ref_train.images, ref_train.labels, config, epochs)
    reference = score_sets(real_model, {"ref-test": ref_test})["ref-test_accuracy"]
    json_path, png_path = write_report(report, args.out)
    summary = json.loads(json_path.read_text())
    summary["reference"] = {"train_items": REFERENCE_TRAIN, "epochs": epochs,
                            "ref-test_accuracy": reference}
    json_path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")

    print(f"\nbest round {report.best_round} (chosen on the tuning objective only)")
    print(f"  its ranges: {next(r for r in report.rounds if r.round == report.best_round).spec_fields}")
    print(f"{'model':<44} {'held-out':>9} {'ref-test':>9} {'vs real':>8}")
    rows = [(f"before loop: {args.start} spec, synthetic only", "before"),
            ("after loop: tuned spec, synthetic only", "after"),
            ("after loop + 100 real tuning digits mixed in", "mixed")]
    for label, key in rows:
        scores = report.finals.get(key)
        if scores is None:
            continue
        ratio = scores["ref-test_accuracy"] / reference
        print(f"{label:<44} {scores['heldout_accuracy']:>9.4f} {scores['ref-test_accuracy']:>9.4f} "
              f"{ratio:>8.3f}")
    print(f"{'reference: 4,000 real digits':<44} {'-':>9} {reference:>9.4f} {1.0:>8.3f}")
    start = [r.heldout_accuracy for r in report.rounds if r.round == 0]
    chosen = [r.heldout_accuracy for r in report.rounds if r.round == report.best_round]
    print(f"at the search budget ({config.items} digits x {config.epochs} epochs): starting spec "
          f"{start[0]:.4f}, chosen spec {sum(chosen) / len(chosen):.4f} (mean of its "
          f"{len(chosen)} runs)")
    after = report.finals["after"]["heldout_accuracy"]
    verdict = "meets" if after >= GOAL else "misses"
    print(f"\nsynthetic-only held-out accuracy {after:.4f} {verdict} the {GOAL:.2f} goal; "
          f"report {json_path}, plot {png_path}; {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
