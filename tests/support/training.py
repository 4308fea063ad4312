"""A trained model and the forgeries a dishonest trainer would deliver: each edit of the weights,
metrics or proof-of-learning log is re-signed and re-sealed as a cheating worker would."""

from __future__ import annotations

from worker.train.forgery import (  # noqa: F401 - the tests' forgeries, shared with the devnet fault
    forge_log,
    reseal,
    reverse_batches,
    rewrite_weights,
    weights_metadata,
)

TRAIN = {
    "task": "train",
    "train": {"model": {"name": "cnn", "image_size": 16, "width": 4, "depth": 1},
              "steps": 7, "batch_size": 16, "pol_interval": 2},
    "data": {"source": "digits", "seed": 2, "spec": {"kind": "digits", "count": 64, "size": 16}},
    "validation": {"source": "digits", "seed": 3,
                   "spec": {"kind": "digits", "count": 40, "size": 16}},
}
