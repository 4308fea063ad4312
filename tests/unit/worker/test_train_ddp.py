"""The DistributedDataParallel launcher, run for real with two CPU ranks on the gloo backend."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from worker.errors import SpecError, TaskFailed
from worker.train.ddp import train_distributed
from worker.train.loop import Progress
from worker.train.pol import read_checkpoint
from worker.train.state import model_tensors, split_checkpoint
from worker.train.toydata import glyphs, toy_spec


def test_two_ranks_train_record_pol_and_return_rank0_weights(tmp_path: Path) -> None:
    data = glyphs(256, seed=4)
    spec = toy_spec(steps=20, pol_interval=10, log_every=5, lr=5e-3)
    events: list[Progress] = []
    result = train_distributed(spec, data, world=2, backend="gloo", pol_dir=tmp_path,
                               on_progress=events.append)
    assert [e.step for e in events] == [5, 10, 15, 20]
    assert [s for s, _ in result.losses] == [5, 10, 15, 20]
    assert result.losses[-1][1] < result.losses[0][1]
    assert result.pol is not None and result.pol.segments() == [(0, 10), (10, 20)]
    final, _ = split_checkpoint(read_checkpoint(result.pol.checkpoint_path(20)))
    returned = model_tensors(result.model)
    assert all(torch.equal(final[k], returned[k]) for k in final)


def test_a_batch_that_does_not_split_over_the_ranks_is_refused_before_spawning() -> None:
    with pytest.raises(SpecError, match="does not split over 3"):
        train_distributed(toy_spec(steps=2, batch_size=32), glyphs(64), world=3, backend="gloo")
    with pytest.raises(TaskFailed, match="2 or more"):
        train_distributed(toy_spec(steps=2), glyphs(64), world=1, backend="gloo")
