"""Small files in batches (`read-files`): the wire and the server's caps, a dataset of many small
files fetched from two sources in a few requests, a source lying about one file of a batch, a
server that predates read-files (the fetcher falls back to a read per file and probes it once),
and resume (a small file is there whole or not at all). Fetches run against in-memory servers
(`FakeHost` of test_p2p_artifacts)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import cast

import pytest
import trio
import trio.testing

from neurod.artifact_backend import StoreArtifacts
from neurod.artifact_store import ArtifactStore
from p2p.artifact_fetch import STREAMS_PER_SOURCE, ArtifactFetch, ReadFilesSupport
from p2p.artifacts import (
    MAX_READ_FILES,
    MAX_READ_FILES_BYTES,
    PIECE_SIZE,
    ArtifactServer,
    ReadFilesRequest,
    Refused,
    decode_request,
    encode_request,
    file_frames,
)
from p2p.errors import WireError
from p2p.host import Host
from p2p.scoring import Offence, Rate
from p2p.wire import _pack, frame
from tests.support.artifacts import random_artifact
from tests.unit.p2p.nodes import run
from tests.unit.p2p.test_p2p_artifacts import FakeHost, _explain, _feed, _fetch, _reader, _store

SMALL = 300  # files of a dataset shard in these tests (a real one: ~500 of a few KB)
SIZE = 400


def _small_sources(tmp_path: Path, names: tuple[str, ...], *, n: int = SMALL) -> tuple[bytes, list[bytes], FakeHost]:
    """An artifact of `n` small random files held by every source named: its root, its file
    hashes in manifest order, and a FakeHost serving it."""
    root = random_artifact(tmp_path / "art", [SIZE] * n)
    stores = {}
    for name in names:
        stores[name] = _store(tmp_path, name)
        stores[name].put(tmp_path / "art")
    hashes = [f.hash for f in stores[names[0]].manifest(root).files]
    return root, hashes, FakeHost(stores)


def _server_store(host: FakeHost, source: str) -> ArtifactStore:
    backend = host.servers[source].backend
    assert isinstance(backend, StoreArtifacts)
    return backend.store


def _asked(host: FakeHost, source: str) -> list[bytes]:
    """Every file `source` was asked for in read-files requests, in order."""
    return [h for peer, files in host.file_reads if peer == source for h in files]


class OneBadFile(StoreArtifacts):
    """Serves every file truly but one, which it serves with its first byte flipped."""

    def __init__(self, store: ArtifactStore, root: bytes, scratch: Path, bad: bytes) -> None:
        super().__init__(store)
        self.bad = scratch / bad.hex()
        found = super().file_path(root, bad)
        assert found is not None
        data = bytearray(found[0].read_bytes())
        data[0] ^= 0xFF
        scratch.mkdir(parents=True, exist_ok=True)
        self.bad.write_bytes(data)

    def file_path(self, root: bytes, file_hash: bytes) -> tuple[Path, int] | None:
        found = super().file_path(root, file_hash)
        if found is None or file_hash.hex() != self.bad.name:
            return found
        return self.bad, found[1]


# --------------------------------------------------------------------------- wire and server


def test_read_files_request_round_trips_and_rejects_bad_lists() -> None:
    root = b"r" * 32
    hashes = tuple(bytes([i]) * 32 for i in range(3))
    assert decode_request(encode_request(ReadFilesRequest(root, hashes))) == ReadFilesRequest(root, hashes)
    many = tuple(i.to_bytes(32, "big") for i in range(MAX_READ_FILES + 1))
    for files, reason in (((), "bad-count"), (many, "bad-count"), ((hashes[0], hashes[0]), "bad-shape"),
                          ((b"short",), "bad-hash")):
        with pytest.raises(WireError, match=reason):
            decode_request(encode_request(ReadFilesRequest(root, files)))


def test_file_reader_takes_the_file_asked_for_and_names_what_else_came(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"a" * 300)
    (tmp_path / "b").write_bytes(b"")
    ha, hb = b"A" * 32, b"B" * 32
    built = b"".join(file_frames([(ha, tmp_path / "a", 300), (hb, tmp_path / "b", 0)]))
    assert built == frame(_pack(["file", ha, b"a" * 300])) + frame(_pack(["file", hb, b""]))

    async def body() -> None:
        reader = _reader(built, chunk=50)
        assert (await reader.file(ha, 300), await reader.file(hb, 0)) == (b"a" * 300, b"")
        with pytest.raises(WireError, match="bad-file"):
            await _reader(built).file(hb, 300)  # another file than the one asked for next
        with pytest.raises(WireError, match="bad-file"):
            await _reader(built).file(ha, 299)
        with pytest.raises(WireError, match="unexpected-response"):
            await _reader(frame(_pack(["piece", 0, b"a" * 300]))).file(ha, 300)
        with pytest.raises(Refused, match="unknown-request"):
            await _reader(frame(_pack(["error", "unknown-request"]))).file(ha, 300)

    trio.run(body)


def test_server_enforces_the_read_files_caps_and_counts_a_request_once(tmp_path: Path) -> None:
    """A read-files request over a cap (count, bytes, a file of several pieces, a file twice)
    is a bad request, answered with its reason and penalised; a file the server lacks is
    `unknown-file` without blame; one up to the caps is answered in order, counted once against
    the request rate; an unknown kind of request is answered `unknown-request` without blame."""
    sizes = [PIECE_SIZE] * 5 + [PIECE_SIZE + 1, 100]
    root = random_artifact(tmp_path / "art", sizes)
    store = _store(tmp_path, "server")
    store.put(tmp_path / "art")
    files = [f.hash for f in store.manifest(root).files]
    penalties: list[tuple[str, Offence]] = []
    allowed: list[str] = []

    def allow(peer: str, kind: str) -> bool:
        allowed.append(kind)
        return True

    server = ArtifactServer(StoreArtifacts(store), lambda peer, offence, _: penalties.append((peer, offence)),
                            allow, 8, Rate(per_second=2.0**40, burst=2.0**40))

    async def ask(body: bytes) -> bytes:
        out = bytearray()

        async def write(chunk: bytes) -> None:
            out.extend(chunk)

        await server.handle("peer", _feed(frame(body)), write)
        return bytes(out)

    def read_files(hashes: list[bytes]) -> bytes:
        return encode_request(ReadFilesRequest(root, tuple(hashes)))

    async def body() -> None:
        full = await ask(read_files(files[:4]))  # 4 MiB: the byte cap exactly
        assert sum(sizes[:4]) == MAX_READ_FILES_BYTES
        expected = b"".join(file_frames([(h, store.blob_path(h), PIECE_SIZE) for h in files[:4]]))
        assert full == expected and penalties == [] and allowed == ["artifacts"]
        too_many = [i.to_bytes(32, "big") for i in range(MAX_READ_FILES + 1)]
        bad = {
            "too-many-bytes": read_files(files[:5]),
            "not-one-piece": read_files([files[6], files[5]]),
            "bad-count": _pack(["read-files", root, too_many]),
            "bad-shape": _pack(["read-files", root, [files[6], files[6]]]),
        }
        for reason, request in bad.items():
            penalties.clear()
            assert await ask(request) == frame(_pack(["error", reason])), reason
            assert penalties == [("peer", Offence.BAD_REQUEST)], reason
        penalties.clear()
        assert await ask(read_files([files[6], b"x" * 32])) == frame(_pack(["error", "unknown-file"]))
        assert await ask(_pack(["read-everything", root])) == frame(_pack(["error", "unknown-request"]))
        assert penalties == []

    trio.run(body)


def test_server_paces_read_files_bytes_with_the_peer_bucket(tmp_path: Path) -> None:
    root = random_artifact(tmp_path / "art", [PIECE_SIZE] * 4)
    store = _store(tmp_path, "server")
    store.put(tmp_path / "art")
    files = tuple(f.hash for f in store.manifest(root).files)
    rate = Rate(per_second=float(PIECE_SIZE), burst=PIECE_SIZE + 1024.0)  # one file at once, then 1/s
    server = ArtifactServer(StoreArtifacts(store), lambda *_: None, lambda *_: True, 8, rate)
    got = bytearray()

    async def write(chunk: bytes) -> None:
        got.extend(chunk)

    async def body() -> None:
        started = trio.current_time()
        await server.handle("peer", _feed(frame(encode_request(ReadFilesRequest(root, files)))), write)
        assert trio.current_time() - started >= 2.9  # 4 files: the first from the burst, then 1 per second
        assert bytes(got) == b"".join(file_frames([(h, store.blob_path(h), PIECE_SIZE) for h in files]))

    trio.run(body, clock=trio.testing.MockClock(autojump_threshold=0))


# --------------------------------------------------------------------------- fetching


def test_many_small_files_come_from_both_sources_in_a_few_requests(tmp_path: Path) -> None:
    """300 one-piece files: read-files batches, spread over both sources' streams (a share of
    ceil(300 / (2 sources x 6 streams)) = 25 files each), instead of a request per file."""
    root, hashes, host = _small_sources(tmp_path, ("a", "b"))
    progress, penalties = _fetch(tmp_path, host, root, ["a", "b"])
    assert progress.state == "done", _explain(progress)
    assert penalties == [] and progress.dropped == {}, _explain(progress)
    share = -(-SMALL // (2 * STREAMS_PER_SOURCE))
    assert host.reads == [], "no small file read alone"
    assert [len(files) for _, files in host.file_reads] == [share] * (SMALL // share)
    assert {peer for peer, _ in host.file_reads} == {"a", "b"}
    assert sorted(_asked(host, "a") + _asked(host, "b")) == sorted(hashes), "each file asked for once"
    assert progress.requests == 1 + SMALL // share  # the manifest, then 12 batches (was 301 requests)
    assert progress.done == progress.total == SMALL * SIZE
    _store(tmp_path, "fetcher").verify(root)


def test_source_lying_about_one_file_of_a_batch_is_penalised_and_the_file_comes_from_another(tmp_path: Path) -> None:
    """The liar serves one file of its batch off its hash: the files of the batch before it are
    kept (each was checked), the liar is penalised and dropped, and the honest source (busy until
    then) serves the bad file and the rest."""
    root, hashes, host = _small_sources(tmp_path, ("liar", "honest"))
    bad = hashes[5]
    host.servers["liar"].backend = OneBadFile(_server_store(host, "liar"), root, tmp_path / "bad", bad)
    progress, penalties = _fetch(tmp_path, host, root, ["liar", "honest"], busy_until_dropped=("honest", "liar"))
    assert progress.state == "done", _explain(progress)
    assert penalties == [("liar", Offence.BAD_ARTIFACT)], _explain(progress)
    assert list(progress.dropped) == ["liar"] and "fails its hash" in progress.dropped["liar"], _explain(progress)
    batch = next(files for peer, files in host.file_reads if peer == "liar" and bad in files)
    assert len(batch) > 1
    honest = _asked(host, "honest")
    assert bad in honest
    assert not set(batch[:batch.index(bad)]) & set(honest), "files checked before the bad one are kept"
    assert progress.done == progress.total
    _store(tmp_path, "fetcher").verify(root)


def test_old_server_answering_unknown_request_is_read_file_by_file_and_probed_once(tmp_path: Path) -> None:
    """A server that predates read-files answers it `unknown-request` (and charges for it): the
    fetch falls back to a read per file for that source, without blame, while the new source
    takes batches; one probe only, however many streams, and none in the node's next fetch."""
    root, hashes, host = _small_sources(tmp_path, ("old", "new"))
    host.old.add("old")
    penalties: list[tuple[str, Offence]] = []
    refusals: list[list[str]] = []

    async def body() -> None:
        support = ReadFilesSupport()  # the node's: its fetches share it
        # the second fetch: the node's next one, from the old server alone, into another store
        for sources, store in ((["old", "new"], "fetcher"), (["old"], "second")):
            fetch = ArtifactFetch(
                cast(Host, host), "/test/artifact/1", StoreArtifacts(_store(tmp_path, store)),
                lambda peer, offence, _: penalties.append((peer, offence)), root, 10.0, support=support,
            )
            progress = await fetch.run(sources)
            assert progress.state == "done" and progress.dropped == {}, _explain(progress)
            refusals.append(list(host.old_refusals))
            if store == "fetcher":
                singles = [f for peer, f, _, _ in host.reads if peer == "old"]
                assert singles and _asked(host, "new"), "both sources used"
                assert sorted(singles + _asked(host, "new")) == sorted(hashes)

    run(body, limit=60)
    assert penalties == []
    assert refusals == [["old"], ["old"]], "one probe, however many streams; none in the next fetch"
    _store(tmp_path, "fetcher").verify(root)
    _store(tmp_path, "second").verify(root)


def test_small_files_resume_whole_or_not_at_all(tmp_path: Path) -> None:
    """A fetch killed while writing small files leaves some whole and one cut short: the whole
    ones count as resumed, the others are asked for again."""
    root, hashes, host = _small_sources(tmp_path, ("a",), n=40)
    manifest = _server_store(host, "a").manifest(root)
    folder = StoreArtifacts(_store(tmp_path, "fetcher")).partial_dir(root)
    for entry in manifest.files[:10]:
        (folder / f"{entry.hash.hex()}.part").write_bytes((tmp_path / "art" / entry.path).read_bytes())
    cut = manifest.files[10]
    (folder / f"{cut.hash.hex()}.part").write_bytes((tmp_path / "art" / cut.path).read_bytes()[:SIZE // 2])
    os.truncate(folder / f"{cut.hash.hex()}.part", SIZE)  # its full size, the rest zeros
    progress, penalties = _fetch(tmp_path, host, root, ["a"])
    assert progress.state == "done" and penalties == [], _explain(progress)
    assert progress.resumed == 10 * SIZE and progress.done == progress.total == 40 * SIZE
    assert sorted(_asked(host, "a")) == sorted(hashes[10:])
    _store(tmp_path, "fetcher").verify(root)
    assert not folder.exists()
