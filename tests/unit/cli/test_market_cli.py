"""`neuro tx build --kind ...` for every market kind (built, signed, decoded back), `neuro tx bid`,
and `neuro job show|list`, `neuro stake show` against the real RPC methods over a market chain
(the client's calls are answered in-process by `RpcMethods`, no daemon)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio
from typer.testing import CliRunner, Result

from chain.crypto import public_key_of, verify
from chain.devnet_keys import devnet_address, devnet_seed
from chain.genesis import load_genesis
from chain.market_types import (
    Accept,
    AwardEntry,
    Bid,
    Challenge,
    JobAward,
    JobPost,
    LeafClaim,
    Release,
    Respond,
    ResultCommit,
    Service,
    Settle,
    Stake,
    Unstake,
    Vote,
)
from chain.types import Transaction
from cli.main import app
from neurod.mempool import Mempool
from neurod.rpc import RpcApp
from neurod.rpc_methods import RpcMethods
from tests.support.market import (
    ALICE,
    BOB,
    CAROL,
    NTK,
    bid,
    digits_job_spec,
    market_chain,
    mine,
    tx,
)
from wallet.keys import WalletError
from wallet.node_client import RpcClient
from wallet.payload_json import claim_to_json, payload_from_json, payload_to_json
from wallet.txfile import UnsignedTx, build_unsigned

PASSWORD = "pw for tests"
DEVNET = load_genesis("devnet")
JOB = "ab" * 32
ROOT = "cd" * 32
CLAIM = LeafClaim(b"\x01" * 32, b"\x02" * 32, (b"\x03" * 32,), (b"\x04" * 32, b"\x05" * 32), b"\x06" * 32, b"\x07" * 32)


class Neuro:
    """`neuro` in-process against a private NEURO_HOME on devnet, with alice, bob and carol's keys."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env: dict[str, str | None] = {
            "NEURO_HOME": str(home), "NEURO_NETWORK": "devnet", "NEURO_KEYSTORE_LIGHT_KDF": "1",
            "NEURO_PASSWORD": PASSWORD, "NEURO_DATADIR": None, "NEURO_KEYSTORE": None,
            "NEURO_RPC": "http://127.0.0.1:1/", "NEURO_RPC_COOKIE": None, "NEURO_NEW_PASSWORD": None,
        }

    def __call__(self, *args: str) -> Result:
        return CliRunner(env=self.env).invoke(app, list(args))

    def ok(self, *args: str) -> Result:
        result = self(*args)
        assert result.exit_code == 0, result.output
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json").stdout)

    def fails(self, reason: str, *args: str) -> str:
        result = self(*args)
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        line = result.stderr.strip().splitlines()[-1]
        assert line.startswith(f"error ({reason}): "), result.stderr
        return line


@pytest.fixture
def neuro(tmp_path: Path) -> Neuro:
    runner = Neuro(tmp_path / "home")
    for name in ("alice", "bob", "carol"):
        seed = tmp_path / f"{name}.hex"
        seed.write_text(devnet_seed(name).hex())
        runner.ok("wallet", "import", name, "--raw-file", str(seed))
    return runner


def build_and_sign(neuro: Neuro, tmp_path: Path, *args: str, sender: str = "alice") -> tuple[dict[str, Any], Transaction]:
    """(the unsigned document, the signed transaction decoded from the signed file's hex)."""
    unsigned, signed = tmp_path / "unsigned.json", tmp_path / "signed.json"
    neuro.ok("tx", "build", *args, "--from", sender, "--nonce", "3", "--fee", "0.001", "--chain", "devnet",
             "--out", str(unsigned))
    neuro.ok("tx", "sign", str(unsigned), "--out", str(signed))
    doc = json.loads(signed.read_text())
    decoded = Transaction.decode(bytes.fromhex(doc["tx"]))
    assert decoded.txid.hex() == doc["txid"] and decoded.chain_id == DEVNET.chain_id
    assert (decoded.nonce, decoded.fee, decoded.sender) == (3, 10**6, public_key_of(devnet_seed(sender)))
    assert verify(decoded.sender, decoded.signing_message(), decoded.signature)
    shown = neuro.json("tx", "show", str(signed))
    assert shown["signed"] and shown["kind"] == doc["kind"] and shown["from"] == devnet_address(sender)
    return json.loads(unsigned.read_text()), decoded


