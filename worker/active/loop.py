"""The synthetic-to-real loop on digits: generate, train, measure on 100 real digits, re-tune.

Round r: the optimizer proposes DigitsSpec ranges (round 0 is the starting spec itself), the
loop renders ``items`` digits from them, trains the zoo's `cnn` briefly and measures accuracy on
the small real *tuning* set. The trial's objective is tuning accuracy, ties broken by the mean
true-class probability (mean probability alone rewards confident models: specs that render
easy digits won on it while losing accuracy), so TPE moves the ranges toward what real digits
look like. The ``confirm`` best rounds are then
re-run with fresh seeds and the choice is made on the mean of both runs. The real *held-out*
set is measured every round but only reported: no choice ever reads it.

After the rounds, ``finals`` retrains with a larger budget: the starting spec ("before"), the
chosen spec ("after"), and the chosen spec with the 100 real tuning digits mixed into the
generated ones ("mixed"; repeated ``mix_real_repeats`` times so they weigh in).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from worker.active.space import params_of, suggest
from worker.realdata import DigitSet, RealSplit

MAX_ROUNDS = 200
CONFIRM_SEED_OFFSET = 1_000
SOFT_TIEBREAK = 0.01  # under one digit of 100: the soft score only orders equal accuracies


@dataclass(frozen=True, slots=True)
class LoopConfig:
    """Budgets of one loop run; the defaults take ~5 minutes on one CPU core, finals included.

    ``lr`` was picked on *synthetic* validation digits (best of 3e-3, 6e-3 and 1.2e-2 after three
    epochs of 4,000), never on real ones.
    """

    rounds: int = 20
    items: int = 4_000
    epochs: int = 3
    final_items: int = 16_000
    final_epochs: int = 3
    width: int = 16
    depth: int = 3
    batch_size: int = 64
    lr: float = 1e-2
    shift: int = 2
    threads: int = 1
    seed: int = 0
    mix_real_repeats: int = 20
    confirm: int = 3
    final_seeds: int = 2
    stages: int = 1
    base: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RoundResult:
    round: int
    spec_fields: dict[str, Any]
    tuning_accuracy: float
    heldout_accuracy: float
    train_loss: float
    seconds: float
    objective: float = 0.0
    repeat: int = 0  # 0: the search round; 1: its confirmation with fresh seeds
    stage: int = 0


@dataclass(frozen=True, slots=True)
class LoopReport:
    config: dict[str, Any]
    rounds: list[RoundResult]
    best_round: int
    finals: dict[str, dict[str, float]]

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "rounds": [asdict(r) for r in self.rounds],
            "best_round": self.best_round,
            "finals": self.finals,
        }


RoundCallback = Callable[[RoundResult], None]


def render_set(fields: dict[str, Any], count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` generated digits from the default spec with ``fields`` merged over it."""
    from worker.tasks.data import render_digit_source
    from worker.tasks.envelope import DigitsSource

    source = DigitsSource(source="digits", spec={**fields, "count": count}, seed=seed)
    return render_digit_source(source)


def train_classifier(images: np.ndarray, labels: np.ndarray, config: LoopConfig, epochs: int,
                     seed: int | None = None) -> tuple[Any, float]:
    """The zoo's cnn trained on uint8 (N, 28, 28) digits; returns (model, mean training loss)."""
    from worker.device import select_device
    from worker.train.data import ClassificationData
    from worker.train.loop import train
    from worker.train.spec import load_train_spec

    spec = load_train_spec({
        "model": {"name": "cnn", "width": config.width, "depth": config.depth,
                  "image_size": int(images.shape[-1])},
        "epochs": epochs, "batch_size": config.batch_size, "lr": config.lr, "schedule": "cosine",
        "augment": {"shift": config.shift}, "threads": config.threads,
        "seed": config.seed if seed is None else seed, "log_every": 10_000,
    })
    device = select_device(threads=config.threads, prefer_cuda=False)
    result = train(spec, ClassificationData.from_arrays(images, labels), device=device)
    return result.model, result.losses[-1][1] if result.losses else float("nan")


def _probabilities(model: Any, digits: DigitSet) -> np.ndarray:
    from worker.evaluate.predict import predict_probabilities

    return np.asarray(predict_probabilities(model, digits.images[:, None]))


def accuracy(model: Any, digits: DigitSet) -> float:
    return float(np.mean(np.argmax(_probabilities(model, digits), axis=1) == digits.labels))


def soft_accuracy(model: Any, digits: DigitSet) -> float:
    """Mean probability of the true class: accuracy's smooth twin, less noisy on 100 images."""
    probabilities = _probabilities(model, digits)
    return float(np.mean(probabilities[np.arange(len(digits)), digits.labels]))


def _round(fields: dict[str, Any], config: LoopConfig, split: RealSplit, index: int,
           repeat: int = 0, stage: int = 0) -> RoundResult:
    began = time.perf_counter()
    seed = config.seed + CONFIRM_SEED_OFFSET * repeat
    images, labels = render_set(fields, config.items, seed)
    model, loss = train_classifier(images, labels, config, config.epochs, seed)
    tuning = accuracy(model, split.tuning)
    return RoundResult(
        round=index,
        spec_fields=fields,
        tuning_accuracy=tuning,
        heldout_accuracy=accuracy(model, split.heldout),
        train_loss=round(loss, 5),
        seconds=round(time.perf_counter() - began, 2),
        objective=tuning + SOFT_TIEBREAK * soft_accuracy(model, split.tuning),
        repeat=repeat,
        stage=stage,
    )


