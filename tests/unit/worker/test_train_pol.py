"""Proof-of-learning: honest segments replay within tolerance, tampered ones are caught."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from worker.device import select_device
from worker.errors import VerificationFailed
from worker.train.calibrate import DISHONEST, calibrate
from worker.train.data import ClassificationData
from worker.train.loop import Trainer, TrainResult, train
from worker.train.pol import LOG_NAME, PolLog, read_checkpoint, read_log
from worker.train.replay import (
    DEFAULT_TOLERANCE,
    SegmentRejected,
    replay_segment,
    sample_segments,
    segments_to_replay,
    verify_pol,
)
from worker.train.state import checkpoint_tensors, split_checkpoint, weights_digest
from worker.train.toydata import glyphs, toy_spec

DATA = glyphs(512, seed=2)
SPEC = toy_spec(steps=60, pol_interval=20, augment={"shift": 1}, seed=11)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    return train(SPEC, DATA, pol_dir=tmp_path_factory.mktemp("pol"))


@pytest.fixture(scope="module")
def log(trained: TrainResult) -> PolLog:
    assert trained.pol is not None
    return trained.pol


def cheat(log: PolLog, start: int, stop: int, data: ClassificationData = DATA) -> None:
    """Overwrite checkpoint `start + 20` (and its record) with a run of steps start..stop-1."""
    trainer = Trainer(SPEC, data, select_device(threads=1, prefer_cuda=False))
    trainer.load_state(read_checkpoint(log.checkpoint_path(start)))
    trainer.run(start, stop)
    end = start + SPEC.pol_interval
    save_file(checkpoint_tensors(trainer.model, trainer.optimizer), str(log.checkpoint_path(end)))
    state = read_checkpoint(log.checkpoint_path(end))
    body = json.loads((log.directory / LOG_NAME).read_text())
    for rec in body["records"]:
        if rec["step"] == end:
            rec["weights_hash"] = weights_digest(split_checkpoint(state)[0]).hex()
            rec["state_hash"] = weights_digest(state).hex()
    (log.directory / LOG_NAME).write_text(json.dumps(body))


def test_log_covers_the_run_with_checkpoints(log: PolLog) -> None:
    assert [r.step for r in log.records] == [0, 20, 40, 60]
    assert log.segments() == [(0, 20), (20, 40), (40, 60)]
    assert all(len(r.batches) == 20 for r in log.records[1:])
    assert log.header["threads"] == 1 and log.header["device"] == "cpu"
    assert read_log(log.directory).digest() == log.digest()
    assert set(read_checkpoint(log.checkpoint_path(20))) >= {"optim.0.exp_avg", "optim.0.step"}


def test_honest_segments_replay_exactly_and_verify(log: PolLog, trained: TrainResult) -> None:
    for start, end in log.segments():
        check = replay_segment(log, DATA, start, end)
        assert check.accepted and check.distance == 0.0
    other_threads = replay_segment(log, DATA, 20, 40, device=select_device(threads=2, prefer_cuda=False))
    assert other_threads.distance < DEFAULT_TOLERANCE
    torch.set_num_threads(1)
    replay = verify_pol(log, DATA, beacon=b"block-hash", count=1)
    assert [(c.start, c.end) for c in replay.checks] == segments_to_replay(log, b"block-hash", 1)
    assert replay.checks[-1].start == 40  # the final segment, always
    assert replay.final_loss is not None and replay.final_loss == trained.final_loss


def test_beacon_picks_distinct_segments_deterministically(log: PolLog) -> None:
    picks = {tuple(sample_segments(log, bytes([i]), 1)) for i in range(20)}
    assert picks == {((0, 20),), ((20, 40),)}  # never the final one: that is always replayed
    assert sample_segments(log, b"x", 2) == [(0, 20), (20, 40)]
    assert segments_to_replay(log, b"x", 1) in ([(0, 20), (40, 60)], [(20, 40), (40, 60)])


def copy_log(log: PolLog, tmp_path: Path) -> PolLog:
    for path in log.directory.iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    return read_log(tmp_path)


def test_skipped_steps_are_rejected(log: PolLog, tmp_path: Path) -> None:
    forged = copy_log(log, tmp_path)
    cheat(forged, 20, 30)  # claims 20 steps, did 10
    forged = read_log(tmp_path)
    check = replay_segment(forged, DATA, 20, 40)
    assert not check.accepted and check.distance > 10 * DEFAULT_TOLERANCE
    assert replay_segment(forged, DATA, 0, 20).accepted  # other segments stay honest
    with pytest.raises(SegmentRejected) as caught:
        verify_pol(forged, DATA, beacon=b"", count=3)
    assert caught.value.reason == "pol-distance" and caught.value.segment == (20, 40)


def test_training_on_swapped_data_is_rejected(log: PolLog, tmp_path: Path) -> None:
    forged = copy_log(log, tmp_path)
    swapped = ClassificationData(images=DATA.images, labels=np.roll(DATA.labels, 1))
    cheat(forged, 0, 20, data=swapped)
    assert not replay_segment(read_log(tmp_path), DATA, 0, 20).accepted


def test_tampered_log_or_checkpoint_or_data_is_a_proof(log: PolLog, tmp_path: Path) -> None:
    forged = copy_log(log, tmp_path)
    body = json.loads((tmp_path / LOG_NAME).read_text())
    body["records"][2]["batches"][0][0] += 1
    (tmp_path / LOG_NAME).write_text(json.dumps(body))
    with pytest.raises(VerificationFailed) as caught:
        replay_segment(read_log(tmp_path), DATA, 20, 40)
    assert caught.value.reason == "pol-batch-order"
    state = read_checkpoint(forged.checkpoint_path(40))
    state["model.classifier.bias"] += 0.01
    save_file(state, str(forged.checkpoint_path(40)))
    with pytest.raises(VerificationFailed) as caught:
        replay_segment(forged, DATA, 40, 60)
    assert caught.value.reason == "pol-checkpoint-hash"
    other = ClassificationData(images=DATA.images[::-1].copy(), labels=DATA.labels[::-1].copy())
    with pytest.raises(VerificationFailed) as caught:
        replay_segment(log, other, 0, 20)
    assert caught.value.reason == "pol-data-mismatch"


def test_default_tolerance_sits_between_honest_and_dishonest_replays() -> None:
    cal = calibrate(quick=True)
    assert set(cal.first["same-threads"] + cal.later["same-threads"]) == {0.0}
    assert cal.max_honest < DEFAULT_TOLERANCE < cal.min_dishonest
    assert min(min(cal.first[kind]) for kind in DISHONEST) > DEFAULT_TOLERANCE
