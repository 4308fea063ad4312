"""A pytest plugin for mutation runs only (``-p tests.mutation.profile``, set in pyproject.toml).

A mutant runs through mutmut's trampolines, several times slower than plain code, and a
hypothesis test that misses its deadline would count the mutant killed for the wrong reason.
Derandomized examples make a mutant's verdict the same on every run.
"""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("mutation", deadline=None, derandomize=True, database=None, print_blob=False)
settings.load_profile("mutation")
