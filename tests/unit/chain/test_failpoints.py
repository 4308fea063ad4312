"""Fail points: parsed strictly, armed only by name, never a traceback at import."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from chain import failpoints


def run_python(code: str, spec: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, failpoints.ENV: spec}
    return subprocess.run([sys.executable, "-c", code], env=env, check=False, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("spec", ["nonsense", "block-after-commit@0", "block-after-commit@x"])
def test_a_bad_spec_is_reported_by_check_environment_not_at_import(spec: str) -> None:
    imported = run_python("import chain.failpoints", spec)
    assert imported.returncode == 0, imported.stderr
    checked = run_python("from chain import failpoints; failpoints.check_environment()", spec)
    assert checked.returncode == 1 and "FailpointError" in checked.stderr


def test_a_point_dies_at_its_chosen_hit_and_not_before() -> None:
    code = "from chain import failpoints\nfor i in range(5):\n    print(i, flush=True)\n    failpoints.hit('block-after-commit')"
    died = run_python(code, "block-after-commit@3")
    assert died.returncode == -signal.SIGKILL and died.stdout.split() == ["0", "1", "2"]
    other = run_python(code, "reorg-after-undo")
    assert other.returncode == 0 and other.stdout.split() == ["0", "1", "2", "3", "4"]


def test_armed_and_undeclared_points() -> None:
    try:
        failpoints.arm("mempool-journal-partial@2")
        assert failpoints.armed("mempool-journal-partial") and not failpoints.armed("block-after-commit")
        with pytest.raises(failpoints.FailpointError, match="not declared"):
            failpoints.hit("no-such-point")
    finally:
        failpoints.arm("")
    assert not failpoints.armed("mempool-journal-partial")
