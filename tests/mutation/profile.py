"""A pytest plugin for mutation runs only (``-p tests.mutation.profile``, set in pyproject.toml).

A mutant runs through mutmut's trampolines, several times slower than plain code, and a
hypothesis test that misses its deadline would count the mutant killed for the wrong reason.
Derandomized examples make a mutant's verdict the same on every run. Tests run fastest first.

The two stateful machines (random chains and market flows) take 108 of the 128 s that
`tests/unit/chain` takes under the trampolines, and every mutant that survives runs all the tests
that reach its function: with their full example counts a run over chain/ (8,000 mutants) does
not end in a working day. Here they run `STATEFUL_EXAMPLES` examples each. That can only make
the score lower (a mutant only they would kill survives), never higher.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("mutation", deadline=None, derandomize=True, database=None, print_blob=False)
settings.load_profile("mutation")
STATEFUL_EXAMPLES = 8


def _recorded_durations() -> dict[str, float]:
    """Each test's duration in mutmut's stats run (mutants run in mutants/, beside the file)."""
    path = Path("mutmut-stats.json")
    if not path.is_file():
        return {}
    durations: dict[str, float] = json.loads(path.read_text()).get("duration_by_test", {})
    return durations


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Fastest tests first: pytest stops a mutant's run (-x) at the first failing test, so a
    mutant that a quick test kills is not first put through the slow market tests."""
    for item in items:
        machine_settings = getattr(getattr(item, "cls", None), "settings", None)
        if isinstance(machine_settings, settings):  # a RuleBasedStateMachine's TestCase
            item.cls.settings = settings(machine_settings, max_examples=STATEFUL_EXAMPLES)  # type: ignore[union-attr]
    durations = _recorded_durations()
    if durations:
        items.sort(key=lambda item: durations.get(item.nodeid, 0.0))
