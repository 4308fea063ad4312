"""The artifact protocol between real hosts on 127.0.0.1: wire checks, a fetch from several
sources, lying sources (a bad piece, a lying piece list, a manifest off its root) dropped and
penalised while the fetch completes from the honest one, resume after a cut, a source that
closes the connection mid-transfer, and the policy. Then the fetcher's handling of failing
sources, against in-memory servers (`FakeHost`) that a test cuts short, stalls or disconnects
at a chosen piece: verified pieces survive a source's drop, a departure is no offence."""

from __future__ import annotations

import shutil
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import pytest
import trio

from neurod.artifact_backend import StoreArtifacts
from neurod.artifact_store import ArtifactStore
from p2p.artifact_fetch import RETRIES, WRITE_BATCH, ArtifactFetch, FetchProgress, ReadFilesSupport
from p2p.artifacts import (
    MAX_READ_PIECES,
    PIECE_SIZE,
    ArtifactServer,
    ManifestRequest,
    PieceReader,
    ReadFilesRequest,
    ReadRequest,
    Refused,
    decode_piece,
    decode_request,
    encode_request,
    error_frame,
    piece_frames,
    piece_hashes,
)
from p2p.errors import RequestFailed, WireError
from p2p.host import Host
from p2p.node import P2P
from p2p.scoring import Offence, Rate
from p2p.wire import FRAME_PREFIX, ReadFn, read_frame
from tests.unit.p2p.nodes import fast_config, run
from tests.unit.p2p.toychain import ToyChain
from worker.artifact import ItemDraft, write_manifest

BIG = 20 * PIECE_SIZE + 12345  # 21 pieces, the last one short: three read jobs of a source


