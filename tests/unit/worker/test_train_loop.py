"""The training loop: it learns, it is bit-deterministic on the CPU, its batch order is a pure
function of (seed, step)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from worker.errors import SpecError
from worker.evaluate.metrics import classification_metrics
from worker.evaluate.predict import predict_probabilities
from worker.render.digits import DigitsSpec, render_digits
from worker.train.data import ClassificationData
from worker.train.loop import Progress, lr_at, train
from worker.train.schedule import augment_images, augmentation, batch_indices
from worker.train.spec import AugmentSpec
from worker.train.state import model_tensors, weights_digest
from worker.train.toydata import glyphs, toy_spec

DIGITS_CNN = {"name": "cnn", "image_size": 16, "num_classes": 10, "width": 16, "depth": 2}


def test_a_tiny_cnn_learns_rendered_digits() -> None:
    images, labels = render_digits(DigitsSpec(size=16, box_px=(11, 13), thickness_dpx=(12, 20)),
                                   seed=1, start=0, stop=1200)
    train_set = ClassificationData.from_arrays(images[:1000], labels[:1000])
    events: list[Progress] = []
    spec = toy_spec(DIGITS_CNN, steps=200, batch_size=32, lr=1e-2, log_every=50)
    result = train(spec, train_set, on_progress=events.append)
    assert [e.step for e in events] == [50, 100, 150, 200]
    assert events[-1].loss < 0.7 * events[0].loss
    assert all(e.images_per_s > 0 and e.lr == pytest.approx(1e-2) for e in events)
    probs = predict_probabilities(result.model, images[1000:, None])
    accuracy = classification_metrics(labels[1000:], probs.argmax(1), 10).accuracy
    assert accuracy > 0.3  # chance is 0.1


def test_same_seed_and_threads_give_bit_identical_weights() -> None:
    data = glyphs(256, seed=5)
    spec = toy_spec(optimizer="sgd", lr=0.05, steps=20, augment={"hflip": True, "shift": 2})
    first = weights_digest(model_tensors(train(spec, data).model))
    second = weights_digest(model_tensors(train(spec, data).model))
    other_seed = weights_digest(model_tensors(train(spec.model_copy(update={"seed": 1}), data).model))
    assert first == second
    assert first != other_seed


def test_batch_order_is_a_pure_function_of_seed_and_step() -> None:
    a = batch_indices(3, 17, 100, 8)
    batch_indices(3, 2, 100, 8)  # another step in between changes nothing
    assert torch.equal(a, batch_indices(3, 17, 100, 8))
    assert not torch.equal(a, batch_indices(4, 17, 100, 8))
    epoch = torch.cat([batch_indices(3, s, 100, 8) for s in range(12)])  # 12 full batches
    assert len(set(epoch.tolist())) == 96  # no repeat inside an epoch


def test_augmentation_flips_and_shifts_with_zero_fill() -> None:
    x = torch.arange(16.0).reshape(1, 1, 4, 4).repeat(2, 1, 1, 1)
    aug = augmentation(AugmentSpec(hflip=True, shift=1), seed=0, step=0, batch_size=2)
    assert aug is not None
    aug = type(aug)(flip=torch.tensor([True, False]), dx=torch.tensor([0, 1]), dy=torch.tensor([0, 1]))
    out = augment_images(x, aug)
    assert torch.equal(out[0, 0], x[0, 0].flip(1))
    assert torch.equal(out[1, 0, 1:, 1:], x[1, 0, :3, :3])
    assert out[1, 0, 0].sum() == 0 and out[1, 0, :, 0].sum() == 0
    assert augmentation(AugmentSpec(), seed=0, step=0, batch_size=2) is None


def test_learning_rate_warms_up_then_follows_cosine() -> None:
    spec = toy_spec(lr=1.0, warmup_steps=4, schedule="cosine", steps=104)
    assert [lr_at(spec, s, 104) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_at(spec, 54, 104) == pytest.approx(0.5)
    assert lr_at(spec, 103, 104) < 0.001


def test_data_that_does_not_fit_the_model_is_a_spec_error() -> None:
    wrong_size = ClassificationData.from_arrays(np.zeros((40, 8, 8), np.uint8), np.zeros(40))
    with pytest.raises(SpecError, match="model wants"):
        train(toy_spec(steps=1), wrong_size)
    bad_label = ClassificationData.from_arrays(np.zeros((40, 16, 16), np.uint8), np.full(40, 9))
    with pytest.raises(SpecError, match="num_classes"):
        train(toy_spec(steps=1), bad_label)
    with pytest.raises(SpecError, match="smaller than batch_size"):
        train(toy_spec(steps=1, batch_size=64), glyphs(40))
