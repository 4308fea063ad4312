"""Start-up time of `neuro`: `--help` and `wallet list` against a bare interpreter, same run.

    .venv/bin/python bench/cli_startup.py [--runs N] [--quick]

Each command runs N times (default 11, --quick 7), interleaved so that load on a shared machine hits
all three alike; the figures are the median wall time and median CPU time (user + sys, which load
does not inflate) and their excess over `python -c pass`.
Goal: at most 0.3 s above the interpreter's own start-up.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 0.3
KEYS = ("alice", "bob", "carol", "dave")


def make_keystore(home: Path) -> dict[str, str]:
    """A devnet keystore of a few keys under ``home``; returns the environment that selects it."""
    env = {
        **os.environ,
        "NEURO_HOME": str(home),
        "NEURO_NETWORK": "devnet",
        "NEURO_KEYSTORE_LIGHT_KDF": "1",
        "NEURO_PASSWORD": "bench",
    }
    for key in ("NEURO_DATADIR", "NEURO_KEYSTORE", "NEURO_RPC"):
        env.pop(key, None)
    for name in KEYS:
        subprocess.run(
            [sys.executable, "-m", "cli.main", "wallet", "new", name],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
    return env


def measure(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run. CPU (user + sys of the child) is what the command itself
    costs; wall time also counts waiting for a core, which dominates on a loaded 2-core machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        argv, check=False, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[1:])} failed: {done.stderr.decode().strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--quick", action="store_true", help="7 runs")
    args = parser.parse_args()
    runs = 7 if args.quick else max(7, args.runs)

    with tempfile.TemporaryDirectory() as tmp:
        env = make_keystore(Path(tmp))
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "neuro --help": [sys.executable, "-m", "cli.main", "--help"],
            "neuro wallet list": [sys.executable, "-m", "cli.main", "wallet", "list"],
        }
        wall: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        for argv in commands.values():  # warm the page cache and .pyc files
            measure(argv, env)
        for _ in range(runs):
            for name, argv in commands.items():
                elapsed, used = measure(argv, env)
                wall[name].append(elapsed)
                cpu[name].append(used)

    print(
        f"median of {runs} runs each (interleaved), {len(KEYS)} keys in the keystore, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    for label, series in (("wall", wall), ("cpu", cpu)):
        medians = {name: statistics.median(values) for name, values in series.items()}
        base = medians["python -c pass"]
        print(f"  {label:<4} {'python -c pass':<20} {base * 1000:7.1f} ms   (reference)")
        for name in ("neuro --help", "neuro wallet list"):
            extra = medians[name] - base
            verdict = "ok" if extra <= GOAL_S else f"over the {GOAL_S:g} s goal"
            print(
                f"  {label:<4} {name:<20} {medians[name] * 1000:7.1f} ms   +{extra * 1000:6.1f} ms over python, "
                f"x{medians[name] / max(base, 1e-3):.1f}   {verdict}"
            )


if __name__ == "__main__":
    main()
