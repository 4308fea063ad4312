"""Genesis files: the built-in networks load; every malformed file is a GenesisError naming why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chain.crypto import address_hash, encode_address, public_key_of
from chain.devnet_keys import DEVNET_ACCOUNTS, DEVNET_HRP, devnet_address, devnet_seed
from chain.errors import GenesisError
from chain.genesis import load_genesis, parse_genesis
from chain.jobs import TOTALS_KEY, Totals
from chain.params import UNITS_PER_NTK
from chain.pow import target_to_bits
from chain.state import Account
from chain.trie import compute_root
from tests.support.chain_builders import genesis_doc, numbered_seed

REPO_GENESIS = Path(__file__).parents[3] / "genesis.json"


@pytest.mark.parametrize("network", ["main", "devnet"])
def test_built_in_networks_load(network: str) -> None:
    genesis = load_genesis(network)
    assert genesis.params.network == network
    assert genesis.block.header.height == 0
    assert genesis.supply == sum(amount for _, amount in genesis.allocations) > 0
    assert genesis.state_root == compute_root(
        {account: Account(balance=amount).value_hash for account, amount in genesis.allocations}
        | {TOTALS_KEY: Totals(genesis.supply).value_hash}
    )
    assert genesis.params.block_reward(1) == 50 * UNITS_PER_NTK


def test_block_reward_schedule() -> None:
    """Reference vectors: nothing for the genesis block, the initial reward up to the first
    halving's last block, then halved at each interval until every bit is shifted out."""
    params = parse_genesis({**genesis_doc([numbered_seed(0)]), "initial_reward": "50", "halving_interval": 10}).params
    initial = 50 * UNITS_PER_NTK
    expected = {0: 0, 1: initial, 10: initial, 11: initial // 2, 20: initial // 2, 21: initial // 4,
                10 * 32 + 1: initial >> 32, 10 * 63 + 1: 0, 10 * 64 + 1: 0, 10**9: 0}
    assert {height: params.block_reward(height) for height in expected} == expected
    last = max(h for h in range(1, 10 * 64) if params.block_reward(h))
    assert (last - 1) // 10 == initial.bit_length() - 1 and params.block_reward(last) == 1


def test_networks_have_distinct_chain_ids() -> None:
    assert load_genesis("main").chain_id != load_genesis("devnet").chain_id


def test_repository_genesis_file_is_the_main_network() -> None:
    assert load_genesis(REPO_GENESIS).chain_id == load_genesis("main").chain_id


def test_chain_id_commits_to_every_parameter() -> None:
    doc = genesis_doc([numbered_seed(0)])
    base = parse_genesis(doc).chain_id
    for key, value in [("target_block_time", 3), ("halving_interval", 7), ("max_block_txs", 99)]:
        assert parse_genesis({**doc, key: value}).chain_id != base, key


def test_devnet_well_known_accounts_match_devnet_keys() -> None:
    genesis = load_genesis("devnet")
    assert genesis.params.hrp == DEVNET_HRP
    assert set(genesis.names) == set(DEVNET_ACCOUNTS)
    for name in DEVNET_ACCOUNTS:
        account = address_hash(public_key_of(devnet_seed(name)))
        assert genesis.names[name] == account
        assert encode_address(account, DEVNET_HRP) == devnet_address(name)
    funded = dict(genesis.allocations)
    assert all(
        genesis.names[name] in funded for name in ("treasury", "alice", "bob", "carol", "dave")
    )


def broken(change: dict[str, Any], drop: str | None = None) -> dict[str, Any]:
    doc = {**genesis_doc([numbered_seed(0), numbered_seed(1)]), **change}
    if drop:
        del doc[drop]
    return doc


GOOD = genesis_doc([numbered_seed(0)])
FIRST_ADDRESS = GOOD["allocations"][0]["address"]
TYPO = FIRST_ADDRESS[:-1] + ("q" if FIRST_ADDRESS[-1] != "q" else "p")

