"""Pure tests of penalties, decay, thresholds, ban persistence and token buckets."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from chain.errors import RejectKind
from p2p.errors import ConfigError
from p2p.scoring import BanList, Offence, PeerScores, Rate, RateLimiter, TokenBucket, penalty


def test_penalties_follow_the_kind_of_rejection() -> None:
    assert penalty(RejectKind.MALFORMED) >= 50 and penalty(RejectKind.INVALID) >= 50
    assert penalty(Offence.OVERSIZE) >= 50
    assert 0 < penalty(Offence.RATE_LIMIT) < penalty(RejectKind.INVALID)
    for harmless in (RejectKind.STALE, RejectKind.MISSING, RejectKind.LOCAL):
        assert penalty(harmless) == 0


def test_scores_cross_the_threshold_and_decay() -> None:
    scores = PeerScores(threshold=100, half_life=60)
    invalid = penalty(RejectKind.INVALID)
    assert not scores.add("p", invalid, now=0)
    assert scores.score("p", now=0) == -invalid
    assert scores.points("p", now=60) == pytest.approx(invalid / 2)
    assert scores.points("p", now=120) == pytest.approx(invalid / 4)
    # two invalid payloads in quick succession ban; the same two an hour apart do not
    assert scores.add("p", invalid, now=1)
    assert not scores.add("q", invalid, now=0) and not scores.add("q", invalid, now=3600)
    assert not scores.add("r", 0, now=0) and scores.points("r", now=0) == 0


def test_prune_forgets_peers_that_recovered() -> None:
    scores = PeerScores(threshold=100, half_life=1)
    scores.add("old", 10, now=0)
    scores.add("new", 10, now=100)
    scores.prune(now=100)
    assert scores.points("old", now=100) == 0 and scores.points("new", now=100) == 10


def test_bans_survive_a_reload_and_expire(tmp_path: Path) -> None:
    path = tmp_path / "bans.json"
    bans = BanList(path)
    bans.ban("evil", until=1000)
    bans.ban("brief", until=10)
    bans.ban("evil", until=500)  # a shorter ban never shortens a longer one
    reloaded = BanList(path)
    reloaded.load(now=100)
    assert reloaded.is_banned("evil", now=999) and not reloaded.is_banned("evil", now=1000)
    assert not reloaded.is_banned("brief", now=5)  # expired before the reload: dropped
    assert reloaded.banned(now=100) == {"evil": 1000}
    reloaded.unban("evil")
    again = BanList(path)
    again.load(now=100)
    assert again.banned(now=100) == {}
    assert [p.name for p in tmp_path.iterdir()] == ["bans.json"]  # no temp files left


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"\xff\xfe", b"[1, 2]", b'"bans"', b'{"bans": [1]}', b'{"bans": {"p": "soon"}}',
     b'{"bans": {"p": true}}', b"{}", b"[" * 100_000],
)
def test_a_ban_file_that_is_not_a_ban_list_is_set_aside(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "bans.json"
    path.write_bytes(content)
    bans = BanList(path)
    with caplog.at_level(logging.WARNING, logger="neuro.p2p"):
        bans.load(now=0)
    assert bans.banned(now=0) == {}
    assert (tmp_path / "bans.json.bad").read_bytes() == content
    assert json.loads(path.read_text()) == {"bans": {}}  # replaced by an empty list
    [warning] = caplog.records
    assert "set aside as bans.json.bad" in warning.getMessage() and "\n" not in warning.getMessage()
    bans.ban("evil", until=100)  # and the node goes on banning
    assert BanList(path).banned(now=0) == {} and _reloaded(path).banned(now=0) == {"evil": 100}


def _reloaded(path: Path) -> BanList:
    bans = BanList(path)
    bans.load(now=0)
    return bans


def test_an_unreadable_ban_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bans.json"
    path.mkdir()
    with pytest.raises(ConfigError) as err:
        BanList(path).load(now=0)
    assert err.value.reason == "bad-ban-file" and "cannot be read" in str(err.value)
    assert path.is_dir()


def test_token_bucket_allows_bursts_then_the_sustained_rate() -> None:
    bucket = TokenBucket(rate=2, burst=3)
    assert [bucket.take(now=0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(now=0.5) and not bucket.take(now=0.5)
    limiter = RateLimiter({"blocks": Rate(per_second=1, burst=1)})
    assert limiter.allow("a", "blocks", now=0) and not limiter.allow("a", "blocks", now=0)
    assert limiter.allow("b", "blocks", now=0)  # buckets are per peer
    limiter.forget("a")
    assert limiter.allow("a", "blocks", now=0)