def make_artifact(folder: Path, name: str, big: int = BIG) -> bytes:
    """One multi-piece file, two small ones (one shared by every artifact made here)."""
    folder.mkdir(parents=True)
    (folder / "data.bin").write_bytes(bytes((i * 7 + len(name)) % 251 for i in range(256)) * (big // 256 + 1))
    with open(folder / "data.bin", "r+b") as f:
        f.truncate(big)
    (folder / "label.json").write_bytes(name.encode() * 10)
    (folder / "spec.json").write_bytes(b"shared")
    drafts = [ItemDraft(0, ("data.bin",), labels=b"{}"), ItemDraft(1, ("label.json",), labels=b"{}")]
    return write_manifest(folder, "test", drafts, {"name": name}).root


class LyingArtifacts(StoreArtifacts):
    """Serves a copy of every file with one byte of each piece flipped; its piece lists are
    computed from that copy (a consistent lie only the whole-file check catches) unless a test
    seeds its server with the true lists (then every piece fails its own list)."""

    def __init__(self, store: ArtifactStore, scratch: Path, *, small_too: bool) -> None:
        super().__init__(store)
        self.scratch = scratch
        self.small_too = small_too
        self._lock = threading.Lock()  # file_path runs in several worker threads at once
        scratch.mkdir(parents=True, exist_ok=True)

    def file_path(self, root: bytes, file_hash: bytes) -> tuple[Path, int] | None:
        found = super().file_path(root, file_hash)
        if found is None:
            return None
        path, size = found
        if size <= PIECE_SIZE and not self.small_too:  # the lie is in the big file only
            return found
        bad = self.scratch / file_hash.hex()
        with self._lock:
            if not bad.exists():
                self._corrupt(path, bad, size)
        return bad, size

    @staticmethod
    def _corrupt(path: Path, bad: Path, size: int) -> None:
        shutil.copyfile(path, bad)
        with open(bad, "r+b") as f:
            for offset in range(0, size, PIECE_SIZE):
                f.seek(offset)
                byte = f.read(1)
                f.seek(offset)
                f.write(bytes([byte[0] ^ 0xFF]))


class SlowArtifacts(StoreArtifacts):
    def file_path(self, root: bytes, file_hash: bytes) -> tuple[Path, int] | None:
        import time

        time.sleep(0.5)  # in a worker thread: lets another source answer first
        return super().file_path(root, file_hash)


def _node(tmp: Path, name: str, chain: ToyChain, backend: StoreArtifacts, **overrides: Any) -> P2P:
    return P2P(fast_config(tmp / name, **overrides), chain, artifacts=backend)


async def _wait(progress: FetchProgress, limit: float = 30.0) -> FetchProgress:
    with trio.fail_after(limit):
        while progress.state not in ("done", "failed"):
            await progress.changed.wait()
    return progress


def _store(tmp: Path, name: str) -> ArtifactStore:
    return ArtifactStore(tmp / name / "artifacts")


def _artifact_penalties(node: P2P) -> list[tuple[str, object, str]]:
    """The penalties `node`'s artifact fetches deal from now on (other layers left out: the sync
    layer may blame a peer for a status request cut by the same disconnect)."""
    assert node.artifacts is not None
    dealt: list[tuple[str, object, str]] = []
    inner = node.artifacts._penalise

    def penalise(peer: str, offence: Offence, detail: str) -> None:
        dealt.append((peer, offence, detail))
        inner(peer, offence, detail)

    node.artifacts._penalise = penalise
    return dealt


def _explain(progress: FetchProgress) -> str:
    """An assertion message: why a fetch ended as it did (inside or outside `trio.run`)."""
    try:
        now = trio.current_time()
    except RuntimeError:
        now = progress.finished or progress.started
    return f"reason={progress.reason!r} error={progress.error!r} {progress.to_json(now)}"


def test_wire_requests_round_trip_and_reject_bad_counts() -> None:
    root, file_hash = b"r" * 32, b"f" * 32
    for request in (ManifestRequest(root), ReadRequest(root, file_hash, 3, MAX_READ_PIECES)):
        assert decode_request(encode_request(request)) == request
    with pytest.raises(WireError, match="bad-count"):
        decode_request(encode_request(ReadRequest(root, file_hash, 0, MAX_READ_PIECES + 1)))
    with pytest.raises(WireError, match="bad-hash"):
        decode_request(encode_request(ManifestRequest(b"short")))


def test_piece_frame_must_be_the_piece_asked_for() -> None:
    from p2p.wire import _pack

    with pytest.raises(WireError, match="bad-piece"):
        decode_piece(_pack(["piece", 2, b"x" * 10]), 1, 10)
    with pytest.raises(WireError, match="bad-piece"):
        decode_piece(_pack(["piece", 1, b"x" * 9]), 1, 10)
    assert decode_piece(_pack(["piece", 1, b"x" * 10]), 1, 10) == b"x" * 10


def _reader(data: bytes, chunk: int = 7) -> PieceReader:
    """A PieceReader over `data`, handed out `chunk` bytes per read (frames split anywhere)."""
    view = memoryview(data)

    async def read(n: int) -> bytes:
        nonlocal view
        out, view = bytes(view[:min(n, chunk)]), view[min(n, chunk):]
        return out

    return PieceReader(read)


def _piece(index: int, data: bytes) -> bytes:
    from p2p.wire import _pack, frame

    return frame(_pack(["piece", index, data]))


def test_piece_reader_takes_exactly_the_canonical_piece_frames(tmp_path: Path) -> None:
    """The fast reader compares headers only; it must accept what decode_piece accepts (the
    frames the server builds included) and reject, with decode_piece's reason, what it rejects."""
    from p2p.wire import _pack, frame

    async def body() -> None:
        for index, length in ((0, 0), (1, 10), (127, 255), (128, 256), (70_000, 65_536), (3, PIECE_SIZE)):
            data = bytes(range(256)) * (length // 256) + b"z" * (length % 256)
            assert await _reader(_piece(index, data), chunk=65_536).piece(index, length) == data
        (tmp_path / "f").write_bytes(b"a" * PIECE_SIZE + b"b" * 5)
        built = b"".join(piece_frames(tmp_path / "f", 0, 2, PIECE_SIZE + 5))
        assert built == _piece(0, b"a" * PIECE_SIZE) + _piece(1, b"b" * 5)
        reader = _reader(built, chunk=100_000)
        assert (await reader.piece(0, PIECE_SIZE), await reader.piece(1, 5)) == (b"a" * PIECE_SIZE, b"b" * 5)
        bad = {
            "bad-piece": [_piece(2, b"x" * 10), _piece(1, b"x" * 9)],
            "non-canonical": [frame(b"\x93\xa5piece\xcc\x01\xc4\x0a" + b"x" * 10)],  # index as uint8
            "unexpected-response": [frame(_pack(["pieces", 1, b"x" * 10]))],
            "oversize": [(PIECE_SIZE + 65).to_bytes(4, "big")],
            "truncated": [_piece(1, b"x" * 10)[:-1]],
        }
        for reason, frames in bad.items():
            for data in frames:
                with pytest.raises(WireError, match=reason):
                    await _reader(data).piece(1, 10)
        with pytest.raises(Refused, match="busy"):
            await _reader(frame(_pack(["error", "busy"]))).piece(1, 10)

    trio.run(body)


def _fetch_case(tmp_path: Path, liar_kind: str | None, *, slow_honest: bool = False) -> None:
    """Serve an artifact from an honest node (and a liar), fetch it from both, check the result."""
    root = make_artifact(tmp_path / "art", "one")

    async def body() -> None:
        chain = ToyChain()
        honest_store = _store(tmp_path, "honest")
        honest_store.put(tmp_path / "art")
        honest_backend = (SlowArtifacts if slow_honest else StoreArtifacts)(honest_store)
        fetch_store = _store(tmp_path, "fetcher")
        async with trio.open_nursery() as nursery:
            honest = _node(tmp_path, "honest", chain, honest_backend)
            fetcher = _node(tmp_path, "fetcher", chain, StoreArtifacts(fetch_store))
            await nursery.start(honest.run)
            await nursery.start(fetcher.run)
            sources = [honest.listen_addrs()[0]]
            liar = None
            if liar_kind is not None:
                liar_store = _store(tmp_path, "liar")
                liar_store.put(tmp_path / "art")
                liar_backend = LyingArtifacts(liar_store, tmp_path / "bad", small_too=liar_kind == "bad-piece")
                liar = _node(tmp_path, "liar", chain, liar_backend)
                if liar_kind == "bad-piece":  # its lists are the true ones: pieces fail them
                    data_hash = next(f.hash for f in liar_store.manifest(root).files if f.path == "data.bin")
                    true = piece_hashes(liar_store.blob_path(data_hash), BIG)
                    assert liar._artifact_server is not None
                    liar._artifact_server._lists[data_hash] = true
                await nursery.start(liar.run)
                sources.insert(0, liar.listen_addrs()[0])
            if liar_kind is not None:
                # the liar alone first: with the honest node beside it, whichever answers first
                # wins, and a liar never asked is never caught (a race this test must not depend on)
                alone = await _wait(fetcher.fetch_artifact(root, sources[:1]))
                assert (alone.state, alone.reason) == ("failed", "no-sources-left")
                assert liar is not None
                caught = {"bad-list": "piece list", "bad-piece": "fails its hash"}[liar_kind]
                assert caught in alone.dropped[liar.peer_id], alone.dropped
                if liar_kind == "bad-piece":
                    # one penalty per bad answer: a liar with several streams open is banned outright
                    assert fetcher.is_banned(liar.peer_id) or \
                        fetcher.scores.points(liar.peer_id, trio.current_time()) > 50
                    sources = sources[1:] + sources[:1]  # the honest node and the liar, together
                else:
                    sources = sources[1:]
            progress = await _wait(fetcher.fetch_artifact(root, sources))
            assert progress.state == "done", progress.to_json(trio.current_time())
            assert fetch_store.has(root)
            fetch_store.verify(root)
            assert progress.done == progress.total >= BIG  # small files a first try stored are not fetched again
            if liar is not None:
                assert honest.peer_id not in progress.dropped
            assert fetcher.scores.points(honest.peer_id, trio.current_time()) == 0
            assert not any((fetch_store.path / "partial").iterdir())
            nursery.cancel_scope.cancel()

    run(body, limit=60)


def test_fetch_from_one_source_stores_the_verified_artifact(tmp_path: Path) -> None:
    _fetch_case(tmp_path, None)


def test_source_serving_a_bad_piece_is_penalised_and_dropped(tmp_path: Path) -> None:
    _fetch_case(tmp_path, "bad-piece")


def test_source_with_a_lying_piece_list_is_caught_by_the_whole_file_check(tmp_path: Path) -> None:
    _fetch_case(tmp_path, "bad-list")


def test_manifest_off_its_root_is_penalised_and_the_next_source_serves(tmp_path: Path) -> None:
    root = make_artifact(tmp_path / "art", "one")
    make_artifact(tmp_path / "other", "other")

    class WrongManifest(StoreArtifacts):
        def manifest_bytes(self, asked: bytes) -> bytes | None:
            roots = [a.root for a in self.store.list() if a.root != asked]
            return self.store.manifest(roots[0]).encode()

        def may_fetch(self, peer: str, asked: bytes) -> bool:
            return True

    async def body() -> None:
        chain = ToyChain()
        honest_store, liar_store = _store(tmp_path, "honest"), _store(tmp_path, "liar")
        honest_store.put(tmp_path / "art")
        liar_store.put(tmp_path / "other")
        async with trio.open_nursery() as nursery:
            liar = _node(tmp_path, "liar", chain, WrongManifest(liar_store))
            honest = _node(tmp_path, "honest", chain, StoreArtifacts(honest_store))
            fetcher = _node(tmp_path, "fetcher", chain, StoreArtifacts(_store(tmp_path, "fetcher")))
            for node in (liar, honest, fetcher):
                await nursery.start(node.run)
            progress = await _wait(fetcher.fetch_artifact(root, [liar.listen_addrs()[0], honest.listen_addrs()[0]]))
            assert progress.state == "done"
            assert "wrong-root" in progress.dropped[liar.peer_id]
            nursery.cancel_scope.cancel()

    run(body, limit=60)


def test_policy_refusal_fails_the_fetch_without_blame(tmp_path: Path) -> None:
    root = make_artifact(tmp_path / "art", "one")

    async def body() -> None:
        chain = ToyChain()
        store = _store(tmp_path, "server")
        store.put(tmp_path / "art")
        backend = StoreArtifacts(store, serve=False)
        async with trio.open_nursery() as nursery:
            server = _node(tmp_path, "server", chain, backend)
            fetcher = _node(tmp_path, "fetcher", chain, StoreArtifacts(_store(tmp_path, "fetcher")))
            await nursery.start(server.run)
            await nursery.start(fetcher.run)
            progress = await _wait(fetcher.fetch_artifact(root, [server.listen_addrs()[0]]))
            assert (progress.state, progress.reason) == ("failed", "no-manifest")
            assert progress.dropped[server.peer_id] == "refused: not-allowed"
            assert fetcher.scores.points(server.peer_id, trio.current_time()) == 0
            backend.policy = lambda peer, asked: peer == fetcher.peer_id and asked == root
            progress = await _wait(fetcher.fetch_artifact(root, [server.peer_id]))
            assert progress.state == "done"
            nursery.cancel_scope.cancel()

    run(body, limit=60)


def test_named_source_that_is_not_a_peer_is_reported_not_left_out_silently(tmp_path: Path) -> None:
    root = make_artifact(tmp_path / "art", "one")
    stranger = "12D3KooWNotAPeerOfTheFetcherNotAPeerOfTheFetcher"

    async def body() -> None:
        chain = ToyChain()
        store = _store(tmp_path, "server")
        store.put(tmp_path / "art")
        async with trio.open_nursery() as nursery:
            server = _node(tmp_path, "server", chain, StoreArtifacts(store))
            fetcher = _node(tmp_path, "fetcher", chain, StoreArtifacts(_store(tmp_path, "fetcher")))
            await nursery.start(server.run)
            await nursery.start(fetcher.run)
            progress = await _wait(fetcher.fetch_artifact(root, [stranger, server.listen_addrs()[0]]))
            assert progress.state == "done", progress.to_json(trio.current_time())
            assert progress.dropped[stranger].startswith("unreachable: not-connected"), progress.dropped
            assert progress.sources == [server.peer_id, stranger]
            nursery.cancel_scope.cancel()

    run(body, limit=60)


def test_cut_fetch_resumes_from_the_verified_pieces(tmp_path: Path) -> None:
    big = 24 * PIECE_SIZE
    root = make_artifact(tmp_path / "art", "one", big)

    async def body() -> None:
        chain = ToyChain()
        store = _store(tmp_path, "server")
        store.put(tmp_path / "art")
        slow = Rate(per_second=8.0 * PIECE_SIZE, burst=2.0 * PIECE_SIZE)
        async with trio.open_nursery() as outer:
            server = _node(tmp_path, "server", chain, StoreArtifacts(store), artifact_rate=slow)
            await outer.start(server.run)
            async with trio.open_nursery() as nursery:
                fetcher = _node(tmp_path, "fetcher", chain, StoreArtifacts(_store(tmp_path, "fetcher")))
                await nursery.start(fetcher.run)
                progress = fetcher.fetch_artifact(root, [server.listen_addrs()[0]])
                while progress.done < 8 * PIECE_SIZE:
                    await trio.sleep(0.02)
                nursery.cancel_scope.cancel()  # the fetching node stops mid-transfer
            cut_at = progress.done
            assert progress.state == "fetching" and cut_at < progress.total, _explain(progress)
            # the restarted node dials the server at once: the server may still hold the old
            # node's connection (same peer id) and close the new one; the fetch dials it again
            fetcher = _node(tmp_path, "fetcher", chain, StoreArtifacts(_store(tmp_path, "fetcher")))
            await outer.start(fetcher.run)
            penalties = _artifact_penalties(fetcher)
            progress = await _wait(fetcher.fetch_artifact(root, [server.listen_addrs()[0]]))
            assert progress.state == "done", _explain(progress)
            assert progress.resumed >= 8 * PIECE_SIZE - 2 * PIECE_SIZE, (cut_at, _explain(progress))
            assert penalties == [] and progress.dropped == {}, (penalties, _explain(progress))
            _store(tmp_path, "fetcher").verify(root)
            outer.cancel_scope.cancel()

    run(body, limit=90)


def test_source_closing_the_connection_mid_transfer_is_dialed_again_without_blame(tmp_path: Path) -> None:
    """The server's node closes the connection while a read is under way (as it does when a
    handshake over a stale connection fails): the stream ends early with the connection gone,
    which is a departure, not a bad response; the fetch dials the server again and goes on."""
    big = 16 * PIECE_SIZE
    root = make_artifact(tmp_path / "art", "one", big)

    async def body() -> None:
        chain = ToyChain()
        store = _store(tmp_path, "server")
        store.put(tmp_path / "art")
        slow = Rate(per_second=8.0 * PIECE_SIZE, burst=2.0 * PIECE_SIZE)
        async with trio.open_nursery() as nursery:
            server = _node(tmp_path, "server", chain, StoreArtifacts(store), artifact_rate=slow)
            fetcher = _node(tmp_path, "fetcher", chain, StoreArtifacts(_store(tmp_path, "fetcher")))
            await nursery.start(server.run)
            await nursery.start(fetcher.run)
            penalties = _artifact_penalties(fetcher)
            progress = fetcher.fetch_artifact(root, [server.listen_addrs()[0]])
            with trio.fail_after(30):
                while progress.done < 4 * PIECE_SIZE:
                    await trio.sleep(0.02)
            await server._host.disconnect(fetcher.peer_id)
            await _wait(progress)
            assert progress.state == "done", _explain(progress)
            assert penalties == [] and progress.dropped == {}, (penalties, _explain(progress))
            _store(tmp_path, "fetcher").verify(root)
            nursery.cancel_scope.cancel()

    run(body, limit=60)


# --------------------------------------------------------------------------- failing sources


def _feed(data: bytes, *, stall: bool = False, on_end: Callable[[], None] | None = None) -> ReadFn:
    """A stream read over `data`: then the end of the stream (`on_end` called first), or, with
    `stall`, a read that never returns."""
    view = memoryview(data)

    async def read(n: int) -> bytes:
        nonlocal view
        if not view:
            if stall:
                await trio.sleep_forever()
            if on_end is not None:
                on_end()
            return b""
        out, view = bytes(view[:n]), view[n:]
        return out

    return read


class FakeHost:
    """Stands in for `Host` under an `ArtifactFetch`: each source is an `ArtifactServer` over its
    own store, answered in memory. A test can make a source's
    next read of more than `k` pieces (or files) end after `k` of them (`cut`: "truncate" with the
    connection up, "depart" with the connection gone at the end, "stall": no more bytes), answer
    `busy` while a condition holds, reset its first requests (`flaky`), or answer read-files as a
    server that predates it does (`old`); connections and dials are plain flags."""

    def __init__(self, stores: dict[str, ArtifactStore]) -> None:
        def never(*_: object) -> None:
            raise AssertionError("the fetcher broke the protocol")

        unlimited = Rate(per_second=2.0**40, burst=2.0**40)
        self.servers = {
            peer: ArtifactServer(StoreArtifacts(store), never, lambda *_: True, 8, unlimited)
            for peer, store in stores.items()
        }
        self.connected = set(stores)
        self.reachable = set(stores)
        self.dials: list[str] = []
        # reads a source answered with data (not an error): (source, file hash, first, count)
        self.reads: list[tuple[str, bytes, int, int]] = []
        self.file_reads: list[tuple[str, tuple[bytes, ...]]] = []  # the same of read-files: (source, files)
        self.old: set[str] = set()
        self.old_refusals: list[str] = []  # read-files an old source refused (and charged for)
        self.cut: dict[str, tuple[int, str]] = {}
        self.busy_while: dict[str, Callable[[], bool]] = {}
        self.flaky: dict[str, int] = {}

    def is_connected(self, peer: str) -> bool:
        return peer in self.connected

    def addrs(self, peer: str) -> list[str]:
        return [f"/memory/{peer}"]

    async def connect(self, addr: str, timeout: float) -> str:
        peer = addr.rsplit("/p2p/", 1)[1]
        self.dials.append(peer)
        if peer not in self.reachable:
            raise RequestFailed("dial-failed", addr)
        self.connected.add(peer)
        return peer

    async def _answer(self, peer: str, data: bytes) -> bytes:
        if peer not in self.connected:
            raise RequestFailed("not-connected", peer)
        if self.flaky.get(peer):
            self.flaky[peer] -= 1
            raise RequestFailed("stream-failed", "reset")
        busy = self.busy_while.get(peer)
        if busy is not None and busy():
            return error_frame("busy")
        if peer in self.old and isinstance(decode_request(data[FRAME_PREFIX:]), ReadFilesRequest):
            self.old_refusals.append(peer)  # the old server's answer (it also charges BAD_REQUEST)
            return error_frame("unknown-request")
        out = bytearray()

        async def write(chunk: bytes) -> None:
            out.extend(chunk)

        await self.servers[peer].handle("fetcher", _feed(data), write)
        return bytes(out)

    async def request(self, peer: str, protocol: str, data: bytes, cap: int) -> bytes:
        return await read_frame(_feed(await self._answer(peer, data)), cap)

    @asynccontextmanager
    async def stream_request(self, peer: str, protocol: str, data: bytes) -> AsyncIterator[ReadFn]:
        out = await self._answer(peer, data)
        request = decode_request(data[FRAME_PREFIX:])
        refused = out[FRAME_PREFIX:FRAME_PREFIX + len(_ERROR_TAG)] == _ERROR_TAG
        if isinstance(request, ReadFilesRequest):
            self.file_reads += [] if refused else [(peer, request.file_hashes)]
            frames = len(request.file_hashes)
        else:
            assert isinstance(request, ReadRequest)
            self.reads += [] if refused else [(peer, request.file_hash, request.first, request.count)]
            frames = request.count
        cut = self.cut.get(peer)
        if cut is None or frames <= cut[0]:
            yield _feed(out)
            return
        del self.cut[peer]
        pieces, how = cut
        end = 0
        for _ in range(pieces):
            end += FRAME_PREFIX + int.from_bytes(out[end:end + FRAME_PREFIX], "big")
        yield _feed(out[:end + FRAME_PREFIX], stall=how == "stall",
                    on_end=(lambda: self.connected.discard(peer)) if how == "depart" else None)


_ERROR_TAG = b"\x92\xa5error"  # an ["error", reason] frame's body starts so


CUT = 2 * WRITE_BATCH  # pieces a cut read delivers: all written before the cut


def _sources(tmp_path: Path, *names: str) -> tuple[bytes, bytes, FakeHost]:
    """An artifact (BIG: 21 pieces in data.bin) held by every source named; its root, the hash of
    data.bin, and a FakeHost serving it."""
    root = make_artifact(tmp_path / "art", "one")
    stores = {}
    for name in names:
        stores[name] = _store(tmp_path, name)
        stores[name].put(tmp_path / "art")
    data_hash = next(f.hash for f in stores[names[0]].manifest(root).files if f.path == "data.bin")
    return root, data_hash, FakeHost(stores)


def _fetch(
    tmp_path: Path, host: FakeHost, root: bytes, sources: list[str], *, timeout: float = 10.0,
    busy_until_dropped: tuple[str, str] | None = None, support: ReadFilesSupport | None = None,
    fetcher: str = "fetcher",
) -> tuple[FetchProgress, list[tuple[str, Offence]]]:
    """Run one fetch over `host` into the store `fetcher`; its progress and the penalties it
    dealt. `busy_until_dropped` = (a, b): source `a` answers busy until `b` is dropped (so `b`
    alone vouches for the list). `support`: what earlier fetches learnt of read-files."""
    penalties: list[tuple[str, Offence]] = []
    progress: list[FetchProgress] = []

    async def body() -> None:
        fetch = ArtifactFetch(
            cast(Host, host), "/test/artifact/1", StoreArtifacts(_store(tmp_path, fetcher)),
            lambda peer, offence, _: penalties.append((peer, offence)), root, timeout, support=support,
        )
        progress.append(fetch.progress)
        if busy_until_dropped is not None:
            busy, dropped = busy_until_dropped
            host.busy_while[busy] = lambda: dropped not in fetch.progress.dropped
        await fetch.run(sources)

    run(body, limit=60)
    return progress[0], penalties


def _reads_of(host: FakeHost, source: str, file_hash: bytes) -> list[int]:
    """The pieces of a file that a source was asked for, in order."""
    return [i for peer, f, first, count in host.reads if (peer, f) == (source, file_hash)
            for i in range(first, first + count)]


@pytest.mark.parametrize(("how", "offence"), [("truncate", Offence.BAD_RESPONSE), ("stall", Offence.TIMEOUT)])
def test_pieces_verified_before_a_source_fails_survive_its_drop(tmp_path: Path, how: str, offence: Offence) -> None:
    """A source ends a read early with its connection up (an offence), or stalls (a timeout),
    after 8 pieces that matched its list (two write batches): it is penalised and dropped, and it was the only one
    vouching for the list, but nothing says the list was false: the pieces stay, the next
    source's equal list keeps them, and it is asked for the rest only."""
    root, data_hash, host = _sources(tmp_path, "cutter", "honest")
    host.cut["cutter"] = (CUT, how)
    progress, penalties = _fetch(
        tmp_path, host, root, ["cutter", "honest"], timeout=1.0 if how == "stall" else 10.0,
        busy_until_dropped=("honest", "cutter"),
    )
    assert progress.state == "done", _explain(progress)
    assert penalties == [("cutter", offence)], _explain(progress)
    assert list(progress.dropped) == ["cutter"], _explain(progress)
    assert _reads_of(host, "cutter", data_hash)[:CUT + 1] == list(range(CUT + 1))
    assert _reads_of(host, "honest", data_hash) == list(range(CUT, 21)), host.reads
    assert progress.done == progress.total
    _store(tmp_path, "fetcher").verify(root)


def test_source_whose_connection_went_mid_stream_is_dialed_again_without_blame(tmp_path: Path) -> None:
    """A read ends early and the source's connection is gone with it: a departure, no offence;
    the fetch dials the source again and asks it for the pieces it lacks."""
    root, data_hash, host = _sources(tmp_path, "server")
    host.cut["server"] = (CUT, "depart")
    progress, penalties = _fetch(tmp_path, host, root, ["server"])
    assert progress.state == "done", _explain(progress)
    assert penalties == [] and progress.dropped == {}, _explain(progress)
    assert host.dials == ["server"]
    assert _reads_of(host, "server", data_hash)[-(21 - CUT):] == list(range(CUT, 21)), host.reads
    _store(tmp_path, "fetcher").verify(root)


def test_departed_source_that_cannot_be_dialed_is_dropped_without_blame(tmp_path: Path) -> None:
    """The departed source cannot be dialed again: after RETRIES failures in a row it is dropped
    without blame, and the pieces it sent stay for the next source."""
    root, data_hash, host = _sources(tmp_path, "gone", "honest")
    host.cut["gone"] = (CUT, "depart")
    host.reachable.discard("gone")
    progress, penalties = _fetch(tmp_path, host, root, ["gone", "honest"], busy_until_dropped=("honest", "gone"))
    assert progress.state == "done", _explain(progress)
    assert penalties == [], _explain(progress)
    assert progress.dropped["gone"].startswith("gone: ") and list(progress.dropped) == ["gone"], _explain(progress)
    assert set(host.dials) == {"gone"} and len(host.dials) <= RETRIES - 1, host.dials
    assert _reads_of(host, "honest", data_hash) == list(range(CUT, 21)), host.reads
    _store(tmp_path, "fetcher").verify(root)


def test_manifest_request_that_fails_without_blame_is_tried_again(tmp_path: Path) -> None:
    """The only source is not connected (dialed), then resets the first manifest request: the
    fetch tries it again after a short pause instead of giving up (`no-manifest`)."""
    root, _, host = _sources(tmp_path, "server")
    host.connected.clear()
    host.flaky["server"] = 1
    progress, penalties = _fetch(tmp_path, host, root, ["server"])
    assert progress.state == "done", _explain(progress)
    assert penalties == [] and progress.dropped == {}, _explain(progress)
    assert host.dials == ["server"]


def test_manifest_source_failing_every_try_is_dropped_after_retries(tmp_path: Path) -> None:
    root, _, host = _sources(tmp_path, "server")
    host.flaky["server"] = RETRIES
    progress, penalties = _fetch(tmp_path, host, root, ["server"])
    assert (progress.state, progress.reason) == ("failed", "no-manifest"), _explain(progress)
    assert penalties == [] and progress.dropped["server"].startswith("gone: "), _explain(progress)
    assert host.flaky["server"] == 0
