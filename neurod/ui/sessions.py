"""Bearer tokens of the dashboard: login sessions and one-time login links.

A session is what the browser holds instead of the RPC cookie: a fresh random token in an HttpOnly
cookie, so no page script (and no injected one) can read it, and the RPC secret never sits in the
browser. A login token is the same kind of secret, handed out by the `ui_login` RPC method (so only
whoever can read the RPC cookie gets one), short-lived, and good for one login.

Tokens are kept by their SHA-256: lookups compare digests the caller cannot steer, and a memory
dump of the book gives nothing to replay. Both books are bounded; the oldest entry goes first.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

SESSION_SECONDS = 12 * 3600.0  # a browser stays logged in this long
LOGIN_TOKEN_SECONDS = 120.0  # a `neuro ui` link must be opened within this
MAX_SESSIONS = 64
MAX_LOGIN_TOKENS = 16
TOKEN_BYTES = 32


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "replace")).digest()


class TokenBook:
    """Random tokens that expire ``lifetime`` seconds after issue, at most ``capacity`` alive."""

    def __init__(self, lifetime: float, capacity: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.lifetime, self.capacity = lifetime, capacity
        self._clock = clock
        self._expiry: OrderedDict[bytes, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._expiry)

    def issue(self) -> str:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        self._expiry[_digest(token)] = self._clock() + self.lifetime
        while len(self._expiry) > self.capacity:
            self._expiry.popitem(last=False)
        return token

    def valid(self, token: str) -> bool:
        """True while ``token`` was issued here, has not expired and was not dropped."""
        key = _digest(token)
        expiry = self._expiry.get(key)
        if expiry is None:
            return False
        if expiry <= self._clock():
            del self._expiry[key]
            return False
        return True

    def take(self, token: str) -> bool:
        """`valid`, and the token is spent: a login link works once."""
        ok = self.valid(token)
        self.drop(token)
        return ok

    def drop(self, token: str) -> None:
        self._expiry.pop(_digest(token), None)
