"""Score a mutmut run per module of chain/, with the mutants judged equivalent set aside.

    score.py RESULTS EQUIVALENTS [MODULE ...]

RESULTS is `mutmut results --all true` (lines ``    chain.pow.x_work_of__mutmut_7: killed``);
EQUIVALENTS lists one mutant a line with the reason it cannot be told apart from the original.
A mutant counts as detected when a test failed on it, or it timed out or crashed the run. Prints
each module's detected / non-equivalent and every survivor; exits 1 below the goal (95%).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

GOAL = 0.95
DETECTED = {"killed", "timeout", "segfault", "caught by type check"}
UNTESTED = {"not checked", "skipped", "check was interrupted by user"}


def read_results(path: Path) -> dict[str, str]:
    results = {}
    for line in path.read_text().splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and name.startswith("chain."):
            results[name] = status
    return results


def read_equivalents(path: Path) -> dict[str, str]:
    """Mutant name -> reason, from ``name  # reason`` lines (blank and ``#`` lines skipped)."""
    equivalents = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, reason = line.partition("#")
            equivalents[name.strip()] = reason.strip()
    return equivalents


def module_of(name: str) -> str:
    return name.split(".")[1]


def main(argv: list[str]) -> int:
    results = read_results(Path(argv[1]))
    equivalents = read_equivalents(Path(argv[2]))
    modules = set(argv[3:])
    if modules:
        results = {k: v for k, v in results.items() if module_of(k) in modules}
    results = {k: v for k, v in results.items() if v not in UNTESTED}
    counts: Counter[tuple[str, str]] = Counter()
    survivors = []
    for name, status in sorted(results.items()):
        module = module_of(name)
        if name in equivalents:
            kind = "equivalent"
        elif status in DETECTED:
            kind = "detected"
        else:
            kind = "survived"
            survivors.append(f"{name}: {status}")
        counts[module, kind] += 1
    print(f"{'module':<16}{'mutants':>9}{'equivalent':>12}{'detected':>10}{'score':>8}")
    total_detected = total_counted = 0
    for module in sorted({m for m, _ in counts}):
        detected, equivalent = counts[module, "detected"], counts[module, "equivalent"]
        counted = detected + counts[module, "survived"]
        total_detected += detected
        total_counted += counted
        score = f"{100 * detected / counted:.1f}%" if counted else "-"
        print(f"{module:<16}{counted + equivalent:>9}{equivalent:>12}{f'{detected}/{counted}':>10}{score:>8}")
    if not total_counted:
        print("no mutant was tested")
        return 1
    overall = total_detected / total_counted
    print(f"{'all':<16}{'':>21}{f'{total_detected}/{total_counted}':>10}{100 * overall:>7.1f}%")
    stale = sorted(set(equivalents) - set(results)) if not modules else []
    if stale:
        print(f"{len(stale)} listed equivalents are no longer mutants (the code moved): {stale[:5]}")
    if survivors:
        print("survivors (`mutmut show NAME` in a KEEP=1 copy shows the change):")
        print("\n".join("  " + s for s in survivors))
    return 0 if overall >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