@pytest.mark.parametrize(
    "args, payload",
    [
        (("--kind", "stake", "--amount", "10"), Stake(10 * NTK)),
        (("--kind", "unstake", "--amount", "2.5"), Unstake(2_500_000_000)),
        (("--kind", "release"), Release()),
        (("--kind", "result-commit", "--job", JOB, "--shard", "1", "--root", ROOT, "--items", "4"),
         ResultCommit(bytes.fromhex(JOB), 1, bytes.fromhex(ROOT), 4)),
        (("--kind", "challenge", "--job", JOB, "--shard", "0", "--index", "3"),
         Challenge(bytes.fromhex(JOB), 0, 3, None)),
        (("--kind", "accept", "--job", JOB), Accept(bytes.fromhex(JOB))),
        (("--kind", "settle", "--job", "0x" + JOB.upper()), Settle(bytes.fromhex(JOB))),
        (("--kind", "vote", "--job", JOB, "--shard", "0", "--verdict", "fraud"), Vote(bytes.fromhex(JOB), 0, True)),
        (("--kind", "vote", "--job", JOB, "--shard", "2", "--verdict", "Honest"), Vote(bytes.fromhex(JOB), 2, False)),
    ],
)
def test_simple_kinds_build_sign_and_decode(neuro: Neuro, tmp_path: Path, args: tuple[str, ...],
                                            payload: Any) -> None:
    doc, signed = build_and_sign(neuro, tmp_path, *args)
    assert signed.payload == payload
    assert doc["type"] == "neuro-unsigned-tx" and doc["kind"] == args[1] and doc["fee"] == "0.001"


def test_job_post_re_encodes_the_spec_canonically(neuro: Neuro, tmp_path: Path) -> None:
    spec = digits_job_spec(8)
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(json.loads(spec), indent=4))  # not canonical on disk
    doc, signed = build_and_sign(
        neuro, tmp_path, "--kind", "job-post", "--spec", str(spec_file), "--shards", "2", "--max-price",
        "1000000", "--bid-blocks", "3", "--deadline-blocks", "20", "--challenge-blocks", "3",
    )
    assert signed.payload == JobPost(Service.GENERATE, spec, 2, 10**6, 3, 20, 3)
    assert doc["spec"] == json.loads(spec) and doc["service"] == "generate"
    _, defaults = build_and_sign(neuro, tmp_path, "--kind", "job-post", "--spec", str(spec_file), "--shards", "1",
                                 "--max-price", "5")
    assert defaults.payload == JobPost(Service.GENERATE, spec, 1, 5, 10, 100, 10)


def test_bid_then_award_carries_the_signed_bid(neuro: Neuro, tmp_path: Path) -> None:
    bid_file = tmp_path / "bid.json"
    neuro.ok("tx", "bid", "--job", JOB, "--price", "500000", "--max-shards", "2", "--expiry", "90",
             "--from", "bob", "--chain", "devnet", "--out", str(bid_file))
    signed_bid = json.loads(bid_file.read_text())
    assert signed_bid["type"] == "neuro-signed-bid" and signed_bid["address"] == devnet_address("bob")
    expected = Bid(DEVNET.chain_id, bytes.fromhex(JOB), public_key_of(BOB), 500_000, 2, 90).signed(BOB)
    assert signed_bid["signature"] == expected.signature.hex() and signed_bid["bid_id"] == expected.bid_id.hex()
    bids = tmp_path / "bids.json"
    bids.write_text(json.dumps([{"bid": signed_bid, "shards": [1, 0]}]))
    _, signed = build_and_sign(neuro, tmp_path, "--kind", "job-award", "--job", JOB, "--bids", str(bids))
    assert signed.payload == JobAward(bytes.fromhex(JOB), (AwardEntry(expected, (0, 1)),))
    # a bid in hex (its encoding) is taken too
    bids.write_text(json.dumps([{"bid": expected.encode().hex(), "shards": [0]}]))
    _, again = build_and_sign(neuro, tmp_path, "--kind", "job-award", "--job", JOB, "--bids", str(bids))
    assert again.payload == JobAward(bytes.fromhex(JOB), (AwardEntry(expected, (0,)),))


