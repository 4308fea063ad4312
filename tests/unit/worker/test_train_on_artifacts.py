"""A train job names its data by artifact roots (the shards of a generate job bought earlier):
the model trained on them verifies by replay only on those very files, and the buyer scores the
delivered model on its own real set (`cli.architectures.score_model`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cli.architectures import score_model
from neurod.market.inputs import InputsUnavailable
from neurod.market.tasks import train, verify_train_delivery
from worker.errors import SpecError
from worker.render.shard import render_shard

DIGITS = {"kind": "digits", "count": 64, "size": 16}
BEACON = b"a later block hash"


@pytest.fixture(scope="module")
def bought(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], dict[str, object], Path]:
    """Two delivered digit shards (root -> folder), a train spec naming them, and its model."""
    base = tmp_path_factory.mktemp("bought")
    folders = {}
    for start, stop in ((0, 30), (30, 64)):
        out = base / f"shard-{start}"
        folders[render_shard(DIGITS, 4, start, stop, out).root.hex()] = str(out)
    spec = {"task": "train",
            "train": {"model": {"name": "cnn", "image_size": 16, "width": 4, "depth": 1},
                      "steps": 7, "batch_size": 16, "pol_interval": 2},
            "data": {"source": "artifacts", "roots": list(folders)}}
    model = base / "model"
    train(json.dumps(spec), str(model), folders)
    return folders, spec, model


def test_a_model_trained_on_bought_shards_replays_on_them(bought: tuple[dict[str, str], dict[str, object], Path]
                                                          ) -> None:
    folders, spec, model = bought
    verdict = verify_train_delivery(str(model), json.dumps(spec), BEACON, 2, folders)
    assert verdict.ok, verdict


def test_the_replay_needs_the_named_files(bought: tuple[dict[str, str], dict[str, object], Path],
                                          tmp_path: Path) -> None:
    folders, spec, model = bought
    # the verifier's own copy of the data missing or damaged: no verdict on the worker, an error
    with pytest.raises(SpecError, match="not available here"):
        verify_train_delivery(str(model), json.dumps(spec), BEACON, 2)
    first, second = list(folders)
    damaged = tmp_path / "damaged"
    shutil.copytree(folders[first], damaged)
    labels = next(damaged.rglob("annotations.json"))
    doc = json.loads(labels.read_text())
    doc["labels"][0]["label"] = (doc["labels"][0]["label"] + 1) % 10
    labels.write_text(json.dumps(doc))
    with pytest.raises(InputsUnavailable, match=first[:16]):
        verify_train_delivery(str(model), json.dumps(spec), BEACON, 2, {first: str(damaged), second: folders[second]})


def test_the_buyer_scores_a_delivered_model_on_its_real_set(bought: tuple[dict[str, str], dict[str, object], Path],
                                                            tmp_path: Path) -> None:
    _, spec, model = bought
    real = tmp_path / "real"
    for label in range(10):
        (real / str(label)).mkdir(parents=True)
    from PIL import Image

    from worker.render.digits import DigitsSpec, render_digits

    images, labels = render_digits(DigitsSpec(count=40, size=16), 9, 0, 40)
    for n, (image, label) in enumerate(zip(images, labels)):
        Image.fromarray(image.reshape(16, 16)).save(real / str(int(label)) / f"{n}.png")
    scored = score_model("ab" * 32, spec["train"]["model"], str(model), str(real))  # type: ignore[index]
    assert scored.metric == "accuracy" and 0.0 <= scored.score <= 1.0
    assert scored.model == "cnn w4 d1 s16"
