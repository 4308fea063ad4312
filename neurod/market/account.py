"""The account a node's market agents act for: its key, and transactions signed at the next nonce.

A worker or client daemon signs its own market transactions (bids, commits, awards, accepts).
The key comes from `agent_key` in config.toml or `--agent-key`: a wallet key file (`neuro key
export` writes one; encrypted at rest, unsealed at start with the password in the file
`agent_password_file` or the NEURO_AGENT_PASSWORD variable), or on a devnet `devnet:<name>`, one
of the devnet's well-known keys. It is never written anywhere by the daemon.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chain.errors import ChainError
from neurod.config import ConfigError
from wallet.keys import Key, WalletError

if TYPE_CHECKING:
    from neurod.node import Node

log = logging.getLogger("neuro.market")
PASSWORD_VARIABLE = "NEURO_AGENT_PASSWORD"


class AgentKeyError(ConfigError):
    reason = "bad-agent-key"


def load_agent_key(spec: str, network: str, password_file: str | None = None) -> Key:
    """The agent's signing key from ``spec`` ("devnet:<name>" on a devnet, or a key file)."""
    if spec.startswith("devnet:"):
        if network != "devnet":
            raise AgentKeyError(f"agent_key {spec!r}: devnet keys are public, refused on network {network!r}")
        from chain.devnet_keys import DEVNET_ACCOUNTS, devnet_seed

        name = spec.removeprefix("devnet:")
        if name not in DEVNET_ACCOUNTS:
            raise AgentKeyError(f"agent_key {spec!r}: no such devnet key (choose {', '.join(DEVNET_ACCOUNTS)})")
        return Key(devnet_seed(name))
    from wallet.keyfile import KeyFile, unseal

    path = Path(spec).expanduser()
    if password_file:
        try:
            password = Path(password_file).expanduser().read_text().rstrip("\n")
        except OSError as exc:
            raise AgentKeyError(f"agent_password_file {password_file}: {exc.strerror or exc}") from None
    else:
        password = os.environ.get(PASSWORD_VARIABLE, "")
        if not password:
            raise AgentKeyError(f"agent_key {path} is encrypted: set {PASSWORD_VARIABLE} or agent_password_file")
    try:
        return unseal(KeyFile.loads(path.read_bytes(), str(path)), password)
    except OSError as exc:
        raise AgentKeyError(f"agent_key {path}: {exc.strerror or exc}") from None
    except WalletError as exc:
        raise AgentKeyError(f"agent_key {path}: {exc}") from None


class AgentAccount:
    """Signs and submits the agents' transactions through the node, each at the next nonce
    (pending ones in the mempool counted), as a wallet sending from this account would."""

    def __init__(self, node: Node, key: Key, fee: int) -> None:
        self.node = node
        self.key = key
        self.fee = fee
        self.account_id = key.account_id

    def address(self) -> str:
        return self.key.address(self.node.chain.params.hrp)

    async def submit(self, payload: Any) -> bytes | None:
        """Sign ``payload`` and submit it; the txid, or None when the node refuses it now (the
        state may move: the agents try again on a later block; the reason is logged)."""
        nonce = self.node.mempool.pending_nonce(self.account_id)
        tx = self.key.transaction(self.node.chain.chain_id, nonce, self.fee, payload)
        try:
            return await self.node.submit_transaction(tx, tx.encode())
        except ChainError as exc:
            log.info("market: %s not submitted: %s", type(payload).__name__, exc)
            return None

    def pending(self) -> bool:
        """Whether a transaction of ours still waits in the mempool."""
        account = self.node.chain.account(self.account_id)
        return self.node.mempool.pending_nonce(self.account_id) != (account.nonce if account else 0)

    def balance(self) -> int:
        account = self.node.chain.account(self.account_id)
        return account.balance if account else 0

    def bonded(self) -> int:
        account = self.node.chain.account(self.account_id)
        return account.bonded if account else 0