def test_claims_for_fraud_proofs_and_responses(neuro: Neuro, tmp_path: Path) -> None:
    claim = tmp_path / "claim.json"
    claim.write_text(json.dumps(claim_to_json(CLAIM)))
    _, proof = build_and_sign(neuro, tmp_path, "--kind", "challenge", "--job", JOB, "--shard", "1", "--index", "5",
                              "--claim", str(claim))
    assert proof.payload == Challenge(bytes.fromhex(JOB), 1, 5, CLAIM)
    _, answer = build_and_sign(neuro, tmp_path, "--kind", "respond", "--job", JOB, "--shard", "1",
                               "--claim", str(claim), sender="bob")
    assert answer.payload == Respond(bytes.fromhex(JOB), 1, CLAIM)


def every_payload() -> list[Any]:
    signed_bid = Bid(DEVNET.chain_id, bytes.fromhex(JOB), public_key_of(BOB), 7, 3, 50).signed(BOB)
    job = bytes.fromhex(JOB)
    return [
        Stake(1), Unstake(10**18), Release(), JobPost(Service.GENERATE, digits_job_spec(8), 2, 9, 3, 20, 3),
        JobAward(job, (AwardEntry(signed_bid, (0, 2)),)), ResultCommit(job, 3, b"\x09" * 32, 17),
        Challenge(job, 1, 4, None), Challenge(job, 1, 4, CLAIM), Respond(job, 0, CLAIM), Accept(job), Settle(job),
        Vote(job, 0, True),
    ]


@pytest.mark.parametrize("payload", every_payload(), ids=lambda p: type(p).__name__)
def test_every_payload_survives_its_json(payload: Any) -> None:
    fields = json.loads(json.dumps(payload_to_json(payload, "tntk")))
    assert payload_from_json(type(payload), fields, "tntk") == payload
    unsigned = build_unsigned(chain_id=DEVNET.chain_id, sender=devnet_address("alice"), fee="0.5", nonce=9,
                              payload=payload)
    assert UnsignedTx.from_json(json.loads(json.dumps(unsigned.to_json()))) == unsigned


def test_derived_fields_are_checked_not_trusted() -> None:
    post, award = every_payload()[3], every_payload()[4]
    fields = payload_to_json(post, "tntk")
    with pytest.raises(WalletError, match="spec_hash"):
        payload_from_json(JobPost, {**fields, "spec_hash": "00" * 32}, "tntk")
    fields = payload_to_json(award, "tntk")
    fields["entries"][0]["bid"]["bid_id"] = "00" * 32
    with pytest.raises(WalletError, match="bid_id"):
        payload_from_json(JobAward, fields, "tntk")
    fields = payload_to_json(award, "tntk")
    fields["entries"][0]["bid"]["unit_price"] = 6  # the signature no longer covers it
    del fields["entries"][0]["bid"]["bid_id"]  # (nor would the id match)
    with pytest.raises(WalletError) as caught:
        payload_from_json(JobAward, fields, "tntk")
    assert caught.value.reason == "bad-bid-signature"


def test_the_cli_names_every_kind() -> None:
    from cli.tx import KIND_OPTIONS, KINDS
    from wallet.payload_json import KIND_TYPES

    assert set(KINDS) == set(KIND_OPTIONS) == set(KIND_TYPES)


def test_transfers_are_built_as_before(neuro: Neuro, tmp_path: Path) -> None:
    out = tmp_path / "unsigned.json"
    neuro.ok("tx", "build", devnet_address("bob"), "1.5", "--from", "alice", "--nonce", "0", "--chain", "devnet",
             "--out", str(out))
    assert set(json.loads(out.read_text())) == {"type", "chain", "from", "to", "amount", "fee", "nonce"}


