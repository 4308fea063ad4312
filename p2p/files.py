"""Errors of the files the p2p layer keeps in the data dir (its identity key, the ban list);
both are written with `chain.files.write_atomic`, so a crash never leaves a short one."""

from __future__ import annotations


def describe(exc: OSError) -> str:
    """The operating system's reason, without the path an OSError repeats."""
    return (exc.strerror or str(exc)).lower()
