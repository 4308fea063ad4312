"""Turn a task's data source into the train package's in-memory datasets.

Real MNIST digits are white on black in [0, 255], and so are generated digits; both are fed to
the CNN as (N, 1, 28, 28) uint8, so a model trained on one is evaluated on the other unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from worker.errors import SpecError
from worker.tasks.envelope import (
    DataSource,
    DigitsSource,
    FileSource,
    RealMnistSource,
    RenderedSource,
)

DIGIT_ARRAYS = "digits.npz"


def load_data(source: DataSource, model: Any = None) -> Any:
    """ClassificationData or DetectionData for ``source``; ``model`` (a zoo spec) sizes images."""
    from worker.train.data import ClassificationData, DetectionData

    if isinstance(source, DigitsSource):
        images, labels = render_digit_source(source)
        return ClassificationData.from_arrays(images, labels)
    if isinstance(source, RealMnistSource):
        from worker.realdata import load_split

        split = load_split()
        chosen = split.tuning if source.split == "tuning" else split.heldout
        return ClassificationData.from_arrays(chosen.images, chosen.labels)
    if isinstance(source, RenderedSource):
        return load_rendered(Path(source.path))
    assert isinstance(source, FileSource)
    path = Path(source.path)
    if source.source == "coco":
        return DetectionData.from_coco(path)
    if source.source == "csv":
        return ClassificationData.from_csv(path)
    channels = getattr(model, "in_channels", 1)
    size = source.size or getattr(model, "image_size", None)
    data, _names = ClassificationData.from_folder(path, channels=channels, size=size)
    return data


def render_digit_source(source: DigitsSource) -> tuple[np.ndarray, np.ndarray]:
    """All items of a digits spec, rendered here (generation is cheaper than shipping files)."""
    from worker.render.digits import DigitsSpec, render_digits
    from worker.spec import load_spec

    spec = load_spec(source.spec, DigitsSpec)
    return render_digits(spec, source.seed, 0, spec.count)


def load_rendered(path: Path) -> Any:
    """A render task's output dir: digit arrays when present, else its COCO annotations."""
    from worker.train.data import ClassificationData, DetectionData

    if not path.is_dir():
        raise SpecError(f"rendered data {path} is not a directory", reason="bad-data")
    arrays = path / DIGIT_ARRAYS
    if arrays.is_file():
        with np.load(arrays) as stored:
            return ClassificationData.from_arrays(stored["images"], stored["labels"])
    return DetectionData.from_coco(path)


def dataset_size(source: DataSource) -> int:
    """Items in a source without loading pixels where the spec alone says it (for units)."""
    if isinstance(source, DigitsSource):
        from worker.render.digits import DigitsSpec
        from worker.spec import load_spec

        return load_spec(source.spec, DigitsSpec).count
    if isinstance(source, RealMnistSource):
        from worker.realdata import DEFAULT_TUNING_SIZE

        return DEFAULT_TUNING_SIZE if source.split == "tuning" else 5000 - DEFAULT_TUNING_SIZE
    return len(load_data(source))