def test_bad_builds_are_one_line_errors(neuro: Neuro, tmp_path: Path) -> None:
    offline = ("--from", "alice", "--nonce", "0", "--chain", "devnet")
    assert "--amount" in neuro.fails("missing-option", "tx", "build", "--kind", "stake", *offline)
    assert "--amount" in neuro.fails("bad-option", "tx", "build", "--kind", "settle", "--job", JOB, "--amount", "1",
                                     *offline)
    neuro.fails("bad-argument", "tx", "build", devnet_address("bob"), "--kind", "release", *offline)
    neuro.fails("missing-argument", "tx", "build", *offline)
    neuro.fails("bad-kind", "tx", "build", "--kind", "mint", *offline)
    neuro.fails("bad-tx-file", "tx", "build", "--kind", "accept", "--job", "abc", *offline)
    neuro.fails("bad-amount", "tx", "build", "--kind", "stake", "--amount", "0", *offline)
    neuro.fails("bad-tx-file", "tx", "build", "--kind", "vote", "--job", JOB, "--shard", "0", "--verdict", "maybe",
                *offline)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"task": "train"}))
    neuro.fails("bad-job-spec", "tx", "build", "--kind", "job-post", "--spec", str(spec), "--shards", "1",
                "--max-price", "1", *offline)
    spec.write_text(digits_job_spec(4).decode())
    neuro.fails("too-many-shards", "tx", "build", "--kind", "job-post", "--spec", str(spec), "--shards", "5",
                "--max-price", "1", *offline)
    other_job = Bid(DEVNET.chain_id, b"\x01" * 32, public_key_of(BOB), 5, 1, 9).signed(BOB)
    bids = tmp_path / "bids.json"
    bids.write_text(json.dumps([{"bid": other_job.encode().hex(), "shards": [0]}]))
    neuro.fails("bid-wrong-job", "tx", "build", "--kind", "job-award", "--job", JOB, "--bids", str(bids), *offline)
    forged = Bid(DEVNET.chain_id, bytes.fromhex(JOB), public_key_of(BOB), 5, 1, 9).signed(CAROL)
    bids.write_text(json.dumps([{"bid": forged.encode().hex(), "shards": [0]}]))
    neuro.fails("bad-bid-signature", "tx", "build", "--kind", "job-award", "--job", JOB, "--bids", str(bids),
                *offline)


# ---- reads through the RPC methods ------------------------------------------------------------


class StubP2P:
    peer_id = "stub"

    def peers(self) -> list[Any]:
        return []

    def listen_addrs(self) -> list[str]:
        return []

    async def publish_txs(self, txs: list[bytes]) -> None:
        await trio.lowlevel.checkpoint()


class StubNode:
    def __init__(self, chain: Any) -> None:
        self.chain = chain
        self.mempool = Mempool(chain, chain.chain_id)
        self.p2p = StubP2P()
        self.miner = None
        self.store_read_errors = 0

    async def submit_transaction(self, tx: Transaction, encoded: bytes) -> bytes:
        return self.mempool.add(tx, 0.0, encoded=encoded)


@pytest.fixture
def daemon(monkeypatch: pytest.MonkeyPatch) -> str:
    """The id of a job on a market chain: bob staked, alice posted a job and awarded bob one of its two shards;
    every RPC call of the CLI is answered by `RpcMethods` over it."""
    chain = market_chain()
    mine(chain, tx(chain, BOB, Stake(1000 * NTK)))
    post = tx(chain, ALICE, JobPost(Service.GENERATE, digits_job_spec(8), 2, 10**6, 3, 20, 3))
    mine(chain, post)
    award = JobAward(post.txid, (AwardEntry(bid(chain, BOB, post.txid, 5 * 10**5, 1), (0,)),))
    mine(chain, tx(chain, ALICE, award))
    rpc_app = RpcApp(RpcMethods(StubNode(chain)).table(), "__cookie__:x", lambda: b"")  # type: ignore[arg-type]

    def call(self: RpcClient, method: str, **params: Any) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
        return self._result(method, trio.run(rpc_app.handle, body))

    monkeypatch.setattr(RpcClient, "call", call)
    return post.txid.hex()


@pytest.mark.parametrize("command", [("job", "list"), ("job", "show"), ("stake", "show"), ("tx", "bid")])
def test_help(neuro: Neuro, command: tuple[str, ...]) -> None:
    assert "Usage" in neuro.ok(*command, "--help").stdout


