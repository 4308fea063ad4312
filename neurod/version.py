"""The software's version, as installed (pyproject.toml): `neuro --version` and `neurod --version`."""

from __future__ import annotations

DISTRIBUTION = "neuro-network"


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed(DISTRIBUTION)
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"