def search(config: LoopConfig, split: RealSplit, on_round: RoundCallback | None = None,
           stage: int = 0) -> list[RoundResult]:
    """One stage's rounds: an optuna TPE study (fixed seed) around ``config.base``."""
    import optuna

    if not 1 <= config.rounds <= MAX_ROUNDS:
        raise ValueError(f"rounds must be 1..{MAX_ROUNDS}, got {config.rounds}")
    from worker.render.digits import DigitsSpec
    from worker.spec import load_spec

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    base = load_spec(config.base, DigitsSpec).model_dump()
    sampler = optuna.samplers.TPESampler(
        seed=config.seed + stage, n_startup_trials=max(1, min(5, config.rounds // 3)),
        multivariate=True,
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.enqueue_trial(params_of(base))
    results: list[RoundResult] = []
    for number in range(config.rounds):
        index = stage * config.rounds + number
        trial = study.ask()
        proposed = suggest(trial, base)  # round 0: the enqueued starting params, recorded for TPE
        # a stage's first round measures its starting spec itself, verbatim
        fields = dict(config.base) if number == 0 else {**config.base, **proposed}
        result = _round(fields, config, split, index, stage=stage)
        study.tell(trial, result.objective)
        results.append(result)
        if on_round is not None:
            on_round(result)
    return results


def confirm(results: list[RoundResult], config: LoopConfig, split: RealSplit,
            on_round: RoundCallback | None = None) -> list[RoundResult]:
    """Re-run the ``config.confirm`` best rounds with fresh render and training seeds.

    The top of ~15 noisy trials is partly luck (the winner's curse); the choice is made on the
    mean of two independent runs of each finalist instead.
    """
    ranked = sorted(results, key=lambda r: (-r.objective, r.round))[: config.confirm]
    confirmed = []
    for first in ranked:
        again = _round(first.spec_fields, config, split, first.round, repeat=1, stage=first.stage)
        confirmed.append(again)
        if on_round is not None:
            on_round(again)
    return confirmed


def best_round(results: list[RoundResult]) -> RoundResult:
    """The round with the highest mean tuning objective over its runs, among the confirmed
    rounds when there are any; ties go to the earlier round. Held-out accuracy is never read."""
    runs: dict[int, list[RoundResult]] = {}
    for result in results:
        runs.setdefault(result.round, []).append(result)
    most = max(len(v) for v in runs.values())
    candidates = {k: v for k, v in runs.items() if len(v) == most}
    chosen = max(candidates, key=lambda k: (float(np.mean([r.objective for r in candidates[k]])), -k))
    return candidates[chosen][0]


def finals(config: LoopConfig, split: RealSplit, best: RoundResult,
           extra: dict[str, DigitSet] | None = None) -> dict[str, dict[str, float]]:
    """Before / after / mixed at the final budget, scored on tuning, held-out and ``extra`` sets.

    Each is trained ``final_seeds`` times (fresh render and training seeds) and the scores are
    averaged: one run moves by about a point, as much as the gap being measured.
    """
    sets = {"tuning": split.tuning, "heldout": split.heldout, **(extra or {})}
    scores: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    if config.mix_real_repeats > 0:
        scores["mixed"] = []
    for run in range(config.final_seeds):
        seed = config.seed + 1 + run
        for name, fields in (("before", dict(config.base)), ("after", best.spec_fields)):
            images, labels = render_set(fields, config.final_items, seed)
            model, _ = train_classifier(images, labels, config, config.final_epochs, seed)
            scores[name].append(score_sets(model, sets))
            if name == "after" and "mixed" in scores:
                repeats = config.mix_real_repeats
                mixed_images = np.concatenate([images, np.repeat(split.tuning.images, repeats, 0)])
                mixed_labels = np.concatenate([labels, np.repeat(split.tuning.labels, repeats)])
                mixed, _ = train_classifier(mixed_images, mixed_labels, config,
                                            config.final_epochs, seed)
                scores["mixed"].append(score_sets(mixed, sets))
    return {name: {key: float(np.mean([r[key] for r in runs])) for key in runs[0]}
            for name, runs in scores.items()}


def score_sets(model: Any, sets: dict[str, DigitSet]) -> dict[str, float]:
    """``<name>_accuracy`` of the model on each named set."""
    return {f"{name}_accuracy": accuracy(model, digits) for name, digits in sets.items()}


def run_loop(config: LoopConfig, split: RealSplit | None = None,
             on_round: RoundCallback | None = None, with_finals: bool = True,
             extra: dict[str, DigitSet] | None = None) -> LoopReport:
    """The whole loop: ``stages`` x (rounds + confirmations), then the final trainings."""
    from worker.realdata import load_split

    if config.stages < 1:
        raise ValueError(f"stages must be at least 1, got {config.stages}")
    split = split if split is not None else load_split(seed=config.seed)
    results: list[RoundResult] = []
    base = dict(config.base)
    for stage in range(config.stages):
        # each stage searches around the spec the previous one chose: steps add up over stages
        stage_config = replace(config, base=base)
        searched = search(stage_config, split, on_round, stage)
        staged = searched + confirm(searched, stage_config, split, on_round)
        best = best_round(staged)
        results += staged
        base = dict(best.spec_fields)
    return LoopReport(
        config=asdict(config),
        rounds=results,
        best_round=best.round,
        finals=finals(config, split, best, extra) if with_finals else {},
    )