def test_job_and_stake_reads(neuro: Neuro, daemon: str) -> None:
    job_id = daemon
    jobs = neuro.json("job", "list")
    assert [j["job"] for j in jobs] == [job_id] and jobs[0]["client"] == devnet_address("alice")
    assert neuro.json("job", "list", "--worker", "bob", "--status", "open")[0]["job"] == job_id
    assert neuro.json("job", "list", "--client", "bob") == []
    assert neuro.json("job", "list", "--status", "closed") == []
    job = neuro.json("job", "show", job_id)
    assert [s["status"] for s in job["shards"]] == ["assigned", "open"]
    assert job["shards"][0]["worker"] == devnet_address("bob")
    shown = neuro.ok("job", "show", job_id).stdout
    assert "assigned" in shown and devnet_address("bob") in shown
    assert job_id[:16] in neuro.ok("job", "list").stdout
    stake = neuro.json("stake", "show", "bob")
    assert stake["bonded_ntk"] == "1000" and stake["locked"] > 0 and stake["meets_min_stake"]
    assert neuro.json("stake", "show")["address"] == devnet_address("alice")  # the default key
    assert "bonded" in neuro.ok("stake", "show", devnet_address("bob")).stdout
    assert "job-post" in neuro.ok("chain", "tx", job_id).stdout
    assert "job-award" in neuro.ok("chain", "block", "3").stdout
    neuro.fails("unknown-job", "job", "show", "00" * 32)
    neuro.fails("bad-job-id", "job", "show", "xyz")
    neuro.fails("bad-status", "job", "list", "--status", "pending")


def test_build_online_then_send_a_market_tx(neuro: Neuro, daemon: str, tmp_path: Path) -> None:
    unsigned, signed = tmp_path / "u.json", tmp_path / "s.json"
    neuro.ok("tx", "build", "--kind", "stake", "--amount", "5", "--from", "carol", "--out", str(unsigned))
    assert json.loads(unsigned.read_text())["nonce"] == 0  # carol's pending nonce, from the daemon
    neuro.ok("tx", "sign", str(unsigned), "--out", str(signed))
    sent = neuro.json("tx", "send", str(signed))
    assert sent["status"] == "pending" and sent["kind"] == "stake" and sent["amount"] == "5"
    assert "stake" in neuro.ok("tx", "show", str(unsigned)).stdout
    assert "bonded" in neuro.json("wallet", "balance", "carol")  # account_get carries stake fields


def test_empty_chain_lists_no_jobs(neuro: Neuro, monkeypatch: pytest.MonkeyPatch) -> None:
    rpc_app = RpcApp(RpcMethods(StubNode(market_chain())).table(), "__cookie__:x", lambda: b"")  # type: ignore[arg-type]

    def call(self: RpcClient, method: str, **params: Any) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
        return self._result(method, trio.run(rpc_app.handle, body))

    monkeypatch.setattr(RpcClient, "call", call)
    assert neuro.ok("job", "list", "--json").stdout.strip() == "[]"


def test_wallet_history_shows_market_events_with_their_direction(neuro: Neuro, daemon: str) -> None:
    """Issue 16: the escrow alice locked for her job is a row of her history, going out, beside her
    transactions; bob's stake moves inside his account (bonded, then locked for the shard)."""
    alice = neuro.json("wallet", "history", "alice")
    escrow = next(r for r in alice if r["kind"] == "market")
    assert (escrow["event"], escrow["note"], escrow["direction"], escrow["job"]) == ("lock", "escrow", "out", daemon)
    assert {r["kind"] for r in alice} >= {"job-post", "job-award", "market"}
    shown = neuro.ok("wallet", "history", "alice").stdout
    row = next(line for line in shown.splitlines() if "market: lock (escrow)" in line)
    assert " out " in row and f"{escrow['amount_ntk']} NTK" in row and f"job {daemon[:16]}" in row
    bob = {(r["event"], r["note"]): r["direction"] for r in neuro.json("wallet", "history", "bob") if r["kind"] == "market"}
    assert bob == {("bond", ""): "-", ("lock", "stake"): "-"}
