"""`neuro task`: run, units and verify from the command line; failures are one line, exit != 0."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli.task import task_app

EXAMPLES = Path(__file__).resolve().parents[3] / "worker" / "examples"
runner = CliRunner()


def test_run_render_example_prints_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "digits"
    result = runner.invoke(task_app, ["run", "render", str(EXAMPLES / "digits_render.json"),
                                      "--out", str(out), "--timeout", "120"])
    assert result.exit_code == 0, result.output
    assert "render finished" in result.output and "artifact_root" in result.output
    root = json.loads((out / "manifest.json").read_text())["root"]
    assert root in result.output.replace("\n", "").replace("│", "").replace(" ", "")
    checked = runner.invoke(task_app, ["verify", str(out), "--samples", "3", "--beacon", "ab"])
    assert checked.exit_code == 0 and "ok" in checked.output


def test_bad_spec_fails_in_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps({"task": "render", "spec": {"kind": "digits", "count": -5}}))
    result = runner.invoke(task_app, ["run", "render", str(spec), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "bad-spec" in lines[0] and "count" in lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_not_json_and_wrong_kind_fail_cleanly(tmp_path: Path) -> None:
    spec = tmp_path / "broken.json"
    spec.write_text("{not json")
    result = runner.invoke(task_app, ["run", "render", str(spec), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "not JSON" in result.output
    wrong = runner.invoke(task_app, ["run", "train", str(EXAMPLES / "digits_render.json"),
                                     "--out", str(tmp_path / "o")])
    assert wrong.exit_code == 1 and "wrong-task-kind" in wrong.output


def test_units_of_every_render_and_train_example() -> None:
    for name in ("digits_render", "shelf_render", "cnn_train"):
        result = runner.invoke(task_app, ["units", str(EXAMPLES / f"{name}.json")])
        assert result.exit_code == 0, result.output
        units = int(result.output.split()[0])
        assert units > 0
    digits = runner.invoke(task_app, ["units", str(EXAMPLES / "digits_render.json")])
    # 500 items of 28x28, supersampled 4x (16 x pixels), blur (2) + noise (1) passes on top of 1
    assert digits.output.split()[:2] == [str(500 * 28 * 28 * 16 * 4), "pixel"]


def test_error_text_with_brackets_is_shown_verbatim(tmp_path: Path) -> None:
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps({"task": "render", "spec": {"kind": "digits", "box_px": 5}}))
    result = runner.invoke(task_app, ["run", "render", str(spec), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "[min, max]" in result.output  # rich markup must not swallow the spec error's text


def test_an_architecture_set_says_it_is_bought_on_the_market(tmp_path: Path) -> None:
    result = runner.invoke(task_app, ["run", "train", str(EXAMPLES / "cnn_architectures.json"),
                                      "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "error (architecture-set)" in result.output and "neuro job submit train" in result.output
    assert not (tmp_path / "o").exists()
