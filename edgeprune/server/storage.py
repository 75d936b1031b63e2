"""Content-addressed bundle store on local disk: ``<root>/<sha[:2]>/<sha>.zip`` plus ``<sha>.json`` beside it.

Uploads stream into ``<root>/.incoming`` while being hashed and size-checked (each ``.part`` file is
locked while its upload runs), then are renamed into place (atomic on one filesystem). ``.part`` files of
crashed uploads are removed at start-up. The sha256 is computed once, while receiving; the sidecar
``<sha>.json`` records it with the file's identity (size, mtime, ctime, inode) and the bundle's verified
signature, so downloads do not re-hash: a file whose identity changed (edited, replaced, restored from a
backup) is hashed again before it is served, and never served if it no longer matches.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from edgeprune.errors import EdgepruneError
from edgeprune.fsutil import sha256_file, write_json_atomic
from edgeprune.server.settings import ServerSettings

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows: stale uploads are then judged by age
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("edgeprune.server.storage")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 20
STALE_UPLOAD_SECONDS = 24 * 3600  # without file locks: .part files older than this are leftovers
NEW_UPLOAD_GRACE_SECONDS = 10.0  # a .part file this young may be between its creation and its lock


class UploadTooLarge(Exception):
    """The upload exceeded the configured size limit."""


class BundleMissing(Exception):
    """No stored file for this sha256."""


class BundleCorrupt(Exception):
    """The stored file no longer matches its sha256."""


@dataclass(frozen=True)
class Staged:
    """An upload written to a temporary file, with its hash and size (``lock_fd`` keeps it claimed)."""

    path: Path
    sha256: str
    size_bytes: int
    lock_fd: int | None = field(default=None, compare=False)


class BundleStore(Protocol):
    def receive(self, src: BinaryIO, max_bytes: int) -> Staged: ...
    def commit(self, staged: Staged, meta: dict[str, Any] | None = None) -> Path: ...
    def discard(self, staged: Staged) -> None: ...
    def verified_path(self, sha256: str) -> Path: ...
    def metadata(self, sha256: str) -> dict[str, Any]: ...


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

    def meta_path(self, sha256: str) -> Path:
        return self.path_for(sha256).with_suffix(".json")

    def remove_stale_uploads(self) -> list[Path]:
        """Delete ``.part`` files no running upload holds (left by a crash or kill -9); return them."""
        removed = []
        for part in self.incoming.glob("*.part"):
            if _claim(part):
                part.unlink(missing_ok=True)
                removed.append(part)
        if removed:
            log.warning("removed %d unfinished upload file(s) left in %s", len(removed), self.incoming)
        return removed

    def receive(self, src: BinaryIO, max_bytes: int) -> Staged:
        """Copy ``src`` to a temp file, hashing it; raise :class:`UploadTooLarge` past ``max_bytes``."""
        fd, name = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=self.incoming)
        lock_fd = os.dup(fd)
        if fcntl is not None:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours until commit/discard closes lock_fd
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
            os.close(lock_fd)
            raise
        return Staged(Path(name), digest.hexdigest(), size, lock_fd)

    def commit(self, staged: Staged, meta: dict[str, Any] | None = None) -> Path:
        """Move a staged upload into place; an existing intact copy is kept (idempotent re-upload).

        ``meta`` (e.g. the verified signature) is recorded in the sidecar with the sha256 and file identity."""
        final = self.path_for(staged.sha256)
        try:
            if final.exists() and self._intact(final, staged.sha256):
                staged.path.unlink(missing_ok=True)
            else:
                if final.exists():
                    log.error("stored bundle %s was corrupt; replacing it with the verified upload", staged.sha256)
                final.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(staged.path, 0o444)
                os.replace(staged.path, final)
            self._write_meta(staged.sha256, final, meta or {})
        finally:
            _release(staged)
        return final

    def discard(self, staged: Staged) -> None:
        staged.path.unlink(missing_ok=True)
        _release(staged)

    def metadata(self, sha256: str) -> dict[str, Any]:
        """What was recorded when the bundle was stored (``{}`` when the sidecar is missing or unreadable)."""
        try:
            meta = json.loads(self.meta_path(sha256).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return meta if isinstance(meta, dict) and meta.get("sha256") == sha256 else {}

    def verified_path(self, sha256: str) -> Path:
        """The stored file; hashed again only when its identity differs from the one recorded at store time."""
        path = self.path_for(sha256)
        try:
            identity = _identity(path)
        except FileNotFoundError:
            raise BundleMissing(sha256) from None
        meta = self.metadata(sha256)
        if meta.get("identity") == identity:
            return path
        if not self._intact(path, sha256):
            log.error("bundle %s failed its sha256 check on disk (%s): refusing to serve it", sha256, path)
            raise BundleCorrupt(sha256)
        self._write_meta(sha256, path, {k: v for k, v in meta.items() if k not in ("sha256", "identity")})
        return path

    def _write_meta(self, sha256: str, path: Path, meta: dict[str, Any]) -> None:
        try:
            write_json_atomic(self.meta_path(sha256), {**meta, "sha256": sha256, "identity": _identity(path)})
        except OSError as exc:  # a read-only store still serves (it re-hashes instead)
            log.warning("cannot record metadata of bundle %s: %s", sha256, exc)

    @staticmethod
    def _intact(path: Path, sha256: str) -> bool:
        return sha256_file(path) == sha256


def _identity(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _claim(part: Path) -> bool:
    """True when no upload holds ``part`` (its lock is free, or it is old where locks do not exist)."""
    try:
        age = time.time() - part.stat().st_mtime
    except OSError:
        return False
    if fcntl is None or age < NEW_UPLOAD_GRACE_SECONDS:
        return age > STALE_UPLOAD_SECONDS
    try:
        fd = os.open(part, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _release(staged: Staged) -> None:
    if staged.lock_fd is not None:
        try:
            os.close(staged.lock_fd)
        except OSError:
            pass


def make_store(settings: ServerSettings) -> FileBundleStore:
    """The bundle store named by ``settings.bundle_store`` (a directory; object stores are not built in)."""
    target = settings.bundle_store.strip()
    if re.match(r"^[a-z][a-z0-9+.-]*://", target):
        raise EdgepruneError(
            f"the bundle store {target!r} (S3-compatible/object storage) is not available in this build",
            "leave EDGEPRUNE_BUNDLE_STORE empty or set it to a directory (mount object storage there if needed)",
        )
    store = FileBundleStore(Path(target) if target else settings.data_dir / "bundles")
    store.remove_stale_uploads()
    return store
