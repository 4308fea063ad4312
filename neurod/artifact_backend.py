"""The artifact store as the p2p layer sees it: `p2p.artifacts.ArtifactBackend`, and the policy
that decides who may fetch what.

Policy (`may_fetch(peer, root)`): an artifact this node sells (`withheld`, set by
`neurod.listings`) is never served in plaintext: a buyer gets it sealed, through `sealer`.
Otherwise, when a `policy` function is set (the market will set one that
allows a job's client and its verifiers), it alone decides. Otherwise every artifact in the
store is served to every peer, unless `artifact_serve = false` in config.toml, which serves
nothing. A refused peer gets `["error", "not-allowed"]`, never a penalty.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path

from neurod.artifact_store import ArtifactStore, ArtifactStoreError
from p2p.artifacts import ArtifactRejected, FileSpec
from p2p.errors import P2PError
from worker.artifact import MANIFEST_FILE, check_commitments, read_manifest
from worker.errors import VerificationFailed

log = logging.getLogger("neuro.artifacts")

FILE_LISTS_KEPT = 64  # manifests' file lists kept decoded for serving

Policy = Callable[[str, bytes], bool]
Sealer = Callable[[str, bytes], Awaitable[bytes | str]]


class StoreArtifacts:
    """`ArtifactBackend` over one `ArtifactStore`; `policy` may be replaced at run time."""

    def __init__(self, store: ArtifactStore, *, serve: bool = True) -> None:
        self.store = store
        self.serve = serve
        self.policy: Policy | None = None
        self.withheld: Callable[[bytes], bool] = lambda root: False  # listed roots: sold, not served
        self.sealer: Sealer | None = None  # `neurod.listings.service.Listings.sealed_root`
        self._files: OrderedDict[bytes, dict[bytes, int]] = OrderedDict()  # root -> hash -> size

    def may_fetch(self, peer: str, root: bytes) -> bool:
        if self.withheld(root):
            return False
        if self.policy is not None:
            return self.policy(peer, root)
        return self.serve

    def has(self, root: bytes) -> bool:
        return self.store.has(root)

    def manifest_bytes(self, root: bytes) -> bytes | None:
        try:
            data = self.store.manifest(root).encode()
            self.store.touch(root)
        except (ArtifactStoreError, VerificationFailed):
            return None
        return data

    def file_path(self, root: bytes, file_hash: bytes) -> tuple[Path, int] | None:
        files = self._files.get(root)
        if files is None:
            try:
                manifest = self.store.manifest(root)
            except (ArtifactStoreError, VerificationFailed):
                return None
            files = self._files[root] = {f.hash: f.size for f in manifest.files}
            while len(self._files) > FILE_LISTS_KEPT:
                self._files.popitem(last=False)
        size = files.get(file_hash)
        blob = self.store.blob_path(file_hash)
        if size is None or not blob.is_file():
            return None
        return blob, size

    def check_manifest(self, root: bytes, data: bytes) -> list[FileSpec]:
        folder = self.store.partial_dir(root)
        path = folder / MANIFEST_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        try:
            manifest = read_manifest(folder)
            if manifest.root != root:
                raise ArtifactRejected("wrong-root", f"manifest of {manifest.root.hex()[:16]}..")
            check_commitments(manifest)
        except VerificationFailed as exc:
            path.unlink(missing_ok=True)
            raise ArtifactRejected(exc.reason, str(exc)) from None
        except ArtifactRejected:
            path.unlink(missing_ok=True)
            raise
        sizes = {f.hash: f.size for f in manifest.files}
        return [FileSpec(h, size) for h, size in sizes.items() if not self.store.has_blob(h)]

    def partial_dir(self, root: bytes) -> Path:
        return self.store.partial_dir(root)

    async def sealed_root(self, peer: str, purchase_id: bytes) -> bytes | str:
        if self.sealer is None:
            return "not-selling"
        return await self.sealer(peer, purchase_id)

    def adopt_file(self, spec: FileSpec, path: Path) -> bool:
        return self.store.adopt_blob(spec.hash, spec.size, path)

    def complete(self, root: bytes, data: bytes) -> None:
        try:
            self.store.put_fetched(root)
        except (ArtifactStoreError, VerificationFailed) as exc:
            raise P2PError(getattr(exc, "reason", "store-failed"), str(exc)) from None
