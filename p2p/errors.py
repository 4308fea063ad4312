"""The one error base of `p2p`: every failure carries a short kebab-case reason."""

from __future__ import annotations


class P2PError(Exception):
    """Base of every error raised by `p2p`; `reason` is the stable kebab-case name."""

    reason: str = "p2p-error"

    def __init__(self, reason: str | None = None, detail: str = "") -> None:
        if reason is not None:
            self.reason = reason
        self.detail = detail
        super().__init__(f"{self.reason}: {detail}" if detail else self.reason)


class WireError(P2PError):
    """Bytes on a sync stream that break the framing or the message schema."""

    reason = "bad-wire-message"


class RequestFailed(P2PError):
    """A sync request to a peer did not produce a usable answer (timeout, reset, refusal)."""

    reason = "request-failed"


class ConfigError(P2PError):
    """A p2p setting that cannot work (bad multiaddr, unreadable key file)."""

    reason = "bad-p2p-config"
