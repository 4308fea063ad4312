"""Each devnet's own genesis (neurod/devnet_genesis.py): a fresh time, a target for this machine,
kept across restarts (issue 16, finding 3); the funded accounts `neuro devnet up` lists from it."""

from __future__ import annotations

import json
from pathlib import Path

from chain.amounts import format_ntk
from chain.devnet_keys import devnet_address
from chain.genesis import load_genesis, parse_genesis
from chain.pow import bits_to_target, is_canonical_bits, work_of
from neurod.devnet import funded_accounts
from neurod.devnet_genesis import (
    GENESIS_FILE,
    ensure_devnet_genesis,
    fresh_doc,
    template_doc,
    write_doc,
)

NOW = 1_800_000_000


def test_a_fresh_devnet_is_stamped_now_with_a_target_worth_its_block_time() -> None:
    template = template_doc()
    doc = fresh_doc(template, NOW, hashes_per_s=1_000_000.0)
    genesis = parse_genesis(doc)
    assert genesis.params.genesis_time == NOW and genesis.params.network == "devnet"
    assert genesis.allocations == load_genesis("devnet").allocations  # the same funded keys
    assert genesis.chain_id != load_genesis("devnet").chain_id
    bits = genesis.params.genesis_bits
    assert is_canonical_bits(bits)
    # a quarter of the rate for one 2-second block: about 500,000 hashes, not the limit's one
    assert 400_000 < work_of(bits) < 600_000
    assert {k for k in doc if doc[k] != template[k]} == {"genesis_time", "genesis_bits"}


def test_a_slow_machine_never_gets_a_target_easier_than_the_limit() -> None:
    doc = fresh_doc(template_doc(), NOW, hashes_per_s=0.5)
    assert bits_to_target(int(doc["genesis_bits"], 16)) == bits_to_target(int(doc["pow_limit_bits"], 16))


def test_the_genesis_is_made_once_and_a_chain_made_on_the_template_keeps_it(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    path = ensure_devnet_genesis(fresh, has_chain=False)
    first = path.read_bytes()
    assert json.loads(first)["genesis_time"] > load_genesis("devnet").params.genesis_time
    assert ensure_devnet_genesis(fresh, has_chain=False).read_bytes() == first  # a restart: the same chain
    old = tmp_path / "old"
    old.mkdir()
    assert ensure_devnet_genesis(old, has_chain=True) is None  # it runs on the template, as it always did
    assert not (old / GENESIS_FILE).exists()


def test_the_funded_well_known_accounts_are_read_from_the_cluster_genesis(tmp_path: Path) -> None:
    """What `neuro devnet up` prints, text and `--json`: each funded name with its address and
    genesis balance, the address the public seed gives (chain/devnet_keys.py)."""
    write_doc(tmp_path / GENESIS_FILE, fresh_doc(template_doc(), NOW, hashes_per_s=1_000_000.0))
    accounts = funded_accounts(tmp_path)
    genesis = load_genesis(tmp_path / GENESIS_FILE)
    assert [a["name"] for a in accounts] == [n for n, acct in genesis.names.items() if dict(genesis.allocations).get(acct)]
    assert {"treasury", "alice", "bob", "carol", "dave"} <= {a["name"] for a in accounts}
    for account in accounts:
        assert account["address"] == devnet_address(account["name"])
        assert account["genesis_balance"] > 0
        assert account["genesis_balance_ntk"] == format_ntk(account["genesis_balance"])
