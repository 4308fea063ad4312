"""The one error base of `worker`: every failure a user or a peer can cause has a reason."""

from __future__ import annotations


class WorkerError(Exception):
    """A task failed for a reason we can name (bad spec, time limit, verification mismatch...).

    ``reason`` is kebab-case and stable (scripts and the market match on it); the message is one
    line meant for a person.
    """

    reason: str = "worker-error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        if reason is not None:
            self.reason = reason
        super().__init__(message)


class SpecError(WorkerError):
    """A task spec that does not validate: unknown fields, out-of-range values, huge sizes."""

    reason = "bad-spec"


class TaskFailed(WorkerError):
    reason = "task-failed"


class VerificationFailed(WorkerError):
    reason = "verification-failed"
