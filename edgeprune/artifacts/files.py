"""Size and content hash of an artifact, which is a single file or (Core ML) a package directory."""

from __future__ import annotations

import hashlib
from pathlib import Path

from edgeprune.fsutil import sha256_file


def artifact_size(path: Path) -> int:
    """Bytes of a file, or the sum over the files of a directory."""
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def artifact_digest(path: Path) -> str:
    """sha256 of a file, or of a directory's sorted (relative path, content hash) pairs."""
    path = Path(path)
    if not path.is_dir():
        return sha256_file(path)
    h = hashlib.sha256()
    for p in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(p.relative_to(path).as_posix().encode() + b"\0" + sha256_file(p).encode() + b"\n")
    return h.hexdigest()
