"""The task runner: atomic output, time limit, memory cap, named failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from worker.errors import SpecError, WorkerError
from worker.runner import TaskOutOfMemory, TaskTimeout, run_task

TINY_DIGITS = {"task": "render", "seed": 3, "spec": {"kind": "digits", "count": 24}}


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name)


def test_render_task_produces_final_dir(tmp_path: Path) -> None:
    events: list[dict[str, object]] = []
    out = tmp_path / "digits"
    result = run_task("render", TINY_DIGITS, out, timeout_s=120, on_event=events.append)
    assert result.out == out and out.is_dir()
    assert result.summary["items"] == 24
    assert len(result.summary["artifact_root"]) == 64
    assert result.summary["compute_units"] > 0
    recorded = json.loads((out / "task.json").read_text())
    assert recorded["spec"] == TINY_DIGITS and recorded["artifact_root"] == result.summary["artifact_root"]
    assert events and events[-1]["done"] == events[-1]["total"] == 24
    assert _leftovers(tmp_path) == []


def test_slow_render_times_out_without_output(tmp_path: Path) -> None:
    huge = {"task": "render", "seed": 0, "spec": {"kind": "digits", "count": 2_000_000}}
    out = tmp_path / "huge"
    with pytest.raises(TaskTimeout) as info:
        run_task("render", huge, out, timeout_s=1.5)
    assert info.value.reason == "task-timeout"
    assert not out.exists()
    assert _leftovers(tmp_path) == []


def test_memory_cap_violation_is_task_oom(tmp_path: Path) -> None:
    # batch 1024 of 64x64 digits through 256 channels: the first activation alone is ~4 GiB
    greedy = {
        "task": "train",
        "train": {"model": {"name": "cnn", "image_size": 64, "width": 256, "depth": 1},
                  "steps": 1, "batch_size": 1024},
        "data": {"source": "digits", "spec": {"kind": "digits", "count": 1024, "size": 64}},
    }
    out = tmp_path / "greedy"
    with pytest.raises(TaskOutOfMemory) as info:
        run_task("train", greedy, out, timeout_s=240, memory_mb=2048)
    assert info.value.reason == "task-oom"
    assert not out.exists()
    assert _leftovers(tmp_path) == []


def test_bad_spec_is_named_in_one_line(tmp_path: Path) -> None:
    bad = {"task": "render", "spec": {"kind": "digits", "count": 0}}
    with pytest.raises(SpecError) as info:
        run_task("render", bad, tmp_path / "bad", timeout_s=60)
    assert info.value.reason == "bad-spec"
    assert "count" in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "bad").exists()


def test_unknown_task_and_wrong_kind_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError):
        run_task("shell", {"task": "shell"}, tmp_path / "x")
    with pytest.raises(SpecError) as info:
        run_task("train", TINY_DIGITS, tmp_path / "y", timeout_s=60)
    assert info.value.reason == "wrong-task-kind"


def test_existing_output_is_never_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    with pytest.raises(WorkerError) as info:
        run_task("render", TINY_DIGITS, out)
    assert info.value.reason == "output-exists"


def test_resident_memory_watch_used_for_cuda_tasks() -> None:
    import os

    from worker.runner import _RssWatch

    _RssWatch(os.getpid(), None).check()  # no cap: never fires
    _RssWatch(os.getpid(), 1 << 20).check()  # a 1 TB cap: this test process is under it
    with pytest.raises(TaskOutOfMemory):
        _RssWatch(os.getpid(), 1).check()  # 1 MB: any Python process is over it
