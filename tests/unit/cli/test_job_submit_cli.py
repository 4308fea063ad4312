"""`neuro job submit`: a train spec listing architectures posts one job per architecture, and
`--budget` caps the escrow, against the real RPC methods and client agent over a market chain
(no daemon; the harness of tests/unit/cli/test_market_agents_cli.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chain.job_spec import job_terms
from chain.market_types import JobPost, Service
from cli.architectures import Scored, architecture_jobs, best, describe, real_source
from cli.market import escrow_at, fit_budget
from cli.output import CliError
from tests.support.market import market_chain
from tests.unit.cli.test_market_agents_cli import client_on, neuro, node_on  # noqa: F401 - the fixture
from tests.unit.cli.test_market_cli import Neuro

EXAMPLE = json.loads((Path(__file__).parents[3] / "worker/examples/cnn_train.json").read_text())
ARCHITECTURES = [{"name": "cnn", "width": 16, "depth": 3}, {"name": "cnn", "width": 32, "depth": 2}]


def set_spec() -> dict[str, Any]:
    train = {k: v for k, v in EXAMPLE["train"].items() if k != "model"}
    return {**EXAMPLE, "train": train, "architectures": ARCHITECTURES}


def test_architectures_become_one_train_spec_each() -> None:
    docs = architecture_jobs(set_spec())
    assert [d["train"]["model"] for d in docs] == ARCHITECTURES
    assert all("architectures" not in d and d["data"] == EXAMPLE["data"] for d in docs)
    assert all({k: v for k, v in d["train"].items() if k != "model"} ==
               {k: v for k, v in EXAMPLE["train"].items() if k != "model"} for d in docs)
    assert architecture_jobs(EXAMPLE) == [EXAMPLE]
    assert [describe(m) for m in ARCHITECTURES] == ["cnn w16 d3", "cnn w32 d2"]


@pytest.mark.parametrize("bad", [
    {"architectures": []},
    {"architectures": [{"name": "cnn"}] * 9},
    {"architectures": ["cnn"]},
    {"architectures": {"name": "cnn"}},
    {"train": EXAMPLE["train"]},  # a model and a set
])
def test_a_bad_architecture_set_is_named(bad: dict[str, Any]) -> None:
    with pytest.raises(CliError) as refused:
        architecture_jobs({**set_spec(), **bad})
    assert refused.value.reason == "bad-spec"


def test_the_budget_sets_the_highest_price_whose_escrow_fits() -> None:
    docs = architecture_jobs(set_spec())
    budget = 10**7
    price = fit_budget("train", docs, 1, None, budget)
    assert escrow_at("train", docs, 1, price) <= budget < escrow_at("train", docs, 1, price + 1)
    assert fit_budget("train", docs, 1, 3, budget) == 3  # a lower max price given: kept
    with pytest.raises(CliError) as refused:
        fit_budget("train", docs, 1, None, 1)
    assert refused.value.reason == "budget-too-small"


def test_the_escrow_is_what_the_chain_locks() -> None:
    doc = EXAMPLE
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    terms = job_terms(Service.TRAIN, canonical, len(canonical))
    assert escrow_at("train", [doc], 1, 777) == terms.payment(0, 1, 777)


def test_real_sources_and_the_best_model(tmp_path: Path) -> None:
    assert real_source("mnist") == {"source": "mnist-real", "split": "tuning"}
    assert real_source(str(tmp_path))["source"] == "folder"
    assert real_source("x.csv")["source"] == "csv" and real_source("x.json")["source"] == "coco"
    with pytest.raises(CliError):
        real_source(str(tmp_path / "missing"))
    scored = [Scored("a", "m1", "o1", "accuracy", 0.5), Scored("b", "m2", "o2", "accuracy", 0.7),
              Scored("c", "m3", "o3", "accuracy", 0.7)]
    assert best(scored).job == "b"


def test_submit_posts_one_job_per_architecture_within_the_budget(neuro: Neuro, tmp_path: Path,  # noqa: F811
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    chain = market_chain()
    node = node_on(chain, tmp_path, monkeypatch)
    client_on(node)
    spec = tmp_path / "set.json"
    spec.write_text(json.dumps(set_spec()))
    posted = neuro.json("job", "submit", "train", str(spec), "--budget", "0.01")
    assert len(posted) == 2
    posts = [t.payload for t in node.sent]
    assert [type(p) for p in posts] == [JobPost, JobPost]
    assert [json.loads(p.spec)["train"]["model"] for p in posts] == ARCHITECTURES
    assert len({p.max_price for p in posts}) == 1
    docs = architecture_jobs(set_spec())
    assert escrow_at("train", docs, 1, posts[0].max_price) <= 10**7  # 0.01 NTK
    neuro.fails("bad-option", "job", "submit", "generate", str(spec), "--real", "mnist")
    neuro.fails("budget-too-small", "job", "submit", "train", str(spec), "--budget", "0.000000001")
