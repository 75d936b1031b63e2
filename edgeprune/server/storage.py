"""Content-addressed bundle store on local disk: ``<root>/<sha[:2]>/<sha>.zip``.

Uploads stream into ``<root>/.incoming`` while being hashed and size-checked, then are renamed into
place (atomic on one filesystem). Every read re-hashes the file, so corrupted bytes are never served.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from edgeprune.errors import EdgepruneError
from edgeprune.fsutil import sha256_file
from edgeprune.server.settings import ServerSettings

log = logging.getLogger("edgeprune.server.storage")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 20


class UploadTooLarge(Exception):
    """The upload exceeded the configured size limit."""


class BundleMissing(Exception):
    """No stored file for this sha256."""


class BundleCorrupt(Exception):
    """The stored file no longer matches its sha256."""


@dataclass(frozen=True)
class Staged:
    """An upload written to a temporary file, with its hash and size."""

    path: Path
    sha256: str
    size_bytes: int


class BundleStore(Protocol):
    def receive(self, src: BinaryIO, max_bytes: int) -> Staged: ...
    def commit(self, staged: Staged) -> Path: ...
    def discard(self, staged: Staged) -> None: ...
    def verified_path(self, sha256: str) -> Path: ...


class FileBundleStore:
    """Bundles as immutable files named by their sha256."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.incoming = self.root / ".incoming"
        self.incoming.mkdir(parents=True, exist_ok=True)

    def path_for(self, sha256: str) -> Path:
        if not SHA256_RE.match(sha256):  # never build a path from anything but 64 hex digits
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.root / sha256[:2] / f"{sha256}.zip"

    def receive(self, src: BinaryIO, max_bytes: int) -> Staged:
        """Copy ``src`` to a temp file, hashing it; raise :class:`UploadTooLarge` past ``max_bytes``."""
        fd, name = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=self.incoming)
        digest, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as out:
                while block := src.read(CHUNK):
                    size += len(block)
                    if size > max_bytes:
                        raise UploadTooLarge(f"bundle is larger than {max_bytes} bytes")
                    digest.update(block)
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Staged(Path(name), digest.hexdigest(), size)

    def commit(self, staged: Staged) -> Path:
        """Move a staged upload into place; an existing intact copy is kept (idempotent re-upload)."""
        final = self.path_for(staged.sha256)
        if final.exists() and self._intact(final, staged.sha256):
            self.discard(staged)
            return final
        if final.exists():
            log.error("stored bundle %s was corrupt; replacing it with the verified upload", staged.sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(staged.path, 0o444)
        os.replace(staged.path, final)
        return final

    def discard(self, staged: Staged) -> None:
        staged.path.unlink(missing_ok=True)

    def verified_path(self, sha256: str) -> Path:
        """The stored file, after checking its sha256 again."""
        path = self.path_for(sha256)
        if not path.is_file():
            raise BundleMissing(sha256)
        if not self._intact(path, sha256):
            log.error("bundle %s failed its sha256 check on disk (%s): refusing to serve it", sha256, path)
            raise BundleCorrupt(sha256)
        return path

    @staticmethod
    def _intact(path: Path, sha256: str) -> bool:
        return sha256_file(path) == sha256


def make_store(settings: ServerSettings) -> FileBundleStore:
    """The bundle store named by ``settings.bundle_store`` (a directory; object stores are not built in)."""
    target = settings.bundle_store.strip()
    if re.match(r"^[a-z][a-z0-9+.-]*://", target):
        raise EdgepruneError(
            f"the bundle store {target!r} (S3-compatible/object storage) is not available in this build",
            "leave EDGEPRUNE_BUNDLE_STORE empty or set it to a directory (mount object storage there if needed)",
        )
    return FileBundleStore(Path(target) if target else settings.data_dir / "bundles")