MALFORMED: list[tuple[str, Any, str]] = [
    ("top level list", [GOOD], "JSON object"),
    ("missing field", broken({}, drop="hrp"), "missing field 'hrp'"),
    ("unknown field", broken({"colour": "blue"}), "unknown fields: colour"),
    ("wrong type", broken({"genesis_time": "soon"}), "'genesis_time' must be int"),
    ("bool for int", broken({"asert_half_life": True}), "'asert_half_life' must be int"),
    ("zero spacing", broken({"target_block_time": 0}), "'target_block_time' must be positive"),
    ("negative time", broken({"genesis_time": -5}), "'genesis_time' must be positive"),
    (
        "bad address checksum",
        broken({"allocations": [{"address": TYPO, "amount": "1"}]}),
        "allocations[0]",
    ),
    (
        "other network's address",
        broken(
            {"allocations": [{"address": FIRST_ADDRESS.replace("tntk", "ntk", 1), "amount": "1"}]}
        ),
        "allocations[0]",
    ),
    ("bits not hex", broken({"genesis_bits": "xyz"}), "'genesis_bits' must be hex"),
    (
        "bits not canonical",
        broken({"genesis_bits": "22000001"}),
        "'genesis_bits' is not a canonical",
    ),
    ("bits zero", broken({"pow_limit_bits": "0"}), "'pow_limit_bits' is not a canonical"),
    (
        "duplicate allocation",
        broken({"allocations": [GOOD["allocations"][0]] * 2}),
        "allocations[1]: duplicate address",
    ),
    (
        "negative amount",
        broken({"allocations": [{"address": FIRST_ADDRESS, "amount": "-5"}]}),
        "allocations[0].amount",
    ),
    (
        "float amount",
        broken({"allocations": [{"address": FIRST_ADDRESS, "amount": 1.5}]}),
        "allocations[0].amount",
    ),
    (
        "allocation extra key",
        broken({"allocations": [{"address": FIRST_ADDRESS, "amount": "1", "memo": "x"}]}),
        "allocations[0]: expected",
    ),
    ("bad reward", broken({"initial_reward": "lots"}), "initial_reward"),
    ("bad named account", broken({"accounts": {"alice": TYPO}}), "accounts.alice"),
    (
        "over the supply cap",
        broken(
            {
                "allocations": [
                    {"address": GOOD["allocations"][0]["address"], "amount": "9000000000"},
                    {"address": encode_address(bytes(20), "tntk"), "amount": "9000000000"},
                ]
            }
        ),
        "exceed the maximum supply",
    ),
]


@pytest.mark.parametrize(("doc", "names"), [pytest.param(*c[1:], id=c[0]) for c in MALFORMED])
def test_malformed_genesis_file_is_refused(doc: Any, names: str, tmp_path: Path) -> None:
    path = tmp_path / "genesis.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(GenesisError) as info:
        load_genesis(path)
    assert info.value.reason == "bad-genesis"
    assert names in str(info.value)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)  # one line, ready for a user


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "genesis.json"
    path.write_text("{not json")
    with pytest.raises(GenesisError, match="not JSON") as info:
        load_genesis(path)
    assert str(path) in str(info.value)
    path.write_text(json.dumps(broken({}, drop="allocations")))
    with pytest.raises(GenesisError, match="missing field 'allocations'"):
        load_genesis(path)
    with pytest.raises(GenesisError, match="cannot read"):
        load_genesis(tmp_path / "absent.json")


def test_a_custom_genesis_round_trips_through_a_file(tmp_path: Path) -> None:
    doc = genesis_doc(
        [numbered_seed(i) for i in range(3)], "2.5", genesis_bits=f"{target_to_bits(1 << 240):08x}"
    )
    path = tmp_path / "custom.json"
    path.write_text(json.dumps(doc))
    genesis = load_genesis(path)
    assert genesis.chain_id == parse_genesis(doc).chain_id
    assert genesis.supply == 3 * 2_500_000_000
