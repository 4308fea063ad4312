"""The loop's outputs: a JSON report and a PNG of accuracy per round (matplotlib, Agg backend)."""

from __future__ import annotations

import json
from pathlib import Path

from worker.active.loop import LoopReport

REPORT_FILE = "active_report.json"
PLOT_FILE = "active_accuracy.png"


def write_report(report: LoopReport, out_dir: Path) -> tuple[Path, Path]:
    """Both files under ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / REPORT_FILE
    json_path.write_text(json.dumps(report.to_json(), indent=2, sort_keys=True) + "\n")
    return json_path, plot_rounds(report, out_dir / PLOT_FILE)


def plot_rounds(report: LoopReport, path: Path) -> Path:
    """Tuning and held-out accuracy per round, the best-so-far curve, and the final figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    searched = [r for r in report.rounds if r.repeat == 0]
    rounds = [r.round for r in searched]
    tuning = [r.tuning_accuracy for r in searched]
    heldout = [r.heldout_accuracy for r in searched]
    objective = [r.objective for r in searched]
    best_so_far = [max(objective[: i + 1]) for i in range(len(objective))]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot(rounds, tuning, "o-", label="tuning accuracy (100 real)")
    ax.plot(rounds, heldout, "s-", label="held-out accuracy (report only)")
    ax.step(rounds, best_so_far, where="post", linestyle="--",
            label="best objective so far (tuning accuracy)")
    styles = {"before": ":", "after": "-.", "mixed": "--"}
    for name, scores in report.finals.items():
        ax.axhline(scores["heldout_accuracy"], linestyle=styles.get(name, ":"), color="grey",
                   linewidth=1)
    if report.finals:
        text = "finals, held-out (grey lines): " + ", ".join(
            f"{name} {scores['heldout_accuracy']:.3f}" for name, scores in report.finals.items())
        ax.text(0.01, 0.98, text, transform=ax.transAxes, fontsize=8, va="top")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.margins(y=0.12)  # room for the finals line of text
    ax.set_xlabel("round")
    ax.set_ylabel("accuracy on real MNIST")
    ax.set_title("synthetic-to-real loop: CNN trained on generated digits")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
